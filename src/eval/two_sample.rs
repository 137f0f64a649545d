//! Classifier two-sample test (Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample
//! Tests", ICLR 2017): a fresh discriminator, initialised from a seed, learns to tell
//! real images from generated ones on one half of each set and is scored on the other
//! half. Held-out accuracy near 0.5 means the two sets cannot be told apart by this
//! classifier; near 1.0 means they are easy to tell apart.
//!
//! This module keeps the bookkeeping: the seeded split into a training, a validation
//! and a held-out part, the held-out score, the repeats. The discriminator and its
//! training are the caller's (the GAN-VAE notebook defines them), passed in as a
//! function from [`Parts`] to a [`Trained`] critic. Each critic can also be scored on
//! [`Unseen`] sets that nothing was fitted on (the notebook's test split), so that the
//! test images only ever serve as a final score.

use crate::error::{Error, Result};
use tch::nn::Module;
use tch::{Kind, Tensor};

/// Size and training of the test's discriminator.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSampleConfig {
    /// Channels of the first convolution (the second has twice as many).
    pub channels: i64,
    /// Most training epochs. Training stops earlier once the validation part's loss
    /// has not improved for `patience` epochs, and the best epoch's weights are the
    /// ones scored on the held-out part. A critic stopped by the cap while still
    /// improving understates how well the sets can be told apart, so the cap is set well
    /// above the epochs a critic usually needs; `TwoSampleResult::epochs_run` tells.
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
            epochs: 40,
            patience: 4,
            batch_size: 64,
            lr: 5e-3,
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

/// What the critic learns from, for one test: images (real first, then generated) with
/// labels 1 (real) and 0 (generated), a training part and a validation part for early
/// stopping. LibTorch's generator has been seeded with `seed` just before the call.
#[derive(Debug)]
pub struct Parts {
    pub x_train: Tensor,
    pub y_train: Tensor,
    pub x_valid: Tensor,
    pub y_valid: Tensor,
    pub seed: u64,
}

/// A trained critic: one logit per image (`> 0` means "real"), the epoch whose weights
/// it kept (1-based) and the epochs it trained.
#[derive(Debug)]
pub struct Trained {
    pub critic: Box<dyn Module>,
    pub best_epoch: usize,
    pub epochs_run: usize,
}

/// Trains a critic on [`Parts`] with a [`TwoSampleConfig`].
pub type TrainCritic<'a> = &'a dyn Fn(&Parts, &TwoSampleConfig) -> Result<Trained>;

/// The critic's logits for many images, in chunks, without gradients.
pub fn logits_in_chunks(critic: &dyn Module, x: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let n = x.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(1024)
            .map(|i| critic.forward(&x.narrow(0, i, 1024.min(n - i))))
            .collect();
        Tensor::cat(&parts, 0)
    })
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

/// Two sets that no critic trains or stops on (e.g. the test split against fresh
/// samples). After each split's critic is fitted, it is also scored on up to as many
/// images of each as that split holds out, drawn with the split's seed.
#[derive(Debug, Clone, Copy)]
pub struct Unseen<'a> {
    pub real: &'a Tensor,
    pub fake: &'a Tensor,
}

/// Runs the test on `real` and `fake` images (same shape apart from N, any device):
/// both are shuffled with the seed, cut to the same count `n` and split into a
/// training part, a validation part (early stopping) and a held-out part (the score).
/// Seeds LibTorch's generator with `cfg.seed`, then lets `train` fit the critic.
pub fn test(
    real: &Tensor,
    fake: &Tensor,
    cfg: &TwoSampleConfig,
    train: TrainCritic,
) -> Result<TwoSampleResult> {
    Ok(test_with_unseen(real, fake, None, cfg, train)?.0)
}

