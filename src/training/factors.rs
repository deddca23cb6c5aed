//! Success factors: each feature's coefficients, its importance over real deals, and won/lost
//! reference values used by explanations and recommendation targets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ndarray::Array2;

use crate::domain::Opportunity;
use crate::features::fitted::quantile_sorted;
use crate::features::raw::{category_value, numeric_value, NumericValue};
use crate::features::{Encoder, FittedFeatures, MISSING_LEVEL};
use crate::model::{CategoryStat, GroupReference, LevelEffect, NumericReference, Quartiles, SuccessFactor};

/// Percentile steps stored for won deals (0, 5, …, 100).
const PERCENTILE_STEPS: usize = 20;

/// Computes every feature's success factor from the final fit on all closed deals.
pub fn success_factors(
    fitted: &FittedFeatures,
    x: &Array2<f64>,
    weights: &[f64],
    deals: &[&Opportunity],
    won: &[bool],
    now: DateTime<Utc>,
) -> Vec<SuccessFactor> {
    let n = x.nrows().max(1) as f64;
    fitted
        .features
        .iter()
        .map(|feature| {
            // Contribution of this feature on each row: Σ coef·x over its columns.
            let mut contribution = vec![0.0; x.nrows()];
            for c in 0..feature.columns.len() {
                let w = weights.get(feature.offset + c).copied().unwrap_or(0.0);
                for (acc, v) in contribution.iter_mut().zip(x.column(feature.offset + c)) {
                    *acc += w * v;
                }
            }
            let mean = contribution.iter().sum::<f64>() / n;
            let var = contribution.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n;
            let levels = feature
                .columns
                .iter()
                .enumerate()
                .map(|(c, column)| {
                    let coefficient = weights.get(feature.offset + c).copied().unwrap_or(0.0);
                    LevelEffect {
                        column: column.clone(),
                        level: column
                            .strip_prefix(feature.def.name())
                            .map(|l| l.strip_prefix('=').unwrap_or(l))
                            .unwrap_or(column)
                            .to_owned(),
                        coefficient,
                        odds_ratio: coefficient.exp(),
                    }
                })
                .collect();
            let source = feature.def.source();
            let (numeric, categories) = match feature.encoder {
                Encoder::Numeric(_) => {
                    let values: Vec<Option<f64>> = deals
                        .iter()
                        .map(|d| match numeric_value(&source, d, now) {
                            NumericValue::Present(v) => Some(v),
                            _ => None,
                        })
                        .collect();
                    (Some(numeric_reference(&values, won, deals)), Vec::new())
                }
                Encoder::Categorical(_) => {
                    let levels: Vec<String> = deals
                        .iter()
                        .map(|d| {
                            category_value(&source, d)
                                .map_or_else(|| MISSING_LEVEL.to_owned(), |c| c.into_owned())
                        })
                        .collect();
                    (None, category_stats(&levels, won))
                }
            };
            SuccessFactor {
                feature: feature.def.name().to_owned(),
                importance: var.sqrt(),
                mean_contribution: mean,
                levels,
                numeric,
                categories,
            }
        })
        .collect()
}

/// Quartiles of sorted values; `None` when empty.
fn quartiles(sorted: &[f64]) -> Option<Quartiles> {
    Some(Quartiles {
        count: sorted.len(),
        p25: quantile_sorted(sorted, 0.25)?,
        median: quantile_sorted(sorted, 0.5)?,
        p75: quantile_sorted(sorted, 0.75)?,
    })
}

/// Won/lost reference of the rows selected by `keep`.
fn group_reference(values: &[Option<f64>], won: &[bool], keep: impl Fn(usize) -> bool) -> GroupReference {
    let mut w = Vec::new();
    let mut l = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if let (Some(v), true) = (v, keep(i)) {
            if won[i] {
                w.push(*v);
            } else {
                l.push(*v);
            }
        }
    }
    w.sort_by(f64::total_cmp);
    l.sort_by(f64::total_cmp);
    let won_percentiles = if w.is_empty() {
        Vec::new()
    } else {
        (0..=PERCENTILE_STEPS)
            .filter_map(|i| quantile_sorted(&w, i as f64 / PERCENTILE_STEPS as f64))
            .collect()
    };
    GroupReference {
        won: quartiles(&w),
        lost: quartiles(&l),
        won_percentiles,
    }
}

fn numeric_reference(values: &[Option<f64>], won: &[bool], deals: &[&Opportunity]) -> NumericReference {
    let overall = group_reference(values, won, |_| true);
    let by = |key: &dyn Fn(&Opportunity) -> Option<String>| -> BTreeMap<String, GroupReference> {
        let keys: Vec<Option<String>> = deals.iter().map(|d| key(d)).collect();
        let mut distinct: Vec<&String> = keys.iter().flatten().collect();
        distinct.sort();
        distinct.dedup();
        distinct
            .into_iter()
            .map(|k| {
                let reference = group_reference(values, won, |i| keys[i].as_ref() == Some(k));
                (k.clone(), reference)
            })
            .collect()
    };
    NumericReference {
        overall,
        by_sector: by(&|d| d.sector.clone()),
        by_contact_role: by(&|d| d.contact_role.as_ref().map(|r| r.as_str().to_owned())),
    }
}

fn category_stats(levels: &[String], won: &[bool]) -> Vec<CategoryStat> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (level, w) in levels.iter().zip(won) {
        let e = counts.entry(level.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(*w);
    }
    let mut stats: Vec<CategoryStat> = counts
        .into_iter()
        .map(|(level, (count, won))| CategoryStat {
            level: level.to_owned(),
            count,
            won,
            win_rate: won as f64 / count as f64,
        })
        .collect();
    // Most common first; the BTreeMap order breaks ties alphabetically (stable sort).
    stats.sort_by_key(|s| std::cmp::Reverse(s.count));
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_reference_splits_won_and_lost() {
        let values = [Some(1.0), Some(2.0), Some(3.0), None, Some(10.0)];
        let won = [true, true, true, true, false];
        let r = group_reference(&values, &won, |_| true);
        let w = r.won.as_ref().unwrap();
        assert_eq!((w.count, w.median, w.p25, w.p75), (3, 2.0, 1.5, 2.5));
        assert_eq!(r.lost.as_ref().unwrap().median, 10.0);
        assert_eq!(r.won_percentiles.len(), 21);
        assert_eq!(r.fraction_won_at_or_below(2.0), Some(0.5));
    }

    #[test]
    fn category_stats_count_wins() {
        let levels: Vec<String> = ["a", "b", "a", "a"].iter().map(|s| s.to_string()).collect();
        let stats = category_stats(&levels, &[true, false, false, true]);
        assert_eq!(stats[0].level, "a");
        assert_eq!((stats[0].count, stats[0].won), (3, 2));
        assert!((stats[0].win_rate - 2.0 / 3.0).abs() < 1e-12);
    }
}
