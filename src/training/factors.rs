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
                Encoder::Numeric(_) => (Some(numeric_reference(name, won, data)), Vec::new()),
                Encoder::Categorical(_) => (None, category_stats(data.level_codes(name), won)),
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

/// The values of a group of rows, split by outcome, in the order they are pushed.
#[derive(Debug, Default, Clone)]
struct WonLost {
    won: Vec<f64>,
    lost: Vec<f64>,
}

impl WonLost {
    fn push(&mut self, value: f64, won: bool) {
        if won {
            self.won.push(value);
        } else {
            self.lost.push(value);
        }
    }

    fn reference(self) -> GroupReference {
        reference_of(self.won, self.lost)
    }
}

/// Won/lost reference of the values of won deals `w` and of lost deals `l`.
fn reference_of(mut w: Vec<f64>, mut l: Vec<f64>) -> GroupReference {
    // Values pushed in ascending order are already sorted: the sort then only checks.
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

/// The values of a numeric source grouped by the level of a categorical one (by code: on
/// snapshot data, millions of rows, comparing level texts per row was most of the factors' time).
struct ByLevel<'a> {
    levels: &'a [String],
    codes: &'a [u32],
    groups: Vec<WonLost>,
}

impl<'a> ByLevel<'a> {
    /// Groups by `field`'s levels (none when it is not read).
    fn of(data: &'a CompactDeals, field: CoreField) -> ByLevel<'a> {
        let (levels, codes) = data.level_codes(field.name()).unwrap_or((&[], &[]));
        ByLevel {
            levels,
            codes,
            groups: vec![WonLost::default(); levels.len()],
        }
    }

    fn push(&mut self, row: usize, value: f64, won: bool) {
        let code = self.codes.get(row).map_or(usize::MAX, |&c| c as usize);
        if let Some(group) = self.groups.get_mut(code) {
            group.push(value, won);
        }
    }

    /// The reference of every level some row has, whether or not its rows have a value.
    fn references(self) -> BTreeMap<String, GroupReference> {
        let mut present = vec![false; self.levels.len()];
        for &code in self.codes {
            if let Some(p) = present.get_mut(code as usize) {
                *p = true;
            }
        }
        (self.levels.iter().zip(self.groups).zip(present))
            .filter(|(_, present)| *present)
            .map(|((level, group), _)| (level.clone(), group.reference()))
            .collect()
    }
}

/// Won/lost references of numeric source `name`: over all rows, by sector and by contact role.
/// One pass over its rows in ascending value order, so every group's values arrive sorted.
fn numeric_reference(name: &str, won: &[bool], data: &CompactDeals) -> NumericReference {
    let mut overall = WonLost::default();
    let mut by_sector = ByLevel::of(data, CoreField::Sector);
    let mut by_contact_role = ByLevel::of(data, CoreField::ContactRole);
    for (row, value) in data.by_value(name) {
        overall.push(value, won[row]);
        by_sector.push(row, value, won[row]);
        by_contact_role.push(row, value, won[row]);
    }
    NumericReference {
        overall: overall.reference(),
        by_sector: by_sector.references(),
        by_contact_role: by_contact_role.references(),
    }
}

/// Count and wins per level of a categorical source given as level codes (see
/// [`CompactDeals::level_codes`]; `None`, a source not read: every row is missing), empty rows
/// as [`MISSING_LEVEL`]; most common first, ties by level.
fn category_stats(codes: Option<(&[String], &[u32])>, won: &[bool]) -> Vec<CategoryStat> {
    let (levels, codes) = codes.unwrap_or((&[], &[]));
    // One slot per level, and a last one for empty rows.
    let mut per_code = vec![(0usize, 0usize); levels.len() + 1];
    for (r, w) in won.iter().enumerate() {
        let code = codes
            .get(r)
            .map_or(levels.len(), |&c| (c as usize).min(levels.len()));
        per_code[code].0 += 1;
        per_code[code].1 += usize::from(*w);
    }
    let texts = levels
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(MISSING_LEVEL));
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (level, (count, won)) in texts.zip(per_code).filter(|(_, (count, _))| *count > 0) {
        // A level spelled like the missing marker counts with the empty rows, as it reads.
        let e = counts.entry(level).or_default();
        e.0 += count;
        e.1 += won;
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

    use crate::features::FeatureSpec;
    use crate::training::compact::sources_for;

    /// Generated deals with empty sectors, amounts and contact roles, a sector spelled like the
    /// missing marker, and a sector whose deals have no amount; as compact columns.
    fn data() -> CompactDeals {
        let (config, mut history) = crate::training::fixtures::generated(400, 3);
        for (i, d) in history.opportunities.iter_mut().enumerate() {
            if i % 13 == 0 {
                d.sector = None;
            }
            if i % 7 == 0 {
                d.amount = None;
            }
            if i % 17 == 0 {
                d.sector = Some(MISSING_LEVEL.to_owned());
            }
            if i % 29 == 0 {
                d.contact_role = None;
            }
            if i % 31 == 0 {
                d.sector = Some("no amounts".to_owned());
                d.amount = None;
            }
        }
        let spec = FeatureSpec::default_spec();
        CompactDeals::from_deals(&history.opportunities, &sources_for(&[&spec]), config.end)
    }

    /// The reference of the rows selected by `keep`, one row at a time through the row API.
    fn reference_where(data: &CompactDeals, name: &str, keep: impl Fn(usize) -> bool) -> GroupReference {
        let mut group = WonLost::default();
        for r in (0..data.len()).filter(|&r| keep(r)) {
            if let Some(v) = data.number(name, r) {
                group.push(v, data.won()[r]);
            }
        }
        group.reference()
    }

    #[test]
    fn a_reference_sorts_the_values_it_is_given() {
        let mut group = WonLost::default();
        for (v, won) in [(3.0, true), (10.0, false), (1.0, true), (2.0, true)] {
            group.push(v, won);
        }
        let r = group.reference();
        let w = r.won.as_ref().unwrap();
        assert_eq!((w.count, w.median, w.p25, w.p75), (3, 2.0, 1.5, 2.5));
        assert_eq!(r.lost.as_ref().unwrap().median, 10.0);
        assert_eq!(r.won_percentiles.len(), 21);
        assert_eq!(r.fraction_won_at_or_below(2.0), Some(0.5));
    }

    #[test]
    fn numeric_references_by_code_equal_one_pass_per_level_over_the_rows() {
        let data = data();
        let name = CoreField::Amount.name();
        let reference = numeric_reference(name, data.won(), &data);
        assert_eq!(reference.overall, reference_where(&data, name, |_| true));
        for (field, by) in [
            (CoreField::Sector, &reference.by_sector),
            (CoreField::ContactRole, &reference.by_contact_role),
        ] {
            let mut levels: Vec<&str> = (0..data.len())
                .filter_map(|r| data.level(field.name(), r))
                .collect();
            levels.sort_unstable();
            levels.dedup();
            assert_eq!(
                by.keys().map(String::as_str).collect::<Vec<_>>(),
                levels,
                "{field:?}"
            );
            for (level, group) in by {
                let expected = reference_where(&data, name, |r| data.level(field.name(), r) == Some(level));
                assert_eq!(*group, expected, "{field:?} {level}");
            }
        }
        // A level whose deals have no value is kept, with an empty reference.
        let empty = &reference.by_sector["no amounts"];
        assert!(empty.won.is_none() && empty.lost.is_none());
        assert!(reference.by_sector.contains_key(MISSING_LEVEL));
    }

    #[test]
    fn category_stats_by_code_count_each_level_and_the_empty_rows() {
        let data = data();
        let name = CoreField::Sector.name();
        let stats = category_stats(data.level_codes(name), data.won());
        let mut expected: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in 0..data.len() {
            let e = expected
                .entry(data.level(name, r).unwrap_or(MISSING_LEVEL))
                .or_default();
            e.0 += 1;
            e.1 += usize::from(data.won()[r]);
        }
        let mut counted: Vec<(&str, usize, usize)> =
            stats.iter().map(|s| (s.level.as_str(), s.count, s.won)).collect();
        counted.sort_unstable();
        let expected: Vec<(&str, usize, usize)> = expected.into_iter().map(|(l, (c, w))| (l, c, w)).collect();
        assert_eq!(counted, expected);
        assert!(stats.windows(2).all(|p| p[0].count >= p[1].count));
        // A source not read: every row is missing.
        let none = category_stats(None, data.won());
        assert_eq!(
            (none.len(), none[0].level.as_str(), none[0].count),
            (1, MISSING_LEVEL, data.len())
        );
    }

    #[test]
    fn category_stats_count_wins() {
        let levels = ["b".to_owned(), "a".to_owned()];
        let stats = category_stats(Some((&levels, &[1, 0, 1, 1])), &[true, false, false, true]);
        assert_eq!(stats[0].level, "a");
        assert_eq!((stats[0].count, stats[0].won), (3, 2));
        assert!((stats[0].win_rate - 2.0 / 3.0).abs() < 1e-12);
    }
}