/// [`test`], and the same critic scored on the [`Unseen`] sets: the second result has
/// the first one's training counts and epochs, and `n_test` images of each unseen set.
pub fn test_with_unseen(
    real: &Tensor,
    fake: &Tensor,
    unseen: Option<Unseen>,
    cfg: &TwoSampleConfig,
    train: TrainCritic,
) -> Result<(TwoSampleResult, Option<TwoSampleResult>)> {
    let n = check(real, fake, cfg)?;
    if let Some(u) = unseen {
        check(u.real, u.fake, cfg)?;
        if u.real.size()[1..] != real.size()[1..] {
            return Err(Error::msg(format!(
                "two-sample test: the unseen images {:?} differ in shape from the fitted ones {:?}",
                u.real.size(),
                real.size()
            )));
        }
    }
    let device = real.device();
    // `count` images of `x`, shuffled with `seed`, as floats on `device`.
    let pick = |x: &Tensor, seed: u64, count: usize| {
        let p = crate::data::permutation(x.size()[0] as usize, seed);
        x.index_select(0, &Tensor::from_slice(&p[..count]).to_device(x.device()))
            .to_device(device)
            .to_kind(Kind::Float)
    };
    let (real, fake) = (pick(real, cfg.seed, n), pick(fake, cfg.seed + 1, n));
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
    let parts = Parts {
        x_train,
        y_train,
        x_valid,
        y_valid,
        seed: cfg.seed,
    };
    let trained = train(&parts, cfg)?;
    let critic = trained.critic.as_ref();
    let score = |real: &Tensor, fake: &Tensor| {
        let n = real.size()[0];
        let real_hits = logits_in_chunks(critic, real).gt(0.0);
        let fake_hits = logits_in_chunks(critic, fake).le(0.0);
        let rate = |t: Tensor| t.sum(Kind::Int64).int64_value(&[]) as f64 / n as f64;
        let (ra, fa) = (rate(real_hits), rate(fake_hits));
        TwoSampleResult {
            accuracy: (ra + fa) / 2.0,
            real_accuracy: ra,
            fake_accuracy: fa,
            n_train: n_train as usize,
            n_valid: n_valid as usize,
            n_test: n as usize,
            best_epoch: trained.best_epoch,
            epochs_run: trained.epochs_run,
        }
    };
    let start = n_train + n_valid;
    let held_out = score(
        &real.narrow(0, start, n_test),
        &fake.narrow(0, start, n_test),
    );
    let unseen = unseen.map(|u| {
        let n_u = n_test.min(u.real.size()[0]).min(u.fake.size()[0]) as usize;
        score(
            &pick(u.real, cfg.seed.wrapping_add(2), n_u),
            &pick(u.fake, cfg.seed.wrapping_add(3), n_u),
        )
    });
    Ok((held_out, unseen))
}

/// [`test`] `repeats` times with the seeds `cfg.seed + 7919 k`, k = 0..repeats.
pub fn test_repeated(
    real: &Tensor,
    fake: &Tensor,
    cfg: &TwoSampleConfig,
    repeats: usize,
    train: TrainCritic,
) -> Result<TwoSampleSummary> {
    Ok(test_repeated_with_unseen(real, fake, None, cfg, repeats, train)?.0)
}

