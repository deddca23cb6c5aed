//! `GET /v1/insights/at-risk`: open deals whose measures fall outside the won-deal reference,
//! ranked by the value at stake.
//!
//! References are the 75th percentile over won deals of the deal's sector when the sector has at
//! least [`MIN_WON_FOR_GROUP_TARGET`] won deals with the measure, else over all won deals:
//! - `response_hours` above the won p75;
//! - `days_since_last_interaction` (since the last activity, or creation when there is none)
//!   above the won p75 of the average gap between interactions (`cycle_days / interactions`);
//! - `age_days` (since creation) above the won p75 of `cycle_days`.
//!
//! A deal with a signal is at risk when it is also among the [`MAX_SHARE`] of the open deals
//! checked that stand furthest beyond their references (the largest ratio of a value to its
//! reference): past deals make the p75 easy to exceed on one measure or another, and a list of
//! three open deals in four is no working list.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::period::rfc3339;
use super::snapshot::{ByName, Deal, NameId, Snapshot, DAY_MS};
use super::stats::quantile;
use super::table::{cell, opt, Table};
use crate::domain::Status;
use crate::model::factors::MIN_WON_FOR_GROUP_TARGET;
use crate::scoring::Intervention;

/// The largest share of the open deals checked that is reported at risk.
pub const MAX_SHARE: f64 = 1.0 / 3.0;

/// How many of `open` deals may be at risk.
fn at_risk_cap(open: u64) -> usize {
    (open as f64 * MAX_SHARE).ceil() as usize
}

/// How far a deal stands beyond its references: the largest ratio of a value to its reference
/// (infinite beyond a reference of 0).
fn severity(found: &[Option<(f64, f64, Group)>; 3]) -> f64 {
    found
        .iter()
        .flatten()
        .map(|(value, reference, _)| {
            if *reference > 0.0 {
                value / reference
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}

/// The checked measures, in report order.
pub const SIGNALS: [&str; 3] = ["response_hours", "days_since_last_interaction", "age_days"];

/// One measure outside its reference.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Signal {
    /// Measure name (one of `response_hours`, `days_since_last_interaction`, `age_days`).
    pub measure: String,
    /// The deal's value.
    pub value: f64,
    /// The won-deal 75th percentile it exceeds.
    pub reference: f64,
    /// `sector:<name>` or `all` (which won deals the reference comes from).
    pub reference_group: String,
}

/// An open deal at risk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AtRiskDeal {
    /// CRM id.
    pub external_id: String,
    /// Owner.
    pub owner: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Sector.
    pub sector: Option<String>,
    /// Account.
    pub account: Option<String>,
    /// Amount.
    pub amount: Option<f64>,
    /// Currency of the amount.
    pub currency: String,
    /// Win probability of the latest stored score, if scored.
    pub probability: Option<f64>,
    /// probability × amount when scored, else the whole amount; absent without an amount.
    pub value_at_stake: Option<f64>,
    /// Measures outside the reference.
    pub signals: Vec<Signal>,
    /// The active model's next intervention for the deal (absent without a model).
    pub recommended_intervention: Option<Intervention>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AtRiskReport {
    /// The instant ages and silences are measured at (RFC 3339).
    pub as_of: String,
    /// Open deals checked (after the owner filter).
    pub open_deals: u64,
    /// Of which at risk.
    pub at_risk_deals: u64,
    /// Version of the model that recommended the interventions.
    pub model_version: Option<String>,
    /// The riskiest deals, by value at stake (largest first), then id.
    pub deals: Vec<AtRiskDeal>,
}

/// Won-deal p75 references: overall and per sector.
#[derive(Debug, Default)]
struct References {
    overall: [Option<f64>; 3],
    by_sector: HashMap<NameId, [Option<f64>; 3]>,
}

fn won_values(d: &Deal) -> [Option<f64>; 3] {
    let cycle = d.cycle_days();
    let gap = match (cycle, d.interaction_count) {
        (Some(c), Some(n)) => Some(c / n.max(1) as f64),
        _ => None,
    };
    [d.response_hours, gap, cycle]
}

fn p75s(values: &mut [Vec<f64>; 3], min_count: usize) -> [Option<f64>; 3] {
    let mut out = [None; 3];
    for (slot, v) in out.iter_mut().zip(values.iter_mut()) {
        if v.len() >= min_count.max(1) {
            *slot = Some(quantile(v, 0.75));
        }
    }
    out
}

fn references(snapshot: &Snapshot) -> References {
    let mut all: [Vec<f64>; 3] = Default::default();
    let mut sectors: HashMap<NameId, [Vec<f64>; 3]> = HashMap::new();
    for d in snapshot.deals.iter().filter(|d| d.status == Status::Won) {
        let values = won_values(d);
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                all[i].push(*v);
                if let Some(s) = d.sector {
                    sectors.entry(s).or_default()[i].push(*v);
                }
            }
        }
    }
    References {
        overall: p75s(&mut all, 1),
        by_sector: sectors
            .into_iter()
            .map(|(s, mut v)| (s, p75s(&mut v, MIN_WON_FOR_GROUP_TARGET)))
            .collect(),
    }
}

