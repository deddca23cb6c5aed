//! Success factors: each feature's coefficients, its importance over real deals, and won/lost
//! reference values used by explanations and recommendation targets.

use std::collections::BTreeMap;

use super::compact::{feature_shares, CompactDeals};
use crate::features::fitted::quantile_sorted;
use crate::features::{CoreField, Encoder, FittedFeatures, MISSING_LEVEL};
use crate::model::{CategoryStat, GroupReference, LevelEffect, NumericReference, Quartiles, SuccessFactor};

/// Percentile steps stored for won deals (0, 5, …, 100).
const PERCENTILE_STEPS: usize = 20;

/// Computes every feature's success factor from the final fit on all closed deals (every row of
/// `data`).
pub fn success_factors(fitted: &FittedFeatures, data: &CompactDeals, weights: &[f64]) -> Vec<SuccessFactor> {
    let n = data.len().max(1) as f64;
    let won = data.won();
    fitted
        .features
        .iter()
        .map(|feature| {
            // Contribution of this feature on each row: Σ coef·x over its columns.
            let contribution = feature_shares(feature, data, weights);
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
            let name = feature.def.name();
            let (numeric, categories) = match feature.encoder {
                Encoder::Numeric(_) => {
                    let values: Vec<Option<f64>> = (0..data.len()).map(|r| data.number(name, r)).collect();
                    (Some(numeric_reference(&values, won, data)), Vec::new())
                }
                Encoder::Categorical(_) => {
                    let levels: Vec<&str> = (0..data.len())
                        .map(|r| data.level(name, r).unwrap_or(MISSING_LEVEL))
                        .collect();
                    (None, category_stats(&levels, won))
                }
            };
            SuccessFactor {
                feature: name.to_owned(),
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
    reference_of(w, l)
}

/// Won/lost reference of the values of won deals `w` and of lost deals `l`.
fn reference_of(mut w: Vec<f64>, mut l: Vec<f64>) -> GroupReference {
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

/// Won/lost reference of the values of each level of `keys` (one level per row, `None` for an
/// empty one), by level. One pass over the rows whatever the number of levels: on snapshot
/// data (millions of rows) a pass per level was most of the factors' time.
fn references_by(
    values: &[Option<f64>],
    won: &[bool],
    keys: &[Option<&str>],
) -> BTreeMap<String, GroupReference> {
    let mut groups: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for ((value, key), won) in values.iter().zip(keys).zip(won) {
        let Some(key) = key else { continue };
        let (w, l) = groups.entry(key).or_default();
        match (value, won) {
            (Some(v), true) => w.push(*v),
            (Some(v), false) => l.push(*v),
            (None, _) => {}
        }
    }
    groups
        .into_iter()
        .map(|(key, (w, l))| (key.to_owned(), reference_of(w, l)))
        .collect()
}

fn numeric_reference(values: &[Option<f64>], won: &[bool], data: &CompactDeals) -> NumericReference {
    let overall = group_reference(values, won, |_| true);
    let by = |field: CoreField| -> BTreeMap<String, GroupReference> {
        let keys: Vec<Option<&str>> = (0..data.len()).map(|r| data.level(field.name(), r)).collect();
        references_by(values, won, &keys)
    };
    NumericReference {
        overall,
        by_sector: by(CoreField::Sector),
        by_contact_role: by(CoreField::ContactRole),
    }
}

fn category_stats(levels: &[&str], won: &[bool]) -> Vec<CategoryStat> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (level, w) in levels.iter().zip(won) {
        let e = counts.entry(level).or_default();
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
    fn references_by_level_match_one_reference_per_level() {
        let values = [
            Some(1.0),
            Some(2.0),
            None,
            Some(4.0),
            Some(5.0),
            Some(6.0),
            Some(7.0),
        ];
        let won = [true, false, true, true, false, true, false];
        let keys = [
            Some("a"),
            Some("b"),
            Some("a"),
            None,
            Some("a"),
            Some("b"),
            Some("b"),
        ];
        let by = references_by(&values, &won, &keys);
        assert_eq!(by.keys().collect::<Vec<_>>(), ["a", "b"]);
        for (level, reference) in &by {
            let one = group_reference(&values, &won, |i| keys[i] == Some(level.as_str()));
            assert_eq!(*reference, one);
        }
        assert_eq!(by["b"].lost.as_ref().map(|q| q.count), Some(2));
    }

    #[test]
    fn category_stats_count_wins() {
        let stats = category_stats(&["a", "b", "a", "a"], &[true, false, false, true]);
        assert_eq!(stats[0].level, "a");
        assert_eq!((stats[0].count, stats[0].won), (3, 2));
        assert!((stats[0].win_rate - 2.0 / 3.0).abs() < 1e-12);
    }
}
