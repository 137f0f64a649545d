//! The captchas' own font, fitted from labelled images: one ink image per character, its
//! advance width, and where each glyph of each image sits. It gives the conditional DDPM a
//! picture of a requested text in the captchas' font and proportional spacing (a glyph
//! template, as in GlyphControl, Yang et al. 2023), and a layout prior to draw positions
//! from (layout first, then the image, as in TextDiffuser, Chen et al. 2023).
//!
//! The fit alternates three least-squares steps on the images' ink (each pixel's darkness
//! against the brightest pixel of its column, which removes the background's gradient):
//! 1. each character's glyph is the mean of the ink around its occurrences, with the
//!    other glyphs of the image subtracted;
//! 2. each character's advance is the mean distance from its origin to the next glyph's;
//! 3. each glyph's origin is moved, left to right, to the shift (within `search` pixels
//!    of where the previous glyph and its advance put it) that best matches its glyph.
//!
//! Glyphs and advances come from the training images only; origins are found for all.

use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Settings of [`FittedFont::fit`], in pixels of the images it is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FontFitConfig {
    /// Width of each glyph's box.
    pub glyph_width: i64,
    /// Columns of the box left of the glyph's origin.
    pub margin: i64,
    /// First guess of the first origin and of every advance.
    pub start: i64,
    pub advance: i64,
    /// Alternations of the three steps.
    pub iterations: usize,
    /// Search radius of step 3 (the first glyph searches `search + first_extra`).
    pub search: i64,
    pub first_extra: i64,
}

impl Default for FontFitConfig {
    /// For the captchas at their real 50x200.
    fn default() -> Self {
        FontFitConfig {
            glyph_width: 44,
            margin: 6,
            start: 22,
            advance: 22,
            iterations: 8,
            search: 8,
            first_extra: 8,
        }
    }
}

/// A fitted font and the layout of every image it was fitted on.
#[derive(Debug)]
pub struct FittedFont {
    /// Ink in [0, 1] of each character, `[V + 1, H, glyph_width]`; row `V` (the null
    /// character) is blank.
    pub glyphs: Tensor,
    /// Advance width of each character (pixels; the null character's is 0).
    pub advances: Vec<f64>,
    /// Origin of every glyph of every image, `[N, L]` (int64, pixels).
    pub origins: Tensor,
    /// The character codes of the images, `[N, L]`.
    pub codes: Tensor,
    pub cfg: FontFitConfig,
    /// Height and width of the images fitted on.
    pub size: (i64, i64),
    /// Mean squared ink error of the fitted layout on the training images.
    pub train_error: f64,
}

