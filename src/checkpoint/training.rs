//! Training checkpoints: a training loop that survives an interrupt or a panic.
//!
//! After each epoch, [`Training::save_epoch`] writes the whole state of the run into one
//! file, `outputs/<notebook>/<what>.train.safetensors`, atomically: the weights, the
//! optimiser's moments ([`crate::optim::Adam`]), LibTorch's generator states, the history
//! (losses, image rows, epoch seconds, counters) and the epoch reached. With the key of
//! the run: its configuration (`Debug` text), its seed (a digest of LibTorch's generator
//! state when training starts, after the cell has seeded itself and built its model), a
//! digest of its training data, the parts' parameter names and shapes and the optimiser's
//! settings, the device and CPU mode, and the crate's version.
//!
//! [`Training::start`], called once before the loop, follows `HW4_TRAIN`
//! ([`TrainMode`]): `1` trains from scratch; `auto` resumes an interrupted run whose key
//! matches (bit-identical to a run that never stopped) or loads a finished one, and says
//! so in one line, or says in one line why a checkpoint with another key is not used;
//! `0` loads a finished matching checkpoint or stops with an error naming the file.
//!
//! ```ignore
//! let mut ckpt = checkpoint::Training::new(s, "vae", cfg, cfg.num_epochs).data(&train.images)?;
//! let done = ckpt.start(run.parts())?;           // epochs already done
//! for epoch in done + 1..=cfg.num_epochs {
//!     /* ... one epoch ... */
//!     ckpt.save_epoch(epoch, run.parts())?;
//! }
//! ```
//! where `run.parts()` lists the run's state with [`parts!`](crate::parts).

use crate::error::{Error, Result};
use crate::eval::cache::Key;
use crate::optim::Adam;
use crate::session::{Session, TrainMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Something whose state a training checkpoint keeps.
pub trait State {
    /// Named tensors that hold the state (`""`: the part itself).
    fn save_state(&self) -> Vec<(String, Tensor)>;
    /// Restores what `save_state` wrote; tensors go to `device` where the part has none.
    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, device: Device) -> Result<()>;
    /// What a checkpoint must match to fit this part (parameter names and shapes, settings).
    fn signature(&self) -> String {
        String::new()
    }
}

/// The named parts of a run's state, as [`parts!`](crate::parts) lists them.
pub type Parts<'a> = Vec<(&'static str, &'a mut dyn State)>;

/// `parts![run; vs, opt, train_loss, ema.vs]`: the fields of `run` as [`Parts`], named
/// by their paths.
///
/// `parts![vs: *vs, loss: history.epoch_loss]`: named places as [`Parts`].
#[macro_export]
macro_rules! parts {
    ($s:ident; $($($f:ident).+),+ $(,)?) => {
        vec![$((
            stringify!($($f).+),
            &mut $s.$($f).+ as &mut dyn $crate::checkpoint::State
        )),+]
    };
    ($($n:ident : $e:expr),+ $(,)?) => {
        vec![$((stringify!($n), &mut $e as &mut dyn $crate::checkpoint::State)),+]
    };
}

fn cpu(t: &Tensor) -> Tensor {
    t.to_device(Device::Cpu).contiguous()
}

fn get<'a>(saved: &'a BTreeMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    saved
        .get(name)
        .ok_or_else(|| Error::msg(format!("no tensor '{name}'")))
}

impl State for VarStore {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .variables()
            .into_iter()
            .map(|(k, t)| (k, cpu(&t)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        let vars = self.variables();
        if let Some(k) = saved.keys().find(|k| !vars.contains_key(*k)) {
            return Err(Error::msg(format!("'{k}' is not a variable of this model")));
        }
        tch::no_grad(|| {
            for (name, v) in &vars {
                let t = get(saved, name)?;
                if t.size() != v.size() {
                    return Err(Error::msg(format!(
                        "'{name}' has shape {:?}, the model {:?}",
                        t.size(),
                        v.size()
                    )));
                }
                v.shallow_clone().f_copy_(t)?;
            }
            Ok(())
        })
    }

    fn signature(&self) -> String {
        let mut v: Vec<String> = self
            .variables()
            .into_iter()
            .map(|(k, t)| format!("{k}:{:?}:{:?}", t.size(), t.kind()))
            .collect();
        v.sort();
        v.join(",")
    }
}

impl State for Adam {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        self.state_tensors()
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        self.load_state_tensors(saved)
    }

    fn signature(&self) -> String {
        format!("{:?}", self.config())
    }
}

impl State for Vec<f64> {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        if self.is_empty() {
            return vec![];
        }
        vec![(String::new(), Tensor::from_slice(self))]
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        *self = match saved.get("") {
            Some(t) => Vec::<f64>::try_from(&t.to_kind(Kind::Double))?,
            None => vec![],
        };
        Ok(())
    }
}

