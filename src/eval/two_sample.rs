//! Classifier two-sample test (Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample
//! Tests", ICLR 2017): a fresh discriminator, initialised from a seed, learns to tell
//! real images from generated ones on one half of each set and is scored on the other
//! half. Held-out accuracy near 0.5 means the two sets cannot be told apart by this
//! classifier; near 1.0 means they are easy to tell apart.

use crate::error::{Error, Result};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Kind, Tensor};

/// Size and training of the test's discriminator.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSampleConfig {
    /// Channels of the first convolution (the second has twice as many).
    pub channels: i64,
    /// Most training epochs. Training stops earlier once the validation part's loss
    /// has not improved for `patience` epochs, and the best epoch's weights are the
    /// ones scored on the held-out part.
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Fractions of each set that train the discriminator and that pick its epoch;
    /// the rest is held out for the score.
    pub train_fraction: f64,
    pub valid_fraction: f64,
    /// Seeds the discriminator's initialisation, the split into parts and the batches.
    pub seed: u64,
}

impl Default for TwoSampleConfig {
    fn default() -> Self {
        TwoSampleConfig {
            channels: 16,
            epochs: 10,
            patience: 2,
            batch_size: 64,
            lr: 1e-3,
            train_fraction: 0.4,
            valid_fraction: 0.1,
            seed: 0,
        }
    }
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSampleResult {
    /// Held-out accuracy on real and generated images together (balanced classes).
    pub accuracy: f64,
    /// Held-out real images classified as real.
    pub real_accuracy: f64,
    /// Held-out generated images classified as generated.
    pub fake_accuracy: f64,
    /// Images per class that trained the discriminator, picked its epoch, scored it.
    pub n_train: usize,
    pub n_valid: usize,
    pub n_test: usize,
    /// The epoch (1-based) whose weights were scored, and the epochs trained.
    pub best_epoch: usize,
    pub epochs_run: usize,
}

/// Several tests of the same two sets with different seeds (different parts,
/// initialisations and batches): the mean and the sample standard deviation of the
/// held-out accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSampleSummary {
    pub mean: f64,
    pub std: f64,
    pub runs: Vec<TwoSampleResult>,
}

/// A small convolutional discriminator for `[N, C, H, W]` images of any size.
#[derive(Debug)]
struct Critic {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
}

impl Critic {
    fn new(p: nn::Path, in_channels: i64, cfg: &TwoSampleConfig) -> Self {
        let c = cfg.channels;
        let conv = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        Critic {
            conv1: nn::conv2d(&p / "conv1", in_channels, c, 3, conv),
            conv2: nn::conv2d(&p / "conv2", c, 2 * c, 3, conv),
            fc: nn::linear(&p / "fc", 2 * c * 16, 1, Default::default()),
        }
    }
}

impl Module for Critic {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv1)
            .leaky_relu()
            .apply(&self.conv2)
            .leaky_relu()
            .adaptive_avg_pool2d([4, 4])
            .flatten(1, -1)
            .apply(&self.fc)
            .squeeze_dim(1)
    }
}

fn check(real: &Tensor, fake: &Tensor, cfg: &TwoSampleConfig) -> Result<usize> {
    if real.dim() != 4 || fake.dim() != 4 || real.size()[1..] != fake.size()[1..] {
        return Err(Error::msg(format!(
            "two-sample test needs two image batches [N, C, H, W] of the same image shape, got {:?} and {:?}",
            real.size(),
            fake.size()
        )));
    }
    let fractions_ok = cfg.train_fraction > 0.0
        && cfg.valid_fraction > 0.0
        && cfg.train_fraction + cfg.valid_fraction <= 0.9;
    if !fractions_ok {
        return Err(Error::msg(format!(
            "two-sample test: train_fraction {} and valid_fraction {} must be positive and leave at least 10% held out",
            cfg.train_fraction, cfg.valid_fraction
        )));
    }
    let n = real.size()[0].min(fake.size()[0]) as usize;
    if n < 10 {
        return Err(Error::msg(format!(
            "two-sample test needs at least 10 images per set, got {n}"
        )));
    }
    Ok(n)
}

