//! A second captcha reader, of a design unlike the OCR's ([`super::ocr`]), so that the
//! two can check each other: a residual CNN reads the image at the real captchas' 50x200,
//! and attention pooling (one learned query per character slot, as in the decoder
//! queries of DETR, Carion et al. 2020) gathers one feature vector per slot, classified by
//! its own softmax. No recurrence, no CTC, no alignment: every image gets exactly five
//! characters and five probabilities.
//!
//! Images of any size are resized to 50x200 first, so generated samples at 32x128 are
//! read upsampled. Training therefore augments with the same round trip: a random lower
//! resolution and back, blur, small affine warps, contrast and noise. A share of every
//! batch are outliers (noise blobs, blank backgrounds, real captchas blurred beyond
//! reading) whose target is the uniform distribution in every slot ("outlier exposure",
//! Hendrycks et al., ICLR 2019), so the reader is unsure on what is not a captcha and its
//! slot probabilities measure legibility.
//!
//! Like the OCR it trains only on the training split, caches its weights under
//! `outputs/eval/reader-<key>.safetensors` (the key hashes the configuration, the version,
//! the alphabet and the training images and labels) and leaves LibTorch's generator seeded
//! the same whether it trained or loaded.

use super::cache::{self, Key};
use super::ocr::{augment, check_disjoint, resize, resized_subset, subset, OcrReport};
use crate::data::{self, Alphabet, Captchas};
use crate::error::{Error, Result};
use crate::session::{Profile, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Bumped whenever the network or the training procedure changes.
const ARCH_VERSION: u32 = 1;

/// Images read per forward pass.
const READ_BATCH: i64 = 128;

/// The slot reader's network and training settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotReaderConfig {
    /// Input size every image is resized to (the real captchas' size by default).
    pub height: i64,
    pub width: i64,
    /// Channels of the three stride-2 stages.
    pub channels: [i64; 3],
    /// Characters per image: one slot each.
    pub slots: i64,
    /// Optimiser steps (AdamW, cosine-decayed learning rate).
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Share of each batch replaced by outliers with a uniform target.
    pub outliers: f64,
    /// Probability that a training image goes through a lower resolution and back.
    pub low_res: f64,
    /// Standard deviation of the Gaussian pixel noise (images in [-1, 1]).
    pub noise: f64,
    pub seed: u64,
}

impl Default for SlotReaderConfig {
    /// The cpu profile's configuration.
    fn default() -> Self {
        SlotReaderConfig {
            height: 50,
            width: 200,
            channels: [16, 32, 64],
            slots: 5,
            steps: 1500,
            batch_size: 32,
            lr: 2e-3,
            outliers: 0.125,
            low_res: 0.6,
            noise: 0.05,
            seed: 1,
        }
    }
}

impl SlotReaderConfig {
    /// `smoke`: a tiny network and a few steps. `cpu`: [`SlotReaderConfig::default`].
    /// `gpu`: the same network trained twice as long.
    pub fn for_profile(p: Profile) -> Self {
        let d = SlotReaderConfig::default();
        match p {
            Profile::Smoke => SlotReaderConfig {
                channels: [8, 8, 16],
                steps: 12,
                ..d
            },
            Profile::Cpu => d,
            Profile::Gpu => SlotReaderConfig {
                steps: 2 * d.steps,
                ..d
            },
        }
    }

    fn check(&self) -> Result<()> {
        let ok = self.height >= 8
            && self.width >= 8
            && self.channels.iter().all(|&c| c > 0)
            && self.slots > 0
            && self.batch_size > 1
            && self.lr > 0.0
            && (0.0..1.0).contains(&self.outliers)
            && (0.0..=1.0).contains(&self.low_res)
            && self.noise >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "SlotReaderConfig {self:?}: sizes at least 8, channels and slots positive, batch size at least 2, learning rate positive, outliers in [0, 1), low_res in [0, 1]"
            )))
        }
    }

    /// Height and width of the last stage's feature map (three stride-2 convolutions).
    fn feature_size(&self) -> (i64, i64) {
        let down = |x: i64| (0..3).fold(x, |x, _| (x + 1) / 2);
        (down(self.height), down(self.width))
    }
}

