//! `outputs/<notebook>/metrics.json`: every measured number of a notebook, one
//! flat key per number, sorted. Cells add keys as they run, so re-running one cell
//! updates its keys and keeps the others. Keys starting with `time.` hold wall
//! times, which vary run to run; everything else must be reproducible.

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

fn write(s: &Session, m: &Map<String, Value>) -> Result<()> {
    let text = serde_json::to_string_pretty(m)? + "\n";
    crate::show::write_atomic(&path(s), text.as_bytes())
}

/// Sets `key` to `value` in the notebook's metrics.json.
pub fn record(s: &Session, key: &str, value: impl Into<Value>) -> Result<()> {
    let mut m = read(s)?;
    let v = value.into();
    if let Value::Number(n) = &v {
        if n.as_f64().is_some_and(|x| !x.is_finite()) {
            return Err(Error::msg(format!("metric {key} is not finite")));
        }
    }
    m.insert(key.to_string(), v);
    write(s, &m)
}

/// Sets a float, rejecting NaN and infinities (serde_json would write `null`).
pub fn record_f64(s: &Session, key: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::msg(format!("metric {key} = {value} is not finite")));
    }
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
    write(s, &m)
}
