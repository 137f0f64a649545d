//! MNIST in the IDX format (LeCun et al., <http://yann.lecun.com/exdb/mnist/>): a
//! big-endian header `0x00 0x00 0x08 ndim` (0x08 = unsigned bytes), `ndim` u32
//! sizes, then the payload; files gzipped or raw.

use super::source::{find, why_synthetic, Source};
use super::{show_path, synth, SYNTH_SEED};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Kind, Tensor};

/// Size of the synthetic digit set the loader falls back to.
pub const SYNTH_DIGITS: usize = 10_000;

/// MNIST images and labels.
#[derive(Debug)]
pub struct Mnist {
    /// `[N, 1, 28, 28]` f32 in [0, 1].
    pub images: Tensor,
    /// `[N]` i64 digits 0..=9.
    pub labels: Tensor,
    /// `"train"`, `"test"` or `"synthetic"`.
    pub split: String,
    pub source: Source,
}

impl Mnist {
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The images and labels at `indices`, e.g. one side of [`super::split`].
    pub fn subset(&self, indices: &[i64]) -> (Tensor, Tensor) {
        let i = Tensor::from_slice(indices);
        (
            self.images.index_select(0, &i),
            self.labels.index_select(0, &i),
        )
    }

    /// The loader's line: what, which split, from where.
    pub fn describe(&self) -> String {
        let s = self.images.size();
        let (n, h, w) = (s[0], s[2], s[3]);
        match self.split.as_str() {
            "synthetic" => format!(
                "mnist: {n} synthetic digits {h}x{w} from {} (seed {SYNTH_SEED}; {})",
                self.source,
                why_synthetic("mnist")
            ),
            "test" => format!(
                "mnist: {n} test images {h}x{w} from {} (no training split there: using the test split)",
                self.source
            ),
            split => format!("mnist: {n} {split} images {h}x{w} from {}", self.source),
        }
    }
}

/// Finds MNIST (see [`find`]), loads it and prints one line saying from where and
/// which split.
pub fn load_mnist() -> Result<Mnist> {
    let t0 = Instant::now();
    let m = load_mnist_source(&find("mnist")?)?;
    println!("{}", m.describe());
    eprintln!("mnist loaded in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(m)
}

/// Loads MNIST from a folder holding the IDX files: the training split
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, each optionally `.gz`)
/// when present, else the test split (`t10k-*`).
pub fn load_mnist_from(dir: &Path) -> Result<Mnist> {
    load_dir(dir, Source::Dir(dir.to_path_buf()), &["train", "t10k"])
}