impl State for Vec<usize> {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        if self.is_empty() {
            return vec![];
        }
        let v: Vec<i64> = self.iter().map(|&x| x as i64).collect();
        vec![(String::new(), Tensor::from_slice(&v))]
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        *self = match saved.get("") {
            Some(t) => Vec::<i64>::try_from(t)?
                .into_iter()
                .map(|x| x as usize)
                .collect(),
            None => vec![],
        };
        Ok(())
    }
}

impl State for usize {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        vec![(String::new(), Tensor::from_slice(&[*self as i64]))]
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        *self = get(saved, "")?.int64_value(&[0]) as usize;
        Ok(())
    }
}

/// A list of tensors (e.g. rows of images kept after some epochs).
impl State for Vec<Tensor> {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("len".to_string(), Tensor::from_slice(&[self.len() as i64]))];
        v.extend(
            self.iter()
                .enumerate()
                .map(|(i, t)| (i.to_string(), cpu(t))),
        );
        v
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, device: Device) -> Result<()> {
        let n = get(saved, "len")?.int64_value(&[0]);
        *self = (0..n)
            .map(|i| Ok(get(saved, &i.to_string())?.to_device(device)))
            .collect::<Result<_>>()?;
        Ok(())
    }
}

/// A tensor restored in place (same shape).
impl State for Tensor {
    fn save_state(&self) -> Vec<(String, Tensor)> {
        vec![(String::new(), cpu(self))]
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>, _device: Device) -> Result<()> {
        let t = get(saved, "")?;
        if t.size() != self.size() {
            return Err(Error::msg(format!(
                "has shape {:?}, expected {:?}",
                t.size(),
                self.size()
            )));
        }
        tch::no_grad(|| self.f_copy_(t))?;
        Ok(())
    }
}

/// The parts of a run's key, in the order they are compared, with the words that say
/// what changed.
const KEY_PARTS: [(&str, &str); 6] = [
    ("version", "the crate version changed"),
    ("runtime", "the device or CPU mode changed"),
    ("config", "the configuration changed"),
    (
        "model",
        "the model or optimiser (parameter names, shapes or settings) changed",
    ),
    ("data", "the training data changed"),
    (
        "seed",
        "the seed (or what the cell draws before training) changed",
    ),
];

/// One training run's checkpoint; see the module documentation.
pub struct Training {
    what: String,
    path: PathBuf,
    mode: TrainMode,
    device: Device,
    epochs: usize,
    config: String,
    runtime: String,
    data: Key,
    key: Vec<(&'static str, String)>,
    last_save: Option<(Instant, f64)>,
}

impl Training {
    /// The checkpoint of the run `what` (file `outputs/<notebook>/<what>.train.safetensors`)
    /// with configuration `config` (its `Debug` text is part of the key) and `epochs` epochs.
    pub fn new(s: &Session, what: &str, config: &dyn std::fmt::Debug, epochs: usize) -> Training {
        Training {
            what: what.to_string(),
            path: s.out(&format!("{what}.train.safetensors")),
            mode: TrainMode::from_env().unwrap_or(TrainMode::Fresh),
            device: s.device,
            epochs,
            config: format!("{config:?}"),
            runtime: format!(
                "device={:?} cpu={}({}) threads={}",
                s.device,
                s.cpu_mode.name(),
                s.cpu_isa,
                s.threads
            ),
            data: Key::new(),
            key: vec![],
            last_save: None,
        }
    }

    /// Adds a training tensor to the key's data digest (its shape and values).
    pub fn data(mut self, t: &Tensor) -> Result<Training> {
        self.data = self.data.tensor(t)?;
        Ok(self)
    }

    /// Overrides `HW4_TRAIN` (tests).
    pub fn mode(mut self, mode: TrainMode) -> Training {
        self.mode = mode;
        self
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        crate::data::show_path(&self.path)
    }

