//! Training the DDPM notebook's slot reader in a separate process while the readers cell
//! trains the OCR. Both readers train on one LibTorch thread (`ocr::OneThread`), so on a
//! two-core machine one trained after the other leaves a core idle for minutes; as a
//! child process (`examples/train_readers.rs`) one of them trains on that core instead.
//!
//! A separate process, not a thread: LibTorch's random generator and intra-op thread
//! pool are per process, and the cell draws from the generator while the child trains.
//! The child writes the same cache files ([`super::cache`]) that the readers cell then
//! loads, and each reader trains alone on its thread either way, so the weights do not
//! depend on whether the child or the cell trained them.
//!
//! The child is not started (one line on stderr says why) when every cache file it would
//! write exists, when `HW4_TRAIN=0`, on CUDA, or when the program is not built or older
//! than the crate's sources; the readers cell then trains that reader itself.

use crate::error::{Error, Result};
use crate::session::{output_root, project_root, Session};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Instant, SystemTime};

/// The child program, built by `cargo build --example train_readers` (`make test` and
/// `scripts/run_notebooks.py` build it).
pub const PROGRAM: &str = "train_readers";

/// A readers' training running in a child process, or nothing when it was not started.
pub struct ReaderJob {
    child: Option<Child>,
    log: PathBuf,
    started: Instant,
}

impl ReaderJob {
    /// Starts a child that trains the readers whose cache files are `caches` (the files the
    /// readers cell will load) for a notebook whose OCR reads `ocr_size` (height, width)
    /// images, unless all of them exist or the child cannot run (see the module's notes).
    pub fn start(s: &Session, ocr_size: (i64, i64), caches: &[PathBuf]) -> Result<ReaderJob> {
        let none = || ReaderJob {
            child: None,
            log: PathBuf::new(),
            started: Instant::now(),
        };
        let idle = |why: &str| {
            eprintln!(
                "readers: not trained in the background ({why}); the readers cell trains them itself"
            );
            none()
        };
        if caches.iter().all(|p| p.exists()) {
            return Ok(none());
        }
        if !s.train_enabled() {
            return Ok(idle("HW4_TRAIN=0"));
        }
        if s.device.is_cuda() {
            return Ok(idle("on CUDA they train in seconds"));
        }
        let program = match program() {
            Ok(p) => p,
            Err(why) => return Ok(idle(&why)),
        };
        let log = s.out("train_readers.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| Error::msg(format!("cannot create {}: {e}", log.display())))?;
        let mut cmd = Command::new(&program);
        cmd.arg("--notebook")
            .arg(&s.notebook)
            .arg("--ocr-size")
            .arg(format!("{}x{}", ocr_size.0, ocr_size.1));
        for c in caches {
            cmd.arg("--expect").arg(c);
        }
        let child = cmd
            .env("HW4_PROFILE", s.profile.name())
            .env("HW4_SEED", s.seed.to_string())
            .env("HW4_DEVICE", "cpu")
            .env("HW4_THREADS", "1")
            .env("HW4_CPU_MODE", s.cpu_mode.name())
            .env("HW4_OUTPUT_DIR", output_root())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| Error::msg(format!("cannot start {}: {e}", program.display())))?;
        eprintln!(
            "readers: training in the background (process {}, log {})",
            child.id(),
            crate::data::show_path(&log)
        );
        Ok(ReaderJob {
            child: Some(child),
            log,
            started: Instant::now(),
        })
    }

    /// Waits for the child, if one runs. A failed child is one line on stderr naming its
    /// log (the readers cell then trains the readers itself); calling it again is a no-op.
    pub fn wait(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = child.wait()?;
        let secs = self.started.elapsed().as_secs_f64();
        if status.success() {
            eprintln!("readers: the background training finished {secs:.1} s after it started");
        } else {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            eprintln!(
                "readers: the background training failed ({status}; {}: {last}); the readers cell trains them itself",
                crate::data::show_path(&self.log)
            );
        }
        Ok(())
    }

    /// Whether a child was started and has not been waited for.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A child not waited for (its cell re-run, or the job dropped) is stopped: the file it
/// was writing is written atomically, so nothing half-written is left behind.
impl Drop for ReaderJob {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The built child program, or why it cannot be used.
fn program() -> std::result::Result<PathBuf, String> {
    let root = project_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target.join("debug").join("examples").join(PROGRAM);
    let built = std::fs::metadata(&exe)
        .and_then(|m| m.modified())
        .map_err(|_| {
            format!(
                "{} is not built: cargo build --example {PROGRAM}",
                crate::data::show_path(&exe)
            )
        })?;
    let newest = [
        root.join("src"),
        root.join("examples").join(format!("{PROGRAM}.rs")),
    ]
    .iter()
    .map(|p| newest_mtime(p))
    .max()
    .flatten();
    if newest.is_some_and(|t| t > built) {
        return Err(format!(
            "{} is older than the crate's sources: cargo build --example {PROGRAM}",
            crate::data::show_path(&exe)
        ));
    }
    Ok(exe)
}

fn newest_mtime(p: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(p).ok()?;
    if meta.is_dir() {
        std::fs::read_dir(p)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| newest_mtime(&e.path()))
            .max()
    } else {
        meta.modified().ok()
    }
}
