//! Embedded synthetic datasets, used when no real data is found: captchas in the
//! look of captcha_images_v2 and MNIST-like digits, both rendered from the DejaVu
//! fonts that the `dejavu` crate embeds.
//!
//! Bit-identical for the same seed: the generator is ChaCha8 and the geometry uses
//! only IEEE basic operations (the sine below is a polynomial, not the platform's
//! libm), so the images do not depend on the machine either.

use super::batch::{below, shuffle};
use super::format::{
    check_size, default_transform, Alphabet, CaptchaOpts, CAPTCHA_ALPHABET, CAPTCHA_LEN,
};
use crate::error::{Error, Result};
use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::GrayImage;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;
use tch::{Kind, Tensor};

/// Captcha width and height (the real set's).
pub const CAPTCHA_W: u32 = 200;
pub const CAPTCHA_H: u32 = 50;
/// MNIST's side.
pub const DIGIT_SIDE: usize = 28;

// ---------------------------------------------------------------- randomness

fn unif(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

fn range(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unif(rng)
}

/// Approximately standard normal: Irwin-Hall sum of four uniforms, rescaled.
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let s = unif(rng) + unif(rng) + unif(rng) + unif(rng);
    (s - 2.0) * 1.732_050_8
}

/// The generator of item `i` of a set: ChaCha8 stream `i + 1` of `seed` (stream 0
/// draws the set's labels).
fn item_rng(seed: u64, i: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i as u64 + 1);
    rng
}

const PI: f32 = std::f32::consts::PI;

/// Portable sine: reduction to [-pi/2, pi/2] and the Taylor polynomial of degree 9
/// (error below 4e-6).
fn psin(x: f32) -> f32 {
    let tau = 2.0 * PI;
    let mut x = x - tau * (x / tau).round();
    if x > PI / 2.0 {
        x = PI - x;
    } else if x < -PI / 2.0 {
        x = -PI - x;
    }
    let x2 = x * x;
    x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))))
}

fn pcos(x: f32) -> f32 {
    psin(x + PI / 2.0)
}

// ---------------------------------------------------------------- glyphs

fn fonts() -> &'static [FontRef<'static>] {
    static FONTS: OnceLock<Vec<FontRef<'static>>> = OnceLock::new();
    FONTS.get_or_init(|| {
        [
            dejavu::sans::regular(),
            dejavu::sans_condensed::regular(),
            dejavu::sans::oblique(),
            dejavu::sans_mono::regular(),
            dejavu::sans_condensed::oblique(),
        ]
        .into_iter()
        .filter_map(|b| FontRef::try_from_slice(b).ok())
        .collect()
    })
}

/// A rasterised glyph: coverage in [0, 1]; `(x0, y0)` is the glyph-space position
/// (origin on the baseline, y down) of the raster's top-left corner.
struct Raster {
    w: usize,
    h: usize,
    px: Vec<f32>,
    x0: f32,
    y0: f32,
    advance: f32,
}

impl Raster {
    fn new(font: &FontRef, c: char, size: f32) -> Option<Raster> {
        let scale = PxScale::from(size);
        let id = font.glyph_id(c);
        let advance = font.as_scaled(scale).h_advance(id);
        let og = font.outline_glyph(id.with_scale_and_position(scale, point(0.0, 0.0)))?;
        let b = og.px_bounds();
        let (w, h) = (b.width() as usize, b.height() as usize);
        let mut px = vec![0f32; w * h];
        og.draw(|x, y, c| {
            if let Some(p) = px.get_mut(y as usize * w + x as usize) {
                *p = c.clamp(0.0, 1.0);
            }
        });
        Some(Raster {
            w,
            h,
            px,
            x0: b.min.x,
            y0: b.min.y,
            advance,
        })
    }