impl FittedFont {
    /// Fits the font on `images` `[N, 1, H, W]` in [-1, 1] (ink dark) with character codes
    /// `codes` `[N, L]` in `0..vocab`; glyphs and advances from the rows `train` only.
    pub fn fit(
        images: &Tensor,
        codes: &Tensor,
        vocab: i64,
        train: &[i64],
        cfg: FontFitConfig,
    ) -> Result<FittedFont> {
        let (n, c, h, w) = images.size4().map_err(|_| {
            Error::msg(format!(
                "font fit: images must be [N, 1, H, W], got {:?}",
                images.size()
            ))
        })?;
        let (cn, l) = codes.size2().map_err(|_| {
            Error::msg(format!(
                "font fit: codes must be [N, L], got {:?}",
                codes.size()
            ))
        })?;
        if c != 1 || cn != n || train.is_empty() || train.iter().any(|&i| i < 0 || i >= n) {
            return Err(Error::msg(format!(
                "font fit: {n} images with {c} channels, {cn} code rows and {} training rows (one channel, one code row per image, training rows in 0..{n})",
                train.len()
            )));
        }
        let (lo, hi) = (codes.min().int64_value(&[]), codes.max().int64_value(&[]));
        if lo < 0 || hi >= vocab {
            return Err(Error::msg(format!(
                "font fit: character codes in {lo}..={hi}, expected 0..{vocab}"
            )));
        }
        let x = (images.to_kind(Kind::Float).squeeze_dim(1) + 1.0) / 2.0;
        let ink = (x.amax([1i64].as_slice(), true) - &x).clamp_min(0.0);
        let codes = codes.to_kind(Kind::Int64);
        let tr = Tensor::from_slice(train).to_device(images.device());
        let geom = Geometry {
            n,
            h,
            w,
            gw: cfg.glyph_width,
            margin: cfg.margin,
        };
        let origins = (Tensor::arange(l, (Kind::Int64, images.device())) * cfg.advance + cfg.start)
            .unsqueeze(0)
            .repeat([n, 1]);
        let mut glyphs = Tensor::zeros(
            [vocab + 1, h, cfg.glyph_width],
            (Kind::Float, images.device()),
        );
        let mut advances = vec![cfg.advance as f64; vocab as usize];
        for _ in 0..cfg.iterations {
            // 1. Glyphs: the mean ink around each occurrence, first alone, then with the
            // other glyphs of the image subtracted.
            for sweep in 0..2 {
                let mut sum = Tensor::zeros(
                    [vocab + 1, h, cfg.glyph_width],
                    (Kind::Float, images.device()),
                );
                let mut count = Tensor::zeros([vocab + 1], (Kind::Float, images.device()));
                for k in 0..l {
                    let res = if sweep == 0 {
                        ink.shallow_clone()
                    } else {
                        &ink - geom.place(&glyphs, &codes, &origins, Some(k))
                    };
                    let crops = geom.crops(&res, &origins.select(1, k)).index_select(0, &tr);
                    let ck = codes.select(1, k).index_select(0, &tr);
                    let _ = sum.index_add_(0, &ck, &crops);
                    let _ = count.index_add_(
                        0,
                        &ck,
                        &Tensor::ones([train.len() as i64], (Kind::Float, images.device())),
                    );
                }
                glyphs = (sum / count.clamp_min(1.0).view([-1, 1, 1])).clamp_min(0.0);
                let _ = glyphs.get(vocab).zero_();
            }
            // 2. Advances: mean distance to the next origin.
            let gaps = (origins.narrow(1, 1, l - 1) - origins.narrow(1, 0, l - 1))
                .to_kind(Kind::Float)
                .index_select(0, &tr)
                .flatten(0, 1);
            let first = codes.narrow(1, 0, l - 1).index_select(0, &tr).flatten(0, 1);
            let sum =
                Tensor::zeros([vocab], (Kind::Float, images.device())).index_add(0, &first, &gaps);
            let count = Tensor::zeros([vocab], (Kind::Float, images.device())).index_add(
                0,
                &first,
                &gaps.ones_like(),
            );
            advances = Vec::<f64>::try_from((sum / count.clamp_min(1.0)).to_kind(Kind::Double))?;
            let adv = Tensor::from_slice(&advances)
                .round()
                .to_kind(Kind::Int64)
                .to_device(images.device());
            // 3. Origins, left to right, each near where the previous glyph puts it.
            for k in 0..l {
                let res = &ink - geom.place(&glyphs, &codes, &origins, Some(k));
                let (pred, radius) = if k == 0 {
                    (origins.select(1, 0), cfg.search + cfg.first_extra)
                } else {
                    (
                        origins.select(1, k - 1) + adv.index_select(0, &codes.select(1, k - 1)),
                        cfg.search,
                    )
                };
                let glyph = glyphs.index_select(0, &codes.select(1, k));
                let mut best = Tensor::full([n], f64::NEG_INFINITY, (Kind::Float, images.device()));
                let mut best_d = Tensor::zeros([n], (Kind::Int64, images.device()));
                for d in -radius..=radius {
                    // Least squares with the glyph's own energy fixed: the best shift has the
                    // largest correlation with what is left of the image.
                    let score = (geom.crops(&res, &(&pred + d)) * &glyph).sum_dim_intlist(
                        [1i64, 2].as_slice(),
                        false,
                        Kind::Float,
                    );
                    let better = score.gt_tensor(&best);
                    best = score.where_self(&better, &best);
                    best_d = best_d.masked_fill(&better, d);
                }
                let mut o = pred + best_d;
                if k == 0 {
                    o = o.clamp(cfg.margin, w / 3);
                }
                origins.select(1, k).copy_(&o);
            }
        }
        let err = (&ink - geom.place(&glyphs, &codes, &origins, None))
            .index_select(0, &tr)
            .square()
            .mean(Kind::Float);
        advances.push(0.0);
        Ok(FittedFont {
            glyphs,
            advances,
            origins,
            codes,
            cfg,
            size: (h, w),
            train_error: err.double_value(&[]),
        })
    }

