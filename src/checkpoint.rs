//! Checkpoints as safetensors files (readable by PyTorch's `safetensors` package),
//! written atomically and checked name by name and shape by shape on load; and training
//! checkpoints ([`Training`]) that let an interrupted training cell resume.

mod training;
pub use training::{Parts, State, Training};

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn::VarStore, Tensor};

/// Saves every variable of `vs` (on CPU, in name order) to `path`; the file appears
/// only once complete.
pub fn save(vs: &VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let vars: BTreeMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    save_tensors(&vars.into_iter().collect::<Vec<_>>(), path)
}

/// Saves named tensors to `path` atomically.
pub fn save_tensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    crate::io::write_atomic_with(path, |tmp| Ok(Tensor::write_safetensors(tensors, tmp)?))
}

/// The named tensors of a safetensors file; a missing or unreadable file is an error
/// naming it.
fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        return Err(Error::msg(format!(
            "checkpoint {} does not exist (train first, or run with HW4_TRAIN=1)",
            path.display()
        )));
    }
    Tensor::read_safetensors(path).map_err(|e| {
        Error::msg(format!(
            "checkpoint {} is not a readable safetensors file: {e}",
            path.display()
        ))
    })
}

/// Loads `path` into the variables of `vs`. Every variable must be present with the
/// same shape; extra tensors in the file are an error too (a different model).
pub fn load(vs: &mut VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let saved: BTreeMap<String, Tensor> = read(path)?.into_iter().collect();
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let want = vars[*name].size();
        match saved.get(*name) {
            None => {
                return Err(Error::msg(format!(
                    "checkpoint {}: tensor '{name}' (shape {want:?}) is missing; the file holds another model",
                    path.display()
                )))
            }
            Some(t) if t.size() != want => {
                return Err(Error::msg(format!(
                    "checkpoint {}: tensor '{name}' has shape {:?}, the model expects {want:?}",
                    path.display(),
                    t.size()
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = saved.keys().find(|k| !vars.contains_key(*k)) {
        return Err(Error::msg(format!(
            "checkpoint {}: tensor '{extra}' is not a variable of this model; the file holds another model",
            path.display()
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let mut v = vars[name].shallow_clone();
            v.f_copy_(&saved[name].to_kind(v.kind()).to_device(v.device()))?;
        }
        Ok(())
    })
}

/// Saves a training history beside its checkpoint: named per-epoch series as a JSON
/// object, written atomically, so that a cell run with `HW4_TRAIN=0` shows the curves
/// of the run that trained. NaN or infinite values are an error.
pub fn save_history(path: impl AsRef<Path>, series: &[(&str, &[f64])]) -> Result<()> {
    let path = path.as_ref();
    let mut m = serde_json::Map::new();
    for (name, values) in series {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::msg(format!(
                "history {}: series '{name}' has the non-finite value {} at epoch {}",
                path.display(),
                values[i],
                i + 1
            )));
        }
        m.insert(name.to_string(), serde_json::Value::from(values.to_vec()));
    }
    crate::io::write_json(path, &serde_json::Value::Object(m))
}

/// Loads the series `keys` of a history written by [`save_history`], each of length
/// `epochs`. A missing file, a missing series or another length is an error naming
/// the file.
pub fn load_history(path: impl AsRef<Path>, keys: &[&str], epochs: usize) -> Result<Vec<Vec<f64>>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::msg(format!(
            "history {} cannot be read ({e}); train first (HW4_TRAIN=1)",
            path.display()
        ))
    })?;
    let m: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| {
            Error::msg(format!(
                "history {} is not a JSON object: {e}",
                path.display()
            ))
        })?;
    keys.iter()
        .map(|key| {
            let values: Option<Vec<f64>> = m
                .get(*key)
                .and_then(|v| v.as_array())
                .and_then(|a| a.iter().map(|x| x.as_f64()).collect());
            match values {
                None => Err(Error::msg(format!(
                    "history {} has no series '{key}' of numbers; it was written by another version of this cell (train again with HW4_TRAIN=1)",
                    path.display()
                ))),
                Some(v) if v.len() != epochs => Err(Error::msg(format!(
                    "history {}: series '{key}' has {} epochs, the configuration asks for {epochs} (train again with HW4_TRAIN=1)",
                    path.display(),
                    v.len()
                ))),
                Some(v) => Ok(v),
            }
        })
        .collect()
}