/// Accuracy of the reader on the held-out real captchas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotReaderReport {
    pub heldout: OcrReport,
    /// Mean over the held-out images of the mean most-likely probability of the slots.
    pub heldout_confidence: f64,
}

impl fmt::Display for SlotReaderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slot reader on {} held-out captchas: word accuracy {:.4}, character accuracy {:.4}, mean slot confidence {:.3}",
            self.heldout.n_heldout, self.heldout.word_acc, self.heldout.char_acc, self.heldout_confidence
        )
    }
}

/// Convolution (3x3, stride 1 or 2) + batch norm.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            stride,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(&p / "conv", c_in, c_out, 3, cfg),
            bn: nn::batch_norm2d(&p / "bn", c_out, Default::default()),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// A stride-2 convolution, then a residual block of two 3x3 convolutions (He et al.
/// 2016).
#[derive(Debug)]
struct Stage {
    down: ConvBn,
    conv1: ConvBn,
    conv2: ConvBn,
}

impl Stage {
    fn new(p: nn::Path, c_in: i64, c_out: i64) -> Self {
        Stage {
            down: ConvBn::new(&p / "down", c_in, c_out, 2),
            conv1: ConvBn::new(&p / "conv1", c_out, c_out, 1),
            conv2: ConvBn::new(&p / "conv2", c_out, c_out, 1),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.down.forward_t(x, train).relu();
        let h = self.conv1.forward_t(&x, train).relu();
        (x + self.conv2.forward_t(&h, train)).relu()
    }
}

/// Three stages -> a learned positional embedding -> one attention pooling per slot ->
/// a shared two-layer classifier.
#[derive(Debug)]
struct Net {
    stage1: Stage,
    stage2: Stage,
    stage3: Stage,
    pos: Tensor,
    key: nn::Conv2D,
    value: nn::Conv2D,
    queries: Tensor,
    hidden: nn::Linear,
    head: nn::Linear,
}

impl Net {
    fn new(p: nn::Path, classes: i64, cfg: &SlotReaderConfig) -> Self {
        let [c1, c2, c3] = cfg.channels;
        let (fh, fw) = cfg.feature_size();
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        Net {
            stage1: Stage::new(&p / "stage1", 1, c1),
            stage2: Stage::new(&p / "stage2", c1, c2),
            stage3: Stage::new(&p / "stage3", c2, c3),
            pos: p.var("pos", &[1, c3, fh, fw], init),
            key: nn::conv2d(&p / "key", c3, c3, 1, Default::default()),
            value: nn::conv2d(&p / "value", c3, c3, 1, Default::default()),
            queries: p.var("queries", &[cfg.slots, c3], init),
            hidden: nn::linear(&p / "hidden", c3, c3, Default::default()),
            head: nn::linear(&p / "head", c3, classes, Default::default()),
        }
    }

    /// `[N, 1, H, W]` at the configured size -> logits `[N, slots, classes]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.stage1.forward_t(x, train);
        let x = self.stage2.forward_t(&x, train);
        let x = self.stage3.forward_t(&x, train) + &self.pos;
        let k = x.apply(&self.key).flatten(2, 3); // [N, C, P]
        let v = x.apply(&self.value).flatten(2, 3); // [N, C, P]
        let d = k.size()[1] as f64;
        // Scaled dot-product attention of each slot's query over the positions.
        let attn = (self.queries.matmul(&k) / d.sqrt()).softmax(-1, Kind::Float); // [N, S, P]
        let slots = attn.matmul(&v.transpose(1, 2)); // [N, S, C]
        slots
            .apply(&self.hidden)
            .relu()
            .dropout(0.1, train)
            .apply(&self.head)
    }
}

/// A trained slot reader.
#[derive(Debug)]
pub struct SlotReader {
    vs: nn::VarStore,
    net: Net,
    alphabet: Alphabet,
    cfg: SlotReaderConfig,
    train_seconds: Option<f64>,
}