/// Which won deals a reference comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Group {
    All,
    Sector(NameId),
}

/// The reference each measure of a deal is checked against, and its group; `None` when there
/// is none (no won deal has the measure).
type Resolved = [Option<(f64, Group)>; 3];

/// What at-risk needs that depends on the snapshot alone, kept beside it
/// ([`super::cache::CachedSnapshot`]): the won-deal references, already resolved per sector (the sector's
/// own p75 when it has enough won deals, else the overall one), and where the open deals are.
/// Without it every request recomputed the p75s of ~340,000 won deals at 1M opportunities
/// and walked all deals to find the 20% that are open.
#[derive(Debug)]
pub(crate) struct Basis {
    overall: Resolved,
    by_sector: ByName<Resolved>,
    /// Indexes into `Snapshot::deals` of the open deals, in id order.
    open: Vec<usize>,
}

impl Basis {
    /// The basis of `snapshot`.
    pub(crate) fn new(snapshot: &Snapshot) -> Basis {
        let references = references(snapshot);
        let overall: Resolved = references.overall.map(|r| r.map(|r| (r, Group::All)));
        let mut by_sector = ByName::new(&snapshot.names);
        for (&sector, refs) in &references.by_sector {
            let mut resolved = overall;
            for (slot, r) in resolved.iter_mut().zip(refs) {
                if let Some(r) = r {
                    *slot = Some((*r, Group::Sector(sector)));
                }
            }
            *by_sector.entry(Some(sector), || resolved) = resolved;
        }
        let open = (snapshot.deals.iter().enumerate())
            .filter(|(_, d)| d.status == Status::Open)
            .map(|(i, _)| i)
            .collect();
        Basis {
            overall,
            by_sector,
            open,
        }
    }

    /// The measures of open deal `d` above their reference, as (value, reference, group); no
    /// allocation, so every open deal can be checked cheaply and only the listed ones are
    /// turned into [`Signal`]s.
    fn check(&self, d: &Deal, as_of: i64) -> [Option<(f64, f64, Group)>; 3] {
        let resolved = self.by_sector.get(d.sector).unwrap_or(&self.overall);
        let values = open_values(d, as_of);
        let mut out = [None; 3];
        for ((slot, value), reference) in out.iter_mut().zip(values).zip(resolved) {
            if let (Some(value), Some((reference, group))) = (value, *reference) {
                if value > reference {
                    *slot = Some((value, reference, group));
                }
            }
        }
        out
    }
}

fn open_values(d: &Deal, as_of: i64) -> [Option<f64>; 3] {
    let days = |t: i64| (as_of - t) as f64 / DAY_MS as f64;
    [
        d.response_hours,
        d.last_activity_at.or(d.created_at).map(days),
        d.created_at.map(days),
    ]
}

fn signals(snapshot: &Snapshot, found: [Option<(f64, f64, Group)>; 3]) -> Vec<Signal> {
    SIGNALS
        .iter()
        .zip(found)
        .filter_map(|(name, found)| {
            let (value, reference, group) = found?;
            Some(Signal {
                measure: (*name).into(),
                value,
                reference,
                reference_group: match group {
                    Group::All => "all".to_owned(),
                    Group::Sector(s) => format!("sector:{}", snapshot.names.name(s)),
                },
            })
        })
        .collect()
}

