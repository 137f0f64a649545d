//! The evaluators' weight cache, one policy for all of them: weights live under
//! `outputs/eval/<name>-<key>.safetensors`, where the key is a SHA-256 of everything
//! the weights depend on (configuration, version, training data bytes), so a changed
//! setting or data set never reuses stale weights. A cached file is loaded; one that
//! cannot be loaded is an error naming it (never a silent retrain); a missing one is
//! trained and saved, unless `HW4_TRAIN=0`, which makes it an error naming the file.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// `outputs/eval/` (under `HW4_OUTPUT_DIR` when set).
pub fn dir() -> PathBuf {
    crate::session::output_root().join("eval")
}

/// A cache key being built: SHA-256 over the parts fed to it, in order.
#[derive(Clone, Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new() -> Key {
        Key::default()
    }

    /// Feeds raw bytes (text as UTF-8).
    pub fn bytes(mut self, b: impl AsRef<[u8]>) -> Key {
        self.0.update(b);
        self
    }

    /// Feeds a tensor: its shape as `AxBxC`, then its elements in little-endian
    /// bytes (row-major, on the CPU), so the key is the same on every device.
    pub fn tensor(mut self, t: &Tensor) -> Result<Key> {
        let shape: Vec<String> = t.size().iter().map(|d| d.to_string()).collect();
        self.0.update(shape.join("x"));
        let flat = t.to_device(Device::Cpu).contiguous().flatten(0, -1);
        const CHUNK: i64 = 1 << 16;
        let n = flat.size()[0];
        let mut i = 0;
        while i < n {
            let part = flat.narrow(0, i, CHUNK.min(n - i));
            let bytes: Vec<u8> = match part.kind() {
                Kind::Float => le(Vec::<f32>::try_from(&part)?, f32::to_le_bytes),
                Kind::Double => le(Vec::<f64>::try_from(&part)?, f64::to_le_bytes),
                Kind::Int64 => le(Vec::<i64>::try_from(&part)?, i64::to_le_bytes),
                Kind::Int => le(Vec::<i32>::try_from(&part)?, i32::to_le_bytes),
                Kind::Uint8 => Vec::<u8>::try_from(&part)?,
                k => {
                    return Err(Error::msg(format!(
                        "a cache key takes float, double, int or uint8 tensors, not {k:?}"
                    )))
                }
            };
            self.0.update(bytes);
            i += CHUNK;
        }
        Ok(self)
    }

    /// The whole hash in hex.
    pub fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `<dir>/<name>-<first 8 bytes of the hash in hex>.safetensors`.
    pub fn file_in(self, dir: &Path, name: &str) -> PathBuf {
        let hex: String = self.0.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        dir.join(format!("{name}-{hex}.safetensors"))
    }
}

fn le<T: Copy, const N: usize>(v: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.into_iter().flat_map(f).collect()
}

/// Loads `what`'s weights from `path` when the file exists, else trains them (unless
/// `train_enabled` is false) and saves them there. Returns the weights and whether
/// they came from the file.
pub fn load_or_train<T>(
    what: &str,
    path: &Path,
    train_enabled: bool,
    load: impl FnOnce(&Path) -> Result<T>,
    train: impl FnOnce() -> Result<T>,
    save: impl FnOnce(&T, &Path) -> Result<()>,
) -> Result<(T, bool)> {
    if path.exists() {
        let loaded = load(path).map_err(|e| {
            Error::msg(format!(
                "{e} (cached {what} weights: delete {} to retrain)",
                path.display()
            ))
        })?;
        return Ok((loaded, true));
    }
    if !train_enabled {
        return Err(Error::msg(format!(
            "HW4_TRAIN=0 but there are no cached {what} weights {}; run once with training enabled",
            crate::data::show_path(path)
        )));
    }
    let trained = train()?;
    save(&trained, path)?;
    Ok((trained, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_every_part() {
        let dir = Path::new("d");
        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let k =
            |t: &Tensor, text: &str| Key::new().bytes(text).tensor(t).unwrap().file_in(dir, "m");
        let a = k(&x, "cfg");
        assert_eq!(a, k(&x, "cfg"));
        assert_ne!(a, k(&x, "cfg2"));
        assert_ne!(a, k(&(&x * 2.0), "cfg"));
        assert_ne!(a, k(&x.view([2, 1]), "cfg"));
        assert_ne!(a, k(&x.to_kind(Kind::Double), "cfg"));
        let name = a.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("m-") && name.ends_with(".safetensors") && name.len() == 30);
        // Chunked hashing equals hashing the bytes in one go.
        let big = Tensor::arange(70_000, (Kind::Int64, Device::Cpu));
        let bytes: Vec<u8> = (0..70_000i64).flat_map(i64::to_le_bytes).collect();
        assert_eq!(
            Key::new().tensor(&big).unwrap().file_in(dir, "m"),
            Key::new().bytes("70000").bytes(bytes).file_in(dir, "m")
        );
    }

    #[test]
    fn loads_trains_or_refuses() {
        let dir = std::env::temp_dir().join(format!("hw4-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.txt");
        let read = |p: &Path| -> Result<String> {
            let t = std::fs::read_to_string(p)?;
            if t == "bad" {
                return Err(Error::msg(format!("{} is damaged", p.display())));
            }
            Ok(t)
        };
        let save = |t: &String, p: &Path| crate::io::write_atomic(p, t.as_bytes());
        let e = load_or_train("toy", &path, false, read, || Ok("x".to_string()), save)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("HW4_TRAIN=0 but there are no cached toy weights") && e.contains("w.txt"),
            "{e}"
        );
        let trained = load_or_train("toy", &path, true, read, || Ok("x".into()), save).unwrap();
        assert_eq!(trained, ("x".to_string(), false));
        let loaded = load_or_train("toy", &path, false, read, || Ok("y".into()), save).unwrap();
        assert_eq!(loaded, ("x".to_string(), true));
        std::fs::write(&path, "bad").unwrap();
        let e = load_or_train("toy", &path, true, read, || Ok("y".into()), save)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is damaged (cached toy weights: delete"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "bad",
            "not retrained"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
