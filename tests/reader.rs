//! The slot reader's cache and its behaviour on real captchas: trains once, loads the same
//! weights afterwards, keys the file by configuration, refuses to train with
//! `HW4_TRAIN=0`, names a damaged file; and a short training on the captcha set already
//! reads held-out captchas far better than chance and is less sure on blank and
//! blurred non-captchas than on captchas. Outputs go to a temporary folder.

use hw4::data;
use hw4::eval::reader::{SlotReader, SlotReaderConfig};
use hw4::image::imageops::FilterType;
use hw4::tch::{Device, Kind, Tensor};
use hw4::{Profile, Session};

#[test]
fn cache_round_trip_accuracy_and_errors() {
    let out = std::env::temp_dir().join(format!("hw4-reader-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // One test in this binary, so setting the environment races with nothing.
    std::env::set_var("HW4_OUTPUT_DIR", &out);
    std::env::set_var("HW4_DEVICE", "cpu");
    std::env::set_var("HW4_PROFILE", "smoke");
    std::env::remove_var("HW4_TRAIN");
    let s = Session::from_env("reader_test").unwrap();
    let data = data::load_captchas(50, 200, FilterType::Triangle).unwrap();
    let (train, heldout) = data::captcha_split(data.len());
    // Small but real: the cpu profile's network for 400 of its 1500 steps (about 14
    // epochs; the smoke profile's network learns too little to test in this time).
    let cfg = SlotReaderConfig {
        steps: 400,
        ..SlotReaderConfig::for_profile(Profile::Cpu)
    };

    let path = SlotReader::cache_path(&data, &train, &cfg).unwrap();
    assert!(path.starts_with(out.join("eval")), "{}", path.display());
    assert!(!path.exists());
    let (a, ra) = SlotReader::load_or_train(&s, &data, &train, &heldout, cfg.clone()).unwrap();
    assert!(path.exists());
    assert!(a.train_seconds().is_some());
    assert_eq!(ra.heldout.n_heldout, heldout.len());
    // Chance is 1/19 per character; these 400 steps reach about 0.4.
    assert!(
        ra.heldout.char_acc > 0.3,
        "held-out character accuracy {}",
        ra.heldout.char_acc
    );
    let after_train = Tensor::rand([3], (Kind::Float, Device::Cpu));

    let (b, rb) = SlotReader::load_or_train(&s, &data, &train, &heldout, cfg.clone()).unwrap();
    assert!(
        b.train_seconds().is_none(),
        "the second call must load the cache"
    );
    assert_eq!(ra, rb);
    let after_load = Tensor::rand([3], (Kind::Float, Device::Cpu));
    assert!(
        after_train.equal(&after_load),
        "LibTorch's generator is left the same"
    );

    // Smaller images are read upsampled, and the kinds of non-captcha the reader is
    // trained to be unsure on (a blank background, a captcha blurred beyond reading),
    // drawn afresh here, are read with less confidence than the captchas themselves.
    let x = data
        .images
        .index_select(0, &Tensor::from_slice(&heldout[..32]));
    let small = x.upsample_bilinear2d([32, 128], false, None, None);
    assert_eq!(b.read(&small).unwrap().len(), 32);
    let conf = |t: &Tensor| {
        b.slot_probabilities(t)
            .unwrap()
            .mean(Kind::Float)
            .double_value(&[])
    };
    let (h, w) = (x.size()[2], x.size()[3]);
    let blank = (x.mean_dim([2i64, 3].as_slice(), true, Kind::Float) + x.randn_like() * 0.05)
        .clamp(-1.0, 1.0);
    let blurred = x
        .internal_upsample_bilinear2d_aa([3, 12], false, None, None)
        .internal_upsample_bilinear2d_aa([h, w], false, None, None);
    let c = conf(&x);
    for (name, t) in [("blank", &blank), ("blurred", &blurred)] {
        let ct = conf(t);
        eprintln!("mean slot confidence: {name} {ct:.3}, captchas {c:.3}");
        assert!(ct < c, "{name} {ct} vs captchas {c}");
    }

    // Another configuration is another file; with HW4_TRAIN=0 it is not trained.
    let other = SlotReaderConfig {
        seed: 7,
        ..cfg.clone()
    };
    assert_ne!(SlotReader::cache_path(&data, &train, &other).unwrap(), path);
    std::env::set_var("HW4_TRAIN", "0");
    let e = SlotReader::load_or_train(&s, &data, &train, &heldout, other)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("HW4_TRAIN=0 but there are no cached slot reader weights"),
        "{e}"
    );
    std::env::remove_var("HW4_TRAIN");

    let e = SlotReader::load_or_train(&s, &data, &train, &train[..3], cfg.clone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 held-out indices are also training indices"),
        "{e}"
    );

    std::fs::write(&path, b"not a safetensors file").unwrap();
    let e = SlotReader::load_or_train(&s, &data, &train, &heldout, cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}
