//! A captcha OCR that judges generated captchas: a small CNN reads the image into a
//! left-to-right sequence of feature columns, a bidirectional GRU reads that
//! sequence, and a linear layer gives per-column log-probabilities over the alphabet
//! plus a blank, trained with the CTC loss (Graves et al., "Connectionist Temporal
//! Classification", ICML 2006) and decoded greedily (best path: collapse repeats,
//! drop blanks).
//!
//! It is trained only on the real captchas of [`captcha_split`]'s training part (the
//! part the DDPM trains on) and reports its accuracy on the held-out part. Weights are
//! cached under `outputs/eval/ocr-<key>.safetensors`, where the key hashes the
//! configuration, the architecture version, the alphabet and the training images and
//! labels as the OCR sees them, so a changed set or setting never reuses stale weights.
//!
//! ```no_run
//! use hw4::prelude::*;
//! use hw4::eval::ocr::{self, Ocr, OcrConfig};
//! # fn main() -> hw4::Result<()> {
//! let s = Session::start("DDPM")?;
//! let data = data::load_captchas(50, 200, hw4::image::imageops::FilterType::Triangle)?;
//! let (train, heldout) = ocr::captcha_split(data.len());
//! let (ocr, report) =
//!     Ocr::load_or_train(&s, &data, &train, &heldout, OcrConfig::for_profile(s.profile))?;
//! println!("{report}");
//! let texts = ocr.read(&data.images.narrow(0, 0, 4));
//! # Ok(()) }
//! ```

use super::cache::{self, Key};
use crate::data::{self, Alphabet, Captchas};
use crate::error::{Error, Result};
use crate::session::{Profile, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, ModuleT, OptimizerConfig, RNN};
use tch::{Device, Kind, Reduction, Tensor};

pub use crate::data::captcha_split;

/// Bumped whenever the network or the training procedure changes, so that cached
/// weights of an older version are not loaded.
const ARCH_VERSION: u32 = 3;

/// Images read per forward pass in [`Ocr::read`].
const READ_BATCH: i64 = 256;

/// The OCR's network and training settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrConfig {
    /// Input size the images are resized to; `height` a multiple of 8, `width` of 4.
    /// The sequence the CTC aligns has `width / 4` steps.
    pub height: i64,
    pub width: i64,
    /// Channels of the three 3x3 convolution blocks.
    pub channels: [i64; 3],
    /// Width of the projection of each feature column before the GRU.
    pub proj: i64,
    /// GRU hidden size per direction.
    pub hidden: i64,
    /// Optimiser steps (Adam, cosine-decayed learning rate).
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Random affine jitter, contrast and pixel noise on training images.
    pub augment: bool,
    /// Standard deviation of the Gaussian pixel noise (images in [-1, 1]).
    pub noise: f64,
    /// Seeds the initial weights, the batch order and the augmentation.
    pub seed: u64,
}

impl Default for OcrConfig {
    /// The cpu profile's configuration.
    fn default() -> Self {
        OcrConfig {
            height: 32,
            width: 128,
            channels: [16, 48, 64],
            proj: 64,
            hidden: 64,
            steps: 1000,
            batch_size: 32,
            lr: 3e-3,
            augment: true,
            noise: 0.05,
            seed: 0,
        }
    }
}

impl OcrConfig {
    /// `smoke`: a tiny network and a few steps (seconds; its accuracy is only
    /// reported). `cpu`: [`OcrConfig::default`] (a few minutes on two cores). `gpu`:
    /// the same network trained twice as long.
    pub fn for_profile(p: Profile) -> Self {
        let d = OcrConfig::default();
        match p {
            Profile::Smoke => OcrConfig {
                height: 16,
                width: 64,
                channels: [8, 16, 16],
                proj: 16,
                hidden: 16,
                steps: 12,
                ..d
            },
            Profile::Cpu => d,
            Profile::Gpu => OcrConfig {
                steps: 2 * d.steps,
                ..d
            },
        }
    }

