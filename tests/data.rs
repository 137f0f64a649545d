//! Datasets: the real sets beside the project (when present), the synthetic
//! fallback, determinism, and every bad-input case with its message.
//!
//! `HW4_REQUIRE_REAL_DATA=1` makes the real-data tests fail when `../shared/data`
//! is missing instead of skipping them.

use hw4::data::{self, synth, CaptchaOpts, Source, CAPTCHA_ALPHABET};
use hw4::image::imageops::FilterType;
use hw4::show::{self, ImageOpts};
use hw4::tch::{Kind, Tensor};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn shared() -> Option<PathBuf> {
    let p = hw4::session::project_root().join("../shared/data");
    if p.join("captcha_images_v2").is_dir() && p.join("mnist").is_dir() {
        return Some(p);
    }
    let required = std::env::var("HW4_REQUIRE_REAL_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "HW4_REQUIRE_REAL_DATA=1 but {} is missing",
        p.display()
    );
    eprintln!("no ../shared/data: real-data checks skipped");
    None
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hw4-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn f32s(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.flatten(0, -1).to_kind(Kind::Float)).unwrap()
}

// ------------------------------------------------------------ real sets

#[test]
fn real_captchas() {
    let Some(root) = shared() else { return };
    let dir = root.join("captcha_images_v2");
    // The listing checksum of the shared README: `sha256sum *` in name order.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let listing: String = names
        .iter()
        .map(|n| {
            format!(
                "{}  {n}\n",
                sha256_hex(&std::fs::read(dir.join(n)).unwrap())
            )
        })
        .collect();
    assert_eq!(
        sha256_hex(listing.as_bytes()),
        "02e7bd4748b447a23b7be443057429ddea0c95186a6aefc35e31eb4aae52a1a5"
    );

    let c = data::load_captchas_from(&dir, 50, 200, FilterType::Triangle).unwrap();
    assert_eq!(c.len(), 1040);
    assert_eq!(c.images.size(), [1040, 1, 50, 200]);
    assert_eq!(c.alphabet.to_string(), CAPTCHA_ALPHABET);
    assert_eq!(c.alphabet.len(), 19);
    assert!(c.labels.iter().all(|l| l.len() == 5));
    assert_eq!(c.labels[0], "226md");
    assert_eq!(c.ignored, 0);
    let (lo, hi) = (
        c.images.min().double_value(&[]),
        c.images.max().double_value(&[]),
    );
    assert_eq!((lo, hi), (-1.0, 1.0));
    // Native size: the tensor is exactly the file's pixels / 127.5 - 1.
    let img = hw4::image::open(dir.join("226md.png"))
        .unwrap()
        .into_luma8();
    let want: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    assert_eq!(f32s(&c.images.get(0)), want);
    // Labels round-trip through the alphabet.
    let t = c.targets().unwrap();
    assert_eq!(t.size(), [1040, 5]);
    let row: Vec<i64> = Vec::try_from(t.get(0)).unwrap();
    assert_eq!(c.alphabet.decode(&row), "226md");

    let t0 = Instant::now();
    let big = data::load_captchas_from(&dir, 64, 256, FilterType::Lanczos3).unwrap();
    eprintln!(
        "captcha load: 1040 images resized to 64x256 (Lanczos3) in {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(big.images.size(), [1040, 1, 64, 256]);
    let line = big.describe(FilterType::Lanczos3);
    assert!(
        line.starts_with(
            "captcha: 1040 captchas as 64x256 (Lanczos3) from ../shared/data/captcha_images_v2"
        ),
        "{line}"
    );
}

const MNIST_TEST_COUNTS: [i64; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const MNIST_TRAIN_COUNTS: [i64; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];

fn digit_counts(m: &data::Mnist) -> Vec<i64> {
    Vec::try_from(m.labels.bincount::<Tensor>(None, 10)).unwrap()
}

fn first_labels(m: &data::Mnist) -> Vec<i64> {
    Vec::try_from(m.labels.narrow(0, 0, 5)).unwrap()
}

fn check_pixels(m: &data::Mnist, n: i64) {
    assert_eq!(m.images.size(), [n, 1, 28, 28]);
    assert_eq!(m.labels.size(), [n]);
    assert_eq!(m.images.kind(), Kind::Float);
    assert_eq!(m.labels.kind(), Kind::Int64);
    assert_eq!(m.images.min().double_value(&[]), 0.0);
    assert_eq!(m.images.max().double_value(&[]), 1.0);
}

/// The full layout of `../shared/data/mnist`: the 60,000 training images (the loader's
/// choice) and the 10,000 test images beside them (kept apart), with the per-digit
/// counts of each split (LeCun et al.).
#[test]
fn real_mnist_full_layout() {
    let Some(root) = shared() else { return };
    let dir = root.join("mnist");
    for (file, sum) in [
        (
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ] {
        assert_eq!(
            sha256_hex(&std::fs::read(dir.join(file)).unwrap()),
            sum,
            "{file}"
        );
    }
    let source = Source::Shared(dir.clone());
    let train = data::load_mnist_source(&source).unwrap();
    assert_eq!((train.split.as_str(), train.len()), ("train", 60_000));
    check_pixels(&train, 60_000);
    assert_eq!(digit_counts(&train), MNIST_TRAIN_COUNTS);
    assert_eq!(first_labels(&train), [5, 0, 4, 1, 9]);
    assert_eq!(
        train.describe(),
        "mnist: 60000 train images 28x28 from ../shared/data/mnist (shared data)"
    );
    let test = data::load_mnist_test_source(&source).unwrap().unwrap();
    assert_eq!((test.split.as_str(), test.len()), ("test", 10_000));
    check_pixels(&test, 10_000);
    assert_eq!(digit_counts(&test), MNIST_TEST_COUNTS);
    assert_eq!(first_labels(&test), [7, 2, 1, 0, 4]);
    // The homework's split: 50,000 / 10,000 of the training images, seeded.
    let (tr, va) = data::split(train.len(), 10_000, 5);
    assert_eq!((tr.len(), va.len()), (50_000, 10_000));
    let (x, y) = train.subset(&va);
    assert_eq!(
        (x.size(), y.size()),
        (vec![10_000, 1, 28, 28], vec![10_000])
    );
    assert_eq!(data::split(train.len(), 10_000, 5), (tr, va));
}

/// A folder that holds only the `t10k-*` pair (as `../shared/data` did before): the
/// loader uses the test split, says so, and there is no separate test split.
#[test]
fn real_mnist_test_split_only_layout() {
    let Some(root) = shared() else { return };
    let d = tmp("mnist-t10k-only");
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(root.join("mnist").join(f), d.join(f)).unwrap();
    }
    let m = data::load_mnist_from(&d).unwrap();
    assert_eq!((m.split.as_str(), m.len()), ("test", 10_000));
    check_pixels(&m, 10_000);
    assert_eq!(digit_counts(&m), MNIST_TEST_COUNTS);
    assert_eq!(first_labels(&m), [7, 2, 1, 0, 4]);
    let (train, valid) = data::split(m.len(), 1000, 0);
    let (x, y) = m.subset(&valid);
    assert_eq!((x.size(), y.size()), (vec![1000, 1, 28, 28], vec![1000]));
    assert_eq!(m.subset(&train).0.size()[0], 9000);
    let source = Source::Shared(d.clone());
    let m = data::load_mnist_source(&source).unwrap();
    assert_eq!(
        m.describe(),
        format!(
            "mnist: 10000 test images 28x28 from {} (shared data) (no training split there: using the test split)",
            data::show_path(&d)
        )
    );
    assert!(data::load_mnist_test_source(&source).unwrap().is_none());
    assert!(data::load_mnist_test_source(&Source::Synthetic)
        .unwrap()
        .is_none());
    // The training split without its test pair: no test split, and no error.
    let t = tmp("mnist-train-only");
    for f in ["train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz"] {
        std::fs::copy(root.join("mnist").join(f), t.join(f)).unwrap();
    }
    let e = data::load_mnist_test_source(&Source::Dir(t.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("no MNIST t10k split (expected t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz])"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&t);
}

// ------------------------------------------------------------ synthetic

#[test]
fn synthetic_fallbacks() {
    let empty = tmp("empty-data-dir");
    let root = hw4::session::project_root();
    assert_eq!(
        data::find_in("mnist", Some(&empty), &root).unwrap(),
        Source::Synthetic
    );

    let m = data::load_mnist_source(&Source::Synthetic).unwrap();
    assert_eq!(m.len(), data::SYNTH_DIGITS);
    assert_eq!(m.split, "synthetic");
    assert_eq!(m.images.size(), [10_000, 1, 28, 28]);
    let counts: Vec<i64> = Vec::try_from(m.labels.bincount::<Tensor>(None, 10)).unwrap();
    assert_eq!(counts, [1000; 10]);
    assert_eq!(m.images.min().double_value(&[]), 0.0);
    assert_eq!(m.images.max().double_value(&[]), 1.0);

    let opts = CaptchaOpts::size(64, 256, FilterType::Triangle);
    let c = data::load_captchas_source(&Source::Synthetic, &opts).unwrap();
    assert_eq!(c.len(), 1040);
    assert_eq!(c.images.size(), [1040, 1, 64, 256]);
    assert_eq!(c.alphabet.to_string(), CAPTCHA_ALPHABET);
    assert!(c.labels.iter().all(|l| l.len() == 5));
    assert!(c.images.min().double_value(&[]) >= -1.0);
    assert!(c.images.max().double_value(&[]) <= 1.0);
    assert!(c.describe(FilterType::Triangle).starts_with(
        "captcha: 1040 synthetic captchas as 64x256 (Triangle) from the embedded synthetic generator, alphabet \"2345678bcdefgmnpwxy\" (19 symbols) (seed 0; "
    ));
}

#[test]
fn text_templates_put_each_character_in_its_slot() {
    let band = (0.1, 0.7);
    let t = synth::text_template("226md", band).unwrap();
    assert_eq!(t.dimensions(), (200, 50));
    assert_eq!(t, synth::text_template("226md", band).unwrap());
    // Column ink per slot: every slot inked, nothing left of the band or right of it.
    let ink = |img: &hw4::image::GrayImage, x0: u32, x1: u32| -> f64 {
        (x0..x1)
            .flat_map(|x| (0..50).map(move |y| (x, y)))
            .map(|(x, y)| f64::from(255 - img.get_pixel(x, y).0[0]))
            .sum()
    };
    assert_eq!(ink(&t, 0, 15), 0.0);
    assert_eq!(ink(&t, 145, 200), 0.0);
    for k in 0..5 {
        let (x0, x1) = (20 + 24 * k, 20 + 24 * (k + 1));
        assert!(ink(&t, x0, x1) > 10_000.0, "slot {k} is empty");
    }
    // Characters are placed independently: "23   " is "2    " and " 3   " overlaid.
    let both = synth::text_template("23   ", band).unwrap();
    let a = synth::text_template("2    ", band).unwrap();
    let b = synth::text_template(" 3   ", band).unwrap();
    for ((p, q), r) in both.pixels().zip(a.pixels()).zip(b.pixels()) {
        assert_eq!(p.0[0], q.0[0].min(r.0[0]));
    }
    assert!(ink(&a, 60, 200) == 0.0 && ink(&b, 0, 35) == 0.0);
    // As tensors at the model's size: white background 1, black ink towards -1.
    let x = synth::text_templates(&["226md".into(), "     ".into()], band, 32, 64).unwrap();
    assert_eq!(x.size(), [2, 1, 32, 64]);
    assert!(x.get(0).min().double_value(&[]) < -0.5);
    assert_eq!(x.get(1).min().double_value(&[]), 1.0);
    // Bad input names the value.
    assert_eq!(
        synth::text_template("226md", (0.7, 0.1))
            .unwrap_err()
            .to_string(),
        "text band (0.7, 0.1) is not a part of the width; expected 0 <= u0 < u1 <= 1"
    );
    assert_eq!(
        synth::text_template("22\u{6f22}md", band)
            .unwrap_err()
            .to_string(),
        "text \"22\u{6f22}md\": DejaVu Sans has no glyph for '\u{6f22}' (character 3)"
    );
    assert!(synth::text_templates(&["226md".into()], band, 0, 64).is_err());
}

#[test]
fn synthetic_is_deterministic_and_fast() {
    let a = synth::captcha("226md", 7).unwrap();
    assert_eq!(a.dimensions(), (200, 50));
    assert_eq!(a, synth::captcha("226md", 7).unwrap());
    assert_ne!(a, synth::captcha("226md", 8).unwrap());
    let e = synth::captcha("226ma", 7).unwrap_err().to_string();
    assert_eq!(
        e,
        "synthetic captcha label \"226ma\" must be 5 characters from \"2345678bcdefgmnpwxy\""
    );
    assert!(synth::captcha("2345", 0).is_err());

    let t0 = Instant::now();
    let set = synth::captchas(1040, 0);
    let dt = t0.elapsed().as_secs_f64();
    eprintln!(
        "synthetic captchas: {:.0} images/s (1040 in {dt:.3} s)",
        1040.0 / dt
    );
    assert_eq!(set.len(), 1040);
    let again = synth::captchas(3, 0);
    assert_eq!(&set[..3], &again[..]);
    assert_ne!(set[0].0, set[1].0);
    // Pinned: a change here changes every synthetic run.
    let digest = sha256_hex(
        &set.iter()
            .flat_map(|(l, i)| l.bytes().chain(i.as_raw().iter().copied()))
            .collect::<Vec<u8>>(),
    );
    assert_eq!(
        digest,
        "1cbaf53f7559ee40d7b796f301215f8bc77d0c8ee149b5b4fbbf4334bc9893e2"
    );

    let t0 = Instant::now();
    let (x, y) = synth::digits(10_000, 0);
    let dt = t0.elapsed().as_secs_f64();
    eprintln!(
        "synthetic digits: {:.0} images/s (10000 in {dt:.3} s)",
        10_000.0 / dt
    );
    let (x2, y2) = synth::digits(10_000, 0);
    assert!(x.equal(&x2) && y.equal(&y2));
    let (x3, _) = synth::digits(10_000, 1);
    assert!(!x.equal(&x3));
    let bytes: Vec<u8> =
        Vec::try_from((&x * 255.0).round().to_kind(Kind::Uint8).flatten(0, -1)).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        "79b43b9ad685bf47cfe2a7a174220ee8bf6c1e896dd4a57bae88eba66a6f06d1"
    );
}

#[test]
fn splits_and_batches_are_seeded() {
    let (t, v) = data::split(1000, 100, 42);
    assert_eq!((t.len(), v.len()), (900, 100));
    assert_eq!(data::split(1000, 100, 42), (t.clone(), v.clone()));
    assert_ne!(data::split(1000, 100, 43).1, v);
    let b1: Vec<Vec<i64>> = data::batches(100, 32, 9)
        .iter()
        .map(|b| Vec::try_from(b).unwrap())
        .collect();
    let b2: Vec<Vec<i64>> = data::batches(100, 32, 9)
        .iter()
        .map(|b| Vec::try_from(b).unwrap())
        .collect();
    assert_eq!(b1, b2);
    assert_eq!(b1.iter().map(Vec::len).collect::<Vec<_>>(), [32, 32, 32, 4]);
}

// ------------------------------------------------------------ figure

#[test]
fn figure_real_vs_synthetic() {
    let n = 8;
    let synthetic: Vec<Tensor> = synth::captchas(n, 0)
        .iter()
        .map(|(_, img)| gray_tensor(img))
        .collect();
    let real: Vec<Tensor> = match shared() {
        Some(root) => {
            let c = data::load_captchas_from(
                &root.join("captcha_images_v2"),
                50,
                200,
                FilterType::Triangle,
            )
            .unwrap();
            (0..n as i64).map(|i| c.images.get(i * 130)).collect()
        }
        None => synthetic.iter().map(|t| t.zeros_like()).collect(),
    };
    // Row i: real i | synthetic i.
    let pairs: Vec<Tensor> = real
        .iter()
        .zip(&synthetic)
        .flat_map(|(r, s)| [r.shallow_clone(), s.shallow_clone()])
        .collect();
    let opts = ImageOpts {
        ncol: 2,
        ..ImageOpts::signed()
    };
    let grid = show::grid(&Tensor::stack(&pairs, 0), &opts).unwrap();
    let img = show::to_image(&grid, &ImageOpts { scale: 2, ..opts }).unwrap();
    let path = hw4::session::output_root().join("data/captchas_real_vs_synthetic.png");
    hw4::io::write_atomic(&path, &show::png_bytes(&img).unwrap()).unwrap();

    let (x, _) = synth::digits(32, 0);
    let digits = show::to_image(
        &show::grid(
            &x,
            &ImageOpts {
                ncol: 16,
                ..Default::default()
            },
        )
        .unwrap(),
        &ImageOpts {
            scale: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let path = hw4::session::output_root().join("data/digits_synthetic.png");
    hw4::io::write_atomic(&path, &show::png_bytes(&digits).unwrap()).unwrap();
    if let Some(root) = shared() {
        let m = data::load_mnist_from(&root.join("mnist")).unwrap();
        let real = show::to_image(
            &show::grid(
                &m.images.narrow(0, 0, 32),
                &ImageOpts {
                    ncol: 16,
                    ..Default::default()
                },
            )
            .unwrap(),
            &ImageOpts {
                scale: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let path = hw4::session::output_root().join("data/digits_real.png");
        hw4::io::write_atomic(&path, &show::png_bytes(&real).unwrap()).unwrap();
    }
}

fn gray_tensor(img: &hw4::image::GrayImage) -> Tensor {
    let (w, h) = img.dimensions();
    let v: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    Tensor::from_slice(&v).view([1, h as i64, w as i64])
}

// ------------------------------------------------------------ bad input

/// Every file of `dir` with its bytes, to check that loaders change nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap_or_default();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

fn captcha_err(dir: &Path) -> String {
    let before = snapshot(dir);
    let e = data::load_captchas_from(dir, 50, 200, FilterType::Triangle)
        .unwrap_err()
        .to_string();
    assert_eq!(
        snapshot(dir),
        before,
        "the loader changed files in {}",
        data::show_path(dir)
    );
    eprintln!("bad input -> {e}");
    e
}

fn mnist_err(dir: &Path) -> String {
    let before = snapshot(dir);
    let e = data::load_mnist_from(dir).unwrap_err().to_string();
    assert_eq!(
        snapshot(dir),
        before,
        "the loader changed files in {}",
        data::show_path(dir)
    );
    eprintln!("bad input -> {e}");
    e
}

fn good_png() -> Vec<u8> {
    show::png_bytes(&hw4::image::DynamicImage::ImageLuma8(
        synth::captcha("23456", 0).unwrap(),
    ))
    .unwrap()
}

#[test]
fn bad_captcha_folders() {
    // 1. Not an image at all.
    let d = tmp("corrupt");
    std::fs::write(d.join("23456.png"), good_png()).unwrap();
    std::fs::write(d.join("2345b.png"), b"this is not a png").unwrap();
    let e = captcha_err(&d);
    assert!(
        e.starts_with(&format!(
            "{}: corrupt or truncated image (",
            data::show_path(&d.join("2345b.png"))
        )),
        "{e}"
    );
    assert!(
        e.ends_with("; replace the file (see data/README.md)"),
        "{e}"
    );

    // 2. A PNG cut in half.
    let d = tmp("truncated");
    let png = good_png();
    std::fs::write(d.join("bcdef.png"), &png[..png.len() / 2]).unwrap();
    let e = captcha_err(&d);
    assert!(
        e.starts_with(&format!(
            "{}: corrupt or truncated image (",
            data::show_path(&d.join("bcdef.png"))
        )),
        "{e}"
    );

    // 3. A character outside the alphabet.
    let d = tmp("outside");
    std::fs::write(d.join("23456.png"), good_png()).unwrap();
    std::fs::write(d.join("2a456.png"), good_png()).unwrap();
    let e = captcha_err(&d);
    assert_eq!(
        e,
        format!(
            "{}: label \"2a456\" has 'a', which is not in the captcha alphabet \"2345678bcdefgmnpwxy\"",
            data::show_path(&d.join("2a456.png"))
        )
    );

    // 4. A label of the wrong length.
    let d = tmp("length");
    std::fs::write(d.join("23456.png"), good_png()).unwrap();
    std::fs::write(d.join("2345.png"), good_png()).unwrap();
    let e = captcha_err(&d);
    assert_eq!(
        e,
        format!(
            "{}: label \"2345\" has 4 characters, expected 5",
            data::show_path(&d.join("2345.png"))
        )
    );

    // 5. An empty folder (other files only).
    let d = tmp("empty");
    std::fs::write(d.join("notes.txt"), b"hello").unwrap();
    let e = captcha_err(&d);
    assert_eq!(
        e,
        format!(
            "{}: no PNG or JPEG images (a captcha folder holds files named <label>.png); 1 other files there",
            data::show_path(&d)
        )
    );

    // 6. A missing folder.
    let d = tmp("missing").join("nope");
    let e = data::load_captchas_from(&d, 50, 200, FilterType::Triangle)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: no such folder (expected captcha images named <label>.png)",
            data::show_path(&d)
        )
    );

    // 7. A size that is not an image size.
    let e = data::load_captchas_from(&d, 0, 200, FilterType::Triangle)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "captcha size 0x200 (HxW) must be between 1 and 4096 pixels each way"
    );
}

#[test]
fn captcha_folder_with_rgb_jpeg_and_other_files() {
    let d = tmp("mixed");
    let gray = synth::captcha("bcdef", 3).unwrap();
    let rgb = hw4::image::DynamicImage::ImageLuma8(gray.clone()).to_rgb8();
    rgb.save(d.join("bcdef.png")).unwrap();
    hw4::image::DynamicImage::ImageRgb8(rgb)
        .save(d.join("gmnpw.jpg"))
        .unwrap();
    std::fs::write(d.join("README.txt"), b"labels are file names").unwrap();
    std::fs::write(d.join(".DS_Store"), b"x").unwrap();
    let c = data::load_captchas_from(&d, 25, 100, FilterType::Nearest).unwrap();
    assert_eq!(c.labels, ["bcdef", "gmnpw"]);
    assert_eq!(c.ignored, 1);
    assert_eq!(c.alphabet.to_string(), "bcdefgmnpw");
    assert_eq!(c.images.size(), [2, 1, 25, 100]);
    assert!(c
        .describe(FilterType::Nearest)
        .ends_with("; skipped 1 files that are not PNG/JPEG"));
    // An RGB file of gray pixels gives the gray values back.
    let c = data::load_captchas_from(&d, 50, 200, FilterType::Nearest).unwrap();
    let want: Vec<f32> = gray
        .as_raw()
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    assert_eq!(f32s(&c.images.get(0)), want);
    // Other alphabets and lengths with explicit options.
    let opts = CaptchaOpts {
        alphabet: None,
        label_len: None,
        ..CaptchaOpts::default()
    };
    std::fs::write(d.join("XYZ12.png"), good_png()).unwrap();
    let c = data::load_captchas_with(&d, &opts).unwrap();
    assert_eq!(c.alphabet.to_string(), "12XYZbcdefgmnpw");
    assert_eq!(c.alphabet.encode("XYZ12").unwrap(), [2, 3, 4, 0, 1]);
    let e = c.alphabet.encode("abc").unwrap_err().to_string();
    assert_eq!(
        e,
        "label \"abc\": 'a' is not in the alphabet \"12XYZbcdefgmnpw\""
    );
    assert_eq!(c.alphabet.decode(&[0, 99, -1]), "1??");
}

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(payload);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn mnist_small_files_raw_and_gz() {
    let d = tmp("mnist-ok");
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 256) as u8).collect();
    std::fs::write(
        d.join("t10k-images-idx3-ubyte"),
        idx(0x803, &[3, 28, 28], &pixels),
    )
    .unwrap();
    std::fs::write(
        d.join("t10k-labels-idx1-ubyte.gz"),
        gz(&idx(0x801, &[3], &[7, 0, 9])),
    )
    .unwrap();
    let m = data::load_mnist_from(&d).unwrap();
    assert_eq!(m.split, "test");
    assert_eq!(Vec::<i64>::try_from(&m.labels).unwrap(), [7, 0, 9]);
    assert_eq!(f32s(&m.images)[255], 1.0);
    // A training pair takes precedence.
    std::fs::write(
        d.join("train-images-idx3-ubyte.gz"),
        gz(&idx(0x803, &[1, 28, 28], &pixels[..784])),
    )
    .unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(0x801, &[1], &[5])).unwrap();
    let m = data::load_mnist_from(&d).unwrap();
    assert_eq!((m.split.as_str(), m.len()), ("train", 1));
}

#[test]
fn bad_mnist_files() {
    let pixels = vec![0u8; 2 * 28 * 28];
    let labels_ok = idx(0x801, &[2], &[1, 2]);
    let case = |name: &str, images: Vec<u8>, labels: Vec<u8>| {
        let d = tmp(name);
        std::fs::write(d.join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(d.join("t10k-labels-idx1-ubyte"), labels).unwrap();
        (mnist_err(&d), d)
    };
    let path = |d: &Path, f: &str| data::show_path(&d.join(f));

    // 8. Wrong magic number (labels file given as images).
    let (e, d) = case("magic", labels_ok.clone(), labels_ok.clone());
    assert_eq!(
        e,
        format!(
            "{}: wrong magic number 0x00000801, expected 0x00000803 (IDX images: unsigned bytes, 3 dimensions)",
            path(&d, "t10k-images-idx3-ubyte")
        )
    );

    // 9. Truncated payload.
    let (e, d) = case(
        "short",
        idx(0x803, &[2, 28, 28], &pixels[..1000]),
        labels_ok.clone(),
    );
    assert_eq!(
        e,
        format!(
            "{}: truncated: the header announces 2x28x28 images (1568 bytes) but only 1000 bytes follow",
            path(&d, "t10k-images-idx3-ubyte")
        )
    );

    // 10. Count mismatch between the two files.
    let (e, d) = case(
        "count",
        idx(0x803, &[2, 28, 28], &pixels),
        idx(0x801, &[3], &[1, 2, 3]),
    );
    assert_eq!(
        e,
        format!(
            "{} holds 2 images but {} holds 3 labels; the two files must match",
            path(&d, "t10k-images-idx3-ubyte"),
            path(&d, "t10k-labels-idx1-ubyte")
        )
    );

    // 11. Truncated gzip stream.
    let z = gz(&idx(0x803, &[2, 28, 28], &pixels));
    let (e, d) = case("gzip", z[..z.len() / 2].to_vec(), labels_ok.clone());
    assert!(
        e.starts_with(&format!(
            "{}: corrupt or truncated gzip data (",
            path(&d, "t10k-images-idx3-ubyte")
        )),
        "{e}"
    );

    // 12. A label that is not a digit.
    let (e, d) = case(
        "label",
        idx(0x803, &[2, 28, 28], &pixels),
        idx(0x801, &[2], &[1, 12]),
    );
    assert_eq!(
        e,
        format!(
            "{}: label 12 at index 1 is not a digit 0-9",
            path(&d, "t10k-labels-idx1-ubyte")
        )
    );

    // 13. Trailing bytes after the payload.
    let (e, d) = case(
        "long",
        idx(0x803, &[2, 28, 28], &[pixels.clone(), vec![0; 7]].concat()),
        labels_ok.clone(),
    );
    assert_eq!(
        e,
        format!(
            "{}: 7 bytes after the 2x28x28 images the header announces; not a valid IDX file",
            path(&d, "t10k-images-idx3-ubyte")
        )
    );

    // 14. Half a pair.
    let d = tmp("half");
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), b"x").unwrap();
    let e = mnist_err(&d);
    assert_eq!(
        e,
        format!(
            "{}: found train-images-idx3-ubyte.gz but not train-labels-idx1-ubyte[.gz] beside it; the download is incomplete (see data/README.md)",
            data::show_path(&d)
        )
    );

    // 15. A folder without MNIST files.
    let d = tmp("nomnist");
    let e = mnist_err(&d);
    assert_eq!(
        e,
        format!(
            "{}: no MNIST files (expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or the t10k-* pair)",
            data::show_path(&d)
        )
    );

    // 16. A missing folder.
    let d = d.join("nope");
    let e = data::load_mnist_from(&d).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: no such folder (expected the MNIST IDX files there)",
            data::show_path(&d)
        )
    );
}