    /// First origin of each fitted image, `[N]`, and each glyph's offset from where the
    /// advances put it, `[N, L]` (the jitter of the captcha generator): the layout prior.
    pub fn layout_of(&self) -> (Tensor, Tensor) {
        let start = self.origins.select(1, 0);
        (
            start.shallow_clone(),
            &self.origins - self.proportional(&self.codes, &start),
        )
    }

    /// Origins of `codes` `[B, L]` set from the start and advances alone.
    pub fn proportional(&self, codes: &Tensor, start: &Tensor) -> Tensor {
        let adv = Tensor::from_slice(&self.advances)
            .to_device(codes.device())
            .index_select(0, &codes.flatten(0, 1))
            .view_as(codes);
        (start.unsqueeze(1).to_kind(Kind::Double) + adv.cumsum(1, Kind::Double) - adv)
            .round()
            .to_kind(Kind::Int64)
    }

    /// Origins for `codes` `[B, L]` with the start and jitter of the fitted images `donors`
    /// `[B]` (int64): a requested text laid out as the captcha generator lays out its texts.
    pub fn layout_like(&self, codes: &Tensor, donors: &Tensor) -> Tensor {
        let (start, jitter) = self.layout_of();
        let donors = donors.to_device(start.device());
        self.proportional(codes, &start.index_select(0, &donors)) + jitter.index_select(0, &donors)
    }

    /// The template of `codes` `[B, L]` with glyph origins `origins` `[B, L]`: ink drawn at
    /// the fitted size, resized to `h x w` (bilinear, antialiased), as an image in [-1, 1]
    /// (white 1, ink -1) `[B, 1, h, w]`.
    pub fn render(&self, codes: &Tensor, origins: &Tensor, h: i64, w: i64) -> Tensor {
        let (n, _) = codes.size2().expect("codes [B, L]");
        let geom = Geometry {
            n,
            h: self.size.0,
            w: self.size.1,
            gw: self.cfg.glyph_width,
            margin: self.cfg.margin,
        };
        let ink = geom
            .place(
                &self.glyphs,
                &codes.to_device(self.glyphs.device()),
                &origins.to_device(self.glyphs.device()),
                None,
            )
            .unsqueeze(1);
        let ink = if (h, w) == self.size {
            ink
        } else {
            ink.internal_upsample_bilinear2d_aa([h, w], false, None, None)
        };
        1.0 - ink.clamp(0.0, 1.0) * 2.0
    }

    pub fn device(&self) -> Device {
        self.glyphs.device()
    }
}

/// Placing glyph boxes on, and cutting them out of, `[N, H, W]` images.
struct Geometry {
    n: i64,
    h: i64,
    w: i64,
    gw: i64,
    margin: i64,
}

impl Geometry {
    /// Column indices `[N, H, gw]` of the boxes at `origins` `[N]` in the image padded by
    /// `gw` on both sides.
    fn columns(&self, origins: &Tensor) -> Tensor {
        let cols = (origins - self.margin + self.gw).unsqueeze(1)
            + Tensor::arange(self.gw, (Kind::Int64, origins.device())).unsqueeze(0);
        cols.clamp(0, self.w + 2 * self.gw - 1)
            .unsqueeze(1)
            .expand([self.n, self.h, self.gw], false)
    }