    /// Bilinear coverage at glyph-space point `(u, v)`.
    fn at(&self, u: f32, v: f32) -> f32 {
        let fx = u - self.x0 - 0.5;
        let fy = v - self.y0 - 0.5;
        let (ix, iy) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - ix, fy - iy);
        let (ix, iy) = (ix as i64, iy as i64);
        let get = |x: i64, y: i64| {
            if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 {
                0.0
            } else {
                self.px[y as usize * self.w + x as usize]
            }
        };
        let top = get(ix, iy) * (1.0 - tx) + get(ix + 1, iy) * tx;
        let bottom = get(ix, iy + 1) * (1.0 - tx) + get(ix + 1, iy + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    fn center(&self) -> (f32, f32) {
        (self.x0 + self.w as f32 / 2.0, self.y0 + self.h as f32 / 2.0)
    }
}

/// `x = a u + b v + c`, `y = d u + e v + f`: glyph space to canvas.
#[derive(Clone, Copy)]
struct Affine([f32; 6]);

impl Affine {
    /// Maps glyph point `from` to canvas point `to`, with rotation `rot` (radians),
    /// horizontal shear `shear` and scales `sx`, `sy`.
    fn place(from: (f32, f32), to: (f32, f32), rot: f32, shear: f32, sx: f32, sy: f32) -> Self {
        let (s, c) = (psin(rot), pcos(rot));
        // R(rot) * [[1, shear], [0, 1]] * diag(sx, sy)
        let (a, b) = (c * sx, (c * shear - s) * sy);
        let (d, e) = (s * sx, (s * shear + c) * sy);
        let cx = to.0 - (a * from.0 + b * from.1);
        let cy = to.1 - (d * from.0 + e * from.1);
        Affine([a, b, cx, d, e, cy])
    }

    fn apply(&self, u: f32, v: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (a * u + b * v + c, d * u + e * v + f)
    }

    fn inverse(&self) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        let det = a * e - b * d;
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Affine([ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)])
    }
}

/// Smooth displacement of sampling points (`a`: amplitude in pixels, `k`: spatial
/// frequency in radians per pixel, `p`: phases).
#[derive(Clone, Copy, Default)]
struct Warp {
    a: f32,
    k: f32,
    p: (f32, f32),
}

