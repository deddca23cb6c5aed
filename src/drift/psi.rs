//! Population stability index (PSI) between two binned distributions, and its levels.
//!
//! `PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)` over the bins, where `e_i` is the training share of bin
//! `i` and `a_i` the current share. A share of 0 makes the logarithm infinite, so both shares are
//! floored at [`EPSILON`] before the sum (the floored shares are not renormalised: with a floor of
//! 0.0001 the difference is negligible, and the formula stays the textbook one). Every term is
//! ≥ 0, so each bin's term says how much it contributes to the shift. See `docs/drift.md`.

use serde::Serialize;
use utoipa::ToSchema;

/// Floor applied to a bin share before the logarithm (0.01 % of the rows).
pub const EPSILON: f64 = 1e-4;
/// PSI from which a feature is worth watching.
pub const WATCH: f64 = 0.1;
/// PSI from which a feature has shifted enough to act (retrain, or check the data).
pub const ALERT: f64 = 0.2;

/// How far a distribution has moved: ok < 0.1 ≤ watch < 0.2 ≤ alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriftLevel {
    /// PSI below 0.1: no meaningful shift.
    Ok,
    /// PSI in [0.1, 0.2): a moderate shift.
    Watch,
    /// PSI of 0.2 or more: a major shift.
    Alert,
}

impl DriftLevel {
    /// The level of a PSI value.
    pub fn of(psi: f64) -> DriftLevel {
        if psi >= ALERT {
            DriftLevel::Alert
        } else if psi >= WATCH {
            DriftLevel::Watch
        } else {
            DriftLevel::Ok
        }
    }
}

/// Each bin's PSI term for training shares `expected` and current shares `actual` (same length).
pub fn psi_terms(expected: &[f64], actual: &[f64]) -> Vec<f64> {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(EPSILON), a.max(EPSILON));
            (a - e) * (a / e).ln()
        })
        .collect()
}

/// The PSI: the sum of [`psi_terms`].
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    psi_terms(expected, actual).iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_psi() {
        let shares = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(psi(&shares, &shares), 0.0);
    }

    #[test]
    fn psi_matches_a_hand_computed_value() {
        // (0.3−0.5)·ln(0.3/0.5) + (0.7−0.5)·ln(0.7/0.5) = 0.102165 + 0.067294
        let value = psi(&[0.5, 0.5], &[0.3, 0.7]);
        assert!((value - 0.169_459).abs() < 1e-5, "{value}");
        assert_eq!(DriftLevel::of(value), DriftLevel::Watch);
    }

    #[test]
    fn psi_is_symmetric_and_every_term_is_non_negative() {
        let (e, a) = ([0.25, 0.25, 0.5], [0.6, 0.3, 0.1]);
        assert!((psi(&e, &a) - psi(&a, &e)).abs() < 1e-12);
        assert!(psi_terms(&e, &a).iter().all(|t| *t >= 0.0));
    }

    #[test]
    fn an_empty_bin_uses_the_epsilon_floor_instead_of_infinity() {
        // Training never saw bin 1; now 10 % of the rows fall there.
        let value = psi(&[1.0, 0.0], &[0.9, 0.1]);
        let expected = (0.9 - 1.0) * (0.9f64).ln() + (0.1 - EPSILON) * (0.1 / EPSILON).ln();
        assert!(value.is_finite());
        assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
        assert_eq!(DriftLevel::of(value), DriftLevel::Alert);
    }

    #[test]
    fn levels_follow_the_documented_cut_points() {
        assert_eq!(DriftLevel::of(0.0), DriftLevel::Ok);
        assert_eq!(DriftLevel::of(0.099_999), DriftLevel::Ok);
        assert_eq!(DriftLevel::of(0.1), DriftLevel::Watch);
        assert_eq!(DriftLevel::of(0.199_999), DriftLevel::Watch);
        assert_eq!(DriftLevel::of(0.2), DriftLevel::Alert);
    }
}
