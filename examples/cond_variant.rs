//! A development tool: trains part 2's conditional DDPM of notebooks/DDPM.ipynb (its items,
//! included from `OUT_DIR/nb_DDPM_items.rs`) at the cpu profile with one design switch, and
//! reads DDIM-50 samples of unseen texts with both readers, as the notebook's evaluation
//! does, on more texts. Variants run side by side, one process (and one thread) each:
//!
//! ```sh
//! HW4_PROFILE=cpu HW4_THREADS=1 HW4_OUTPUT_DIR=/tmp/v/base cargo run --example cond_variant -- base
//! ```
//! A variant is a switch in the notebook's `CondConfig` (or `CondTrainConfig`) and an arm in
//! the `match` below; the README's development notes list the variants tried this way.
//! The readers load from `$HW4_OUTPUT_DIR/eval/` (copy a trained cache there first, or
//! they train). One JSON line per guidance scale on stdout.
//!
//! `RERANK=k` (k > 1) also draws k samples per text and keeps the one a glyph classifier
//! (neither reader: `GlyphClassifier` below, trained on the real training captchas' glyphs)
//! finds most likely to show the requested text, and reads those too (generate-then-rerank,
//! as DALL-E reranks with CLIP: Ramesh et al. 2021).
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_DDPM_items.rs"));