/// An ink layer: coverage in [0, 1].
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![0.0; w * h],
        }
    }

    /// Draws glyph `r` through `m`; `fuzz` jitters each sample by up to that many
    /// glyph pixels (the ragged, speckled characters of the real captchas).
    fn stamp(&mut self, r: &Raster, m: Affine, warp: Warp, fuzz: f32, rng: &mut ChaCha8Rng) {
        let (x1, y1) = (r.x0 + r.w as f32, r.y0 + r.h as f32);
        let corners = [(r.x0, r.y0), (x1, r.y0), (r.x0, y1), (x1, y1)].map(|(u, v)| m.apply(u, v));
        let pad = 2.0 + warp.a + fuzz;
        let lo_x = corners.iter().map(|p| p.0).fold(f32::MAX, f32::min) - pad;
        let hi_x = corners.iter().map(|p| p.0).fold(f32::MIN, f32::max) + pad;
        let lo_y = corners.iter().map(|p| p.1).fold(f32::MAX, f32::min) - pad;
        let hi_y = corners.iter().map(|p| p.1).fold(f32::MIN, f32::max) + pad;
        let inv = m.inverse();
        let xs = (lo_x.max(0.0) as usize)..(hi_x.min(self.w as f32).max(0.0) as usize);
        let ys = (lo_y.max(0.0) as usize)..(hi_y.min(self.h as f32).max(0.0) as usize);
        for y in ys {
            for x in xs.clone() {
                let (mut px, mut py) = (x as f32 + 0.5, y as f32 + 0.5);
                if warp.a > 0.0 {
                    px += warp.a * psin(warp.k * py + warp.p.0);
                    py += warp.a * psin(warp.k * px + warp.p.1);
                }
                let (u, v) = inv.apply(px, py);
                let mut s = r.at(u, v);
                if fuzz > 0.0 {
                    let du = fuzz * (2.0 * unif(rng) - 1.0);
                    let dv = fuzz * (2.0 * unif(rng) - 1.0);
                    s = s.max(r.at(u + du, v + dv));
                }
                let p = &mut self.px[y * self.w + x];
                *p = p.max(s);
            }
        }
    }

    /// An anti-aliased polyline of the given width.
    fn stroke(&mut self, pts: &[(f32, f32)], width: f32) {
        let half = width / 2.0;
        for seg in pts.windows(2) {
            let ((ax, ay), (bx, by)) = (seg[0], seg[1]);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = (dx * dx + dy * dy).max(1e-6);
            let lo_x = (ax.min(bx) - half - 1.0).max(0.0) as usize;
            let hi_x = (ax.max(bx) + half + 2.0).clamp(0.0, self.w as f32) as usize;
            let lo_y = (ay.min(by) - half - 1.0).max(0.0) as usize;
            let hi_y = (ay.max(by) + half + 2.0).clamp(0.0, self.h as f32) as usize;
            for y in lo_y..hi_y {
                for x in lo_x..hi_x {
                    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                    let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
                    let (ex, ey) = (px - ax - t * dx, py - ay - t * dy);
                    let d = (ex * ex + ey * ey).sqrt();
                    let c = (half + 0.5 - d).clamp(0.0, 1.0);
                    let p = &mut self.px[y * self.w + x];
                    *p = p.max(c);
                }
            }
        }
    }

    /// Blends in a separable [1, 2, 1] / 4 blur (edges clamped) by `amount` in [0, 1].
    fn blur(&mut self, amount: f32) {
        let (w, h) = (self.w, self.h);
        let mut tmp = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let l = self.px[y * w + x.saturating_sub(1)];
                let r = self.px[y * w + (x + 1).min(w - 1)];
                tmp[y * w + x] = 0.25 * l + 0.5 * self.px[y * w + x] + 0.25 * r;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let u = tmp[y.saturating_sub(1) * w + x];
                let d = tmp[(y + 1).min(h - 1) * w + x];
                let b = 0.25 * u + 0.5 * tmp[y * w + x] + 0.25 * d;
                self.px[y * w + x] += amount * (b - self.px[y * w + x]);
            }
        }
    }

    /// Thickens strokes: each pixel takes `k` times its brightest 4-neighbour if larger.
    fn thicken(&mut self, k: f32) {
        let (w, h) = (self.w, self.h);
        let src = self.px.clone();
        for y in 0..h {
            for x in 0..w {
                let mut m = 0f32;
                if x > 0 {
                    m = m.max(src[y * w + x - 1]);
                }
                if x + 1 < w {
                    m = m.max(src[y * w + x + 1]);
                }
                if y > 0 {
                    m = m.max(src[(y - 1) * w + x]);
                }
                if y + 1 < h {
                    m = m.max(src[(y + 1) * w + x]);
                }
                let p = &mut self.px[y * w + x];
                *p = p.max(k * m);
            }
        }
    }
}

fn bezier(p0: (f32, f32), p1: (f32, f32), p2: (f32, f32), n: usize) -> Vec<(f32, f32)> {
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let (a, b, c) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
            (
                a * p0.0 + b * p1.0 + c * p2.0,
                a * p0.1 + b * p1.1 + c * p2.1,
            )
        })
        .collect()
}

// ---------------------------------------------------------------- captchas

/// Font size at which captcha glyphs are rasterised (DejaVu Sans).
const CAPTCHA_PX: f32 = 46.0;
/// The captchas' mean baseline, in pixels from the top.
const TEXT_BASELINE: f32 = 41.0;

fn captcha_glyphs() -> &'static [Option<Raster>] {
    static GLYPHS: OnceLock<Vec<Option<Raster>>> = OnceLock::new();
    GLYPHS.get_or_init(|| {
        CAPTCHA_ALPHABET
            .chars()
            .map(|c| fonts().first().and_then(|f| Raster::new(f, c, CAPTCHA_PX)))
            .collect()
    })
}

