//! Trains the DDPM notebook's captcha readers into their weight cache (`outputs/eval/`)
//! and exits: the OCR at the notebook's image size and the slot reader at the real
//! 50x200, on the same split. The notebook's readers cell starts it in the background for
//! the slot reader (`hw4::eval::background::ReaderJob`) while it trains the OCR itself,
//! then loads what it wrote.
//!
//! ```sh
//! HW4_PROFILE=cpu cargo run --example train_readers -- --ocr-size 32x128
//! ```
//! `--expect FILE` (repeatable): the cache file of a reader the notebook will load; only
//! those readers are trained (without `--expect`, both). The program stops with an error
//! if a FILE is not one it writes.

use hw4::eval::ocr::{Ocr, OcrConfig};
use hw4::eval::reader::{SlotReader, SlotReaderConfig};
use hw4::image::imageops::FilterType;
use hw4::prelude::*;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    };
    let size = value("--ocr-size")
        .pop()
        .ok_or_else(|| Error::msg("--ocr-size HxW is required, e.g. --ocr-size 32x128"))?;
    let (h, w) = size
        .split_once('x')
        .and_then(|(h, w)| Some((h.parse::<i64>().ok()?, w.parse::<i64>().ok()?)))
        .ok_or_else(|| Error::msg(format!("--ocr-size {size:?}: expected HxW, e.g. 32x128")))?;
    let notebook = value("--notebook").pop().unwrap_or_else(|| "DDPM".into());
    let expect: Vec<PathBuf> = value("--expect").into_iter().map(PathBuf::from).collect();
    let s = Session::from_env(&notebook)?;
    let t0 = std::time::Instant::now();

    let captchas = data::load_captchas(h, w, FilterType::Triangle)?;
    let (train, heldout) = data::captcha_split(captchas.len());
    let ocr_cfg = OcrConfig::for_profile(s.profile);
    let full = data::load_captchas(50, 200, FilterType::Triangle)?;
    let reader_cfg = SlotReaderConfig::for_profile(s.profile);
    let paths = [
        Ocr::cache_path(&captchas, &train, &ocr_cfg)?,
        SlotReader::cache_path(&full, &train, &reader_cfg)?,
    ];
    if let Some(other) = expect.iter().find(|e| !paths.contains(e)) {
        return Err(Error::msg(format!(
            "the readers' cache files here are {paths:?}, the notebook expects {other:?}: \
             is this program built from the same sources?"
        )));
    }
    let wanted = |p: &PathBuf| expect.is_empty() || expect.contains(p);
    if wanted(&paths[0]) {
        let (_, report) = Ocr::load_or_train(&s, &captchas, &train, &heldout, ocr_cfg)?;
        println!("OCR: {report}");
    }
    if wanted(&paths[1]) {
        let (_, report) = SlotReader::load_or_train(&s, &full, &train, &heldout, reader_cfg)?;
        println!("slot reader: {report}");
    }
    eprintln!("readers ready in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
