//! What a captcha is, wherever it comes from (a folder or [`super::synth`]): its
//! alphabet and label length, the text <-> index encoding, and how an image becomes
//! the float input (size, resizing, range).

use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::GrayImage;
use std::fmt;
use tch::Tensor;

/// The 19 symbols of the captcha_images_v2 set.
pub const CAPTCHA_ALPHABET: &str = "2345678bcdefgmnpwxy";
/// Characters per captcha label.
pub const CAPTCHA_LEN: usize = 5;
/// A sorted set of characters with text <-> index encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alphabet {
    chars: Vec<char>,
}

impl Alphabet {
    /// The sorted unique characters of `s`.
    pub fn new(s: &str) -> Alphabet {
        let mut chars: Vec<char> = s.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Alphabet { chars }
    }

    /// The sorted unique characters of all labels.
    pub fn from_labels(labels: &[String]) -> Alphabet {
        Alphabet::new(&labels.concat())
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The index of `c`, if it is in the alphabet.
    pub fn index(&self, c: char) -> Option<usize> {
        self.chars.binary_search(&c).ok()
    }

    /// Indices of the characters of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        text.chars()
            .map(|c| {
                self.index(c).map(|i| i as i64).ok_or_else(|| {
                    Error::msg(format!(
                        "label {text:?}: {c:?} is not in the alphabet \"{self}\""
                    ))
                })
            })
            .collect()
    }

    /// `[N, L]` i64 indices of labels that all have `L` characters.
    pub fn encode_all(&self, labels: &[String]) -> Result<Tensor> {
        let len = labels.first().map_or(0, |l| l.chars().count());
        let mut out = Vec::with_capacity(labels.len() * len);
        for l in labels {
            if l.chars().count() != len {
                return Err(Error::msg(format!(
                    "label {l:?} has {} characters, expected {len} like {:?}",
                    l.chars().count(),
                    labels[0]
                )));
            }
            out.extend(self.encode(l)?);
        }
        Ok(Tensor::from_slice(&out).view([labels.len() as i64, len as i64]))
    }

    /// The text of `indices`; an index outside the alphabet becomes `?`.
    pub fn decode(&self, indices: &[i64]) -> String {
        indices
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.chars.get(i))
                    .copied()
                    .unwrap_or('?')
            })
            .collect()
    }
}

impl fmt::Display for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chars.iter().try_for_each(|c| write!(f, "{c}"))
    }
}

/// How a captcha folder is read.
#[derive(Debug, Clone)]
pub struct CaptchaOpts {
    /// Output height and width; images of another size are resized with `filter`.
    pub height: i64,
    pub width: i64,
    pub filter: FilterType,
    /// Characters allowed in labels (`None`: any letter or digit).
    pub alphabet: Option<String>,
    /// Characters per label (`None`: the most common length in the folder).
    pub label_len: Option<usize>,
    /// Turns one decoded image into `height * width` floats (row-major).
    pub transform: Transform,
}

/// A captcha transform: decoded image, the options (size, filter), output floats.
pub type Transform = fn(&GrayImage, &CaptchaOpts, &mut [f32]);

impl Default for CaptchaOpts {
    fn default() -> Self {
        CaptchaOpts {
            height: 50,
            width: 200,
            filter: FilterType::Triangle,
            alphabet: Some(CAPTCHA_ALPHABET.into()),
            label_len: Some(CAPTCHA_LEN),
            transform: default_transform,
        }
    }
}

impl CaptchaOpts {
    pub fn size(h: i64, w: i64, filter: FilterType) -> Self {
        CaptchaOpts {
            height: h,
            width: w,
            filter,
            ..Default::default()
        }
    }
}

pub(crate) fn check_size(opts: &CaptchaOpts) -> Result<()> {
    if opts.height <= 0 || opts.width <= 0 || opts.height > 4096 || opts.width > 4096 {
        return Err(Error::msg(format!(
            "captcha size {}x{} (HxW) must be between 1 and 4096 pixels each way",
            opts.height, opts.width
        )));
    }
    Ok(())
}

/// Resizes to `opts.height` x `opts.width` with `opts.filter` and maps pixel values
/// to [-1, 1] (`v / 127.5 - 1`); the DDPM notebook answers this transform itself.
pub fn default_transform(img: &GrayImage, opts: &CaptchaOpts, out: &mut [f32]) {
    let (w, h) = (opts.width as u32, opts.height as u32);
    let resized;
    let img = if img.dimensions() == (w, h) {
        img
    } else {
        resized = image::imageops::resize(img, w, h, opts.filter);
        &resized
    };
    for (o, p) in out.iter_mut().zip(img.as_raw()) {
        *o = f32::from(*p) / 127.5 - 1.0;
    }
}