    fn check(&self) -> Result<()> {
        let ok = self.height >= 8
            && self.height % 8 == 0
            && self.width >= 8
            && self.width % 4 == 0
            && self.channels.iter().all(|&c| c > 0)
            && self.proj > 0
            && self.hidden > 0
            && self.batch_size > 0
            && self.lr > 0.0
            && self.noise >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "OcrConfig {self:?}: height must be a positive multiple of 8, width a multiple of 4 (at least 8), sizes, batch size and learning rate positive"
            )))
        }
    }

    /// Time steps of the CTC alignment.
    pub fn seq_len(&self) -> i64 {
        self.width / 4
    }
}

/// Word and character accuracy on held-out captchas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OcrReport {
    /// Fraction of images read exactly.
    pub word_acc: f64,
    /// Mean [`char_accuracy`] over the images.
    pub char_acc: f64,
    pub n_heldout: usize,
}

impl fmt::Display for OcrReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OCR on {} held-out captchas: word accuracy {:.4}, character accuracy {:.4}",
            self.n_heldout, self.word_acc, self.char_acc
        )
    }
}

impl OcrReport {
    /// Scores readings against the true texts.
    pub fn score(preds: &[String], truths: &[String]) -> OcrReport {
        let n = preds.len().min(truths.len());
        let (mut words, mut chars) = (0usize, 0.0);
        for (p, t) in preds.iter().zip(truths) {
            words += usize::from(p == t);
            chars += char_accuracy(p, t);
        }
        let d = n.max(1) as f64;
        OcrReport {
            word_acc: words as f64 / d,
            char_acc: chars / d,
            n_heldout: n,
        }
    }
}

/// Best-path CTC decoding of `log_probs` `[T, N, C]` (class 0 the blank, class `k`
/// the alphabet's character `k - 1`): the arg-max class per step, repeats collapsed,
/// blanks dropped. A class beyond the alphabet decodes as `?`.
pub fn greedy_decode(log_probs: &Tensor, alphabet: &Alphabet) -> Vec<String> {
    let best = log_probs.argmax(-1, false).to_device(Device::Cpu); // [T, N]
    let (t, n) = (best.size()[0] as usize, best.size()[1] as usize);
    if t == 0 {
        return vec![String::new(); n];
    }
    let flat: Vec<i64> = Vec::try_from(best.transpose(0, 1).contiguous().view([-1]))
        .expect("arg-max indices are i64");
    flat.chunks(t)
        .take(n)
        .map(|path| {
            let mut out = Vec::new();
            let mut prev = 0;
            for &k in path {
                if k != 0 && k != prev {
                    out.push(k - 1);
                }
                prev = k;
            }
            alphabet.decode(&out)
        })
        .collect()
}

/// Position-wise character accuracy: characters equal at the same position, divided
/// by the longer of the two lengths (so missing or extra characters count as errors);
/// 1 when both are empty.
pub fn char_accuracy(pred: &str, truth: &str) -> f64 {
    let (p, t): (Vec<char>, Vec<char>) = (pred.chars().collect(), truth.chars().collect());
    let len = p.len().max(t.len());
    if len == 0 {
        return 1.0;
    }
    p.iter().zip(&t).filter(|(a, b)| a == b).count() as f64 / len as f64
}

/// Resizes `[N, 1, H, W]` images to `h x w` (bilinear with antialiasing, so that
/// downscaling averages rather than skips pixels) as f32.
pub(crate) fn resize(images: &Tensor, h: i64, w: i64) -> Tensor {
    let x = images.to_kind(Kind::Float);
    let s = x.size();
    if s[2] == h && s[3] == w {
        x
    } else {
        x.internal_upsample_bilinear2d_aa([h, w], false, None, None)
    }
}

#[derive(Debug)]
struct Block {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    pool: [i64; 2],
}

impl Block {
    fn new(p: nn::Path, c_in: i64, c_out: i64, pool: [i64; 2]) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        Block {
            conv: nn::conv2d(&p / "conv", c_in, c_out, 3, cfg),
            bn: nn::batch_norm2d(&p / "bn", c_out, Default::default()),
            pool,
        }
    }
}