/// An at-risk deal before it is listed: where it is and its value at stake.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    stake: Option<f64>,
    severity: f64,
}

/// Finds the at-risk open deals passing `filter`, ranked, at most `limit` of them (interventions
/// are added by the caller, who has the model and the full records).
///
/// Every open deal is checked (the count is part of the answer), but only the `limit` listed
/// ones are ranked fully and described: the rest are only partitioned away.
pub fn at_risk(snapshot: &Snapshot, filter: &DealFilter, as_of: i64, limit: usize) -> AtRiskReport {
    at_risk_on(snapshot, &Basis::new(snapshot), filter, as_of, limit)
}

/// [`at_risk`] with the basis of `snapshot` already built (the cache keeps one per snapshot).
pub(crate) fn at_risk_on(
    snapshot: &Snapshot,
    basis: &Basis,
    filter: &DealFilter,
    as_of: i64,
    limit: usize,
) -> AtRiskReport {
    let deals = &snapshot.deals;
    let name = |id: Option<NameId>| id.map(|i| snapshot.names.name(i).to_owned());
    let mut open = 0u64;
    let mut risky: Vec<Candidate> = Vec::new();
    for (index, d) in basis.open.iter().filter_map(|&i| Some((i, deals.get(i)?))) {
        if !filter.matches(d) {
            continue;
        }
        open += 1;
        let found = basis.check(d, as_of);
        if found.iter().any(Option::is_some) {
            let stake = d.amount.map(|a| d.probability.map_or(a, |p| p * a));
            risky.push(Candidate {
                index,
                stake,
                severity: severity(&found),
            });
        }
    }
    let external_id = |c: &Candidate| deals.get(c.index).map_or("", |d| &d.external_id);
    // Only the deals furthest beyond their references, at most a share of the open ones.
    let cap = at_risk_cap(open);
    if risky.len() > cap {
        let furthest = |a: &Candidate, b: &Candidate| {
            b.severity
                .total_cmp(&a.severity)
                .then_with(|| external_id(a).cmp(external_id(b)))
                .then_with(|| a.index.cmp(&b.index))
        };
        if cap == 0 {
            risky.clear();
        } else {
            risky.select_nth_unstable_by(cap - 1, furthest);
            risky.truncate(cap);
        }
    }
    let at_risk_deals = risky.len() as u64;
    // Largest stake first, then external id; the position breaks the (impossible) tie of two
    // equal external ids, so the order is total and the same as a stable sort of all of them.
    let order = |a: &Candidate, b: &Candidate| {
        b.stake
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.stake.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| external_id(a).cmp(external_id(b)))
            .then_with(|| a.index.cmp(&b.index))
    };
    if limit == 0 {
        risky.clear();
    } else if limit < risky.len() {
        risky.select_nth_unstable_by(limit - 1, order);
        risky.truncate(limit);
    }
    risky.sort_unstable_by(order);
    AtRiskReport {
        as_of: rfc3339(as_of),
        open_deals: open,
        at_risk_deals,
        model_version: None,
        deals: risky
            .into_iter()
            .filter_map(|c| Some((c, deals.get(c.index)?)))
            .map(|(c, d)| AtRiskDeal {
                external_id: d.external_id.to_string(),
                owner: name(d.owner),
                region: name(d.region),
                sector: name(d.sector),
                account: name(d.account),
                amount: d.amount,
                currency: snapshot.names.name(d.currency).to_owned(),
                probability: d.probability,
                value_at_stake: c.stake,
                signals: signals(snapshot, basis.check(d, as_of)),
                recommended_intervention: None,
            })
            .collect(),
    }
}

