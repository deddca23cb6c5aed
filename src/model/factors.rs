//! Success factors and reference values stored in the artifact: what each feature's levels do to
//! the odds of winning, and how won and lost deals were distributed. Explanations ("slower than
//! 80 % of won deals") and recommendation targets ("the sector's won median") read these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Minimum won deals a sector needs before its own won-deal quantiles are used as a target.
pub const MIN_WON_FOR_GROUP_TARGET: usize = 20;

/// One feature's effect and reference values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessFactor {
    /// Feature name.
    pub feature: String,
    /// Standard deviation of the feature's log-odds contribution over the training rows: how
    /// much this feature moves scores across real deals.
    pub importance: f64,
    /// Mean contribution over the training rows (part of the explanation baseline).
    pub mean_contribution: f64,
    /// Coefficient of each column of the feature.
    pub levels: Vec<LevelEffect>,
    /// Numeric features: won/lost distributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericReference>,
    /// Categorical features: win rate per level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryStat>,
}

/// One design column's effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelEffect {
    /// Column name, e.g. `response_hours[4,8.5)`.
    pub column: String,
    /// Level part, e.g. `[4,8.5)` or `retail`.
    pub level: String,
    /// Coefficient (log-odds per unit of the column).
    pub coefficient: f64,
    /// exp(coefficient).
    pub odds_ratio: f64,
}

/// Quartiles of a group of values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quartiles {
    /// Number of non-missing values.
    pub count: usize,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
}

/// Reference values of a numeric feature for one group of closed deals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReference {
    /// Quartiles over won deals (`None` without any).
    pub won: Option<Quartiles>,
    /// Quartiles over lost deals (`None` without any).
    pub lost: Option<Quartiles>,
    /// Won-deal percentiles 0, 5, …, 100 (21 values; empty without won deals).
    pub won_percentiles: Vec<f64>,
}

impl GroupReference {
    /// Approximate fraction of won deals with a value ≤ `x`, interpolated between the stored
    /// percentiles; `None` without won deals.
    pub fn fraction_won_at_or_below(&self, x: f64) -> Option<f64> {
        fraction_at_or_below(&self.won_percentiles, x)
    }
}

/// Fraction of a distribution at or below `x`, given its percentiles at equal steps from 0 to
/// 100 %. Values below the minimum give 0 and at or above the maximum give 1; ties spanning
/// several percentiles count as at-or-below.
pub fn fraction_at_or_below(percentiles: &[f64], x: f64) -> Option<f64> {
    let n = percentiles.len();
    let (first, last) = (*percentiles.first()?, *percentiles.last()?);
    if n == 1 {
        return Some(if x >= first { 1.0 } else { 0.0 });
    }
    if x < first {
        return Some(0.0);
    }
    if x >= last {
        return Some(1.0);
    }
    let step = 1.0 / (n - 1) as f64;
    // Last percentile ≤ x, then interpolate towards the next one.
    let i = percentiles.partition_point(|p| *p <= x) - 1;
    let (lo, hi) = (percentiles[i], percentiles[i + 1]);
    let within = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
    Some((i as f64 + within) * step)
}

/// Won/lost reference values of a numeric feature: overall and per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericReference {
    /// All closed deals.
    pub overall: GroupReference,
    /// Per sector (only sectors with at least one closed deal).
    pub by_sector: BTreeMap<String, GroupReference>,
    /// Per contact role.
    pub by_contact_role: BTreeMap<String, GroupReference>,
}

impl NumericReference {
    /// The reference to compare a deal with: its sector's when the sector has at least
    /// `min_won` won deals, otherwise the overall one.
    pub fn for_sector(&self, sector: Option<&str>, min_won: usize) -> &GroupReference {
        self.pick_group(sector, min_won).1
    }

    /// The group [`Self::for_sector`] picks, with its name: `Some(sector)` for the sector's own
    /// reference, `None` for the overall one.
    pub fn pick_group<'a>(
        &self,
        sector: Option<&'a str>,
        min_won: usize,
    ) -> (Option<&'a str>, &GroupReference) {
        match sector.and_then(|s| Some((s, self.by_sector.get(s)?))) {
            Some((s, group)) if group.won.as_ref().is_some_and(|q| q.count >= min_won) => (Some(s), group),
            _ => (None, &self.overall),
        }
    }
}

/// Outcome statistics of one categorical level over closed deals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryStat {
    /// Raw level text (`(missing)` for empty).
    pub level: String,
    /// Closed deals with this level.
    pub count: usize,
    /// Won deals with this level.
    pub won: usize,
    /// won / count.
    pub win_rate: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_interpolates_between_percentiles() {
        let p = [0.0, 10.0, 20.0, 30.0, 40.0]; // quartile steps
        assert_eq!(fraction_at_or_below(&p, -1.0), Some(0.0));
        assert_eq!(fraction_at_or_below(&p, 10.0), Some(0.25));
        assert_eq!(fraction_at_or_below(&p, 15.0), Some(0.375));
        assert_eq!(fraction_at_or_below(&p, 40.0), Some(1.0));
        assert_eq!(fraction_at_or_below(&[], 1.0), None);
        // Ties: everything at 5 is at or below 5.
        assert_eq!(fraction_at_or_below(&[5.0, 5.0, 5.0], 5.0), Some(1.0));
    }
}