impl ModuleT for Block {
    /// Pooling before normalisation, so that BN and ReLU run on the smaller map.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv)
            .max_pool2d(self.pool, self.pool, [0, 0], [1, 1], false)
            .apply_t(&self.bn, train)
            .relu()
    }
}

/// CNN (three conv-pool-BN-ReLU blocks; pooling 2x2, 2x2, 2x1) -> per-column projection ->
/// BiGRU -> logits over blank + alphabet (a CRNN: Shi et al., 2015, arXiv:1507.05717).
#[derive(Debug)]
struct Net {
    block1: Block,
    block2: Block,
    block3: Block,
    proj: nn::Linear,
    gru: nn::GRU,
    head: nn::Linear,
}

impl Net {
    fn new(p: nn::Path, classes: i64, cfg: &OcrConfig) -> Self {
        let [c1, c2, c3] = cfg.channels;
        let rnn = nn::RNNConfig {
            bidirectional: true,
            batch_first: true,
            ..Default::default()
        };
        Net {
            block1: Block::new(&p / "block1", 1, c1, [2, 2]),
            block2: Block::new(&p / "block2", c1, c2, [2, 2]),
            block3: Block::new(&p / "block3", c2, c3, [2, 1]),
            proj: nn::linear(
                &p / "proj",
                c3 * (cfg.height / 8),
                cfg.proj,
                Default::default(),
            ),
            gru: nn::gru(&p / "gru", cfg.proj, cfg.hidden, rnn),
            head: nn::linear(&p / "head", 2 * cfg.hidden, classes, Default::default()),
        }
    }

    /// `[N, 1, H, W]` -> log-probabilities `[T, N, C]` with `T = W / 4`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.block1.forward_t(x, train);
        let x = self.block2.forward_t(&x, train);
        let x = self.block3.forward_t(&x, train);
        let (n, c, h, w) = x.size4().expect("4-d features");
        let cols = x.permute([0, 3, 1, 2]).reshape([n, w, c * h]);
        let cols = cols.apply(&self.proj).relu().dropout(0.2, train);
        let (seq, _) = self.gru.seq(&cols);
        seq.apply(&self.head)
            .log_softmax(-1, Kind::Float)
            .transpose(0, 1)
    }
}

/// A trained captcha reader.
#[derive(Debug)]
pub struct Ocr {
    vs: nn::VarStore,
    net: Net,
    alphabet: Alphabet,
    cfg: OcrConfig,
    train_seconds: Option<f64>,
}

impl Ocr {
    /// An untrained OCR (weights from LibTorch's generator as it stands).
    pub fn new(device: Device, alphabet: &Alphabet, cfg: OcrConfig) -> Result<Ocr> {
        cfg.check()?;
        if alphabet.is_empty() {
            return Err(Error::msg("the OCR needs a non-empty alphabet"));
        }
        let vs = nn::VarStore::new(device);
        let net = Net::new(vs.root() / "ocr", alphabet.len() as i64 + 1, &cfg);
        Ok(Ocr {
            vs,
            net,
            alphabet: alphabet.clone(),
            cfg,
            train_seconds: None,
        })
    }

    /// Loads weights saved by [`Ocr::save`]; an unreadable file, or one of another
    /// configuration or alphabet, is an error naming the file (and the first
    /// mismatching tensor).
    pub fn load(
        path: impl AsRef<Path>,
        device: Device,
        alphabet: &Alphabet,
        cfg: OcrConfig,
    ) -> Result<Ocr> {
        let mut ocr = Ocr::new(device, alphabet, cfg)?;
        crate::checkpoint::load(&mut ocr.vs, path)?;
        Ok(ocr)
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save(&self.vs, path)
    }

