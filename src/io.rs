//! File output shared by figures, metrics and checkpoints: a file appears only once
//! complete (written to a temporary file in the same folder, then renamed), so an
//! interrupted run never leaves half a PNG, JSON or safetensors file behind.

use crate::error::{Context, Result};
use std::path::Path;

/// Writes `path` atomically: `write` fills a temporary file in the same folder (created
/// if missing), which then replaces `path`.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).context(dir.display())?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    write(&tmp).context(tmp.display())?;
    std::fs::rename(&tmp, path).context(path.display())?;
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| Ok(std::fs::write(tmp, bytes)?))
}

/// Writes `value` as pretty-printed JSON with a final newline, atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("hw4-io-{}", std::process::id()));
        let p = dir.join("sub").join("a.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}\n");
        write_atomic(&p, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
        let e = write_atomic_with(&p, |_| Err("no".into())).unwrap_err();
        assert!(e.to_string().ends_with(": no"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