fn render_captcha(label: &[usize], rng: &mut ChaCha8Rng) -> GrayImage {
    let (w, h) = (CAPTCHA_W as usize, CAPTCHA_H as usize);
    let glyphs = captcha_glyphs();
    let mut ink = Canvas::new(w, h);
    let mut pen = range(rng, 27.0, 34.0);
    let baseline = range(rng, TEXT_BASELINE - 2.0, TEXT_BASELINE + 2.0);
    for &k in label {
        let scale = range(rng, 0.9, 1.04);
        let sx = scale * range(rng, 0.9, 1.08);
        let rot = range(rng, -0.16, 0.16);
        let dy = range(rng, -2.5, 2.5);
        let fuzzy = unif(rng) < 0.35;
        let fuzz = if fuzzy { range(rng, 1.5, 2.5) } else { 0.0 };
        let warp = Warp {
            a: range(rng, 0.0, 0.8),
            k: range(rng, 0.15, 0.35),
            p: (range(rng, 0.0, 2.0 * PI), range(rng, 0.0, 2.0 * PI)),
        };
        let Some(Some(r)) = glyphs.get(k) else {
            continue;
        };
        let from = (r.advance / 2.0, -0.35 * CAPTCHA_PX);
        let to = (
            pen + r.advance * sx / 2.0,
            baseline + dy - 0.35 * CAPTCHA_PX * scale,
        );
        ink.stamp(
            r,
            Affine::place(from, to, rot, 0.0, sx, scale),
            warp,
            fuzz,
            rng,
        );
        pen += r.advance * sx * range(rng, 0.8, 0.92);
    }
    ink.thicken(0.6);
    // The long strike-through line, slightly bowed, across the whole text.
    let p0 = (range(rng, 15.0, 22.0), range(rng, 12.0, 34.0));
    let p2 = (range(rng, 174.0, 186.0), range(rng, 12.0, 40.0));
    let p1 = (
        (p0.0 + p2.0) / 2.0,
        (p0.1 + p2.1) / 2.0 + range(rng, -7.0, 7.0),
    );
    ink.stroke(&bezier(p0, p1, p2, 24), range(rng, 2.0, 2.8));
    // The hook that starts the line at its left end, from above or below.
    let up = if unif(rng) < 0.5 { -1.0 } else { 1.0 };
    let q0 = (
        p0.0 + range(rng, -3.0, 12.0),
        (p0.1 + up * range(rng, 10.0, 22.0)).clamp(1.0, 49.0),
    );
    let q1 = (
        (q0.0 + p0.0) / 2.0 + range(rng, -7.0, 7.0),
        (q0.1 + p0.1) / 2.0 + range(rng, -5.0, 5.0),
    );
    ink.stroke(&bezier(q0, q1, p0, 12), range(rng, 2.0, 2.8));
    ink.blur(range(rng, 0.0, 0.5));
    // Background: a left-to-right gradient from light grey to near white.
    let left = range(rng, 188.0, 196.0);
    let right = range(rng, 246.0, 252.0);
    let dark = range(rng, 0.0, 12.0);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let bg =
                left + (right - left) * x as f32 / (w - 1) as f32 + 3.0 * y as f32 / (h - 1) as f32;
            let a = ink.px[y * w + x].min(1.0);
            let v = bg * (1.0 - a) + dark * a + normal(rng);
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage::from_raw(CAPTCHA_W, CAPTCHA_H, out).unwrap_or_default()
}

/// One synthetic captcha of `label` (5 characters from [`CAPTCHA_ALPHABET`]): 200x50
/// grayscale, the same image for the same label and seed.
pub fn captcha(label: &str, seed: u64) -> Result<GrayImage> {
    let alphabet = Alphabet::new(CAPTCHA_ALPHABET);
    let idx: Option<Vec<usize>> = label.chars().map(|c| alphabet.index(c)).collect();
    match idx {
        Some(idx) if idx.len() == CAPTCHA_LEN => Ok(render_captcha(
            &idx,
            &mut ChaCha8Rng::seed_from_u64(seed),
        )),
        _ => Err(Error::msg(format!(
            "synthetic captcha label {label:?} must be {CAPTCHA_LEN} characters from \"{CAPTCHA_ALPHABET}\""
        ))),
    }
}

