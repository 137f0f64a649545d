//! The readers' background training (`hw4::eval::background`, `examples/train_readers.rs`):
//! the child process writes byte for byte the weights the readers cell would train
//! itself, and only the readers whose cache files it is given; a child that computes
//! other cache files than the notebook expects fails with a line naming its log (the
//! cell then trains the readers); nothing starts when the caches exist or with
//! `HW4_TRAIN=0`. Outputs go to a temporary folder.

use hw4::data;
use hw4::eval::background::ReaderJob;
use hw4::eval::ocr::{Ocr, OcrConfig};
use hw4::eval::reader::{SlotReader, SlotReaderConfig};
use hw4::image::imageops::FilterType;
use hw4::{Profile, Session};
use std::path::PathBuf;
use std::process::Command;

fn caches(size: (i64, i64)) -> [PathBuf; 2] {
    let small = data::load_captchas(size.0, size.1, FilterType::Triangle).unwrap();
    let full = data::load_captchas(50, 200, FilterType::Triangle).unwrap();
    let (train, _) = data::captcha_split(small.len());
    [
        Ocr::cache_path(&small, &train, &OcrConfig::for_profile(Profile::Smoke)).unwrap(),
        SlotReader::cache_path(
            &full,
            &train,
            &SlotReaderConfig::for_profile(Profile::Smoke),
        )
        .unwrap(),
    ]
}

#[test]
fn child_trains_the_same_weights_or_says_why_not() {
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "train_readers"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let root = std::env::temp_dir().join(format!("hw4-background-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (child_out, cell_out) = (root.join("child"), root.join("cell"));
    // One test in this binary, so setting the environment races with nothing.
    std::env::set_var("HW4_OUTPUT_DIR", &child_out);
    std::env::set_var("HW4_DEVICE", "cpu");
    std::env::set_var("HW4_PROFILE", "smoke");
    std::env::remove_var("HW4_TRAIN");
    let s = Session::from_env("background_test").unwrap();
    let size = (32, 128);
    let want = caches(size);
    assert!(want.iter().all(|p| p.starts_with(child_out.join("eval"))));

    // A child whose cache files are not the expected ones fails, and says so in its log.
    let mut bad = ReaderJob::start(&s, size, &[child_out.join("eval/other.safetensors")]).unwrap();
    assert!(bad.running());
    bad.wait().unwrap();
    assert!(!bad.running());
    bad.wait().unwrap();
    let log = std::fs::read_to_string(s.out("train_readers.log")).unwrap();
    assert!(log.contains("the notebook expects"), "{log}");
    assert!(want.iter().all(|p| !p.exists()));

    // With HW4_TRAIN=0 nothing starts.
    std::env::set_var("HW4_TRAIN", "0");
    assert!(!ReaderJob::start(&s, size, &want).unwrap().running());
    std::env::remove_var("HW4_TRAIN");

    // A child given only the slot reader's cache file trains only that reader.
    let mut one = ReaderJob::start(&s, size, &want[1..]).unwrap();
    assert!(one.running());
    one.wait().unwrap();
    assert!(!want[0].exists() && want[1].exists(), "{want:?}");

    let mut job = ReaderJob::start(&s, size, &want).unwrap();
    assert!(job.running());
    job.wait().unwrap();
    assert!(want.iter().all(|p| p.exists()), "{want:?}");
    // The caches exist now: nothing starts.
    assert!(!ReaderJob::start(&s, size, &want).unwrap().running());

    // The readers cell's own training, in another output folder, writes the same bytes.
    std::env::set_var("HW4_OUTPUT_DIR", &cell_out);
    let s2 = Session::from_env("background_test").unwrap();
    let small = data::load_captchas(size.0, size.1, FilterType::Triangle).unwrap();
    let full = data::load_captchas(50, 200, FilterType::Triangle).unwrap();
    let (train, heldout) = data::captcha_split(small.len());
    let (ocr, _) = Ocr::load_or_train(
        &s2,
        &small,
        &train,
        &heldout,
        OcrConfig::for_profile(Profile::Smoke),
    )
    .unwrap();
    assert!(ocr.train_seconds().is_some(), "the cell must train here");
    let (reader, _) = SlotReader::load_or_train(
        &s2,
        &full,
        &train,
        &heldout,
        SlotReaderConfig::for_profile(Profile::Smoke),
    )
    .unwrap();
    assert!(reader.train_seconds().is_some());
    for (a, b) in want.iter().zip(caches(size)) {
        assert!(b.starts_with(&cell_out));
        assert_eq!(a.file_name(), b.file_name());
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(&b).unwrap(),
            "{} and {} differ",
            a.display(),
            b.display()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
