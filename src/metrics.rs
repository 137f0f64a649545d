//! `outputs/<notebook>/metrics.json`: every measured number of a notebook, one
//! flat key per number, sorted. Cells add keys as they run, so re-running one cell
//! updates its keys and keeps the others. Keys starting with `time.` hold wall
//! times, which vary run to run; everything else must be reproducible.
//!
//! [`Session::start`] lives here rather than in `session`: starting a session begins
//! its metrics file, and metrics need the session, so defining it on this side keeps
//! the two modules free of an import cycle.

use crate::error::{Context, Error, Result};
use crate::session::Session;
use serde_json::{Map, Value};
use std::path::PathBuf;

fn path(s: &Session) -> PathBuf {
    s.out("metrics.json")
}

/// Reads the notebook's metrics (empty when there are none yet).
pub fn read(s: &Session) -> Result<Map<String, Value>> {
    let p = path(s);
    if !p.exists() {
        return Ok(Map::new());
    }
    let text = std::fs::read_to_string(&p).context(p.display())?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::msg(format!(
            "{} is not a JSON object; delete it to start afresh",
            p.display()
        ))),
    }
}

fn write(s: &Session, m: Map<String, Value>) -> Result<()> {
    crate::io::write_json(&path(s), &Value::Object(m))
}

/// Where in `v` a JSON `null` is (`""` for `v` itself, `[2]`, `.a[0]`), if anywhere.
/// serde_json writes NaN and the infinities as `null`, so a metric holding one is
/// where a number was not finite.
fn null_at(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| null_at(x).map(|w| format!("[{i}]{w}"))),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| null_at(x).map(|w| format!(".{k}{w}"))),
        _ => None,
    }
}

/// Sets `key` to `value` in the notebook's metrics.json. A number that is NaN or
/// infinite, alone or anywhere inside a vector or JSON value, is an error (JSON has
/// no such numbers; serde_json would silently write `null`).
pub fn record(s: &Session, key: &str, value: impl Into<Value>) -> Result<()> {
    let v = value.into();
    if let Some(at) = null_at(&v) {
        return Err(Error::msg(format!(
            "metric {key}{at} is not a finite number (NaN or infinite; JSON would hold null)"
        )));
    }
    let mut m = read(s)?;
    m.insert(key.to_string(), v);
    write(s, m)
}

/// [`record`] for a float (the type spelled out for inference in cells).
pub fn record_f64(s: &Session, key: &str, value: f64) -> Result<()> {
    record(s, key, value)
}

/// Starts the metrics of a run: keeps existing keys when they come from the same
/// session configuration, starts afresh otherwise.
pub fn begin(s: &Session) -> Result<()> {
    let line = s.line();
    let mut m = read(s).unwrap_or_default();
    if m.get("session").and_then(Value::as_str) != Some(line.as_str()) {
        m = Map::new();
        m.insert("session".into(), Value::from(line));
    }
    write(s, m)
}

impl Session {
    /// Reads the environment, configures LibTorch (threads, seeds, deterministic
    /// settings on CUDA), creates `outputs/<notebook>/`, begins its metrics.json and
    /// prints the session line. A panic from then on prints one line, not a backtrace
    /// ([`crate::session::short_panics`]).
    pub fn start(notebook: &str) -> Result<Session> {
        crate::session::short_panics();
        let s = Session::from_env(notebook)?;
        begin(&s)?;
        println!("{}", s.line());
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str) -> Session {
        let out_dir =
            std::env::temp_dir().join(format!("hw4-metrics-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&out_dir).unwrap();
        Session {
            notebook: name.into(),
            device: tch::Device::Cpu,
            profile: crate::Profile::Smoke,
            seed: 0,
            threads: 1,
            cpu_mode: crate::cpu::CpuMode::Native,
            cpu_isa: "AVX2".into(),
            bf16: false,
            out_dir,
        }
    }

    #[test]
    fn non_finite_numbers_are_errors_wherever_they_are() {
        let s = session("nan");
        begin(&s).unwrap();
        record(&s, "ok", vec![1.0, 2.5]).unwrap();
        let e = record_f64(&s, "a", f64::NAN).unwrap_err().to_string();
        assert_eq!(
            e,
            "metric a is not a finite number (NaN or infinite; JSON would hold null)"
        );
        let e = record(&s, "v", vec![1.0, f64::INFINITY])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("metric v[1] is not a finite number"), "{e}");
        let e = record(&s, "j", serde_json::json!({"x": [0.5, f64::NAN]}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("metric j.x[1] is not a finite number"), "{e}");
        let m = read(&s).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["ok", "session"]);
        assert_eq!(m["ok"], serde_json::json!([1.0, 2.5]));
        let _ = std::fs::remove_dir_all(&s.out_dir);
    }
}