impl SlotReader {
    /// An untrained reader.
    pub fn new(device: Device, alphabet: &Alphabet, cfg: SlotReaderConfig) -> Result<SlotReader> {
        cfg.check()?;
        if alphabet.is_empty() {
            return Err(Error::msg("the slot reader needs a non-empty alphabet"));
        }
        let vs = nn::VarStore::new(device);
        let net = Net::new(vs.root() / "reader", alphabet.len() as i64, &cfg);
        Ok(SlotReader {
            vs,
            net,
            alphabet: alphabet.clone(),
            cfg,
            train_seconds: None,
        })
    }

    /// Loads weights saved by [`SlotReader::save`]; a file of another configuration or
    /// alphabet is an error naming the file and the first mismatching tensor.
    pub fn load(
        path: impl AsRef<Path>,
        device: Device,
        alphabet: &Alphabet,
        cfg: SlotReaderConfig,
    ) -> Result<SlotReader> {
        let mut r = SlotReader::new(device, alphabet, cfg)?;
        crate::checkpoint::load(&mut r.vs, path)?;
        Ok(r)
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save(&self.vs, path)
    }

    /// Trains a fresh reader on `images` (at the configured size) and their labels
    /// (`cfg.slots` characters each); seeded from `cfg.seed`, one intra-op thread on the
    /// CPU (as the OCR), the caller's thread count restored afterwards.
    fn train_on(
        device: Device,
        images: &Tensor,
        labels: &[String],
        alphabet: &Alphabet,
        cfg: SlotReaderConfig,
    ) -> Result<SlotReader> {
        let t0 = Instant::now();
        if labels.is_empty() {
            return Err(Error::msg("the slot reader's training set is empty"));
        }
        if let Some(bad) = labels
            .iter()
            .find(|l| l.chars().count() as i64 != cfg.slots)
        {
            return Err(Error::msg(format!(
                "slot reader: label {bad:?} has {} characters, expected {} (one per slot)",
                bad.chars().count(),
                cfg.slots
            )));
        }
        let _threads = (device == Device::Cpu).then(super::ocr::OneThread::new);
        crate::seed(cfg.seed);
        let mut reader = SlotReader::new(device, alphabet, cfg.clone())?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(0x51_07));
        let targets = alphabet.encode_all(labels)?.to_device(device); // [N, S]
        let images = images.to_device(device);
        let n = labels.len();
        let mut opt = nn::AdamW::default().build(&reader.vs, cfg.lr)?;
        opt.set_weight_decay(1e-4);
        let mut progress = crate::progress::Progress::new("slot reader", cfg.steps);
        let mut order: Vec<Tensor> = Vec::new();
        let mut epoch = 0u64;
        let mut avg = None::<f64>;
        for step in 0..cfg.steps {
            if order.is_empty() {
                order = data::batches(n, cfg.batch_size, cfg.seed.wrapping_add(epoch));
                order.reverse();
                epoch += 1;
            }
            let idx = order.pop().expect("non-empty epoch").to_device(device);
            let bs = idx.size()[0];
            let mut x = augment(&images.index_select(0, &idx), &mut rng, cfg.noise);
            x = lower_resolution(&x, &mut rng, cfg.low_res);
            let n_out = ((bs as f64 * cfg.outliers).round() as i64).min(bs - 1);
            if n_out > 0 {
                let out = outliers(&x.narrow(0, 0, n_out), &mut rng);
                x = Tensor::cat(&[out, x.narrow(0, n_out, bs - n_out)], 0);
            }
            let frac = step as f64 / cfg.steps.max(1) as f64;
            opt.set_lr(cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()));
            let logp = reader.net.forward_t(&x, true).log_softmax(-1, Kind::Float); // [B, S, C]
            let real = logp.narrow(0, n_out, bs - n_out);
            let t = targets.index_select(0, &idx.narrow(0, n_out, bs - n_out));
            let nll = -real.gather(2, &t.unsqueeze(-1), false).mean(Kind::Float);
            // Cross-entropy to the uniform distribution on the outliers.
            let loss = if n_out > 0 {
                let uniform = -logp.narrow(0, 0, n_out).mean(Kind::Float);
                (&nll * (bs - n_out) as f64 + uniform * n_out as f64) / bs as f64
            } else {
                nll
            };
            opt.backward_step_clip_norm(&loss, 5.0);
            let l = loss.double_value(&[]);
            avg = Some(avg.map_or(l, |a| 0.95 * a + 0.05 * l));
            progress.tick(step + 1, &format!("loss {:.4}", avg.unwrap_or(l)));
        }
        reader.train_seconds = Some(t0.elapsed().as_secs_f64());
        Ok(reader)
    }

    /// Loads cached weights from `outputs/eval/reader-<key>.safetensors`, or trains on the
    /// `train` images of `data` and caches them; then scores the `heldout` images. With
    /// `HW4_TRAIN=0` a missing cache is an error. LibTorch's generator is left seeded the
    /// same either way; whether it trained or loaded goes to stderr.
    pub fn load_or_train(
        s: &Session,
        data: &Captchas,
        train: &[i64],
        heldout: &[i64],
        cfg: SlotReaderConfig,
    ) -> Result<(SlotReader, SlotReaderReport)> {
        cfg.check()?;
        check_disjoint("slot reader", train, heldout)?;
        if data.source.is_synthetic() {
            eprintln!("slot reader: warning: no real captchas found; it is trained and scored on the synthetic set");
        }
        let (images, labels) = training_set(data, train, &cfg)?;
        let path = cache_file(&cfg, &data.alphabet, &images, &labels)?;
        let (reader, cached) = cache::load_or_train(
            "slot reader",
            &path,
            s.train_enabled(),
            |p| SlotReader::load(p, s.device, &data.alphabet, cfg.clone()),
            || SlotReader::train_on(s.device, &images, &labels, &data.alphabet, cfg.clone()),
            |r, p| r.save(p),
        )?;
        if cached {
            eprintln!("slot reader: loaded {}", data::show_path(&path));
        } else {
            eprintln!(
                "slot reader: trained {} steps in {:.1} s, saved {}",
                cfg.steps,
                reader.train_seconds.unwrap_or(0.0),
                data::show_path(&path)
            );
        }
        crate::seed(cfg.seed.wrapping_add(0x5eed));
        let report = reader.evaluate(data, heldout)?;
        Ok((reader, report))
    }

    /// Where [`SlotReader::load_or_train`] caches the weights for these arguments.
    pub fn cache_path(data: &Captchas, train: &[i64], cfg: &SlotReaderConfig) -> Result<PathBuf> {
        let (images, labels) = training_set(data, train, cfg)?;
        cache_file(cfg, &data.alphabet, &images, &labels)
    }

    /// Reads the images `idx` of `data` and scores them against their labels.
    pub fn evaluate(&self, data: &Captchas, idx: &[i64]) -> Result<SlotReaderReport> {
        let (images, truths) = subset(data, idx)?;
        let (reads, conf) = self.read_with_confidence(&images)?;
        Ok(SlotReaderReport {
            heldout: OcrReport::score(&reads, &truths),
            heldout_confidence: conf.iter().sum::<f64>() / conf.len().max(1) as f64,
        })
    }

    /// Per-slot probabilities `[N, slots, classes]` of images `[N, 1, H, W]` in [-1, 1]
    /// of any size (resized to the configured one).
    pub fn probabilities(&self, images: &Tensor) -> Result<Tensor> {
        let s = images.size();
        if s.len() != 4 || s[1] != 1 {
            return Err(Error::msg(format!(
                "slot reader: expected images [N, 1, H, W], got {s:?}"
            )));
        }
        let n = s[0];
        let mut parts = Vec::new();
        tch::no_grad(|| {
            let mut i = 0;
            while i < n {
                let len = READ_BATCH.min(n - i);
                let x = resize(
                    &images.narrow(0, i, len).to_device(self.vs.device()),
                    self.cfg.height,
                    self.cfg.width,
                );
                parts.push(self.net.forward_t(&x, false).softmax(-1, Kind::Float));
                i += len;
            }
        });
        if parts.is_empty() {
            let c = self.alphabet.len() as i64;
            return Ok(Tensor::zeros(
                [0, self.cfg.slots, c],
                (Kind::Float, self.vs.device()),
            ));
        }
        Ok(Tensor::cat(&parts, 0))
    }

    /// The most likely character's probability per slot, `[N, slots]`.
    pub fn slot_probabilities(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.probabilities(images)?.amax([-1i64].as_slice(), false))
    }

    /// The most likely text of each image and the mean over its slots of the most likely
    /// character's probability.
    pub fn read_with_confidence(&self, images: &Tensor) -> Result<(Vec<String>, Vec<f64>)> {
        let (p, best) = self.probabilities(images)?.max_dim(-1, false);
        let best = best.to_device(Device::Cpu);
        let conf: Vec<f64> = Vec::try_from(
            p.mean_dim([-1i64].as_slice(), false, Kind::Float)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu),
        )?;
        let slots = self.cfg.slots as usize;
        let flat: Vec<i64> = Vec::try_from(best.contiguous().view([-1]))?;
        let texts = flat
            .chunks(slots.max(1))
            .map(|c| self.alphabet.decode(c))
            .collect();
        Ok((texts, conf))
    }

    /// The most likely text of each image.
    pub fn read(&self, images: &Tensor) -> Result<Vec<String>> {
        Ok(self.read_with_confidence(images)?.0)
    }

    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    pub fn config(&self) -> &SlotReaderConfig {
        &self.cfg
    }

    /// Wall seconds of training, when this reader was trained rather than loaded.
    pub fn train_seconds(&self) -> Option<f64> {
        self.train_seconds
    }
}

