//! Progress lines for long loops, on stderr so that stdout stays reproducible.

use std::io::Write;
use std::time::{Duration, Instant};

/// Prints `label i/total (rate/s) message` on stderr at most every `every`.
pub struct Progress {
    label: String,
    total: usize,
    start: Instant,
    last: Instant,
    every: Duration,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            total,
            start: now,
            last: now,
            every: Duration::from_secs(5),
        }
    }

    /// Reports step `i` (1-based) with a short message; prints when due and at the end.
    pub fn tick(&mut self, i: usize, message: &str) {
        let now = Instant::now();
        if i >= self.total || now - self.last >= self.every {
            self.last = now;
            let secs = (now - self.start).as_secs_f64();
            let _ = writeln!(
                std::io::stderr(),
                "[{}] {i}/{} {:.1}s ({:.2}/s) {message}",
                self.label,
                self.total,
                secs,
                i as f64 / secs.max(1e-9)
            );
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Runs `f`, prints its wall time on stderr, and returns its value and the seconds.
pub fn timed<T>(label: &str, f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    let secs = t.elapsed().as_secs_f64();
    let _ = writeln!(std::io::stderr(), "[time] {label}: {secs:.3}s");
    (v, secs)
}