    /// Trains a fresh OCR on `images` (already at the configured size) and `labels`,
    /// seeding LibTorch with `cfg.seed` first, so the same inputs give the same weights
    /// on a device; on the CPU with one intra-op thread, the caller's thread count
    /// restored afterwards.
    fn train_on(
        device: Device,
        images: &Tensor,
        labels: &[String],
        alphabet: &Alphabet,
        cfg: OcrConfig,
    ) -> Result<Ocr> {
        let t0 = Instant::now();
        // One intra-op thread on the CPU: on a shared two-core machine about ten times
        // faster than two for this small network, and the weights do not depend on
        // HW4_THREADS (which the cache key leaves out).
        let _threads = (device == Device::Cpu).then(OneThread::new);
        crate::seed(cfg.seed);
        let mut ocr = Ocr::new(device, alphabet, cfg.clone())?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(0x0c12));
        let n = labels.len();
        if n == 0 {
            return Err(Error::msg("the OCR's training set is empty"));
        }
        let (targets, target_lens) = encode_targets(labels, alphabet)?;
        let images = images.to_device(device);
        let mut opt = nn::Adam::default().build(&ocr.vs, cfg.lr)?;
        let seq = cfg.seq_len();
        let mut progress = crate::progress::Progress::new("ocr", cfg.steps);
        let mut order: Vec<Tensor> = Vec::new();
        let mut epoch = 0u64;
        let mut avg = None::<f64>;
        for step in 0..cfg.steps {
            if order.is_empty() {
                order = data::batches(n, cfg.batch_size, cfg.seed.wrapping_add(epoch));
                order.reverse();
                epoch += 1;
            }
            let idx = order.pop().expect("non-empty epoch");
            let bs = idx.size()[0];
            let mut x = images.index_select(0, &idx.to_device(device));
            if cfg.augment {
                x = augment(&x, &mut rng, cfg.noise);
            }
            // Cosine decay of the learning rate (Loshchilov & Hutter, SGDR, 2017).
            let frac = step as f64 / cfg.steps.max(1) as f64;
            opt.set_lr(cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()));
            let log_probs = ocr.net.forward_t(&x, true);
            // CTC on the CPU: its CUDA backward has no deterministic kernel.
            let loss = Tensor::ctc_loss_tensor(
                &log_probs.to_device(Device::Cpu),
                &targets.index_select(0, &idx),
                &Tensor::full([bs], seq, (Kind::Int64, Device::Cpu)),
                &target_lens.index_select(0, &idx),
                0,
                Reduction::Mean,
                true,
            );
            opt.backward_step_clip_norm(&loss, 5.0);
            let l = loss.double_value(&[]);
            avg = Some(avg.map_or(l, |a| 0.95 * a + 0.05 * l));
            progress.tick(step + 1, &format!("ctc {:.4}", avg.unwrap_or(l)));
        }
        ocr.train_seconds = Some(t0.elapsed().as_secs_f64());
        Ok(ocr)
    }

    /// Loads cached weights from `outputs/eval/ocr-<key>.safetensors` (the key hashes
    /// `cfg`, the alphabet and the training images and labels), or trains on the
    /// `train` images of `data` and caches them; then scores the `heldout` images.
    /// With `HW4_TRAIN=0` a missing cache is an error. Either way LibTorch's generator
    /// is left seeded the same (from `cfg.seed`), so what the caller draws next does
    /// not depend on whether the weights came from the cache. Nothing is printed on
    /// stdout; whether it trained or loaded goes to stderr. It trains on whatever set
    /// `data` is: with the loader's synthetic fallback the report is about synthetic
    /// captchas (a warning on stderr says so).
    pub fn load_or_train(
        s: &Session,
        data: &Captchas,
        train: &[i64],
        heldout: &[i64],
        cfg: OcrConfig,
    ) -> Result<(Ocr, OcrReport)> {
        cfg.check()?;
        check_disjoint("OCR", train, heldout)?;
        if data.source.is_synthetic() {
            eprintln!("ocr: warning: no real captchas found; the OCR is trained and scored on the synthetic set");
        }
        let (images, labels) = training_set(data, train, &cfg)?;
        let path = cache_file(&cfg, &data.alphabet, &images, &labels)?;
        let (ocr, cached) = cache::load_or_train(
            "OCR",
            &path,
            s.train_enabled(),
            |p| Ocr::load(p, s.device, &data.alphabet, cfg.clone()),
            || Ocr::train_on(s.device, &images, &labels, &data.alphabet, cfg.clone()),
            |ocr, p| ocr.save(p),
        )?;
        if cached {
            eprintln!("ocr: loaded {}", crate::data::show_path(&path));
        } else {
            eprintln!(
                "ocr: trained {} steps in {:.1} s, saved {}",
                cfg.steps,
                ocr.train_seconds.unwrap_or(0.0),
                crate::data::show_path(&path)
            );
        }
        crate::seed(cfg.seed.wrapping_add(0x5eed));
        let report = ocr.evaluate(data, heldout)?;
        Ok((ocr, report))
    }

    /// Where [`Ocr::load_or_train`] caches the weights for these arguments.
    pub fn cache_path(data: &Captchas, train: &[i64], cfg: &OcrConfig) -> Result<PathBuf> {
        let (images, labels) = training_set(data, train, cfg)?;
        cache_file(cfg, &data.alphabet, &images, &labels)
    }

    /// Reads the images `idx` of `data` and scores them against their labels.
    pub fn evaluate(&self, data: &Captchas, idx: &[i64]) -> Result<OcrReport> {
        let (images, truths) = subset(data, idx)?;
        Ok(OcrReport::score(&self.read(&images), &truths))
    }

    /// Reads a batch of images `[N, 1, H, W]` in [-1, 1] (black text on a light
    /// background, any size: resized to the configured one).
    pub fn read(&self, images: &Tensor) -> Vec<String> {
        let n = images.size()[0];
        let mut out = Vec::with_capacity(n as usize);
        tch::no_grad(|| {
            let mut i = 0;
            while i < n {
                let len = READ_BATCH.min(n - i);
                let x = resize(
                    &images.narrow(0, i, len).to_device(self.vs.device()),
                    self.cfg.height,
                    self.cfg.width,
                );
                out.extend(greedy_decode(
                    &self.net.forward_t(&x, false),
                    &self.alphabet,
                ));
                i += len;
            }
        });
        out
    }

    /// Log-probabilities `[T, N, C]` of resized images (class 0 the blank).
    pub fn log_probs(&self, images: &Tensor) -> Tensor {
        let x = resize(
            &images.to_device(self.vs.device()),
            self.cfg.height,
            self.cfg.width,
        );
        tch::no_grad(|| self.net.forward_t(&x, false))
    }

    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    pub fn config(&self) -> &OcrConfig {
        &self.cfg
    }

    /// Wall seconds of training, when this OCR was trained rather than loaded.
    pub fn train_seconds(&self) -> Option<f64> {
        self.train_seconds
    }
}

