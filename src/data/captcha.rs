//! Captcha folders: PNG or JPEG files whose stem is the label (the layout of the
//! public "captcha_images_v2" set), or the synthetic set in their place.

use super::format::{check_size, Alphabet, CaptchaOpts};
use super::source::{find, why_synthetic, Source};
use super::{show_path, synth, workers, SYNTH_SEED};
use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::GrayImage;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// Size of the synthetic captcha set the loader falls back to (as many as the real set).
pub const SYNTH_CAPTCHAS: usize = 1040;

/// Captcha images and their labels.
#[derive(Debug)]
pub struct Captchas {
    /// `[N, 1, H, W]` f32 in [-1, 1] (black -1, white 1).
    pub images: Tensor,
    /// The file stems, in file-name order.
    pub labels: Vec<String>,
    /// The sorted characters of the labels.
    pub alphabet: Alphabet,
    pub source: Source,
    /// Files in the folder that are not PNG or JPEG images (skipped).
    pub ignored: usize,
}

impl Captchas {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[N, L]` i64 label indices in [`Captchas::alphabet`].
    pub fn targets(&self) -> Result<Tensor> {
        self.alphabet.encode_all(&self.labels)
    }

    /// The loader's line: how many, what size, from where.
    pub fn describe(&self, filter: FilterType) -> String {
        let s = self.images.size();
        let what = if self.source.is_synthetic() {
            "synthetic captchas"
        } else {
            "captchas"
        };
        let mut line = format!(
            "captcha: {} {what} as {}x{} ({filter:?}) from {}, alphabet \"{}\" ({} symbols)",
            self.len(),
            s[2],
            s[3],
            self.source,
            self.alphabet,
            self.alphabet.len()
        );
        if self.source.is_synthetic() {
            line += &format!(
                " (seed {SYNTH_SEED}; {})",
                why_synthetic("captcha_images_v2")
            );
        }
        if self.ignored > 0 {
            line += &format!("; skipped {} files that are not PNG/JPEG", self.ignored);
        }
        line
    }
}

/// Finds the captcha set (see [`find`]), loads it as `[N, 1, h, w]` resized with
/// `filter`, and prints one line saying from where.
pub fn load_captchas(h: i64, w: i64, filter: FilterType) -> Result<Captchas> {
    load_captchas_opts(&CaptchaOpts::size(h, w, filter))
}

/// [`load_captchas`] with explicit options (size, filter, the [`CaptchaOpts::transform`]).
pub fn load_captchas_opts(opts: &CaptchaOpts) -> Result<Captchas> {
    let t0 = Instant::now();
    let c = load_captchas_source(&find("captcha_images_v2")?, opts)?;
    println!("{}", c.describe(opts.filter));
    eprintln!(
        "captcha: {} images loaded in {:.2} s",
        c.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(c)
}

/// Seed of the captcha set's train/held-out split, shared by the DDPM notebook and the OCR.
pub const CAPTCHA_SPLIT_SEED: u64 = 1234;

/// `(train, held-out)` indices of a captcha set of `n` images, both sorted: a tenth of
/// them (`n / 10`) held out, drawn with [`CAPTCHA_SPLIT_SEED`]. The one place the split is
/// derived: the DDPM notebook trains on its first part, the OCR that judges it too.
pub fn captcha_split(n: usize) -> (Vec<i64>, Vec<i64>) {
    super::split(n, n / 10, CAPTCHA_SPLIT_SEED)
}

/// Loads the captcha images of `dir` (labels: 5 characters from [`super::CAPTCHA_ALPHABET`]).
pub fn load_captchas_from(dir: &Path, h: i64, w: i64, filter: FilterType) -> Result<Captchas> {
    load_captchas_with(dir, &CaptchaOpts::size(h, w, filter))
}

/// Loads a [`Source`]; [`Source::Synthetic`] gives
/// [`synth::captchas`]`(SYNTH_CAPTCHAS, SYNTH_SEED)`.
pub fn load_captchas_source(source: &Source, opts: &CaptchaOpts) -> Result<Captchas> {
    let Some(dir) = source.dir() else {
        check_size(opts)?;
        let set = synth::captchas(SYNTH_CAPTCHAS, SYNTH_SEED);
        let mut pixels = vec![0f32; set.len() * (opts.height * opts.width) as usize];
        let per = (opts.height * opts.width) as usize;
        for ((_, img), out) in set.iter().zip(pixels.chunks_mut(per)) {
            (opts.transform)(img, opts, out);
        }
        let labels: Vec<String> = set.into_iter().map(|(l, _)| l).collect();
        return Ok(Captchas {
            images: Tensor::from_slice(&pixels).view([
                labels.len() as i64,
                1,
                opts.height,
                opts.width,
            ]),
            alphabet: Alphabet::from_labels(&labels),
            labels,
            source: Source::Synthetic,
            ignored: 0,
        });
    };
    let mut c = load_captchas_with(dir, opts)?;
    c.source = source.clone();
    Ok(c)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Loads a captcha folder with explicit options. Checks every label before decoding:
/// a label of the wrong length or with a character outside `opts.alphabet` stops
/// the load with an error naming the file, as does an image that does not decode.
/// Files that are not PNG/JPEG (and hidden files) are skipped and counted.
pub fn load_captchas_with(dir: &Path, opts: &CaptchaOpts) -> Result<Captchas> {
    check_size(opts)?;
    let shown = show_path(dir);
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::msg(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{shown}: no such folder (expected captcha images named <label>.png)")
        } else {
            format!("{shown}: cannot list the folder: {e}")
        })
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut ignored = 0;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::msg(format!("{shown}: {e}")))?
            .path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden || path.is_dir() {
            continue;
        }
        if is_image(&path) {
            files.push(path);
        } else {
            ignored += 1;
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::msg(format!(
            "{shown}: no PNG or JPEG images (a captcha folder holds files named <label>.png){}",
            if ignored > 0 {
                format!("; {ignored} other files there")
            } else {
                String::new()
            }
        )));
    }
    let labels = check_labels(&files, opts)?;
    let per = (opts.height * opts.width) as usize;
    let mut pixels = vec![0f32; files.len() * per];
    let chunk = files.len().div_ceil(workers(files.len()));
    std::thread::scope(|s| {
        let jobs: Vec<_> = files
            .chunks(chunk)
            .zip(pixels.chunks_mut(chunk * per))
            .map(|(fs, out)| {
                s.spawn(move || -> Result<()> {
                    for (f, o) in fs.iter().zip(out.chunks_mut(per)) {
                        (opts.transform)(&decode(f)?, opts, o);
                    }
                    Ok(())
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err(Error::msg("a captcha decoding thread panicked")))
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(Captchas {
        images: Tensor::from_slice(&pixels).view([files.len() as i64, 1, opts.height, opts.width]),
        alphabet: Alphabet::from_labels(&labels),
        labels,
        source: Source::Dir(dir.to_path_buf()),
        ignored,
    })
}

fn decode(path: &Path) -> Result<GrayImage> {
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::msg(format!("{}: {e}", show_path(path))))?
        .decode()
        .map_err(|e| {
            Error::msg(format!(
                "{}: corrupt or truncated image ({e}); replace the file (see data/README.md)",
                show_path(path)
            ))
        })?;
    Ok(img.into_luma8())
}

fn check_labels(files: &[PathBuf], opts: &CaptchaOpts) -> Result<Vec<String>> {
    let mut labels = Vec::with_capacity(files.len());
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).ok_or_else(|| {
            Error::msg(format!(
                "{}: the file name is not valid UTF-8 text",
                show_path(f)
            ))
        })?;
        labels.push(stem.to_string());
    }
    let len = opts.label_len.unwrap_or_else(|| {
        let mut counts = std::collections::BTreeMap::new();
        for l in &labels {
            *counts.entry(l.chars().count()).or_insert(0usize) += 1;
        }
        counts
            .into_iter()
            .max_by_key(|&(len, n)| (n, std::cmp::Reverse(len)))
            .map_or(0, |(len, _)| len)
    });
    let alphabet = opts.alphabet.as_deref().map(Alphabet::new);
    for (f, l) in files.iter().zip(&labels) {
        let n = l.chars().count();
        if n != len {
            return Err(Error::msg(format!(
                "{}: label {l:?} has {n} characters, expected {len}",
                show_path(f)
            )));
        }
        for c in l.chars() {
            let ok = match &alphabet {
                Some(a) => a.index(c).is_some(),
                None => c.is_alphanumeric(),
            };
            if !ok {
                return Err(Error::msg(match &alphabet {
                    Some(a) => format!(
                        "{}: label {l:?} has {c:?}, which is not in the captcha alphabet \"{a}\"",
                        show_path(f)
                    ),
                    None => format!(
                        "{}: label {l:?} has {c:?}, which is not a letter or digit",
                        show_path(f)
                    ),
                }));
            }
        }
    }
    Ok(labels)
}
