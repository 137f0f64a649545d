//! Adam and AdamW whose state can be saved, so that a training run can stop and resume.
//!
//! tch's `nn::Optimizer` wraps LibTorch's C++ `torch::optim::Adam`/`AdamW`, whose state
//! (step counts, moment estimates) tch cannot read or write. [`Adam`] runs the very same
//! ATen calls in the same order (one C++ call per parameter, `src/cuda_shim.cpp`), so its
//! steps are bit-identical to tch's (unit test below), and its state is plain tensors.
//!
//! ```ignore
//! let mut opt = optim::Adam::new(&vs, nn::Adam { beta1: 0.5, ..Default::default() }, 2e-4);
//! opt.backward_step(&loss);
//! ```

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_void};
use tch::nn::VarStore;
use tch::Tensor;

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn hw4_adam_step(
        p: *mut c_void,
        exp_avg: *mut c_void,
        exp_avg_sq: *mut c_void,
        max_exp_avg_sq: *mut c_void,
        step: i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled: i32,
        err: *mut c_char,
        len: i32,
    ) -> i32;
    fn hw4_grad_to_none(p: *mut c_void);
}

/// Adam's hyper-parameters; `decoupled` makes it AdamW (Loshchilov & Hutter 2019: the
/// weights shrink by `lr * weight_decay` each step instead of an L2 term in the gradient).
/// Built from tch's configurations: `nn::Adam { .. }.into()` or `nn::AdamW { .. }.into()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        tch::nn::Adam::default().into()
    }
}

impl From<tch::nn::Adam> for AdamConfig {
    fn from(c: tch::nn::Adam) -> Self {
        AdamConfig {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.wd,
            amsgrad: c.amsgrad,
            decoupled: false,
        }
    }
}

impl From<tch::nn::AdamW> for AdamConfig {
    fn from(c: tch::nn::AdamW) -> Self {
        AdamConfig {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.wd,
            amsgrad: c.amsgrad,
            decoupled: true,
        }
    }
}

/// One parameter's state, created at its first step (as LibTorch's `AdamParamState`).
#[derive(Debug)]
struct Moments {
    step: i64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Option<Tensor>,
}

/// Adam / AdamW over the trainable variables of a `VarStore` (those present when it is
/// built, in the store's order, as tch's `OptimizerConfig::build`).
#[derive(Debug)]
pub struct Adam {
    cfg: AdamConfig,
    lr: f64,
    names: Vec<String>,
    params: Vec<Tensor>,
    state: Vec<Option<Moments>>,
}

impl Adam {
    /// `Adam::new(&vs, nn::Adam::default(), lr)` or `Adam::new(&vs, nn::AdamW { .. }, lr)`.
    pub fn new(vs: &VarStore, cfg: impl Into<AdamConfig>, lr: f64) -> Adam {
        let vars = vs.variables_.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_ptr: BTreeMap<usize, &String> = BTreeMap::new();
        for (name, t) in &vars.named_variables {
            by_ptr.insert(t.data_ptr() as usize, name);
        }
        let params: Vec<Tensor> = vars
            .trainable_variables
            .iter()
            .map(|v| v.tensor.shallow_clone())
            .collect();
        let names = params
            .iter()
            .enumerate()
            .map(|(i, p)| match by_ptr.get(&(p.data_ptr() as usize)) {
                Some(n) => n.to_string(),
                None => format!("param{i}"),
            })
            .collect();
        let state = params.iter().map(|_| None).collect();
        Adam {
            cfg: cfg.into(),
            lr,
            names,
            params,
            state,
        }
    }

    pub fn config(&self) -> AdamConfig {
        self.cfg
    }

    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate of the next steps (tch's `Optimizer::set_lr`).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Drops the gradients (LibTorch's `zero_grad(set_to_none = true)`, as tch calls it).
    pub fn zero_grad(&mut self) {
        for p in &self.params {
            // SAFETY: a live tensor handle; the shim resets its gradient.
            unsafe { hw4_grad_to_none(p.as_ptr() as *mut c_void) }
        }
    }