/// With probability `p` per batch, the images go down to a random 30-80% of their size
/// and back (antialiased bilinear both ways), as generated samples at a lower resolution
/// look when read at this one.
fn lower_resolution(x: &Tensor, rng: &mut ChaCha8Rng, p: f64) -> Tensor {
    if !rng.random_bool(p) {
        return x.shallow_clone();
    }
    let (_, _, h, w) = x.size4().expect("[N, 1, H, W] images");
    let f = rng.random_range(0.3f64..0.8);
    let (h2, w2) = ((h as f64 * f).round() as i64, (w as f64 * f).round() as i64);
    resize(&resize(x, h2.max(2), w2.max(2)), h, w)
}

/// Images that are not captchas, one per input image, by turns: smooth noise blobs,
/// a blank background of the image's mean grey, and the image blurred beyond reading.
fn outliers(x: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
    let (n, _, h, w) = x.size4().expect("[N, 1, H, W] images");
    let parts: Vec<Tensor> = (0..n)
        .map(|i| {
            let img = x.narrow(0, i, 1);
            match rng.random_range(0..3) {
                0 => {
                    let s = rng.random_range(2..12i64);
                    let blob = Tensor::randn([1, 1, s, 4 * s], (Kind::Float, x.device()));
                    resize(&blob, h, w).tanh() * 0.9 + 0.1
                }
                1 => {
                    img.mean_dim([2i64, 3].as_slice(), true, Kind::Float)
                        .expand([1, 1, h, w], false)
                        + img.randn_like() * 0.05
                }
                _ => resize(&resize(&img, 3, 12), h, w),
            }
        })
        .collect();
    Tensor::cat(&parts, 0).clamp(-1.0, 1.0)
}