fn main() -> Result<()> {
    let variant = std::env::args().nth(1).unwrap_or_else(|| "base".into());
    let n_texts: usize = std::env::var("N_TEXTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let s = Session::from_env("DDPM")?;
    let device = s.device;
    let (img_h, img_w) = image_size(s.profile);
    let captchas = data::load_captchas_opts(&data::CaptchaOpts {
        transform,
        ..data::CaptchaOpts::size(img_h, img_w, FilterType::Triangle)
    })?;
    let (train_idx, valid_idx) = data::captcha_split(captchas.len());
    let captchas_full = data::load_captchas_opts(&data::CaptchaOpts {
        transform,
        ..data::CaptchaOpts::size(50, 200, FilterType::Triangle)
    })?;
    // Cells "The captchas' font" and the hyper-parameters, as in the notebook.
    let cond_all = captchas.images.shallow_clone();
    let (cond_h, cond_w) = (img_h, img_w);
    let alphabet = captchas.alphabet.clone();
    let vocab = alphabet.len() as i64;
    let all_codes = alphabet.encode_all(&captchas.labels)?;
    let font_cfg = {
        let px = |v: i64| ((v * cond_w) as f64 / 200.0).round() as i64;
        let d = data::font::FontFitConfig::default();
        data::font::FontFitConfig {
            glyph_width: px(d.glyph_width),
            margin: px(d.margin),
            start: px(d.start),
            advance: px(d.advance),
            search: px(d.search),
            first_extra: px(d.first_extra),
            ..d
        }
    };
    let font = data::font::FittedFont::fit(&cond_all, &all_codes, vocab, &train_idx, font_cfg)?;
    let cond_rows = Tensor::from_slice(&train_idx);
    let cond_images = cond_all.index_select(0, &cond_rows);
    let cond_labels: Vec<String> = train_idx
        .iter()
        .map(|&i| captchas.labels[i as usize].clone())
        .collect();
    let cond_train = {
        let codes = font.codes.index_select(0, &cond_rows);
        TextCondition {
            template: font.render(
                &codes,
                &font.origins.index_select(0, &cond_rows),
                cond_h,
                cond_w,
            ),
            codes,
        }
    };
    let (cond_cfg, train) = (CondConfig::cpu(), CondTrainConfig::cpu());
    let cond_cfg = match variant.as_str() {
        "selfcond" => CondConfig {
            self_cond: true,
            ..cond_cfg
        },
        _ => cond_cfg,
    };
    let cond_train_cfg = match variant.as_str() {
        "base" | "selfcond" => train,
        "plainloss" => CondTrainConfig {
            min_snr_gamma: None,
            ..train
        },
        "epochs72" => CondTrainConfig {
            epochs: 72,
            ..train
        },
        "ema999" => CondTrainConfig {
            ema_decay: 0.999,
            ..train
        },
        v => {
            return Err(Error::msg(format!(
                "unknown variant {v:?}: base, epochs72, ema999, selfcond, plainloss"
            )))
        }
    };
    let cond_steps = cond_train_cfg.epochs * cond_labels.len().div_ceil(cond_train_cfg.batch_size);
    let cond_lr = WarmupCosine {
        peak_lr: cond_train_cfg.lr,
        final_lr: cond_train_cfg.lr * 0.05,
        warmup_steps: cond_train_cfg.warmup_steps,
        total_steps: cond_steps,
    };
    eprintln!("{variant}: {cond_cfg:?}, {cond_steps} steps");

    s.seed(72);
    let t0 = Instant::now();
    let mut cond = CondDdpm::new(
        [1, cond_h, cond_w],
        &alphabet,
        font,
        cond_cfg,
        cond_train_cfg,
        device,
    )?;
    let history = cond.train(&s, &cond_images, &cond_train, &cond_lr, 720)?;
    let train_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "{variant}: trained in {train_s:.1} s, final loss {:.4}, {} parameters",
        history.epoch_loss.last().unwrap(),
        n_params(&cond.vs)
    );

    // The readers after the training, so that a variant can start while they train elsewhere.
    let (ocr, _) = eval::ocr::Ocr::load_or_train(
        &s,
        &captchas,
        &train_idx,
        &valid_idx,
        eval::ocr::OcrConfig::for_profile(s.profile),
    )?;
    let (reader, _) = eval::reader::SlotReader::load_or_train(
        &s,
        &captchas_full,
        &train_idx,
        &valid_idx,
        eval::reader::SlotReaderConfig::for_profile(s.profile),
    )?;

    // Unseen texts (not the notebook's: another seed), one donor each.
    let mut rng = s.seed(9_074);
    let known: std::collections::HashSet<String> = captchas.labels.iter().cloned().collect();
    let symbols = alphabet.chars().to_vec();
    let mut texts: Vec<String> = Vec::new();
    while texts.len() < n_texts {
        let text: String = (0..5)
            .map(|_| symbols[rng.random_range(0..symbols.len())])
            .collect();
        if !known.contains(&text) && !texts.contains(&text) {
            texts.push(text);
        }
    }
    let donors = draw_donors(&mut rng, &train_idx, n_texts);
    // Guidance scales, `GUIDANCE=2,4` by default.
    let scales: Vec<f64> = std::env::var("GUIDANCE")
        .unwrap_or_else(|_| "2,4".into())
        .split(',')
        .map(|w| {
            w.trim()
                .parse()
                .map_err(|_| Error::msg(format!("GUIDANCE: {w:?} is not a number")))
        })
        .collect::<Result<_>>()?;
    let rerank: usize = std::env::var("RERANK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let clf = if rerank > 1 {
        s.seed(711);
        let t0 = Instant::now();
        let (clf, acc) =
            GlyphClassifier::train(&cond_all, &cond.font, vocab, &train_idx, &valid_idx, device)?;
        eprintln!(
            "{variant}: glyph classifier {acc:.4} on held-out glyphs, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        Some(clf)
    } else {
        None
    };
    let codes = alphabet.encode_all(&texts)?;
    let origins = cond.font.layout_like(&codes, &Tensor::from_slice(&donors));
    for w in scales {
        let _ = s.seed(76);
        let t0 = Instant::now();
        let images = cond.generate(&texts, &donors, &vec![w; n_texts], Some(50), 128)?;
        let r = read_both(&ocr, &reader, &images, &texts)?;
        if let Some(clf) = &clf {
            let mut cands = vec![images.shallow_clone()];
            for _ in 1..rerank {
                cands.push(cond.generate(&texts, &donors, &vec![w; n_texts], Some(50), 128)?);
            }
            let scores: Vec<Tensor> = cands
                .iter()
                .map(|c| clf.log_prob(c, &origins, &codes))
                .collect();
            let mut picked = images.shallow_clone();
            for kk in 2..=rerank {
                let best = Tensor::stack(&scores[..kk], 1).argmax(1, false);
                let rows = Tensor::arange(n_texts as i64, (Kind::Int64, best.device()));
                picked =
                    Tensor::stack(&cands[..kk], 1).index(&[Some(rows), Some(best.shallow_clone())]);
                let rr = read_both(&ocr, &reader, &picked, &texts)?;
                let changed = best.ne(0).sum(Kind::Int64).int64_value(&[]);
                println!(
                    "{{\"variant\": \"{variant}\", \"w\": {w}, \"n\": {n_texts}, \"rerank\": {kk}, \"raw_ocr_exact\": {:.4}, \"raw_slot_exact\": {:.4}, \"ocr_exact\": {:.4}, \"ocr_char\": {:.4}, \"slot_exact\": {:.4}, \"slot_char\": {:.4}, \"picked_not_first\": {changed}}}",
                    r.ocr_score.word_acc, r.slot_score.word_acc, rr.ocr_score.word_acc, rr.ocr_score.char_acc, rr.slot_score.word_acc, rr.slot_score.char_acc
                );
                eprintln!(
                    "{variant} w={w} rerank {kk}: {} ({:.1} s)",
                    rr.line(),
                    t0.elapsed().as_secs_f64()
                );
            }
            show::images(
                &s,
                &format!("rerank_{variant}_w{w}"),
                &Tensor::cat(&[images.narrow(0, 0, 24), picked.narrow(0, 0, 24)], 0),
                &ImageOpts {
                    ncol: 4,
                    ..ImageOpts::signed()
                },
            )?;
            continue;
        }
        println!(
            "{{\"variant\": \"{variant}\", \"w\": {w}, \"n\": {n_texts}, \"ocr_exact\": {:.4}, \"ocr_char\": {:.4}, \"slot_exact\": {:.4}, \"slot_char\": {:.4}, \"train_s\": {train_s:.1}, \"final_loss\": {:.5}}}",
            r.ocr_score.word_acc, r.ocr_score.char_acc, r.slot_score.word_acc, r.slot_score.char_acc, history.epoch_loss.last().unwrap()
        );
        eprintln!(
            "{variant} w={w}: {} ({:.1} s)",
            r.line(),
            t0.elapsed().as_secs_f64()
        );
        if w == 4.0 {
            show::images(
                &s,
                &format!("variant_{variant}"),
                &images.narrow(0, 0, 24),
                &ImageOpts {
                    ncol: 4,
                    ..ImageOpts::signed()
                },
            )?;
        }
    }
    Ok(())
}

/// The glyph boxes `[B * L, 1, H, width]` of `images` `[B, 1, H, W]` (ink dark, background 1
/// outside the image) whose columns start `margin` left of `origins` `[B, L]`.
fn glyph_boxes(images: &Tensor, origins: &Tensor, margin: i64, width: i64) -> Tensor {
    let (b, _, h, w) = images.size4().expect("images [B, 1, H, W]");
    let l = origins.size()[1];
    let padded = (images - 1.0).constant_pad_nd([width, width]) + 1.0;
    let cols = (origins.to_device(images.device()) - margin + width).unsqueeze(2)
        + Tensor::arange(width, (Kind::Int64, images.device())).view([1, 1, width]);
    let cols = cols
        .clamp(0, w + 2 * width - 1)
        .unsqueeze(2)
        .expand([b, l, h, width], false);
    padded
        .expand([b, l, h, w + 2 * width], false)
        .gather(3, &cols, false)
        .reshape([b * l, 1, h, width])
}

/// Reads the character in one glyph box: three 3x3 convolutions with 2x2 max pooling and a
/// linear layer over the vocabulary (the classifier of the text-perceptual loss tried in
/// commit 54c5f0b).
struct GlyphClassifier {
    vs: nn::VarStore,
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    conv3: nn::Conv2D,
    fc: nn::Linear,
    margin: i64,
    width: i64,
}

impl GlyphClassifier {
    fn new(device: Device, vocab: i64, height: i64, margin: i64, width: i64) -> Self {
        let vs = nn::VarStore::new(device);
        let p = vs.root();
        let fc_in = 64 * (height / 8) * (width / 8);
        GlyphClassifier {
            conv1: conv3x3(&p / "conv1", 1, 16, 1),
            conv2: conv3x3(&p / "conv2", 16, 32, 1),
            conv3: conv3x3(&p / "conv3", 32, 64, 1),
            fc: nn::linear(&p / "fc", fc_in, vocab, init::torch_linear(fc_in)),
            margin,
            width,
            vs,
        }
    }

    /// Logits `[B * L, V]` of the glyphs of `images` at `origins` `[B, L]`.
    fn read(&self, images: &Tensor, origins: &Tensor) -> Tensor {
        glyph_boxes(images, origins, self.margin, self.width)
            .apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv3)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc)
    }

    /// Sum over the glyphs of each image of the log-probability of its requested character
    /// `codes` `[B, L]`: `[B]`.
    fn log_prob(&self, images: &Tensor, origins: &Tensor, codes: &Tensor) -> Tensor {
        let (b, l) = codes.size2().expect("codes [B, L]");
        tch::no_grad(|| {
            self.read(images, origins)
                .log_softmax(1, Kind::Float)
                .gather(1, &codes.to_device(images.device()).view([-1, 1]), false)
                .view([b, l])
                .sum_dim_intlist(1, false, Kind::Float)
        })
    }

    /// Trains 400 steps on the glyphs of the real captchas `rows` of `images` at the font's
    /// fitted origins (shifted by up to 2 pixels, Gaussian noise of a random strength up to
    /// 0.3), freezes it and returns it with its glyph accuracy on `heldout`.
    fn train(
        images: &Tensor,
        font: &data::font::FittedFont,
        vocab: i64,
        rows: &[i64],
        heldout: &[i64],
        device: Device,
    ) -> Result<(GlyphClassifier, f64)> {
        let (_, _, h, _) = images.size4()?;
        let batch = 32;
        let mut clf = GlyphClassifier::new(device, vocab, h, font.cfg.margin, font.cfg.glyph_width);
        let mut opt = optim::Adam::new(&clf.vs, nn::Adam::default(), 2e-3);
        let rows_t = Tensor::from_slice(rows);
        for _ in 0..400 {
            let pick = rows_t.index_select(
                0,
                &Tensor::randint(rows.len() as i64, [batch], (Kind::Int64, Device::Cpu)),
            );
            let x = images.index_select(0, &pick).to_device(device);
            let x =
                &x + x.randn_like() * Tensor::rand([batch, 1, 1, 1], (Kind::Float, device)) * 0.3;
            let origins = font.origins.index_select(0, &pick).to_device(device);
            let origins =
                &origins + Tensor::randint_low(-2, 3, origins.size(), (Kind::Int64, device));
            let target = font
                .codes
                .index_select(0, &pick)
                .to_device(device)
                .flatten(0, 1);
            let loss = clf.read(&x, &origins).cross_entropy_for_logits(&target);
            opt.backward_step(&loss);
        }
        clf.vs.freeze();
        let held = Tensor::from_slice(heldout);
        let acc = tch::no_grad(|| {
            let logits = clf.read(
                &images.index_select(0, &held).to_device(device),
                &font.origins.index_select(0, &held).to_device(device),
            );
            let target = font
                .codes
                .index_select(0, &held)
                .to_device(device)
                .flatten(0, 1);
            logits
                .argmax(1, false)
                .eq_tensor(&target)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[])
        });
        Ok((clf, acc))
    }
}