/// The test split that [`load_mnist`] leaves apart: the `t10k-*` pair from the same
/// folder when that folder also holds the training split (and so [`load_mnist`]
/// returned the training split). `None`, with a line saying so, when the folder holds
/// only the test split (then [`load_mnist`] already used it) or the digits are
/// synthetic: there is no separate test split to report on.
pub fn load_mnist_test() -> Result<Option<Mnist>> {
    let t0 = Instant::now();
    let source = find("mnist")?;
    let m = load_mnist_test_source(&source)?;
    match &m {
        Some(m) => println!(
            "mnist: {} test images {}x{} from {}, kept apart for the final report",
            m.len(),
            m.images.size()[2],
            m.images.size()[3],
            m.source
        ),
        None => println!("mnist: no separate test split at {source}"),
    }
    eprintln!(
        "mnist test split loaded in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// [`load_mnist_test`] for a given [`Source`], without the printed line.
pub fn load_mnist_test_source(source: &Source) -> Result<Option<Mnist>> {
    let Some(dir) = source.dir() else {
        return Ok(None);
    };
    let has_train = idx_file(dir, "train-images-idx3-ubyte").is_some()
        || idx_file(dir, "train-labels-idx1-ubyte").is_some();
    if !has_train {
        return Ok(None);
    }
    load_dir(dir, source.clone(), &["t10k"]).map(Some)
}

/// Loads MNIST from a [`Source`]; [`Source::Synthetic`] gives
/// [`synth::digits`]`(SYNTH_DIGITS, SYNTH_SEED)`.
pub fn load_mnist_source(source: &Source) -> Result<Mnist> {
    match source.dir() {
        Some(dir) => load_dir(dir, source.clone(), &["train", "t10k"]),
        None => {
            let (images, labels) = synth::digits(SYNTH_DIGITS, SYNTH_SEED);
            Ok(Mnist {
                images,
                labels,
                split: "synthetic".into(),
                source: Source::Synthetic,
            })
        }
    }
}

fn idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Loads the first of `splits` ("train", "t10k") whose image and label files are
/// both in `dir`.
fn load_dir(dir: &Path, source: Source, splits: &[&str]) -> Result<Mnist> {
    if !dir.is_dir() {
        return Err(Error::msg(format!(
            "{}: no such folder (expected the MNIST IDX files there)",
            show_path(dir)
        )));
    }
    let mut chosen = None;
    for &split in splits {
        let images = idx_file(dir, &format!("{split}-images-idx3-ubyte"));
        let labels = idx_file(dir, &format!("{split}-labels-idx1-ubyte"));
        match (images, labels) {
            (Some(i), Some(l)) => {
                chosen = Some((split, i, l));
                break;
            }
            (None, None) => {}
            (Some(have), None) | (None, Some(have)) => {
                let kind = if have.to_string_lossy().contains("-images-") {
                    "labels-idx1"
                } else {
                    "images-idx3"
                };
                return Err(Error::msg(format!(
                    "{}: found {} but not {split}-{kind}-ubyte[.gz] beside it; the download is incomplete (see data/README.md)",
                    show_path(dir),
                    have.file_name().unwrap_or_default().to_string_lossy()
                )));
            }
        }
    }
    let Some((split, img_path, lbl_path)) = chosen else {
        if let [only] = splits {
            return Err(Error::msg(format!(
                "{}: no MNIST {only} split (expected {only}-images-idx3-ubyte[.gz] and {only}-labels-idx1-ubyte[.gz])",
                show_path(dir)
            )));
        }
        return Err(Error::msg(format!(
            "{}: no MNIST files (expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or the t10k-* pair)",
            show_path(dir)
        )));
    };
    let (dims, pixels) = read_idx(&img_path, 3)?;
    let (ldims, labels) = read_idx(&lbl_path, 1)?;
    if dims[0] != ldims[0] {
        return Err(Error::msg(format!(
            "{} holds {} images but {} holds {} labels; the two files must match",
            show_path(&img_path),
            dims[0],
            show_path(&lbl_path),
            ldims[0]
        )));
    }
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(Error::msg(format!(
            "{}: label {} at index {i} is not a digit 0-9",
            show_path(&lbl_path),
            labels[i]
        )));
    }
    let (n, h, w) = (dims[0] as i64, dims[1] as i64, dims[2] as i64);
    let images = Tensor::from_slice(&pixels)
        .view([n, 1, h, w])
        .to_kind(Kind::Float)
        / 255.0;
    let labels = Tensor::from_slice(&labels).to_kind(Kind::Int64);
    Ok(Mnist {
        images,
        labels,
        split: if split == "t10k" { "test" } else { "train" }.into(),
        source,
    })
}

/// Reads one IDX file of unsigned bytes with `ndim` dimensions: its sizes and payload.
pub(crate) fn read_idx(path: &Path, ndim: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let shown = show_path(path);
    let raw = std::fs::read(path).map_err(|e| Error::msg(format!("{shown}: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::msg(format!(
                    "{shown}: corrupt or truncated gzip data ({e}); download the file again"
                ))
            })?;
        out
    } else {
        raw
    };
    let kind = if ndim == 3 { "images" } else { "labels" };
    let expected = 0x0800u32 | u32::from(ndim);
    if bytes.len() < 4 {
        return Err(Error::msg(format!(
            "{shown}: {} bytes, too short for an IDX header",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected {
        return Err(Error::msg(format!(
            "{shown}: wrong magic number 0x{magic:08x}, expected 0x{expected:08x} (IDX {kind}: unsigned bytes, {ndim} dimension{})",
            if ndim == 1 { "" } else { "s" }
        )));
    }
    let header = 4 + 4 * ndim as usize;
    if bytes.len() < header {
        return Err(Error::msg(format!(
            "{shown}: truncated IDX header ({} bytes, expected {header})",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let want = dims.iter().product::<usize>();
    let have = bytes.len() - header;
    let shape = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    if have < want {
        return Err(Error::msg(format!(
            "{shown}: truncated: the header announces {shape} {kind} ({want} bytes) but only {have} bytes follow"
        )));
    }
    if have > want {
        return Err(Error::msg(format!(
            "{shown}: {} bytes after the {shape} {kind} the header announces; not a valid IDX file",
            have - want
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}
