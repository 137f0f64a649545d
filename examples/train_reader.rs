//! Trains (or loads from its cache) the slot reader of `hw4::eval::reader` and reports
//! its accuracy on the held-out captchas at 50x200, and on the same captchas first
//! brought down to 32x128 (the DDPM's size), which is how it reads generated samples.
//! Gaussian noise images show how unsure it is on what is not a captcha.
//!
//! ```sh
//! HW4_PROFILE=cpu cargo run --release --example train_reader                # load or train
//! HW4_PROFILE=cpu cargo run --release --example train_reader -- --retrain   # train afresh
//! ```
//! Metrics land in `outputs/train_reader/metrics.json`.

use hw4::eval::ocr::{self, OcrReport};
use hw4::eval::reader::{SlotReader, SlotReaderConfig};
use hw4::image::imageops::FilterType;
use hw4::prelude::*;

fn main() -> Result<()> {
    let retrain = std::env::args().skip(1).any(|a| a == "--retrain");
    let s = Session::start("train_reader")?;
    let data = data::load_captchas(50, 200, FilterType::Triangle)?;
    let (train, heldout) = ocr::captcha_split(data.len());
    let cfg = SlotReaderConfig::for_profile(s.profile);
    println!("{cfg:?}");
    let path = SlotReader::cache_path(&data, &train, &cfg)?;
    if retrain && path.exists() {
        std::fs::remove_file(&path)?;
    }
    let (reader, report) = SlotReader::load_or_train(&s, &data, &train, &heldout, cfg)?;
    println!("{report}");
    let fit = reader.evaluate(&data, &train)?;
    println!(
        "training split ({}): word accuracy {:.4}, character accuracy {:.4}",
        fit.heldout.n_heldout, fit.heldout.word_acc, fit.heldout.char_acc
    );
    let images = data.images.index_select(0, &Tensor::from_slice(&heldout));
    let truths: Vec<String> = heldout
        .iter()
        .map(|&i| data.labels[i as usize].clone())
        .collect();
    for (h, w) in [(32, 128), (16, 64)] {
        let small = images.upsample_bilinear2d([h, w], false, None, None);
        let (reads, conf) = reader.read_with_confidence(&small)?;
        let r = OcrReport::score(&reads, &truths);
        let c = conf.iter().sum::<f64>() / conf.len() as f64;
        println!(
            "held-out at {h}x{w}: word accuracy {:.4}, character accuracy {:.4}, mean slot confidence {c:.3}",
            r.word_acc, r.char_acc
        );
        metrics::record_f64(&s, &format!("reader.heldout_{h}x{w}.word_acc"), r.word_acc)?;
    }
    s.seed(1);
    let noise = images.randn_like().clamp(-1.0, 1.0);
    let sp = reader.slot_probabilities(&noise)?;
    let (conf, sure) = (
        sp.mean(Kind::Float).double_value(&[]),
        sp.min_dim(1, false)
            .0
            .ge(0.5)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]),
    );
    println!("Gaussian noise: mean slot confidence {conf:.3}, all five slots >= 0.5 in {sure:.3}");
    let real = reader.slot_probabilities(&images)?;
    let real_sure = real
        .min_dim(1, false)
        .0
        .ge(0.5)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    println!("held-out: all five slots >= 0.5 in {real_sure:.3}");
    let (reads, _) = reader.read_with_confidence(&images)?;
    for (t, r) in truths.iter().zip(&reads) {
        if t != r {
            println!("misread: {t} -> {r}");
        }
    }
    metrics::record_f64(&s, "reader.heldout.word_acc", report.heldout.word_acc)?;
    metrics::record_f64(&s, "reader.heldout.char_acc", report.heldout.char_acc)?;
    metrics::record_f64(&s, "reader.noise.confidence", conf)?;
    if let Some(t) = reader.train_seconds() {
        eprintln!("slot reader: training took {t:.1} s");
    }
    Ok(())
}