/// Runs the test on `real` and `fake` images (same shape apart from N, any device):
/// both are shuffled with the seed, cut to the same count `n` and split into a
/// training part, a validation part (early stopping) and a held-out part (the score).
/// Seeds LibTorch's generator with `cfg.seed`.
pub fn test(real: &Tensor, fake: &Tensor, cfg: &TwoSampleConfig) -> Result<TwoSampleResult> {
    let n = check(real, fake, cfg)?;
    let device = real.device();
    let pick = |x: &Tensor, seed: u64| {
        let p = crate::data::permutation(x.size()[0] as usize, seed);
        x.index_select(0, &Tensor::from_slice(&p[..n]).to_device(x.device()))
            .to_device(device)
            .to_kind(Kind::Float)
    };
    let (real, fake) = (pick(real, cfg.seed), pick(fake, cfg.seed + 1));
    let n_train = ((n as f64 * cfg.train_fraction) as i64).max(1);
    let n_valid = ((n as f64 * cfg.valid_fraction) as i64).max(1);
    let n_test = n as i64 - n_train - n_valid;
    let part = |start: i64, len: i64| {
        let x = Tensor::cat(&[real.narrow(0, start, len), fake.narrow(0, start, len)], 0);
        let y = Tensor::cat(
            &[
                Tensor::ones([len], (Kind::Float, device)),
                Tensor::zeros([len], (Kind::Float, device)),
            ],
            0,
        );
        (x, y)
    };
    let (x_train, y_train) = part(0, n_train);
    let (x_valid, y_valid) = part(n_train, n_valid);

    crate::seed(cfg.seed);
    let vs = nn::VarStore::new(device);
    let critic = Critic::new(vs.root() / "critic", real.size()[1], cfg);
    let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
    let logits_of = |x: &Tensor| -> Tensor {
        tch::no_grad(|| {
            let n = x.size()[0];
            let parts: Vec<Tensor> = (0..n)
                .step_by(1024)
                .map(|i| critic.forward(&x.narrow(0, i, 1024.min(n - i))))
                .collect();
            Tensor::cat(&parts, 0)
        })
    };
    let valid_loss = || -> f64 {
        logits_of(&x_valid)
            .binary_cross_entropy_with_logits::<Tensor>(&y_valid, None, None, tch::Reduction::Mean)
            .double_value(&[])
    };
    let snapshot = |vs: &nn::VarStore| -> Vec<Tensor> {
        vs.trainable_variables()
            .iter()
            .map(|t| t.detach().copy())
            .collect()
    };
    let (mut best_loss, mut best_epoch, mut best) = (valid_loss(), 0, snapshot(&vs));
    let mut epochs_run = 0;
    for epoch in 1..=cfg.epochs {
        let seed = cfg.seed.wrapping_add(1000 + epoch as u64);
        for idx in crate::data::batches(2 * n_train as usize, cfg.batch_size, seed) {
            let idx = idx.to_device(device);
            let logits = critic.forward(&x_train.index_select(0, &idx));
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
                &y_train.index_select(0, &idx),
                None,
                None,
                tch::Reduction::Mean,
            );
            opt.backward_step(&loss);
        }
        epochs_run = epoch;
        let loss = valid_loss();
        if loss < best_loss {
            (best_loss, best_epoch, best) = (loss, epoch, snapshot(&vs));
        } else if epoch - best_epoch >= cfg.patience {
            break;
        }
    }
    tch::no_grad(|| {
        for (v, b) in vs.trainable_variables().iter_mut().zip(&best) {
            v.copy_(b);
        }
    });
    let start = n_train + n_valid;
    let real_hits = logits_of(&real.narrow(0, start, n_test)).gt(0.0);
    let fake_hits = logits_of(&fake.narrow(0, start, n_test)).le(0.0);
    let rate = |t: Tensor| t.sum(Kind::Int64).int64_value(&[]) as f64 / n_test as f64;
    let (ra, fa) = (rate(real_hits), rate(fake_hits));
    Ok(TwoSampleResult {
        accuracy: (ra + fa) / 2.0,
        real_accuracy: ra,
        fake_accuracy: fa,
        n_train: n_train as usize,
        n_valid: n_valid as usize,
        n_test: n_test as usize,
        best_epoch: best_epoch.max(1),
        epochs_run,
    })
}