/// [`test_with_unseen`] `repeats` times with the seeds `cfg.seed + 7919 k`: the summary
/// of the held-out scores and, with [`Unseen`] sets, that of the same critics on them.
pub fn test_repeated_with_unseen(
    real: &Tensor,
    fake: &Tensor,
    unseen: Option<Unseen>,
    cfg: &TwoSampleConfig,
    repeats: usize,
    train: TrainCritic,
) -> Result<(TwoSampleSummary, Option<TwoSampleSummary>)> {
    if repeats == 0 {
        return Err(Error::msg("two-sample test: repeats must be at least 1"));
    }
    let (runs, unseen_runs): (Vec<_>, Vec<_>) = (0..repeats as u64)
        .map(|k| {
            let cfg = TwoSampleConfig {
                seed: cfg.seed.wrapping_add(7919 * k),
                ..cfg.clone()
            };
            test_with_unseen(real, fake, unseen, &cfg, train)
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let unseen_runs: Option<Vec<_>> = unseen_runs.into_iter().collect();
    Ok((summary(runs), unseen_runs.map(summary)))
}

fn summary(runs: Vec<TwoSampleResult>) -> TwoSampleSummary {
    let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
    let mean = acc.iter().sum::<f64>() / acc.len() as f64;
    let var = if acc.len() > 1 {
        acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (acc.len() - 1) as f64
    } else {
        0.0
    };
    TwoSampleSummary {
        mean,
        std: var.sqrt(),
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, OptimizerConfig};
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

    /// Logistic regression on the pixels, trained for `cfg.epochs` full-batch steps
    /// (the notebooks bring their own convolutional critic with early stopping).
    fn linear(parts: &Parts, cfg: &TwoSampleConfig) -> Result<Trained> {
        let vs = nn::VarStore::new(Device::Cpu);
        let dim = parts.x_train.size()[1..].iter().product::<i64>();
        let lin = nn::linear(vs.root() / "lin", dim, 1, Default::default());
        let mut opt = nn::Adam::default().build(&vs, cfg.lr * 25.0)?;
        for _ in 0..cfg.epochs * 25 {
            let logits = parts.x_train.flatten(1, -1).apply(&lin).squeeze_dim(1);
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
                &parts.y_train,
                None,
                None,
                tch::Reduction::Mean,
            );
            opt.backward_step(&loss);
        }
        let critic = nn::func(move |x| x.flatten(1, -1).apply(&lin).squeeze_dim(1));
        Ok(Trained {
            critic: Box::new(critic),
            best_epoch: cfg.epochs,
            epochs_run: cfg.epochs,
        })
    }

    #[test]
    fn identical_distributions_give_about_one_half() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(11);
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::rand([800, 1, 8, 8], opts);
        let fake = Tensor::rand([800, 1, 8, 8], opts);
        let r = test(&real, &fake, &cfg(), &linear).unwrap();
        assert_eq!((r.n_train, r.n_valid, r.n_test), (320, 80, 400));
        assert!((r.accuracy - 0.5).abs() < 0.08, "{r:?}");
        assert_eq!(r, test(&real, &fake, &cfg(), &linear).unwrap());
        let s = test_repeated(&real, &fake, &cfg(), 3, &linear).unwrap();
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
        let r = test(&real, &fake, &cfg(), &linear).unwrap();
        assert_eq!((r.n_train, r.n_valid, r.n_test), (120, 30, 150));
        assert!(r.accuracy > 0.95, "{r:?}");
        assert!(r.real_accuracy > 0.9 && r.fake_accuracy > 0.9, "{r:?}");
    }

    #[test]
    fn the_critic_sees_seeded_balanced_parts_and_is_scored_on_the_rest() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let opts = (Kind::Float, Device::Cpu);
        // Real images are all 1, generated all 0: each part must hold both, labelled.
        let real = Tensor::ones([50, 1, 2, 2], opts);
        let fake = Tensor::zeros([60, 1, 2, 2], opts);
        let seen = std::cell::RefCell::new(vec![]);
        let record = |parts: &Parts, cfg: &TwoSampleConfig| -> Result<Trained> {
            for (x, y) in [
                (&parts.x_train, &parts.y_train),
                (&parts.x_valid, &parts.y_valid),
            ] {
                assert!(x.mean_dim(&[1i64, 2, 3][..], false, Kind::Float).equal(y));
                assert_eq!(
                    y.sum(Kind::Float).double_value(&[]) * 2.0,
                    y.size()[0] as f64
                );
            }
            seen.borrow_mut()
                .push((parts.x_train.size()[0], parts.x_valid.size()[0], parts.seed));
            // A critic that says "real" for bright images: perfect on the held-out part.
            let critic = nn::func(|x| x.mean_dim(&[1i64, 2, 3][..], false, Kind::Float) - 0.5);
            Ok(Trained {
                critic: Box::new(critic),
                best_epoch: 1,
                epochs_run: cfg.epochs,
            })
        };
        let r = test(&real, &fake, &cfg(), &record).unwrap();
        assert_eq!((r.n_train, r.n_valid, r.n_test), (20, 5, 25));
        assert_eq!(
            (r.accuracy, r.real_accuracy, r.fake_accuracy),
            (1.0, 1.0, 1.0)
        );
        test_repeated(&real, &fake, &cfg(), 2, &record).unwrap();
        assert_eq!(
            *seen.borrow(),
            [(40, 10, 5), (40, 10, 5), (40, 10, 5 + 7919)]
        );
    }

    #[test]
    fn the_same_critic_scores_the_unseen_sets() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::ones([50, 1, 2, 2], opts);
        let fake = Tensor::zeros([60, 1, 2, 2], opts);
        let fits = std::cell::Cell::new(0);
        let bright = |_: &Parts, cfg: &TwoSampleConfig| -> Result<Trained> {
            fits.set(fits.get() + 1);
            let critic = nn::func(|x| x.mean_dim(&[1i64, 2, 3][..], false, Kind::Float) - 0.5);
            Ok(Trained {
                critic: Box::new(critic),
                best_epoch: 2,
                epochs_run: cfg.epochs,
            })
        };
        // Unseen sets the other way round: the critic fitted on (bright = real) gets all
        // of them wrong, so a score of 0 proves that they, not the held-out part, were scored.
        let (u_real, u_fake) = (
            Tensor::zeros([12, 1, 2, 2], opts),
            Tensor::ones([40, 1, 2, 2], opts),
        );
        let unseen = Unseen {
            real: &u_real,
            fake: &u_fake,
        };
        let (r, u) = test_with_unseen(&real, &fake, Some(unseen), &cfg(), &bright).unwrap();
        let u = u.unwrap();
        assert_eq!(fits.get(), 1);
        assert_eq!(r.accuracy, 1.0);
        assert_eq!(
            (u.accuracy, u.real_accuracy, u.fake_accuracy),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(
            (u.n_train, u.n_valid, u.n_test, u.best_epoch),
            (20, 5, 12, 2)
        );
        let (s, su) =
            test_repeated_with_unseen(&real, &fake, Some(unseen), &cfg(), 3, &bright).unwrap();
        assert_eq!(fits.get(), 4);
        let su = su.unwrap();
        assert_eq!(
            (s.runs.len(), su.runs.len(), s.mean, su.mean),
            (3, 3, 1.0, 0.0)
        );
        let (_, none) = test_repeated_with_unseen(&real, &fake, None, &cfg(), 2, &bright).unwrap();
        assert!(none.is_none());
        let wrong = Tensor::zeros([12, 1, 3, 2], opts);
        let err = test_with_unseen(
            &real,
            &fake,
            Some(Unseen {
                real: &wrong,
                fake: &wrong,
            }),
            &cfg(),
            &bright,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unseen images"), "{err}");
    }

    #[test]
    fn unseen_sets_from_the_same_distribution_give_about_one_half() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(13);
        let opts = (Kind::Float, Device::Cpu);
        let real = Tensor::rand([400, 1, 8, 8], opts) * 0.6;
        let fake = Tensor::rand([400, 1, 8, 8], opts) * 0.6 + 0.4;
        let (u_real, u_fake) = (
            Tensor::rand([300, 1, 8, 8], opts) * 0.6,
            Tensor::rand([300, 1, 8, 8], opts) * 0.6,
        );
        let unseen = Unseen {
            real: &u_real,
            fake: &u_fake,
        };
        let (r, u) = test_with_unseen(&real, &fake, Some(unseen), &cfg(), &linear).unwrap();
        let u = u.unwrap();
        assert!(r.accuracy > 0.95, "{r:?}");
        // Both unseen sets look "real" to the critic: the real ones right, the others wrong.
        assert!((u.accuracy - 0.5).abs() < 0.06, "{u:?}");
        assert!(u.real_accuracy > 0.9 && u.fake_accuracy < 0.1, "{u:?}");
        assert_eq!(u.n_test, r.n_test);
        let again = test_with_unseen(&real, &fake, Some(unseen), &cfg(), &linear).unwrap();
        assert_eq!(again.1.unwrap(), u);
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let a = Tensor::zeros([10, 1, 8, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([10, 1, 9, 8], (Kind::Float, Device::Cpu));
        assert!(test(&a, &b, &cfg(), &linear).is_err());
        assert!(test(&a.narrow(0, 0, 9), &a, &cfg(), &linear)
            .unwrap_err()
            .to_string()
            .contains("at least 10 images"));
        let bad = TwoSampleConfig {
            train_fraction: 0.9,
            ..cfg()
        };
        assert!(test(&a, &a, &bad, &linear)
            .unwrap_err()
            .to_string()
            .contains("at least 10% held out"));
        assert!(test_repeated(&a, &a, &cfg(), 0, &linear).is_err());
    }
}
