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
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the discriminator's initialisation, the split into halves and the batches.
    pub seed: u64,
}

impl Default for TwoSampleConfig {
    fn default() -> Self {
        TwoSampleConfig {
            channels: 16,
            epochs: 5,
            batch_size: 64,
            lr: 1e-3,
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
    /// Images per class used for training and for testing.
    pub n_train: usize,
    pub n_test: usize,
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

/// Runs the test on `real` and `fake` images (same shape apart from N, any device):
/// both are shuffled with the seed, cut to the same count, halved into training and
/// held-out parts. Seeds LibTorch's generator with `cfg.seed`.
pub fn test(real: &Tensor, fake: &Tensor, cfg: &TwoSampleConfig) -> Result<TwoSampleResult> {
    if real.dim() != 4 || fake.dim() != 4 || real.size()[1..] != fake.size()[1..] {
        return Err(Error::msg(format!(
            "two-sample test needs two image batches [N, C, H, W] of the same image shape, got {:?} and {:?}",
            real.size(),
            fake.size()
        )));
    }
    let n = real.size()[0].min(fake.size()[0]) as usize;
    if n < 4 {
        return Err(Error::msg(format!(
            "two-sample test needs at least 4 images per set, got {n}"
        )));
    }
    let device = real.device();
    let pick = |x: &Tensor, seed: u64| {
        let p = crate::data::permutation(x.size()[0] as usize, seed);
        x.index_select(0, &Tensor::from_slice(&p[..n]).to_device(x.device()))
            .to_device(device)
            .to_kind(Kind::Float)
    };
    let (real, fake) = (pick(real, cfg.seed), pick(fake, cfg.seed + 1));
    let half = (n / 2) as i64;
    let n_test = n as i64 - half;
    let x_train = Tensor::cat(&[real.narrow(0, 0, half), fake.narrow(0, 0, half)], 0);
    let y_train = Tensor::cat(
        &[
            Tensor::ones([half], (Kind::Float, device)),
            Tensor::zeros([half], (Kind::Float, device)),
        ],
        0,
    );

    crate::seed(cfg.seed);
    let vs = nn::VarStore::new(device);
    let critic = Critic::new(vs.root() / "critic", real.size()[1], cfg);
    let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
    for epoch in 0..cfg.epochs {
        let seed = cfg.seed.wrapping_add(1000 + epoch as u64);
        for idx in crate::data::batches(2 * half as usize, cfg.batch_size, seed) {
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
    }
    let correct = |x: &Tensor, real: bool| -> f64 {
        tch::no_grad(|| {
            let mut hits = 0i64;
            for i in (0..n_test).step_by(1024) {
                let len = 1024.min(n_test - i);
                let logits = critic.forward(&x.narrow(0, half + i, len));
                let pred = if real { logits.gt(0.0) } else { logits.le(0.0) };
                hits += pred.sum(Kind::Int64).int64_value(&[]);
            }
            hits as f64 / n_test as f64
        })
    };
    let (ra, fa) = (correct(&real, true), correct(&fake, false));
    Ok(TwoSampleResult {
        accuracy: (ra + fa) / 2.0,
        real_accuracy: ra,
        fake_accuracy: fa,
        n_train: half as usize,
        n_test: n_test as usize,
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
        assert_eq!((r.n_train, r.n_test), (400, 400));
        assert!((r.accuracy - 0.5).abs() < 0.08, "{r:?}");
        assert_eq!(r, test(&real, &fake, &cfg()).unwrap());
    }

    #[test]
    fn different_distributions_give_about_one() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(12);
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::rand([400, 1, 8, 8], opts) * 0.6;
        let fake = Tensor::rand([300, 1, 8, 8], opts) * 0.6 + 0.4;
        let r = test(&real, &fake, &cfg()).unwrap();
        assert_eq!((r.n_train, r.n_test), (150, 150));
        assert!(r.accuracy > 0.95, "{r:?}");
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let a = Tensor::zeros([10, 1, 8, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([10, 1, 9, 8], (Kind::Float, Device::Cpu));
        assert!(test(&a, &b, &cfg()).is_err());
        assert!(test(&a.narrow(0, 0, 3), &a, &cfg())
            .unwrap_err()
            .to_string()
            .contains("at least 4"));
    }
}
