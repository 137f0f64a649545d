//! The captcha OCR's cache: trains once, loads the same weights afterwards, keys the
//! file by configuration, refuses to train with `HW4_TRAIN=0`, and names the file
//! when it cannot be read. Uses the smoke configuration (a few steps) on whatever
//! captcha set the loader finds, with outputs in a temporary folder.

use hw4::data;
use hw4::eval::ocr::{self, Ocr, OcrConfig};
use hw4::image::imageops::FilterType;
use hw4::tch::{Kind, Tensor};
use hw4::{Profile, Session};

#[test]
fn cache_round_trip_and_errors() {
    let out = std::env::temp_dir().join(format!("hw4-ocr-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // One test in this binary, so setting the environment races with nothing.
    std::env::set_var("HW4_OUTPUT_DIR", &out);
    std::env::set_var("HW4_DEVICE", "cpu");
    std::env::set_var("HW4_PROFILE", "smoke");
    std::env::remove_var("HW4_TRAIN");
    let s = Session::from_env("ocr_test").unwrap();
    let data = data::load_captchas(16, 64, FilterType::Triangle).unwrap();
    let (train, heldout) = ocr::captcha_split(data.len());
    let cfg = OcrConfig::for_profile(Profile::Smoke);

    let path = Ocr::cache_path(&data, &train, &cfg).unwrap();
    assert!(path.starts_with(out.join("eval")), "{}", path.display());
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("ocr-") && name.ends_with(".safetensors"),
        "{name}"
    );
    assert!(!path.exists());

    let (a, ra) = Ocr::load_or_train(&s, &data, &train, &heldout, cfg.clone()).unwrap();
    assert!(path.exists());
    assert!(a.train_seconds().is_some());
    assert_eq!(ra.n_heldout, heldout.len());
    assert!((0.0..=1.0).contains(&ra.word_acc) && (0.0..=1.0).contains(&ra.char_acc));
    let after_train = Tensor::rand([3], (Kind::Float, hw4::tch::Device::Cpu));

    let (b, rb) = Ocr::load_or_train(&s, &data, &train, &heldout, cfg.clone()).unwrap();
    assert!(
        b.train_seconds().is_none(),
        "the second call must load the cache"
    );
    assert_eq!(ra, rb);
    let after_load = Tensor::rand([3], (Kind::Float, hw4::tch::Device::Cpu));
    assert!(
        after_train.equal(&after_load),
        "LibTorch's generator is left the same"
    );
    let x = data.images.narrow(0, 0, 8);
    assert!(a.log_probs(&x).equal(&b.log_probs(&x)));
    // Any input size is resized to the OCR's.
    let big = x.upsample_bilinear2d([50, 200], false, None, None);
    assert_eq!(b.read(&big).len(), 8);

    // Another seed is another file; with HW4_TRAIN=0 it is not trained.
    let other = OcrConfig {
        seed: 7,
        ..cfg.clone()
    };
    assert_ne!(Ocr::cache_path(&data, &train, &other).unwrap(), path);
    std::env::set_var("HW4_TRAIN", "0");
    let e = Ocr::load_or_train(&s, &data, &train, &heldout, other)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("HW4_TRAIN=0 but there are no cached OCR weights"),
        "{e}"
    );
    std::env::remove_var("HW4_TRAIN");

    // Held-out images must not be trained on.
    let e = Ocr::load_or_train(&s, &data, &train, &train[..3], cfg.clone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 held-out indices are also training indices"),
        "{e}"
    );

    // A damaged cache file is an error that names it.
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let e = Ocr::load_or_train(&s, &data, &train, &heldout, cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("not a readable safetensors file"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}
