//! `GET /v1/insights/success-factors`: how won deals differ from lost ones (cycle length,
//! interactions, response time; win rate per sector and contact role), computed from the data,
//! beside the active model's factor effects.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::snapshot::{ByName, Deal, Snapshot};
use super::stats::{ratio, Distribution};
use super::table::{cell, opt, Table};
use crate::domain::Status;
use crate::model::ModelArtifact;

/// The measures compared.
pub const MEASURES: [&str; 3] = ["cycle_days", "interaction_count", "response_hours"];

/// A deal's value of one of [`MEASURES`].
pub fn measure(d: &Deal, name: &str) -> Option<f64> {
    match name {
        "cycle_days" => d.cycle_days(),
        "interaction_count" => d.interaction_count.map(|n| n as f64),
        "response_hours" => d.response_hours,
        _ => None,
    }
}

/// A deal's values of all [`MEASURES`], in that order (no name matching per deal).
fn measures(d: &Deal) -> [Option<f64>; 3] {
    [
        d.cycle_days(),
        d.interaction_count.map(|n| n as f64),
        d.response_hours,
    ]
}

/// Won and lost distributions of one measure.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MeasureComparison {
    /// `cycle_days`, `interaction_count` or `response_hours`.
    pub measure: String,
    /// Over won deals (absent when none has the measure).
    pub won: Option<Distribution>,
    /// Over lost deals (absent when none has the measure).
    pub lost: Option<Distribution>,
}

/// Win rate of one sector or contact role.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LevelWinRate {
    /// Sector or role (`(none)` when absent).
    pub level: String,
    /// Won deals.
    pub won: u64,
    /// Lost deals.
    pub lost: u64,
    /// won / (won + lost).
    pub win_rate: Option<f64>,
}

/// One design column of the model.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelLevel {
    /// Level, e.g. `[4,8.5)` or `retail`.
    pub level: String,
    /// Log-odds coefficient.
    pub coefficient: f64,
    /// exp(coefficient).
    pub odds_ratio: f64,
}

/// One model feature's effect.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelFactor {
    /// Feature name.
    pub feature: String,
    /// Spread of the feature's contribution over the training rows (log-odds).
    pub importance: f64,
    /// Per-level effects.
    pub levels: Vec<ModelLevel>,
}

/// The active model's side.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelSide {
    /// Model version.
    pub version: String,
    /// Features by decreasing importance.
    pub factors: Vec<ModelFactor>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SuccessFactorsReport {
    /// Closed deals considered (after filters).
    pub won_deals: u64,
    /// Lost deals considered.
    pub lost_deals: u64,
    /// Overall win rate.
    pub win_rate: Option<f64>,
    /// Won vs lost per measure.
    pub measures: Vec<MeasureComparison>,
    /// Win rate per sector.
    pub by_sector: Vec<LevelWinRate>,
    /// Win rate per contact role.
    pub by_contact_role: Vec<LevelWinRate>,
    /// The active model's effects (absent without an active model).
    pub model: Option<ModelSide>,
}

/// Won and lost distributions of `name` over the deals.
pub fn compare<'a>(deals: impl Iterator<Item = &'a Deal> + Clone, name: &str) -> MeasureComparison {
    let values = |status: Status| -> Vec<f64> {
        deals
            .clone()
            .filter(|d| d.status == status)
            .filter_map(|d| measure(d, name))
            .collect()
    };
    MeasureComparison {
        measure: name.into(),
        won: Distribution::of(&mut values(Status::Won)),
        lost: Distribution::of(&mut values(Status::Lost)),
    }
}

/// Win rates per level from won and lost counts per name id, by label (`(none)` included).
fn win_rates(snapshot: &Snapshot, counts: ByName<(u64, u64)>) -> Vec<LevelWinRate> {
    // By label, summed: a category literally named `(none)` shares the row of the deals without
    // one, as it always has.
    let mut by_label: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (key, (won, lost)) in counts.into_entries() {
        let entry = by_label.entry(snapshot.label(key)).or_default();
        entry.0 += won;
        entry.1 += lost;
    }
    by_label
        .into_iter()
        .map(|(level, (won, lost))| LevelWinRate {
            level,
            won,
            lost,
            win_rate: ratio(won, won + lost),
        })
        .collect()
}

/// The model's factor effects, by decreasing importance.
pub fn model_side(model: &ModelArtifact) -> ModelSide {
    let mut factors: Vec<ModelFactor> = model
        .success_factors
        .iter()
        .map(|f| ModelFactor {
            feature: f.feature.clone(),
            importance: f.importance,
            levels: f
                .levels
                .iter()
                .map(|l| ModelLevel {
                    level: l.level.clone(),
                    coefficient: l.coefficient,
                    odds_ratio: l.odds_ratio,
                })
                .collect(),
        })
        .collect();
    factors.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    ModelSide {
        version: model.version.clone(),
        factors,
    }
}

