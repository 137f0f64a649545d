//! Checkpoints as safetensors files (readable by PyTorch's `safetensors` package),
//! written atomically and checked name by name and shape by shape on load.

use crate::error::{Context, Error, Result};
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
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).context(dir.display())?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint"),
        std::process::id()
    ));
    Tensor::write_safetensors(tensors, &tmp).context(tmp.display())?;
    std::fs::rename(&tmp, path).context(path.display())?;
    Ok(())
}

/// Loads `path` into the variables of `vs`. Every variable must be present with the
/// same shape; extra tensors in the file are an error too (a different model).
pub fn load(vs: &mut VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(Error::msg(format!(
            "checkpoint {} does not exist (train first, or run with HW4_TRAIN=1)",
            path.display()
        )));
    }
    let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| {
            Error::msg(format!(
                "checkpoint {} is not a readable safetensors file: {e}",
                path.display()
            ))
        })?
        .into_iter()
        .collect();
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
}