/// Loads one tensor by name from a safetensors file, with the expected shape.
pub fn load_tensor(path: impl AsRef<Path>, name: &str, shape: &[i64]) -> Result<Tensor> {
    let path = path.as_ref();
    match read(path)?.into_iter().find(|(k, _)| k == name) {
        None => Err(Error::msg(format!(
            "{} holds no tensor '{name}'",
            path.display()
        ))),
        Some((_, t)) if t.size() != shape => Err(Error::msg(format!(
            "{}: tensor '{name}' has shape {:?}, expected {shape:?} (train again with HW4_TRAIN=1)",
            path.display(),
            t.size()
        ))),
        Some((_, t)) => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hw4-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn roundtrip_and_shape_mismatch() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(1);
        let vs = VarStore::new(tch::Device::Cpu);
        let lin = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        let x = Tensor::ones([1, 3], (tch::Kind::Float, tch::Device::Cpu));
        let y = lin.forward(&x);
        let p = tmp("a.safetensors");
        save(&vs, &p).unwrap();

        crate::seed(2);
        let mut vs2 = VarStore::new(tch::Device::Cpu);
        let lin2 = nn::linear(vs2.root() / "fc", 3, 2, Default::default());
        assert!(!lin2.forward(&x).allclose(&y, 0.0, 0.0, false));
        load(&mut vs2, &p).unwrap();
        assert!(lin2.forward(&x).equal(&y));

        let mut vs3 = VarStore::new(tch::Device::Cpu);
        let _ = nn::linear(vs3.root() / "fc", 4, 2, Default::default());
        let e = load(&mut vs3, &p).unwrap_err().to_string();
        assert!(
            e.ends_with("tensor 'fc.weight' has shape [2, 3], the model expects [2, 4]"),
            "{e}"
        );
        let mut vs4 = VarStore::new(tch::Device::Cpu);
        let _ = nn::linear(vs4.root() / "other", 3, 2, Default::default());
        let e = load(&mut vs4, &p).unwrap_err().to_string();
        assert!(e.contains("is missing"), "{e}");
        let e = load(&mut vs4, tmp("nope.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        std::fs::write(tmp("bad.safetensors"), b"garbage").unwrap();
        let e = load(&mut vs4, tmp("bad.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a readable safetensors file"), "{e}");
    }

    #[test]
    fn histories_and_tensors() {
        let p = tmp("h.json");
        let (a, b) = (vec![1.5, 2.0], vec![0.25, -3.0]);
        save_history(&p, &[("a", &a), ("b", &b)]).unwrap();
        assert_eq!(load_history(&p, &["b", "a"], 2).unwrap(), vec![b, a]);
        let e = load_history(&p, &["c"], 2).unwrap_err().to_string();
        assert!(
            e.contains("has no series 'c'") && e.contains("h.json"),
            "{e}"
        );
        let e = load_history(&p, &["a"], 3).unwrap_err().to_string();
        assert!(
            e.contains("'a' has 2 epochs, the configuration asks for 3"),
            "{e}"
        );
        let e = load_history(tmp("none.json"), &["a"], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json cannot be read"), "{e}");
        let e = save_history(&p, &[("a", &[1.0, f64::NAN])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-finite value NaN at epoch 2"), "{e}");

        let t = tmp("t.safetensors");
        let x = Tensor::arange(6, (tch::Kind::Float, tch::Device::Cpu)).view([2, 3]);
        save_tensors(&[("x".to_string(), x.shallow_clone())], &t).unwrap();
        assert!(load_tensor(&t, "x", &[2, 3]).unwrap().equal(&x));
        let e = load_tensor(&t, "x", &[3, 2]).unwrap_err().to_string();
        assert!(e.contains("has shape [2, 3], expected [3, 2]"), "{e}");
        assert!(load_tensor(&t, "y", &[2, 3]).is_err());
    }
}