/// The reader's training images and labels.
fn training_set(
    data: &Captchas,
    train: &[i64],
    cfg: &SlotReaderConfig,
) -> Result<(Tensor, Vec<String>)> {
    cfg.check()?;
    resized_subset(data, train, cfg.height, cfg.width)
}

/// `outputs/eval/reader-<key>.safetensors`, the key hashing the version, the
/// configuration, the alphabet, the CPU kernels' tag and the training images and labels.
fn cache_file(
    cfg: &SlotReaderConfig,
    alphabet: &Alphabet,
    images: &Tensor,
    labels: &[String],
) -> Result<PathBuf> {
    let cpu = crate::cpu::kernel_tag();
    let mut key = Key::new().bytes(format!(
        "hw4 slot reader v{ARCH_VERSION}\n{cfg:?}\n{alphabet}\n{cpu}\n"
    ));
    for l in labels {
        key = key.bytes(l).bytes("\n");
    }
    Ok(key.tensor(images)?.file_in(&cache::dir(), "reader"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha() -> Alphabet {
        Alphabet::new(data::CAPTCHA_ALPHABET)
    }

    #[test]
    fn shapes_and_readings() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = SlotReaderConfig::for_profile(Profile::Smoke);
        let r = SlotReader::new(Device::Cpu, &alpha(), cfg.clone()).unwrap();
        let x = Tensor::rand([3, 1, 32, 128], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let p = r.probabilities(&x).unwrap();
        assert_eq!(p.size(), [3, 5, alpha().len() as i64]);
        let sums = p.sum_dim_intlist([-1i64].as_slice(), false, Kind::Float);
        assert!(sums.allclose(&sums.ones_like(), 1e-5, 1e-5, false));
        let sp = r.slot_probabilities(&x).unwrap();
        assert_eq!(sp.size(), [3, 5]);
        let (texts, conf) = r.read_with_confidence(&x).unwrap();
        assert_eq!(texts.len(), 3);
        assert!(texts.iter().all(|t| t.chars().count() == 5));
        let mean_sp: Vec<f64> =
            Vec::try_from(sp.mean_dim([1i64].as_slice(), false, Kind::Double)).unwrap();
        for (a, b) in conf.iter().zip(&mean_sp) {
            assert!((a - b).abs() < 1e-6);
        }
        let e = r.probabilities(&x.squeeze_dim(1)).unwrap_err().to_string();
        assert!(e.contains("expected images [N, 1, H, W]"), "{e}");
        assert_eq!(cfg.feature_size(), (7, 25));
    }

    #[test]
    fn training_is_seeded_and_checks_labels() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let a = alpha();
        let labels: Vec<String> = ["226md", "22d5n", "2356g", "23n88"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cfg = SlotReaderConfig {
            steps: 3,
            batch_size: 4,
            ..SlotReaderConfig::for_profile(Profile::Smoke)
        };
        let x = Tensor::rand([4, 1, 50, 200], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let threads = tch::get_num_threads();
        let one = SlotReader::train_on(Device::Cpu, &x, &labels, &a, cfg.clone()).unwrap();
        assert_eq!(tch::get_num_threads(), threads);
        let two = SlotReader::train_on(Device::Cpu, &x, &labels, &a, cfg.clone()).unwrap();
        let (v1, v2) = (one.vs.variables(), two.vs.variables());
        assert!(!v1.is_empty());
        for (k, t) in &v1 {
            assert!(t.equal(&v2[k]), "{k} differs between two seeded runs");
        }
        let mut bad = labels.clone();
        bad[2] = "23n8".into();
        let e = SlotReader::train_on(Device::Cpu, &x, &bad, &a, cfg.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"23n8\" has 4 characters, expected 5"), "{e}");
        bad[2] = "23nAA".into();
        let e = SlotReader::train_on(Device::Cpu, &x, &bad, &a, cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'A' is not in the alphabet"), "{e}");
    }

    #[test]
    fn wrong_shape_weights_name_the_file() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let a = alpha();
        let small = SlotReaderConfig::for_profile(Profile::Smoke);
        let dir = std::env::temp_dir().join(format!("hw4-reader-{}", std::process::id()));
        let path = dir.join("reader-small.safetensors");
        SlotReader::new(Device::Cpu, &a, small.clone())
            .unwrap()
            .save(&path)
            .unwrap();
        let other = SlotReaderConfig {
            channels: [8, 8, 24],
            ..small.clone()
        };
        let e = SlotReader::load(&path, Device::Cpu, &a, other)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("has shape"), "{e}");
        assert!(SlotReader::load(&path, Device::Cpu, &a, small).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn outliers_and_low_resolution_keep_shape_and_range() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = Tensor::rand([6, 1, 50, 200], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let o = outliers(&x, &mut rng);
        assert_eq!(o.size(), x.size());
        assert!(o.max().double_value(&[]) <= 1.0 && o.min().double_value(&[]) >= -1.0);
        let l = lower_resolution(&x, &mut rng, 1.0);
        assert_eq!(l.size(), x.size());
        assert!(!l.equal(&x), "a lower resolution loses detail");
        assert!(lower_resolution(&x, &mut rng, 0.0).equal(&x));
    }
}