/// `n` synthetic captchas with random labels, as `(label, image)` pairs. Item `i`
/// does not depend on `n`.
pub fn captchas(n: usize, seed: u64) -> Vec<(String, GrayImage)> {
    let chars: Vec<char> = CAPTCHA_ALPHABET.chars().collect();
    let one = |i: usize| {
        let mut rng = item_rng(seed, i);
        let idx: Vec<usize> = (0..CAPTCHA_LEN)
            .map(|_| below(&mut rng, chars.len() as u64) as usize)
            .collect();
        let label: String = idx.iter().map(|&k| chars[k]).collect();
        (label, render_captcha(&idx, &mut rng))
    };
    par_map(n, one)
}

/// The glyphs of `text` in plain DejaVu Sans, black on white, 200x50 like the captchas:
/// character k of n sits centred in slot k of n equal slots across the text band
/// `band = (u0, u1)` (fractions of the width), on the synthetic captchas' text line, with no
/// distortion; a space leaves its slot empty. A spatial picture of what to draw where,
/// for conditioning a generator on text (glyph images as the condition: GlyphControl,
/// Yang et al. 2023).
pub fn text_template(text: &str, band: (f64, f64)) -> Result<GrayImage> {
    let (u0, u1) = band;
    if !((0.0..1.0).contains(&u0) && u0 < u1 && u1 <= 1.0) {
        return Err(Error::msg(format!(
            "text band {band:?} is not a part of the width; expected 0 <= u0 < u1 <= 1"
        )));
    }
    let font = fonts()
        .first()
        .ok_or_else(|| Error::msg("the embedded DejaVu Sans font did not load"))?;
    let n = text.chars().count().max(1);
    let slot = (u1 - u0) as f32 * CAPTCHA_W as f32 / n as f32;
    let mut ink = Canvas::new(CAPTCHA_W as usize, CAPTCHA_H as usize);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (k, c) in text.chars().enumerate() {
        if c == ' ' {
            continue;
        }
        let r = Raster::new(font, c, CAPTCHA_PX)
            .filter(|_| font.glyph_id(c).0 != 0)
            .ok_or_else(|| {
                Error::msg(format!(
                    "text {text:?}: DejaVu Sans has no glyph for {c:?} (character {})",
                    k + 1
                ))
            })?;
        let centre = u0 as f32 * CAPTCHA_W as f32 + slot * (k as f32 + 0.5);
        let sx = (0.95 * slot / r.advance).min(1.0);
        let place = Affine::place(
            (r.advance / 2.0, -0.35 * CAPTCHA_PX),
            (centre, TEXT_BASELINE - 0.35 * CAPTCHA_PX),
            0.0,
            0.0,
            sx,
            1.0,
        );
        ink.stamp(&r, place, Warp::default(), 0.0, &mut rng);
    }
    let px = ink
        .px
        .iter()
        .map(|a| (255.0 * (1.0 - a.min(1.0))).round() as u8)
        .collect();
    GrayImage::from_raw(CAPTCHA_W, CAPTCHA_H, px)
        .ok_or_else(|| Error::msg("text template: wrong pixel count"))
}

/// [`text_template`] of each text at `h` x `w`, resized and scaled as the captcha loader
/// does (triangle filter): `[N, 1, h, w]` f32 in [-1, 1], black -1.
pub fn text_templates(texts: &[String], band: (f64, f64), h: i64, w: i64) -> Result<Tensor> {
    let opts = CaptchaOpts::size(h, w, image::imageops::FilterType::Triangle);
    check_size(&opts)?;
    let per = (h * w) as usize;
    let mut out = vec![0f32; texts.len() * per];
    for (t, o) in texts.iter().zip(out.chunks_mut(per)) {
        default_transform(&text_template(t, band)?, &opts, o);
    }
    Ok(Tensor::from_slice(&out).view([texts.len() as i64, 1, h, w]))
}