/// Sets LibTorch's intra-op threads to 1 until dropped, then restores them.
pub(crate) struct OneThread(i32);

impl OneThread {
    pub(crate) fn new() -> Self {
        let before = tch::get_num_threads();
        tch::set_num_threads(1);
        OneThread(before)
    }
}

impl Drop for OneThread {
    fn drop(&mut self) {
        tch::set_num_threads(self.0);
    }
}

/// Fails naming the first index of `idx` outside a captcha set of `n` images.
pub(crate) fn check_indices(idx: &[i64], n: usize) -> Result<()> {
    if let Some(bad) = idx.iter().find(|&&i| i < 0 || i as usize >= n) {
        return Err(Error::msg(format!(
            "index {bad} is outside the captcha set of {n} images"
        )));
    }
    Ok(())
}

/// Fails when held-out indices are also training indices (`what` names the reader).
pub(crate) fn check_disjoint(what: &str, train: &[i64], heldout: &[i64]) -> Result<()> {
    let t: std::collections::BTreeSet<i64> = train.iter().copied().collect();
    let overlap = heldout.iter().filter(|i| t.contains(i)).count();
    if overlap > 0 {
        return Err(Error::msg(format!(
            "{what}: {overlap} held-out indices are also training indices; use data::captcha_split"
        )));
    }
    Ok(())
}

