//! Trains (or loads from its cache) the captcha OCR of `hw4::eval::ocr` and reports
//! its accuracy on the held-out captchas.
//!
//! ```sh
//! HW4_PROFILE=cpu cargo run --example train_ocr                 # load or train
//! HW4_PROFILE=cpu cargo run --example train_ocr -- --retrain    # train afresh
//! cargo run --example train_ocr -- --size 32x128                # load captchas at HxW
//! ```
//! Metrics land in `outputs/train_ocr/metrics.json`.

use hw4::eval::ocr::{self, Ocr, OcrConfig};
use hw4::image::imageops::FilterType;
use hw4::prelude::*;

fn main() -> Result<()> {
    // Two flags parsed by hand: `clap` (what candle's examples use) is not among this
    // project's pinned dependencies, and adding it (and its own dependencies) to the
    // lock file for two flags would cost more than these lines.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let retrain = args.iter().any(|a| a == "--retrain");
    let (h, w) = match args.iter().position(|a| a == "--size") {
        Some(i) => {
            let v = args.get(i + 1).map(String::as_str).unwrap_or("");
            let (h, w) = v
                .split_once('x')
                .ok_or_else(|| Error::msg(format!("--size {v:?}: expected HxW, e.g. 50x200")))?;
            (h.parse::<i64>()?, w.parse::<i64>()?)
        }
        None => (50, 200),
    };
    let s = Session::start("train_ocr")?;
    let data = data::load_captchas(h, w, FilterType::Triangle)?;
    let (train, heldout) = ocr::captcha_split(data.len());
    let cfg = OcrConfig::for_profile(s.profile);
    println!("{cfg:?}");
    let path = Ocr::cache_path(&data, &train, &cfg)?;
    if retrain && path.exists() {
        std::fs::remove_file(&path)?;
    }
    let (ocr, report) = Ocr::load_or_train(&s, &data, &train, &heldout, cfg)?;
    println!("{report}");
    let fit = ocr.evaluate(&data, &train)?;
    println!(
        "training split ({}): word accuracy {:.4}, character accuracy {:.4}",
        fit.n_heldout, fit.word_acc, fit.char_acc
    );
    let images = data.images.index_select(0, &Tensor::from_slice(&heldout));
    let reads = ocr.read(&images);
    for (&i, r) in heldout.iter().zip(&reads) {
        let truth = &data.labels[i as usize];
        if r != truth {
            println!("misread: {truth} -> {r}");
        }
    }
    metrics::record_f64(&s, "ocr.heldout.word_acc", report.word_acc)?;
    metrics::record_f64(&s, "ocr.heldout.char_acc", report.char_acc)?;
    metrics::record_f64(&s, "ocr.train.word_acc", fit.word_acc)?;
    if let Some(t) = ocr.train_seconds() {
        eprintln!("ocr: training took {t:.1} s");
        metrics::record_f64(&s, "time.ocr_train_s", t)?;
    }
    eprintln!("ocr weights: {}", data::show_path(&path));
    Ok(())
}