/// [`test`] `repeats` times with the seeds `cfg.seed + 7919 k`, k = 0..repeats.
pub fn test_repeated(
    real: &Tensor,
    fake: &Tensor,
    cfg: &TwoSampleConfig,
    repeats: usize,
) -> Result<TwoSampleSummary> {
    if repeats == 0 {
        return Err(Error::msg("two-sample test: repeats must be at least 1"));
    }
    let runs = (0..repeats as u64)
        .map(|k| {
            let cfg = TwoSampleConfig {
                seed: cfg.seed.wrapping_add(7919 * k),
                ..cfg.clone()
            };
            test(real, fake, &cfg)
        })
        .collect::<Result<Vec<_>>>()?;
    let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
    let mean = acc.iter().sum::<f64>() / acc.len() as f64;
    let var = if acc.len() > 1 {
        acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (acc.len() - 1) as f64
    } else {
        0.0
    };
    Ok(TwoSampleSummary {
        mean,
        std: var.sqrt(),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn cfg() -> TwoSampleConfig {
        TwoSampleConfig {
            channels: 8,
            epochs: 8,
            batch_size: 32,
            lr: 2e-3,
            seed: 5,
            ..Default::default()
        }
    }

    #[test]
    fn identical_distributions_give_about_one_half() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(11);
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::rand([800, 1, 8, 8], opts);
        let fake = Tensor::rand([800, 1, 8, 8], opts);
        let r = test(&real, &fake, &cfg()).unwrap();
        assert_eq!((r.n_train, r.n_valid, r.n_test), (320, 80, 400));
        assert!((r.accuracy - 0.5).abs() < 0.08, "{r:?}");
        assert!(r.best_epoch <= r.epochs_run && r.epochs_run <= 8, "{r:?}");
        assert_eq!(r, test(&real, &fake, &cfg()).unwrap());
        let s = test_repeated(&real, &fake, &cfg(), 3).unwrap();
        assert_eq!(s.runs.len(), 3);
        assert_eq!(s.runs[0], r);
        assert_ne!(s.runs[1], r);
        assert!((s.mean - 0.5).abs() < 0.06 && s.std < 0.08, "{s:?}");
    }

    #[test]
    fn different_distributions_give_about_one() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(12);
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::rand([400, 1, 8, 8], opts) * 0.6;
        let fake = Tensor::rand([300, 1, 8, 8], opts) * 0.6 + 0.4;
        let r = test(&real, &fake, &cfg()).unwrap();
        assert_eq!((r.n_train, r.n_valid, r.n_test), (120, 30, 150));
        assert!(r.accuracy > 0.95, "{r:?}");
        // Nothing left to learn after a few epochs: early stopping ends the training.
        let long = TwoSampleConfig {
            epochs: 100,
            ..cfg()
        };
        let r = test(&real, &fake, &long).unwrap();
        assert!(r.epochs_run < 100 && r.accuracy > 0.95, "{r:?}");
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let a = Tensor::zeros([10, 1, 8, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([10, 1, 9, 8], (Kind::Float, Device::Cpu));
        assert!(test(&a, &b, &cfg()).is_err());
        assert!(test(&a.narrow(0, 0, 9), &a, &cfg())
            .unwrap_err()
            .to_string()
            .contains("at least 10 images"));
        let bad = TwoSampleConfig {
            train_fraction: 0.9,
            ..cfg()
        };
        assert!(test(&a, &a, &bad)
            .unwrap_err()
            .to_string()
            .contains("at least 10% held out"));
        assert!(test_repeated(&a, &a, &cfg(), 0).is_err());
    }
}