    /// Called once before the loop, with the state freshly built (model initialised from
    /// the cell's seed): fixes the run's key, then, as `HW4_TRAIN` says, restores a matching
    /// checkpoint into `parts` (and LibTorch's generators). Returns the number of epochs
    /// already done: 0 to train from the start, `epochs` when finished.
    pub fn start(&mut self, parts: Parts) -> Result<usize> {
        let mut rng = Key::new();
        for (name, t) in crate::rng::get_all()? {
            rng = rng.bytes(name).tensor(&t)?;
        }
        let model: Vec<String> = parts
            .iter()
            .map(|(n, p)| format!("{n}={}", p.signature()))
            .collect();
        self.key = vec![
            (
                "version",
                format!(
                    "hw4 {} tch 0.24.0 libtorch 2.11.0",
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            ("runtime", self.runtime.clone()),
            ("config", format!("{} epochs={}", self.config, self.epochs)),
            ("model", model.join(";")),
            ("data", self.data.clone().hex()),
            ("seed", rng.hex()),
        ];
        if self.mode == TrainMode::Fresh {
            return Ok(0);
        }
        let load_only = self.mode == TrainMode::Load;
        if !self.path.exists() {
            if load_only {
                return Err(Error::msg(format!(
                    "HW4_TRAIN=0 but there is no checkpoint {} of the {} training; train first (HW4_TRAIN=1 or auto)",
                    self.shown(),
                    self.what
                )));
            }
            return Ok(0);
        }
        let saved: BTreeMap<String, Tensor> = match Tensor::read_safetensors(&self.path) {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                let why = format!("checkpoint {} is unreadable ({e})", self.shown());
                return self.set_aside(load_only, &why);
            }
        };
        if let Some(why) = self.mismatch(&saved) {
            let why = format!("checkpoint {} is of another run: {why}", self.shown());
            return self.set_aside(load_only, &why);
        }
        let done = get(&saved, "_meta/epoch")?.int64_value(&[0]) as usize;
        if load_only && done < self.epochs {
            return Err(Error::msg(format!(
                "HW4_TRAIN=0 but checkpoint {} holds {done} of {} epochs (an interrupted run); finish it with HW4_TRAIN=auto",
                self.shown(),
                self.epochs
            )));
        }
        if let Err(e) = self.restore(&saved, parts) {
            let why = format!("checkpoint {} does not fit: {e}", self.shown());
            return self.set_aside(load_only, &why);
        }
        if done >= self.epochs {
            println!(
                "{}: loaded the finished training ({done} epochs) from {} (HW4_TRAIN={}; 1 trains again)",
                self.what,
                self.shown(),
                self.mode.name()
            );
        } else {
            println!(
                "{}: resuming after epoch {done}/{} from {} (HW4_TRAIN=auto)",
                self.what,
                self.epochs,
                self.shown()
            );
        }
        Ok(done)
    }

    /// A checkpoint that cannot be used: an error when loading only, else one line and
    /// training from scratch.
    fn set_aside(&self, load_only: bool, why: &str) -> Result<usize> {
        if load_only {
            return Err(Error::msg(format!(
                "HW4_TRAIN=0 but {why}; train again (HW4_TRAIN=1 or auto)"
            )));
        }
        println!("{}: {why}; training from scratch", self.what);
        Ok(0)
    }

    /// The first key part that differs, in words.
    fn mismatch(&self, saved: &BTreeMap<String, Tensor>) -> Option<String> {
        for (part, words) in KEY_PARTS {
            let want = &self.key.iter().find(|(k, _)| *k == part)?.1;
            let have = saved
                .get(&format!("_key/{part}"))
                .and_then(|t| Vec::<u8>::try_from(t).ok())
                .and_then(|b| {
                    b.strip_prefix(b"=")
                        .map(|v| String::from_utf8_lossy(v).to_string())
                });
            if have.as_deref() != Some(want.as_str()) {
                return Some(words.to_string());
            }
        }
        None
    }

    fn restore(&self, saved: &BTreeMap<String, Tensor>, parts: Parts) -> Result<()> {
        for (name, part) in parts {
            let prefix = format!("{name}/");
            let mine: BTreeMap<String, Tensor> = saved
                .iter()
                .filter_map(|(k, t)| {
                    let sub = if k == name {
                        Some("")
                    } else {
                        k.strip_prefix(&prefix)
                    };
                    sub.map(|s| (s.to_string(), t.shallow_clone()))
                })
                .collect();
            part.load_state(&mine, self.device)
                .map_err(|e| e.context(format!("part '{name}'")))?;
        }
        let rng: Vec<(String, Tensor)> = saved
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix("_rng/")
                    .map(|g| (g.to_string(), t.shallow_clone()))
            })
            .collect();
        crate::rng::set_all(&rng)
    }

    /// After epoch `epoch` (1-based): writes the whole state. To keep the cost small, an
    /// epoch shorter than ten times the last write is not saved (except the last one).
    pub fn save_epoch(&mut self, epoch: usize, parts: Parts) -> Result<()> {
        if self.key.is_empty() {
            return Err(Error::msg(format!(
                "checkpoint of {}: call start before save_epoch",
                self.what
            )));
        }
        if let Some((end, secs)) = self.last_save {
            if epoch < self.epochs && end.elapsed().as_secs_f64() < 10.0 * secs {
                return Ok(());
            }
        }
        let t0 = Instant::now();
        let mut tensors: Vec<(String, Tensor)> = vec![
            ("_meta/epoch".into(), Tensor::from_slice(&[epoch as i64])),
            (
                "_meta/epochs".into(),
                Tensor::from_slice(&[self.epochs as i64]),
            ),
        ];
        for (part, value) in &self.key {
            // A leading byte keeps an empty text from being an empty tensor.
            let bytes: Vec<u8> = std::iter::once(b'=').chain(value.bytes()).collect();
            tensors.push((format!("_key/{part}"), Tensor::from_slice(&bytes)));
        }
        for (g, t) in crate::rng::get_all()? {
            tensors.push((format!("_rng/{g}"), t));
        }
        for (name, part) in parts {
            for (sub, t) in part.save_state() {
                let key = if sub.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}/{sub}")
                };
                tensors.push((key, t));
            }
        }
        super::save_tensors(&tensors, &self.path)?;
        self.last_save = Some((Instant::now(), t0.elapsed().as_secs_f64()));
        Ok(())
    }
}