/// CSV: one row per deal; signals as `measure value > reference (group)` joined by `; `.
pub fn table(report: &AtRiskReport) -> Table {
    let mut t = Table::new([
        "external_id",
        "owner",
        "region",
        "sector",
        "account",
        "amount",
        "currency",
        "probability",
        "value_at_stake",
        "signals",
        "intervention_action",
        "intervention_target",
        "intervention_uplift",
    ]);
    for d in &report.deals {
        let signals: Vec<String> = d
            .signals
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1} > {:.1} ({})",
                    s.measure, s.value, s.reference, s.reference_group
                )
            })
            .collect();
        let i = d.recommended_intervention.as_ref();
        t.push(vec![
            d.external_id.clone(),
            opt(d.owner.as_ref()),
            opt(d.region.as_ref()),
            opt(d.sector.as_ref()),
            opt(d.account.as_ref()),
            opt(d.amount),
            d.currency.clone(),
            opt(d.probability),
            opt(d.value_at_stake),
            signals.join("; "),
            opt(i.map(|i| &i.action)),
            opt(i.map(|i| &i.target_value)),
            opt(i.map(|i| cell(i.uplift))),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::filter::FilterNames;
    use crate::insights::snapshot::sample;

    /// The straightforward version: references recomputed, every open deal's signals built,
    /// all risky deals sorted (what `at_risk` did before the per-snapshot basis).
    fn recomputed(snapshot: &Snapshot, filter: &DealFilter, as_of: i64, limit: usize) -> AtRiskReport {
        let refs = references(snapshot);
        let name = |id: Option<NameId>| id.map(|i| snapshot.names.name(i).to_owned());
        let mut open = 0u64;
        let mut risky: Vec<(&Deal, Vec<Signal>, Option<f64>)> = Vec::new();
        for d in snapshot
            .deals
            .iter()
            .filter(|d| d.status == Status::Open && filter.matches(d))
        {
            open += 1;
            let sector_refs = d.sector.and_then(|s| refs.by_sector.get(&s).map(|r| (s, r)));
            let values = open_values(d, as_of);
            let mut found = Vec::new();
            for (i, measure) in SIGNALS.iter().enumerate() {
                let (reference, group) = match sector_refs.and_then(|(s, r)| Some((r[i]?, s))) {
                    Some((r, s)) => (Some(r), format!("sector:{}", snapshot.names.name(s))),
                    None => (refs.overall[i], "all".to_owned()),
                };
                if let (Some(value), Some(reference)) = (values[i], reference) {
                    if value > reference {
                        found.push(Signal {
                            measure: (*measure).into(),
                            value,
                            reference,
                            reference_group: group,
                        });
                    }
                }
            }
            if !found.is_empty() {
                risky.push((d, found, d.amount.map(|a| d.probability.map_or(a, |p| p * a))));
            }
        }
        // The furthest beyond their references, a third of the open deals at most.
        let far = |signals: &[Signal]| {
            signals
                .iter()
                .map(|s| {
                    if s.reference > 0.0 {
                        s.value / s.reference
                    } else {
                        f64::INFINITY
                    }
                })
                .fold(0.0, f64::max)
        };
        risky.sort_by(|a, b| {
            far(&b.1)
                .total_cmp(&far(&a.1))
                .then_with(|| a.0.external_id.cmp(&b.0.external_id))
        });
        risky.truncate((open as f64 / 3.0).ceil() as usize);
        let at_risk_deals = risky.len() as u64;
        risky.sort_by(|a, b| {
            b.2.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.2.unwrap_or(f64::NEG_INFINITY))
                .then_with(|| a.0.external_id.cmp(&b.0.external_id))
        });
        risky.truncate(limit);
        AtRiskReport {
            as_of: rfc3339(as_of),
            open_deals: open,
            at_risk_deals,
            model_version: None,
            deals: risky
                .into_iter()
                .map(|(d, signals, stake)| AtRiskDeal {
                    external_id: d.external_id.to_string(),
                    owner: name(d.owner),
                    region: name(d.region),
                    sector: name(d.sector),
                    account: name(d.account),
                    amount: d.amount,
                    currency: snapshot.names.name(d.currency).to_owned(),
                    probability: d.probability,
                    value_at_stake: stake,
                    signals,
                    recommended_intervention: None,
                })
                .collect(),
        }
    }

    #[test]
    fn at_most_a_third_of_the_open_deals_are_at_risk_the_furthest_beyond_their_references() {
        let s = sample(4_000, 7);
        let filter = DealFilter::new(&s, &FilterNames::default());
        let as_of = 1_700_000_000_000_i64 + 900 * DAY_MS;
        let report = at_risk(&s, &filter, as_of, 100_000);
        let basis = Basis::new(&s);
        let with_a_signal = basis
            .open
            .iter()
            .filter(|&&i| basis.check(&s.deals[i], as_of).iter().any(Option::is_some))
            .count() as u64;
        assert!(with_a_signal > report.open_deals / 3, "{with_a_signal}");
        assert_eq!(report.at_risk_deals, report.open_deals.div_ceil(3));
        assert_eq!(report.deals.len() as u64, report.at_risk_deals);
        // Every listed deal stands further beyond its references than any deal left out.
        let listed: std::collections::HashSet<&str> =
            report.deals.iter().map(|d| d.external_id.as_str()).collect();
        let far = |i: usize| severity(&basis.check(&s.deals[i], as_of));
        let least_listed = basis
            .open
            .iter()
            .filter(|&&i| listed.contains(&*s.deals[i].external_id))
            .map(|&i| far(i))
            .fold(f64::INFINITY, f64::min);
        let most_left = basis
            .open
            .iter()
            .filter(|&&i| !listed.contains(&*s.deals[i].external_id))
            .map(|&i| far(i))
            .fold(0.0, f64::max);
        assert!(least_listed >= most_left, "{least_listed} < {most_left}");
    }

    #[test]
    fn kept_references_are_the_recomputed_ones() {
        let s = sample(4_000, 7);
        let basis = Basis::new(&s);
        let refs = references(&s);
        assert!(refs.overall.iter().all(Option::is_some));
        assert_eq!(basis.overall.map(|r| r.map(|(v, _)| v)), refs.overall);
        let mining = s.names.find("mining");
        assert!(mining.is_some(), "the sample has a rare sector");
        let mut sectors = 0;
        for d in s.deals.iter().filter(|d| d.status == Status::Open) {
            let resolved = basis.by_sector.get(d.sector).unwrap_or(&basis.overall);
            for (i, resolved) in resolved.iter().enumerate() {
                let expected = match d.sector.and_then(|s| Some((refs.by_sector.get(&s)?[i]?, s))) {
                    Some((r, s)) => Some((r, Group::Sector(s))),
                    None => refs.overall[i].map(|r| (r, Group::All)),
                };
                assert_eq!(*resolved, expected);
                if d.sector == mining {
                    assert_eq!(resolved.map(|(_, g)| g), Some(Group::All), "too few won deals");
                }
                sectors += usize::from(matches!(expected, Some((_, Group::Sector(_)))));
            }
        }
        assert!(sectors > 0);
        assert_eq!(
            basis.open.len(),
            s.deals.iter().filter(|d| d.status == Status::Open).count()
        );
    }

    #[test]
    fn ranked_top_deals_match_a_full_sort() {
        let s = sample(4_000, 11);
        let start = 1_700_000_000_000_i64;
        for as_of in [start + 300 * DAY_MS, start + 900 * DAY_MS] {
            for owner in [None, Some("ann"), Some("nobody")] {
                let filter = DealFilter::new(
                    &s,
                    &FilterNames {
                        owner,
                        ..FilterNames::default()
                    },
                );
                for limit in [0, 1, 7, 50, 100_000] {
                    let expected = recomputed(&s, &filter, as_of, limit);
                    assert_eq!(
                        at_risk(&s, &filter, as_of, limit),
                        expected,
                        "{as_of} {owner:?} {limit}"
                    );
                    if owner.is_none() && limit == 50 {
                        assert!(expected.at_risk_deals > 50 && expected.deals.len() == 50);
                    }
                    // At most a third of the open deals, and as many as that when more have a
                    // signal (the sample's old open deals all do).
                    assert!(expected.at_risk_deals <= expected.open_deals.div_ceil(3));
                }
            }
        }
    }
}