/// The images `idx` of `data` (on its device) and their labels; an index out of range is
/// an error naming it.
pub(crate) fn subset(data: &Captchas, idx: &[i64]) -> Result<(Tensor, Vec<String>)> {
    check_indices(idx, data.len())?;
    let images = data.images.index_select(0, &Tensor::from_slice(idx));
    let labels = idx
        .iter()
        .map(|&i| data.labels[i as usize].clone())
        .collect();
    Ok((images, labels))
}

/// The images `idx` of `data` resized to `h` x `w` on the CPU (so that a cache key does not
/// depend on the device), and their labels.
pub(crate) fn resized_subset(
    data: &Captchas,
    idx: &[i64],
    h: i64,
    w: i64,
) -> Result<(Tensor, Vec<String>)> {
    let (images, labels) = subset(data, idx)?;
    Ok((
        resize(&images.to_device(Device::Cpu), h, w).contiguous(),
        labels,
    ))
}

/// The OCR's training images and labels.
fn training_set(data: &Captchas, train: &[i64], cfg: &OcrConfig) -> Result<(Tensor, Vec<String>)> {
    cfg.check()?;
    resized_subset(data, train, cfg.height, cfg.width)
}

/// Padded targets `[N, L]` (alphabet index + 1; 0 pads) and their lengths `[N]`.
fn encode_targets(labels: &[String], alphabet: &Alphabet) -> Result<(Tensor, Tensor)> {
    let encoded: Vec<Vec<i64>> = labels
        .iter()
        .map(|l| alphabet.encode(l))
        .collect::<Result<_>>()?;
    let width = encoded.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat = vec![0i64; labels.len() * width];
    for (row, e) in flat.chunks_mut(width).zip(&encoded) {
        for (o, &k) in row.iter_mut().zip(e) {
            *o = k + 1;
        }
    }
    let lens: Vec<i64> = encoded.iter().map(|e| e.len() as i64).collect();
    Ok((
        Tensor::from_slice(&flat).view([labels.len() as i64, width as i64]),
        Tensor::from_slice(&lens),
    ))
}

/// Small random affine warps (scale, rotation, shear, shift) per image with the
/// border replicated, a blur on some batches, contrast and brightness changes and
/// Gaussian pixel noise.
pub(crate) fn augment(x: &Tensor, rng: &mut ChaCha8Rng, noise: f64) -> Tensor {
    let (n, c, h, w) = x.size4().expect("[N, 1, H, W] images");
    let mut theta = Vec::with_capacity(n as usize * 6);
    let mut gain = Vec::with_capacity(n as usize * 2);
    for _ in 0..n {
        let rot = rng.random_range(-0.05f32..0.05);
        let shear = rng.random_range(-0.1f32..0.1);
        let sx = rng.random_range(0.92f32..1.08);
        let sy = rng.random_range(0.9f32..1.1);
        let tx = rng.random_range(-0.06f32..0.06);
        let ty = rng.random_range(-0.1f32..0.1);
        let (sin, cos) = rot.sin_cos();
        // Rotation times scale, with a horizontal shear; in normalised coordinates the
        // aspect ratio w/h scales the off-diagonal terms.
        let a = w as f32 / h as f32;
        theta.extend([
            sx * cos,
            -sy * sin / a + shear,
            tx,
            sx * sin * a,
            sy * cos,
            ty,
        ]);
        gain.extend([
            rng.random_range(0.75f32..1.1),
            rng.random_range(-0.1f32..0.1),
        ]);
    }
    let dev = x.device();
    let theta = Tensor::from_slice(&theta).view([n, 2, 3]).to_device(dev);
    let gain = Tensor::from_slice(&gain).view([n, 2, 1, 1]).to_device(dev);
    let grid = Tensor::affine_grid_generator(&theta, [n, c, h, w], false);
    let mut x = x.grid_sampler(&grid, 0, 1, false);
    // Now and then a blur, by scaling down and back up (as low-resolution samples look).
    if rng.random_bool(0.3) {
        let f = rng.random_range(0.6f64..0.95);
        let (h2, w2) = ((h as f64 * f).round() as i64, (w as f64 * f).round() as i64);
        x = resize(&resize(&x, h2.max(1), w2.max(1)), h, w);
    }
    let x = &x * gain.narrow(1, 0, 1) + gain.narrow(1, 1, 1);
    let x = if noise > 0.0 {
        &x + x.randn_like() * noise
    } else {
        x
    };
    x.clamp(-1.0, 1.0)
}