    /// Scales the gradients so that their joint L2 norm is at most `max`: the same
    /// operations as tch's `Optimizer::clip_grad_norm`.
    pub fn clip_grad_norm(&self, max: f64) {
        tch::no_grad(|| {
            let norms: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.norm())
                .collect();
            let total_norm = f64::try_from(Tensor::stack(&norms, 0).norm()).unwrap_or(f64::NAN);
            let clip_coef = max / (total_norm + 1e-6);
            if clip_coef < 1.0 {
                for p in &self.params {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(clip_coef);
                    }
                }
            }
        })
    }

    /// One step on every parameter that has a gradient (Kingma & Ba 2015, Algorithm 1, in
    /// LibTorch's formulation: denom = sqrt(v) / sqrt(1 - β2^t) + ε, p -= lr / (1 - β1^t) · m / denom).
    pub fn step(&mut self) {
        let c = self.cfg;
        for (i, p) in self.params.iter().enumerate() {
            if !p.grad().defined() {
                continue;
            }
            let m = self.state[i].get_or_insert_with(|| Moments {
                step: 0,
                exp_avg: p.zeros_like(),
                exp_avg_sq: p.zeros_like(),
                max_exp_avg_sq: c.amsgrad.then(|| p.zeros_like()),
            });
            m.step += 1;
            let mut err = [0u8; 512];
            let max_ptr = m
                .max_exp_avg_sq
                .as_ref()
                .map_or(std::ptr::null_mut(), |t| t.as_ptr() as *mut c_void);
            // SAFETY: live tensor handles (or null for no AMSGrad); the shim updates them
            // in place and copies an error message into `err`.
            let rc = unsafe {
                hw4_adam_step(
                    p.as_ptr() as *mut c_void,
                    m.exp_avg.as_ptr() as *mut c_void,
                    m.exp_avg_sq.as_ptr() as *mut c_void,
                    max_ptr,
                    m.step,
                    self.lr,
                    c.beta1,
                    c.beta2,
                    c.eps,
                    c.weight_decay,
                    c.decoupled as i32,
                    err.as_mut_ptr().cast(),
                    err.len() as i32,
                )
            };
            if rc != 0 {
                let msg = String::from_utf8_lossy(&err);
                panic!(
                    "Adam step on '{}' failed: {}",
                    self.names[i],
                    msg.trim_end_matches('\0')
                );
            }
        }
    }

    /// `zero_grad`, `loss.backward()`, `step` (tch's `Optimizer::backward_step`).
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// `zero_grad`, `loss.backward()`, `clip_grad_norm(max)`, `step`.
    pub fn backward_step_clip_norm(&mut self, loss: &Tensor, max: f64) {
        self.zero_grad();
        loss.backward();
        self.clip_grad_norm(max);
        self.step();
    }

    /// The state as named CPU tensors: per parameter that has stepped, `<name>.step`,
    /// `<name>.exp_avg`, `<name>.exp_avg_sq` (and `<name>.max_exp_avg_sq`); plus `lr`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu).contiguous();
        let mut out = vec![("lr".to_string(), Tensor::from_slice(&[self.lr]))];
        for (name, m) in self.names.iter().zip(&self.state) {
            let Some(m) = m else { continue };
            out.push((format!("{name}.step"), Tensor::from_slice(&[m.step])));
            out.push((format!("{name}.exp_avg"), cpu(&m.exp_avg)));
            out.push((format!("{name}.exp_avg_sq"), cpu(&m.exp_avg_sq)));
            if let Some(x) = &m.max_exp_avg_sq {
                out.push((format!("{name}.max_exp_avg_sq"), cpu(x)));
            }
        }
        out
    }

    /// Restores a state written by [`Adam::state_tensors`] for the same parameters.
    pub fn load_state_tensors(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
        let get = |key: &str| {
            saved
                .get(key)
                .ok_or_else(|| Error::msg(format!("optimizer state has no tensor '{key}'")))
        };
        self.lr = get("lr")?.double_value(&[0]);
        for (i, name) in self.names.iter().enumerate() {
            let p = &self.params[i];
            if !saved.contains_key(&format!("{name}.step")) {
                self.state[i] = None;
                continue;
            }
            let moment = |what: &str| -> Result<Tensor> {
                let t = get(&format!("{name}.{what}"))?;
                if t.size() != p.size() {
                    return Err(Error::msg(format!(
                        "optimizer state '{name}.{what}' has shape {:?}, the parameter {:?}",
                        t.size(),
                        p.size()
                    )));
                }
                let out = p.zeros_like();
                tch::no_grad(|| out.shallow_clone().copy_(t));
                Ok(out)
            };
            self.state[i] = Some(Moments {
                step: get(&format!("{name}.step"))?.int64_value(&[0]),
                exp_avg: moment("exp_avg")?,
                exp_avg_sq: moment("exp_avg_sq")?,
                max_exp_avg_sq: if self.cfg.amsgrad {
                    Some(moment("max_exp_avg_sq")?)
                } else {
                    None
                },
            });
        }
        let known = |k: &str| {
            k == "lr"
                || self.names.iter().any(|n| {
                    k.strip_prefix(n.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
                })
        };
        if let Some(k) = saved.keys().find(|k| !known(k)) {
            return Err(Error::msg(format!(
                "optimizer state tensor '{k}' belongs to no parameter of this model"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Device, Kind};

    /// A small network whose loss uses every parameter.
    fn net(vs: &VarStore) -> impl Module {
        let root = vs.root();
        nn::seq()
            .add(nn::linear(&root / "a", 6, 16, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(&root / "b", 16, 3, Default::default()))
    }

    fn run_both(
        tch_opt: &mut nn::Optimizer,
        ours: &mut Adam,
        m1: &impl Module,
        m2: &impl Module,
        steps: usize,
        clip: bool,
    ) {
        for step in 0..steps {
            let x = Tensor::randn([8, 6], (Kind::Float, Device::Cpu));
            let lr = 1e-2 / (1.0 + step as f64);
            tch_opt.set_lr(lr);
            ours.set_lr(lr);
            let l1 = m1.forward(&x).square().mean(Kind::Float);
            let l2 = m2.forward(&x).square().mean(Kind::Float);
            if clip {
                tch_opt.backward_step_clip_norm(&l1, 0.05);
                ours.backward_step_clip_norm(&l2, 0.05);
            } else {
                tch_opt.backward_step(&l1);
                ours.backward_step(&l2);
            }
        }
    }

    fn assert_same(a: &VarStore, b: &VarStore) {
        let (va, vb) = (a.variables(), b.variables());
        assert_eq!(va.len(), vb.len());
        for (k, t) in &va {
            assert!(t.equal(&vb[k]), "{k} differs");
        }
    }

    fn check(cfg: impl Into<AdamConfig> + Copy, tch_cfg: impl OptimizerConfig, clip: bool) {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(3);
        let vs1 = VarStore::new(Device::Cpu);
        let m1 = net(&vs1);
        let mut vs2 = VarStore::new(Device::Cpu);
        let m2 = net(&vs2);
        vs2.copy(&vs1).unwrap();
        let mut o1 = tch_cfg.build(&vs1, 1e-2).unwrap();
        let mut o2 = Adam::new(&vs2, cfg, 1e-2);
        let before = vs1.variables()["a.weight"].copy();
        run_both(&mut o1, &mut o2, &m1, &m2, 7, clip);
        assert!(
            !vs1.variables()["a.weight"].equal(&before),
            "the weights moved"
        );
        assert_same(&vs1, &vs2);
        // The state round-trips: a fresh optimiser loaded from it continues identically.
        let saved: BTreeMap<String, Tensor> = o2.state_tensors().into_iter().collect();
        let mut o3 = Adam::new(&vs2, cfg, 0.5);
        o3.load_state_tensors(&saved).unwrap();
        run_both(&mut o1, &mut o3, &m1, &m2, 5, clip);
        assert_same(&vs1, &vs2);
    }

    #[test]
    fn adam_is_bit_identical_to_tch() {
        check(nn::Adam::default(), nn::Adam::default(), false);
        let c = nn::Adam {
            beta1: 0.5,
            wd: 1e-2,
            ..Default::default()
        };
        check(c, c, false);
        let c = nn::Adam {
            amsgrad: true,
            ..Default::default()
        };
        check(c, c, true);
    }

    #[test]
    fn adamw_is_bit_identical_to_tch() {
        let c = nn::AdamW {
            wd: 0.0,
            ..Default::default()
        };
        check(c, c, true);
        check(nn::AdamW::default(), nn::AdamW::default(), false);
    }

    #[test]
    fn state_of_another_model_is_an_error() {
        let vs = VarStore::new(Device::Cpu);
        let _ = net(&vs);
        let mut o = Adam::new(&vs, nn::Adam::default(), 1e-3);
        let mut saved: BTreeMap<String, Tensor> = BTreeMap::new();
        let e = o.load_state_tensors(&saved).unwrap_err().to_string();
        assert_eq!(e, "optimizer state has no tensor 'lr'");
        saved.insert("lr".into(), Tensor::from_slice(&[1e-3]));
        saved.insert("z.weight.step".into(), Tensor::from_slice(&[1i64]));
        let e = o.load_state_tensors(&saved).unwrap_err().to_string();
        assert!(e.contains("'z.weight.step' belongs to no parameter"), "{e}");
    }
}