    /// The sum of the glyphs of `codes` at `origins`, all slots but `skip`.
    fn place(
        &self,
        glyphs: &Tensor,
        codes: &Tensor,
        origins: &Tensor,
        skip: Option<i64>,
    ) -> Tensor {
        let mut canvas = Tensor::zeros(
            [self.n, self.h, self.w + 2 * self.gw],
            (Kind::Float, glyphs.device()),
        );
        for k in 0..codes.size()[1] {
            if Some(k) != skip {
                let g = glyphs.index_select(0, &codes.select(1, k));
                let _ = canvas.scatter_add_(2, &self.columns(&origins.select(1, k)), &g);
            }
        }
        canvas.narrow(2, self.gw, self.w)
    }

    /// The boxes at `origins` `[N]` cut out of `x` `[N, H, W]` (zero outside the image).
    fn crops(&self, x: &Tensor, origins: &Tensor) -> Tensor {
        x.constant_pad_nd([self.gw, self.gw])
            .gather(2, &self.columns(origins), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-glyph font: a bar and a box of different widths; images built from known
    /// origins must give those origins and advances back.
    #[test]
    fn recovers_a_known_layout() {
        let (h, w, l) = (10i64, 80i64, 3i64);
        let bar = Tensor::zeros([h, 12], (Kind::Float, Device::Cpu));
        let _ = bar.narrow(0, 2, 6).narrow(1, 2, 3).fill_(1.0);
        let boxg = Tensor::zeros([h, 12], (Kind::Float, Device::Cpu));
        let _ = boxg.narrow(0, 2, 6).narrow(1, 2, 8).fill_(1.0);
        let glyphs = Tensor::stack(
            &[
                bar,
                boxg,
                Tensor::zeros([h, 12], (Kind::Float, Device::Cpu)),
            ],
            0,
        );
        let advances = [7i64, 13];
        let texts: Vec<[i64; 3]> = (0..40).map(|i| [i % 2, (i / 2) % 2, (i / 4) % 2]).collect();
        let codes = Tensor::from_slice(&texts.concat()).view([40, l]);
        let origins: Vec<i64> = texts
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let mut o = 6 + (i as i64 % 3);
                t.iter().map(move |&c| {
                    let here = o;
                    o += advances[c as usize];
                    here
                })
            })
            .collect();
        let origins = Tensor::from_slice(&origins).view([40, l]);
        let geom = Geometry {
            n: 40,
            h,
            w,
            gw: 12,
            margin: 2,
        };
        let images = 1.0
            - geom
                .place(&glyphs, &codes, &origins, None)
                .clamp(0.0, 1.0)
                .unsqueeze(1)
                * 2.0;
        let cfg = FontFitConfig {
            glyph_width: 12,
            margin: 2,
            start: 6,
            advance: 10,
            iterations: 4,
            search: 4,
            first_extra: 2,
        };
        let train: Vec<i64> = (0..40).collect();
        let font = FittedFont::fit(&images, &codes, 2, &train, cfg).unwrap();
        assert_eq!(font.advances, vec![7.0, 13.0, 0.0]);
        assert!(font.origins.equal(&origins), "{}", font.origins);
        // The glyphs keep a trace of their neighbours from the first sweep.
        assert!(font.train_error < 0.01, "{}", font.train_error);
        let again = font.render(&codes, &origins, h, w);
        assert!((again - &images).abs().mean(Kind::Float).double_value(&[]) < 0.05);
        let donors = Tensor::from_slice(&[3i64, 4]);
        let laid = font.layout_like(&codes.narrow(0, 3, 2), &donors);
        assert!(laid.equal(&origins.narrow(0, 3, 2)), "{laid}");
    }

    #[test]
    fn rejects_codes_outside_the_vocabulary() {
        let images = Tensor::zeros([2, 1, 10, 40], (Kind::Float, Device::Cpu));
        let codes = Tensor::from_slice(&[0i64, 1, 5, 0]).view([2, 2]);
        let err =
            FittedFont::fit(&images, &codes, 3, &[0, 1], FontFitConfig::default()).unwrap_err();
        assert!(err.to_string().contains("expected 0..3"), "{err}");
    }
}
