//! Numeric checks for the Theory notebook: each prints the two numbers it compares and
//! their distance, and fails (panics) beyond its tolerance; a [`Checks`] value records a
//! cell's checks in metrics.json as `<group>.checks` and `<group>.max_err`.

use crate::error::Result;
use crate::metrics;
use crate::session::Session;

/// Sample mean and its standard error.
pub fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Sample variance and its standard error (from the fourth central moment).
pub fn var_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let m2 = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    let m4 = v.iter().map(|x| (x - m).powi(4)).sum::<f64>() / n;
    (m2, ((m4 - m2 * m2) / n).sqrt())
}

/// One numeric check: prints both numbers and their distance; fails when it exceeds `tol`.
pub fn check(name: &str, measured: f64, expected: f64, tol: f64) -> f64 {
    let err = (measured - expected).abs();
    let ok = err <= tol;
    println!(
        "{name}: measured={measured:.9e} expected={expected:.9e} |err|={err:.3e} tol={tol:.3e} {}",
        if ok { "ok" } else { "FAILED" }
    );
    assert!(
        ok,
        "check {name} failed: |{measured} - {expected}| = {err} > {tol}"
    );
    err
}

/// The checks of one cell, recorded in metrics.json when the cell is done.
pub struct Checks {
    group: String,
    errs: Vec<f64>,
}

impl Checks {
    pub fn new(group: &str) -> Checks {
        Checks {
            group: group.to_string(),
            errs: Vec::new(),
        }
    }

    /// |measured - expected| <= tol.
    pub fn close(&mut self, name: &str, measured: f64, expected: f64, tol: f64) {
        let e = check(&format!("{}/{name}", self.group), measured, expected, tol);
        self.errs.push(e);
    }

    /// measured <= bound + tol; the error is how far it lies above the bound.
    pub fn below(&mut self, name: &str, measured: f64, bound: f64, tol: f64) {
        let excess = (measured - bound).max(0.0);
        let ok = excess <= tol;
        println!(
            "{}/{name}: measured={measured:.9e} <= bound={bound:.9e} excess={excess:.3e} tol={tol:.3e} {}",
            self.group,
            if ok { "ok" } else { "FAILED" }
        );
        assert!(
            ok,
            "check {}/{name} failed: {measured} > {bound} + {tol}",
            self.group
        );
        self.errs.push(excess);
    }

    /// Records the count and the largest error under `<group>.checks` / `<group>.max_err`.
    pub fn done(&self, s: &Session) -> Result<()> {
        let max = self.errs.iter().cloned().fold(0.0, f64::max);
        metrics::record_f64(s, &format!("{}.checks", self.group), self.errs.len() as f64)?;
        metrics::record_f64(s, &format!("{}.max_err", self.group), max)?;
        println!(
            "{}: {} checks passed, largest error {max:.3e}",
            self.group,
            self.errs.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_variance_with_their_errors() {
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
        let (v, _) = var_se(&[1.0, 3.0]);
        assert_eq!(v, 1.0);
        assert!(check("t", 1.0, 1.0 + 1e-12, 1e-9) < 1e-9);
    }

    #[test]
    #[should_panic(expected = "check far failed")]
    fn a_failed_check_panics() {
        check("far", 1.0, 2.0, 0.5);
    }
}