/// Runs `f(0..n)` on a few threads, results in order.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = super::workers(n / 64);
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                s.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        jobs.into_iter()
            .flat_map(|j| j.join().unwrap_or_default())
            .collect()
    })
}

// ---------------------------------------------------------------- digits

/// Font size at which digits are rasterised (digit height about 19 px, as MNIST's
/// 20x20 box).
const DIGIT_PX: f32 = 31.0;

fn digit_glyphs() -> &'static [Vec<Option<Raster>>] {
    static GLYPHS: OnceLock<Vec<Vec<Option<Raster>>>> = OnceLock::new();
    GLYPHS.get_or_init(|| {
        fonts()
            .iter()
            .map(|f| ('0'..='9').map(|c| Raster::new(f, c, DIGIT_PX)).collect())
            .collect()
    })
}

fn render_digit(d: usize, rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let n = DIGIT_SIDE;
    let glyphs = digit_glyphs();
    let font = below(rng, glyphs.len().max(1) as u64) as usize;
    let scale = range(rng, 0.88, 1.08);
    let aspect = range(rng, 0.8, 1.15);
    let rot = range(rng, -0.25, 0.25);
    let shear = range(rng, -0.35, 0.35);
    let warp = Warp {
        a: range(rng, 0.0, 0.8),
        k: range(rng, 0.25, 0.5),
        p: (range(rng, 0.0, 2.0 * PI), range(rng, 0.0, 2.0 * PI)),
    };
    let thick = below(rng, 3);
    let Some(Some(r)) = glyphs.get(font).and_then(|g| g.get(d)) else {
        return;
    };
    let m = Affine::place(r.center(), (14.0, 14.0), rot, shear, scale * aspect, scale);
    let mut ink = Canvas::new(n, n);
    ink.stamp(r, m, warp, 0.0, rng);
    for k in [0.9, 0.6].iter().take(thick as usize) {
        ink.thicken(*k);
    }
    for p in ink.px.iter_mut() {
        *p = (1.6 * *p).min(1.0);
    }
    ink.blur(0.5);
    // Centre of mass at the centre, as MNIST (LeCun et al.) did.
    let (mut sum, mut cx, mut cy) = (0f32, 0f32, 0f32);
    for y in 0..n {
        for x in 0..n {
            let p = ink.px[y * n + x];
            sum += p;
            cx += p * (x as f32 + 0.5);
            cy += p * (y as f32 + 0.5);
        }
    }
    let (sx, sy) = if sum > 0.0 {
        (
            (14.0 - cx / sum).round() as i64,
            (14.0 - cy / sum).round() as i64,
        )
    } else {
        (0, 0)
    };
    let max = ink.px.iter().copied().fold(0f32, f32::max).max(1e-6);
    for y in 0..n as i64 {
        for x in 0..n as i64 {
            let (u, v) = (x - sx, y - sy);
            out[(y * n as i64 + x) as usize] = if u < 0 || v < 0 || u >= n as i64 || v >= n as i64 {
                0.0
            } else {
                // 8-bit levels, like the real files.
                (ink.px[(v * n as i64 + u) as usize] / max * 255.0).round() / 255.0
            };
        }
    }
}

/// `n` MNIST-like digits: images `[n, 1, 28, 28]` f32 in [0, 1] (white on black) and
/// labels `[n]` i64, ten balanced classes in shuffled order.
pub fn digits(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut labels: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
    shuffle(&mut labels, &mut ChaCha8Rng::seed_from_u64(seed));
    let per = DIGIT_SIDE * DIGIT_SIDE;
    let images: Vec<Vec<f32>> = par_map(n, |i| {
        let mut out = vec![0f32; per];
        render_digit(labels[i] as usize, &mut item_rng(seed, i), &mut out);
        out
    });
    let side = DIGIT_SIDE as i64;
    (
        Tensor::from_slice(&images.concat()).view([n as i64, 1, side, side]),
        Tensor::from_slice(&labels).to_kind(Kind::Int64),
    )
}