/// Computes the report over closed deals passing `filter`, in one pass over the deals: the
/// counts, the per-level counts and the won and lost values of every measure together.
pub fn success_factors(
    snapshot: &Snapshot,
    filter: &DealFilter,
    model: Option<&ModelArtifact>,
) -> SuccessFactorsReport {
    let (mut won, mut lost) = (0u64, 0u64);
    // Per measure: won values, lost values; in deal order, so means sum in the same order.
    let mut values: [(Vec<f64>, Vec<f64>); 3] = Default::default();
    let mut sectors: ByName<(u64, u64)> = ByName::new(&snapshot.names);
    let mut roles: ByName<(u64, u64)> = ByName::new(&snapshot.names);
    for d in &snapshot.deals {
        if !d.status.is_closed() || !filter.matches(d) {
            continue;
        }
        let is_won = d.status == Status::Won;
        let count = |c: &mut (u64, u64)| {
            if is_won {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        };
        count(sectors.entry(d.sector, Default::default));
        count(roles.entry(d.contact_role, Default::default));
        if is_won {
            won += 1;
        } else {
            lost += 1;
        }
        for ((w, l), v) in values.iter_mut().zip(measures(d)) {
            if let Some(v) = v {
                if is_won { w } else { l }.push(v);
            }
        }
    }
    SuccessFactorsReport {
        won_deals: won,
        lost_deals: lost,
        win_rate: ratio(won, won + lost),
        measures: MEASURES
            .iter()
            .zip(values)
            .map(|(name, (mut w, mut l))| MeasureComparison {
                measure: (*name).into(),
                won: Distribution::of(&mut w),
                lost: Distribution::of(&mut l),
            })
            .collect(),
        by_sector: win_rates(snapshot, sectors),
        by_contact_role: win_rates(snapshot, roles),
        model: model.map(model_side),
    }
}

/// CSV: one row per measure × outcome, per sector / role win rate, and per model level.
pub fn table(report: &SuccessFactorsReport) -> Table {
    let mut t = Table::new([
        "section",
        "name",
        "level",
        "outcome",
        "count",
        "mean",
        "p25",
        "median",
        "p75",
        "won",
        "lost",
        "win_rate",
        "importance",
        "coefficient",
        "odds_ratio",
    ]);
    let blank = String::new;
    for m in &report.measures {
        for (outcome, dist) in [("won", &m.won), ("lost", &m.lost)] {
            t.push(vec![
                "measure".into(),
                m.measure.clone(),
                blank(),
                outcome.into(),
                opt(dist.as_ref().map(|d| d.count)),
                opt(dist.as_ref().map(|d| d.mean)),
                opt(dist.as_ref().map(|d| d.p25)),
                opt(dist.as_ref().map(|d| d.median)),
                opt(dist.as_ref().map(|d| d.p75)),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
            ]);
        }
    }
    for (section, rates) in [
        ("sector", &report.by_sector),
        ("contact_role", &report.by_contact_role),
    ] {
        for r in rates {
            let mut row = vec![section.to_owned(), section.to_owned(), r.level.clone()];
            row.extend(std::iter::repeat_with(blank).take(6));
            row.extend([
                cell(r.won),
                cell(r.lost),
                opt(r.win_rate),
                blank(),
                blank(),
                blank(),
            ]);
            t.push(row);
        }
    }
    if let Some(model) = &report.model {
        for f in &model.factors {
            for l in &f.levels {
                let mut row = vec!["model".to_owned(), f.feature.clone(), l.level.clone()];
                row.extend(std::iter::repeat_with(blank).take(9));
                row.extend([cell(f.importance), cell(l.coefficient), cell(l.odds_ratio)]);
                t.push(row);
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::filter::FilterNames;
    use crate::insights::snapshot::{sample, NameId};

    /// The straightforward version: one pass per count, measure and level table, levels keyed by
    /// label (what `success_factors` did before the single pass).
    fn recomputed(snapshot: &Snapshot, filter: &DealFilter) -> SuccessFactorsReport {
        let closed = snapshot
            .deals
            .iter()
            .filter(|d| d.status.is_closed() && filter.matches(d));
        let rates = |key: fn(&Deal) -> Option<NameId>| {
            let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for d in closed.clone() {
                let entry = counts.entry(snapshot.label(key(d))).or_default();
                match d.status {
                    Status::Won => entry.0 += 1,
                    Status::Lost => entry.1 += 1,
                    Status::Open => {}
                }
            }
            counts
                .into_iter()
                .map(|(level, (won, lost))| LevelWinRate {
                    level,
                    won,
                    lost,
                    win_rate: ratio(won, won + lost),
                })
                .collect::<Vec<_>>()
        };
        let won = closed.clone().filter(|d| d.status == Status::Won).count() as u64;
        let lost = closed.clone().count() as u64 - won;
        SuccessFactorsReport {
            won_deals: won,
            lost_deals: lost,
            win_rate: ratio(won, won + lost),
            measures: MEASURES.iter().map(|m| compare(closed.clone(), m)).collect(),
            by_sector: rates(|d| d.sector),
            by_contact_role: rates(|d| d.contact_role),
            model: None,
        }
    }

    #[test]
    fn one_pass_equals_the_straightforward_passes() {
        let s = sample(5_000, 3);
        for (sector, contact_role) in [
            (None, None),
            (Some("retail"), None),
            (None, Some("champion")),
            (Some("banking"), Some("buyer")),
            (Some("nowhere"), None),
        ] {
            let filter = DealFilter::new(
                &s,
                &FilterNames {
                    sector,
                    contact_role,
                    ..FilterNames::default()
                },
            );
            let expected = recomputed(&s, &filter);
            assert_eq!(
                success_factors(&s, &filter, None),
                expected,
                "{sector:?} {contact_role:?}"
            );
        }
        // The sample's role literally named "(none)" shares the row of the deals without one.
        let all = success_factors(&s, &DealFilter::default(), None);
        let none_rows = all.by_contact_role.iter().filter(|r| r.level == "(none)").count();
        assert_eq!(none_rows, 1);
    }
}
