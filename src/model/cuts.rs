//! Where grades and focus classes cut, derived from data when a model is trained.
//!
//! Fixed probability cuts say little about an organisation whose win rate is far from them (at a
//! 20 % win rate, cuts at 60/40/20 % grade most deals D). The cut points recorded here are
//! quantiles of the deals the model will score (the deals open when it was trained, else its
//! holdout), so scoring stays a pure function of (artifact, deal, configuration) while the
//! configured shares pick the cut at scoring time.

use serde::{Deserialize, Serialize};

/// Points per quantile table: 0 %, 1 %, …, 100 %.
pub const QUANTILE_POINTS: usize = 101;

/// Quantile tables of the deals a model was calibrated on (`cut_points` in the artifact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutPoints {
    /// Which deals: `open` (open in the database when the model was trained) or `holdout`.
    pub basis: String,
    /// How many deals the tables describe.
    pub deals: usize,
    /// Win probability at 0 %, 1 %, …, 100 % of those deals.
    pub probability: Vec<f64>,
    /// Win probability after the best lever (the probability itself without a lever), same points.
    pub probability_after: Vec<f64>,
    /// Expected-value gain of the most valuable lever (uplift × amount, the typical amount when
    /// a deal has none; 0 without a lever), same points.
    pub value_gain: Vec<f64>,
    /// Median amount of those deals, used for deals without an amount (absent when none had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typical_amount: Option<f64>,
}

impl CutPoints {
    /// Tables from the per-deal values; `None` without deals or with a non-finite value.
    pub fn from_values(
        basis: &str,
        mut probability: Vec<f64>,
        mut probability_after: Vec<f64>,
        mut value_gain: Vec<f64>,
        typical_amount: Option<f64>,
    ) -> Option<CutPoints> {
        let deals = probability.len();
        if deals == 0 || probability_after.len() != deals || value_gain.len() != deals {
            return None;
        }
        Some(CutPoints {
            basis: basis.to_owned(),
            deals,
            probability: table(&mut probability)?,
            probability_after: table(&mut probability_after)?,
            value_gain: table(&mut value_gain)?,
            typical_amount,
        })
    }

    /// Whether the tables have the expected shape (checked when an artifact loads).
    pub fn is_consistent(&self) -> bool {
        [&self.probability, &self.probability_after, &self.value_gain]
            .iter()
            .all(|t| {
                t.len() == QUANTILE_POINTS
                    && t.iter().all(|v| v.is_finite())
                    && t.windows(2).all(|w| w[0] <= w[1])
            })
    }
}

/// The value below which a `share` (0–1) of the described deals lie, interpolated between the
/// recorded points.
pub fn at(table: &[f64], share: f64) -> f64 {
    let last = table.len().saturating_sub(1);
    if last == 0 {
        return table.first().copied().unwrap_or(0.0);
    }
    let pos = share.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    let (a, b) = (table[lo.min(last)], table[hi]);
    a + (b - a) * (pos - lo as f64)
}

/// The 101-point quantile table of `values` (sorted in place).
fn table(values: &mut [f64]) -> Option<Vec<f64>> {
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    Some(
        (0..QUANTILE_POINTS)
            .map(|i| {
                let pos = i as f64 / (QUANTILE_POINTS - 1) as f64 * last as f64;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(last);
                values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_quantiles_and_read_back_by_share() {
        let values: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
        let cuts = CutPoints::from_values("open", values.clone(), values.clone(), values, None).unwrap();
        assert!(cuts.is_consistent());
        assert_eq!(cuts.deals, 1001);
        assert!((at(&cuts.probability, 0.25) - 0.25).abs() < 1e-9);
        assert!((at(&cuts.probability, 0.755) - 0.755).abs() < 1e-9);
        assert_eq!(at(&cuts.probability, 2.0), 1.0);
        assert_eq!(at(&[], 0.5), 0.0);
        assert!(CutPoints::from_values("open", vec![], vec![], vec![], None).is_none());
        assert!(CutPoints::from_values("open", vec![f64::NAN], vec![0.0], vec![0.0], None).is_none());
    }
}