/// `outputs/eval/ocr-<key>.safetensors`, the key hashing the architecture version, the
/// configuration, the alphabet, the CPU kernels' configuration (`HW4_CPU_MODE`), and
/// the training images (at the OCR's size) and labels.
/// [`Ocr::cache_path`] is this for a captcha set and training indices.
fn cache_file(
    cfg: &OcrConfig,
    alphabet: &Alphabet,
    images: &Tensor,
    labels: &[String],
) -> Result<PathBuf> {
    let cpu = crate::cpu::kernel_tag();
    let mut key = Key::new().bytes(format!(
        "hw4 ocr v{ARCH_VERSION}\n{cfg:?}\n{alphabet}\n{cpu}\n"
    ));
    for l in labels {
        key = key.bytes(l).bytes("\n");
    }
    Ok(key.tensor(images)?.file_in(&cache::dir(), "ocr"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha() -> Alphabet {
        Alphabet::new(data::CAPTCHA_ALPHABET)
    }

    /// `[T, 1, C]` log-probabilities whose arg-max path is `path`.
    fn path_probs(path: &[i64], classes: i64) -> Tensor {
        let onehot = Tensor::from_slice(path)
            .one_hot(classes)
            .to_kind(Kind::Float);
        (onehot * 10.0).log_softmax(-1, Kind::Float).unsqueeze(1)
    }

    #[test]
    fn greedy_decode_collapses_repeats_and_drops_blanks() {
        let a = alpha(); // "2345678bcdefgmnpwxy": class k is a.chars()[k - 1]
        let c = a.len() as i64 + 1;
        assert_eq!(
            greedy_decode(&path_probs(&[1, 1, 0, 2, 2, 2, 0], c), &a),
            ["23"]
        );
        // A blank between two equal classes keeps both characters.
        assert_eq!(greedy_decode(&path_probs(&[1, 0, 1, 1, 0], c), &a), ["22"]);
        assert_eq!(greedy_decode(&path_probs(&[0, 0, 0], c), &a), [""]);
        assert_eq!(
            greedy_decode(&path_probs(&[19, 18, 0, 0, 7], c), &a),
            ["yx8"]
        );
        // Out-of-alphabet class decodes as '?'.
        assert_eq!(greedy_decode(&path_probs(&[20, 1], 21), &a), ["?2"]);
        // A batch: [T, N, C] with different paths per column.
        let batch = Tensor::cat(
            &[path_probs(&[3, 3, 0, 3], c), path_probs(&[0, 5, 0, 0], c)],
            1,
        );
        assert_eq!(greedy_decode(&batch, &a), ["44", "6"]);
        let empty = Tensor::zeros([0, 2, c], (Kind::Float, Device::Cpu));
        assert_eq!(greedy_decode(&empty, &a), ["", ""]);
    }

    #[test]
    fn text_encoding_round_trips() {
        let a = alpha();
        for text in ["226md", "yxwpn", "22222", ""] {
            let e = a.encode(text).unwrap();
            assert_eq!(a.decode(&e), text);
        }
        let (t, lens) = encode_targets(&["226md".into(), "bc".into()], &a).unwrap();
        assert_eq!(t.size(), [2, 5]);
        let row0: Vec<i64> = Vec::try_from(t.get(0)).unwrap();
        let back: Vec<i64> = row0.iter().map(|k| k - 1).collect();
        assert_eq!(a.decode(&back), "226md");
        assert_eq!(Vec::<i64>::try_from(t.get(1)).unwrap(), [8, 9, 0, 0, 0]);
        assert_eq!(Vec::<i64>::try_from(lens).unwrap(), [5, 2]);
        let e = encode_targets(&["22a5n".into()], &a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'a' is not in the alphabet"), "{e}");
    }

    #[test]
    fn char_accuracy_edge_cases() {
        assert_eq!(char_accuracy("abcde", "abcde"), 1.0);
        assert_eq!(char_accuracy("abcdx", "abcde"), 0.8);
        assert_eq!(char_accuracy("", ""), 1.0);
        assert_eq!(char_accuracy("", "abcde"), 0.0);
        assert_eq!(char_accuracy("abcde", ""), 0.0);
        // A missing or extra character costs its position and shifts nothing back.
        assert_eq!(char_accuracy("abcd", "abcde"), 0.8);
        assert_eq!(char_accuracy("abcdef", "abcde"), 5.0 / 6.0);
        assert_eq!(char_accuracy("bcde", "abcde"), 0.0);
        let r = OcrReport::score(&["ab".into(), "cd".into()], &["ab".into(), "ce".into()]);
        assert_eq!((r.word_acc, r.char_acc, r.n_heldout), (0.5, 0.75, 2));
    }

    #[test]
    fn split_is_fixed() {
        let (t, v) = captcha_split(1040);
        assert_eq!((t.len(), v.len()), (936, 104));
        assert_eq!(captcha_split(1040), (t.clone(), v.clone()));
        assert!(v.iter().all(|i| t.binary_search(i).is_err()));
    }

    #[test]
    fn wrong_shape_cache_names_the_file() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let a = alpha();
        let small = OcrConfig::for_profile(Profile::Smoke);
        let dir = std::env::temp_dir().join(format!("hw4-ocr-{}", std::process::id()));
        let path = dir.join("ocr-small.safetensors");
        Ocr::new(Device::Cpu, &a, small.clone())
            .unwrap()
            .save(&path)
            .unwrap();
        let other = OcrConfig {
            hidden: 24,
            ..small.clone()
        };
        let e = Ocr::load(&path, Device::Cpu, &a, other)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("has shape"), "{e}");
        // Another alphabet changes the head's shape too.
        let e = Ocr::load(&path, Device::Cpu, &Alphabet::new("abc"), small.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tensor 'ocr.head."), "{e}");
        assert!(Ocr::load(&path, Device::Cpu, &a, small).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let cfg = OcrConfig {
            height: 30,
            ..Default::default()
        };
        let e = Ocr::new(Device::Cpu, &alpha(), cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("multiple of 8"), "{e}");
    }

    #[test]
    fn training_is_seeded_and_reads_any_size() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let a = alpha();
        let labels: Vec<String> = ["226md", "22d5n", "2356g", "23n88"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let images = Tensor::rand([4, 1, 50, 200], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let cfg = OcrConfig {
            steps: 3,
            batch_size: 2,
            ..OcrConfig::for_profile(Profile::Smoke)
        };
        let x = resize(&images, cfg.height, cfg.width);
        let threads = tch::get_num_threads();
        let one = Ocr::train_on(Device::Cpu, &x, &labels, &a, cfg.clone()).unwrap();
        assert_eq!(tch::get_num_threads(), threads);
        let two = Ocr::train_on(Device::Cpu, &x, &labels, &a, cfg.clone()).unwrap();
        let (v1, v2) = (one.vs.variables(), two.vs.variables());
        assert!(!v1.is_empty());
        for (k, t) in &v1 {
            assert!(t.equal(&v2[k]), "{k} differs between two seeded runs");
        }
        let lp = one.log_probs(&images);
        assert_eq!(lp.size(), [cfg.seq_len(), 4, a.len() as i64 + 1]);
        assert_eq!(one.read(&images.narrow(3, 0, 100)).len(), 4);
        let key = |cfg: &OcrConfig, x: &Tensor| cache_file(cfg, &a, x, &labels).unwrap();
        let k1 = key(&cfg, &x);
        let k2 = key(
            &OcrConfig {
                seed: 1,
                ..cfg.clone()
            },
            &x,
        );
        let k3 = key(&cfg, &(&x * 0.5));
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        assert_eq!(k1, key(&cfg, &x));
    }
}
