//! The Fréchet distance between two sets of features, each summarised by a Gaussian
//! (mean and covariance): the distance behind FID (Heusel et al., "GANs Trained by a
//! Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017):
//!
//! d² = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
//!
//! (Dowson & Landau 1982). Everything is computed in f64 on the CPU; the matrix square
//! roots come from symmetric eigendecompositions, so the product under the trace is
//! kept symmetric and negative round-off eigenvalues are clamped to zero.

use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Mean and covariance of a feature set.
#[derive(Debug)]
pub struct Stats {
    /// `[D]` f64.
    pub mean: Tensor,
    /// `[D, D]` f64 (unbiased, divided by N − 1).
    pub cov: Tensor,
    /// Number of feature vectors.
    pub n: usize,
}

impl Stats {
    /// The statistics of `features` `[N, D]` (N ≥ 2).
    pub fn of(features: &Tensor) -> Result<Stats> {
        if features.dim() != 2 {
            return Err(Error::msg(format!(
                "Fréchet statistics need features of shape [N, D], got {:?}",
                features.size()
            )));
        }
        let n = features.size()[0];
        if n < 2 {
            return Err(Error::msg(format!(
                "Fréchet statistics need at least 2 feature vectors, got {n}"
            )));
        }
        let x = features.to_device(Device::Cpu).to_kind(Kind::Double);
        let mean = x.mean_dim(0, false, Kind::Double);
        let c = &x - mean.unsqueeze(0);
        let cov = c.transpose(0, 1).matmul(&c) / (n - 1) as f64;
        Ok(Stats {
            mean,
            cov,
            n: n as usize,
        })
    }
}

/// The square root of a symmetric positive semi-definite matrix (eigenvalues below
/// zero, from round-off, are clamped).
pub fn sqrtm_psd(a: &Tensor) -> Tensor {
    let a = a.to_kind(Kind::Double);
    let sym = (&a + a.transpose(0, 1)) / 2.0;
    let (w, v) = sym.linalg_eigh("L");
    let s = w.clamp_min(0.0).sqrt();
    (&v * s.unsqueeze(0)).matmul(&v.transpose(0, 1))
}

/// tr((Σ₁^½ Σ₂ Σ₁^½)^½), which equals tr((Σ₁Σ₂)^½).
fn trace_sqrt_product(c1: &Tensor, c2: &Tensor) -> f64 {
    let r1 = sqrtm_psd(c1);
    let m = r1.matmul(c2).matmul(&r1);
    let m = (&m + m.transpose(0, 1)) / 2.0;
    let w = m.linalg_eigvalsh("L");
    w.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[])
}

/// The Fréchet distance (squared, as FID reports it) between two Gaussians.
pub fn distance_from_stats(a: &Stats, b: &Stats) -> Result<f64> {
    if a.mean.size() != b.mean.size() {
        return Err(Error::msg(format!(
            "Fréchet distance between features of different widths: {:?} and {:?}",
            a.mean.size(),
            b.mean.size()
        )));
    }
    let dm = (&a.mean - &b.mean)
        .square()
        .sum(Kind::Double)
        .double_value(&[]);
    let tr = a.cov.trace().double_value(&[]) + b.cov.trace().double_value(&[]);
    let d = dm + tr - 2.0 * trace_sqrt_product(&a.cov, &b.cov);
    Ok(d.max(0.0))
}

/// The Fréchet distance between two feature sets `[N₁, D]` and `[N₂, D]`.
pub fn distance(x: &Tensor, y: &Tensor) -> Result<f64> {
    distance_from_stats(&Stats::of(x)?, &Stats::of(y)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn closed_form_for_diagonal_gaussians() {
        // d² = |μ₁−μ₂|² + Σᵢ (√aᵢ − √bᵢ)² when both covariances are diagonal.
        let a = Stats {
            mean: t(&[0.0, 1.0, 2.0], &[3]),
            cov: Tensor::diag_embed(&t(&[1.0, 4.0, 9.0], &[3]), 0, -2, -1),
            n: 0,
        };
        let b = Stats {
            mean: t(&[1.0, 1.0, 0.0], &[3]),
            cov: Tensor::diag_embed(&t(&[4.0, 1.0, 9.0], &[3]), 0, -2, -1),
            n: 0,
        };
        let d = distance_from_stats(&a, &b).unwrap();
        let want = (1.0 + 0.0 + 4.0) + (1.0 + 1.0 + 0.0);
        assert!((d - want).abs() < 1e-9, "{d} vs {want}");
    }

    #[test]
    fn closed_form_for_rotated_covariances() {
        // Σ₂ = c·Σ₁ (any full Σ₁): tr(Σ₁ + cΣ₁ − 2√c Σ₁) = (1 − √c)² tr Σ₁.
        let l = t(&[2.0, 0.0, 0.0, 0.5, 1.0, 0.0, -0.3, 0.2, 0.7], &[3, 3]);
        let s1 = l.matmul(&l.transpose(0, 1));
        let c = 2.25;
        let a = Stats {
            mean: Tensor::zeros([3], (Kind::Double, Device::Cpu)),
            cov: s1.shallow_clone(),
            n: 0,
        };
        let b = Stats {
            mean: Tensor::zeros([3], (Kind::Double, Device::Cpu)),
            cov: &s1 * c,
            n: 0,
        };
        let d = distance_from_stats(&a, &b).unwrap();
        let want = (1.0 - c.sqrt()).powi(2) * s1.trace().double_value(&[]);
        assert!((d - want).abs() < 1e-9, "{d} vs {want}");
        let r = sqrtm_psd(&s1);
        assert!(r.matmul(&r).allclose(&s1, 1e-9, 1e-9, false));
    }

    #[test]
    fn samples_approach_the_closed_form_and_self_distance_is_zero() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(3);
        let opts = (Kind::Double, Device::Cpu);
        let x = Tensor::randn([20_000, 4], opts);
        let scale = t(&[1.0, 2.0, 0.5, 1.0], &[1, 4]);
        let y = Tensor::randn([20_000, 4], opts) * &scale + 1.0;
        assert!(distance(&x, &x).unwrap() < 1e-8);
        let d = distance(&x, &y).unwrap();
        // |μ|² = 4; Σ(1 − σᵢ)² = 0 + 1 + 0.25 + 0 = 1.25
        assert!((d - 5.25).abs() < 0.15, "{d}");
        assert!(distance(&x.to_kind(Kind::Float), &x).unwrap() < 1e-6);
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = Tensor::zeros([5, 3], (Kind::Float, Device::Cpu));
        let y = Tensor::zeros([5, 4], (Kind::Float, Device::Cpu));
        assert!(distance(&x, &y).unwrap_err().to_string().contains("widths"));
        let e = distance(&x.narrow(0, 0, 1), &x).unwrap_err().to_string();
        assert!(e.contains("at least 2"), "{e}");
    }
}
