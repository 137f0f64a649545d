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
    for w in scales {
        let _ = s.seed(76);
        let t0 = Instant::now();
        let images = cond.generate(&texts, &donors, &vec![w; n_texts], Some(50), 128)?;
        let r = read_both(&ocr, &reader, &images, &texts)?;
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
