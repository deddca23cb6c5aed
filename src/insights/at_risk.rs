//! `GET /v1/insights/at-risk`: open deals showing a signal that, in the closed deals, went with
//! losing, ranked by the value at stake.
//!
//! A signal is a measure beyond a threshold learnt from the closed deals (won and lost):
//! - `response_hours`, against the closed deals' response hours;
//! - `days_since_last_interaction` (since the last activity, or creation when there is none),
//!   against the closed deals' average gap between interactions (`cycle_days / interactions`);
//! - `age_days` (since creation), against the closed deals' `cycle_days`: a deal open for more
//!   than `t` days will close after more than `t` days, so what became of the closed deals that
//!   took longer than `t` applies to it as it stands.
//!
//! The threshold of a measure is the cut, among its closed deals' 50th, 55th, …, 95th
//! percentiles, that best separates the win rate beyond it from the win rate at or below it (the
//! largest two-proportion z statistic). It is kept only when beyond wins less often, with
//! `z ≥` [`MIN_Z`] and at least [`MIN_SIDE`] closed deals on each side: a measure on which won
//! and lost deals do not differ gives no signal, however far an open deal stands out on it.
//! A sector with at least [`MIN_CLOSED_FOR_SECTOR`] closed deals with the measure gets its own
//! threshold — or none, when the measure separates nothing there —; smaller sectors use the
//! threshold of all closed deals.
//!
//! Of the open deals with a signal, at most [`MAX_SHARE`] of those checked are listed: the ones
//! whose signal went with the lowest win rate, then the furthest beyond their threshold.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::period::rfc3339;
use super::snapshot::{ByName, Deal, NameId, Snapshot, DAY_MS};
use super::table::{cell, opt, Table};
use crate::domain::Status;
use crate::scoring::Intervention;

/// The largest share of the open deals checked that is reported at risk.
pub const MAX_SHARE: f64 = 1.0 / 3.0;

/// The smallest two-proportion z statistic for a threshold to count as separating won from lost
/// deals. Ten cuts are tried per measure and group, so the bar is above the usual 1.96: with no
/// real difference, a z of 3 or more turns up on about one measure in a hundred.
pub const MIN_Z: f64 = 3.0;

/// The fewest closed deals on each side of a threshold.
pub const MIN_SIDE: usize = 30;

/// The fewest closed deals with a measure for a sector to get a threshold of its own.
pub const MIN_CLOSED_FOR_SECTOR: usize = 200;

/// The percentiles of the closed deals' values tried as thresholds, in hundredths.
const CANDIDATE_PERCENTILES: [usize; 10] = [50, 55, 60, 65, 70, 75, 80, 85, 90, 95];

/// How many of `open` deals may be at risk.
fn at_risk_cap(open: u64) -> usize {
    (open as f64 * MAX_SHARE).ceil() as usize
}

/// The checked measures, in report order.
pub const SIGNALS: [&str; 3] = ["response_hours", "days_since_last_interaction", "age_days"];

/// One measure beyond its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Signal {
    /// Measure name (one of `response_hours`, `days_since_last_interaction`, `age_days`).
    pub measure: String,
    /// The deal's value.
    pub value: f64,
    /// The threshold it exceeds, learnt from the closed deals of `reference_group`.
    pub reference: f64,
    /// `sector:<name>` or `all` (which closed deals the threshold comes from).
    pub reference_group: String,
    /// Share of those closed deals beyond the threshold that were won.
    pub win_rate_beyond: f64,
    /// Share of those closed deals at or below the threshold that were won.
    pub win_rate_within: f64,
    /// How many of those closed deals were beyond the threshold.
    pub closed_beyond: u64,
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
    /// Measures beyond their threshold.
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

/// Which closed deals a threshold comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Group {
    All,
    Sector(NameId),
}

/// A threshold that separates won from lost deals, and what became of the deals on each side.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    threshold: f64,
    win_rate_beyond: f64,
    win_rate_within: f64,
    closed_beyond: u64,
    z: f64,
}

/// The threshold of one measure over closed deals given as (value, won), if one separates them
/// (see the module documentation). Sorts `values`.
fn separating_cut(values: &mut [(f64, bool)]) -> Option<Cut> {
    let n = values.len();
    if n < 2 * MIN_SIDE {
        return None;
    }
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // won_from[i]: won deals among values[i..].
    let mut won_from = vec![0u64; n + 1];
    for i in (0..n).rev() {
        won_from[i] = won_from[i + 1] + u64::from(values[i].1);
    }
    let won = won_from[0] as f64;
    let pooled = won / n as f64;
    let mut best: Option<Cut> = None;
    for percentile in CANDIDATE_PERCENTILES {
        let threshold = values[(n * percentile / 100).min(n - 1)].0;
        let within = values.partition_point(|v| v.0 <= threshold);
        let beyond = n - within;
        if beyond < MIN_SIDE || within < MIN_SIDE {
            continue;
        }
        let won_beyond = won_from[within] as f64;
        let rate_beyond = won_beyond / beyond as f64;
        let rate_within = (won - won_beyond) / within as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / beyond as f64 + 1.0 / within as f64)).sqrt();
        if se <= 0.0 {
            continue;
        }
        let z = (rate_within - rate_beyond) / se;
        if z >= MIN_Z && best.is_none_or(|b| z > b.z) {
            best = Some(Cut {
                threshold,
                win_rate_beyond: rate_beyond,
                win_rate_within: rate_within,
                closed_beyond: beyond as u64,
                z,
            });
        }
    }
    best
}

/// A closed deal's values of the measures, in [`SIGNALS`] order.
fn closed_values(d: &Deal) -> [Option<f64>; 3] {
    let cycle = d.cycle_days();
    let gap = match (cycle, d.interaction_count) {
        (Some(c), Some(n)) => Some(c / n.max(1) as f64),
        _ => None,
    };
    [d.response_hours, gap, cycle]
}

/// An open deal's values of the measures at `as_of`, in [`SIGNALS`] order.
fn open_values(d: &Deal, as_of: i64) -> [Option<f64>; 3] {
    let days = |t: i64| (as_of - t) as f64 / DAY_MS as f64;
    [
        d.response_hours,
        d.last_activity_at.or(d.created_at).map(days),
        d.created_at.map(days),
    ]
}

/// The threshold each measure of a deal is checked against, with its group; `None` when the
/// measure separates nothing in the deal's group.
type Resolved = [Option<(Cut, Group)>; 3];

/// The thresholds: over all closed deals, and per sector with enough closed deals (already
/// resolved: the sector's own cut, or the overall one for a sector too small to have one).
fn thresholds(snapshot: &Snapshot) -> (Resolved, HashMap<NameId, Resolved>) {
    let mut all: [Vec<(f64, bool)>; 3] = Default::default();
    let mut sectors: HashMap<NameId, [Vec<(f64, bool)>; 3]> = HashMap::new();
    for d in snapshot.deals.iter().filter(|d| d.status.is_closed()) {
        let won = d.status == Status::Won;
        for (i, v) in closed_values(d).into_iter().enumerate() {
            if let Some(v) = v {
                all[i].push((v, won));
                if let Some(s) = d.sector {
                    sectors.entry(s).or_default()[i].push((v, won));
                }
            }
        }
    }
    let overall: Resolved = all.map(|mut v| separating_cut(&mut v).map(|c| (c, Group::All)));
    let by_sector = sectors
        .into_iter()
        .map(|(sector, values)| {
            let mut resolved = overall;
            for (slot, mut v) in resolved.iter_mut().zip(values) {
                if v.len() >= MIN_CLOSED_FOR_SECTOR {
                    *slot = separating_cut(&mut v).map(|c| (c, Group::Sector(sector)));
                }
            }
            (sector, resolved)
        })
        .collect();
    (overall, by_sector)
}

/// What at-risk needs that depends on the snapshot alone, kept beside it
/// ([`super::cache::CachedSnapshot`]): the thresholds, already resolved per sector, and where
/// the open deals are. Without it every request would sort the closed deals' values again (about
/// 700,000 of them per measure at 1M opportunities) and walk all deals to find the open ones.
#[derive(Debug)]
pub(crate) struct Basis {
    overall: Resolved,
    by_sector: ByName<Resolved>,
    /// Indexes into `Snapshot::deals` of the open deals, in id order.
    open: Vec<usize>,
}

/// A measure of an open deal beyond its threshold: (value, cut, group).
type Found = Option<(f64, Cut, Group)>;

impl Basis {
    /// The basis of `snapshot`.
    pub(crate) fn new(snapshot: &Snapshot) -> Basis {
        let (overall, sectors) = thresholds(snapshot);
        let mut by_sector = ByName::new(&snapshot.names);
        for (sector, resolved) in sectors {
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

    /// The measures of open deal `d` beyond their threshold; no allocation, so every open deal
    /// can be checked cheaply and only the listed ones are turned into [`Signal`]s.
    fn check(&self, d: &Deal, as_of: i64) -> [Found; 3] {
        let resolved = self.by_sector.get(d.sector).unwrap_or(&self.overall);
        let mut out = [None; 3];
        for ((slot, value), cut) in out.iter_mut().zip(open_values(d, as_of)).zip(resolved) {
            if let (Some(value), Some((cut, group))) = (value, *cut) {
                if value > cut.threshold {
                    *slot = Some((value, cut, group));
                }
            }
        }
        out
    }
}

/// How bad a deal's signals are: the lowest win rate beyond a threshold it exceeds, and the
/// largest ratio of a value to its threshold (infinite beyond a threshold of 0).
#[derive(Debug, Clone, Copy)]
struct Severity {
    win_rate: f64,
    beyond: f64,
}

impl Severity {
    fn of(found: &[Found; 3]) -> Severity {
        let mut s = Severity {
            win_rate: f64::INFINITY,
            beyond: 0.0,
        };
        for (value, cut, _) in found.iter().flatten() {
            s.win_rate = s.win_rate.min(cut.win_rate_beyond);
            let ratio = if cut.threshold > 0.0 {
                value / cut.threshold
            } else {
                f64::INFINITY
            };
            s.beyond = s.beyond.max(ratio);
        }
        s
    }

    /// `Less` when `self` is the more severe.
    fn worse_first(&self, other: &Severity) -> Ordering {
        self.win_rate
            .total_cmp(&other.win_rate)
            .then_with(|| other.beyond.total_cmp(&self.beyond))
    }
}

fn signals(snapshot: &Snapshot, found: [Found; 3]) -> Vec<Signal> {
    SIGNALS
        .iter()
        .zip(found)
        .filter_map(|(name, found)| {
            let (value, cut, group) = found?;
            Some(Signal {
                measure: (*name).into(),
                value,
                reference: cut.threshold,
                reference_group: match group {
                    Group::All => "all".to_owned(),
                    Group::Sector(s) => format!("sector:{}", snapshot.names.name(s)),
                },
                win_rate_beyond: cut.win_rate_beyond,
                win_rate_within: cut.win_rate_within,
                closed_beyond: cut.closed_beyond,
            })
        })
        .collect()
}

/// An at-risk deal before it is listed: where it is, its value at stake and how bad it looks.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    stake: Option<f64>,
    severity: Severity,
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
                severity: Severity::of(&found),
            });
        }
    }
    let external_id = |c: &Candidate| deals.get(c.index).map_or("", |d| &d.external_id);
    // Only the worst, at most a share of the open deals.
    let cap = at_risk_cap(open);
    if risky.len() > cap {
        let worst_first = |a: &Candidate, b: &Candidate| {
            a.severity
                .worse_first(&b.severity)
                .then_with(|| external_id(a).cmp(external_id(b)))
                .then_with(|| a.index.cmp(&b.index))
        };
        if cap == 0 {
            risky.clear();
        } else {
            risky.select_nth_unstable_by(cap - 1, worst_first);
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

/// CSV: one row per deal; signals as `measure value > threshold (group: won x beyond, y within)`
/// joined by `; `.
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
                    "{} {:.1} > {:.1} ({}: won {:.3} beyond, {:.3} within)",
                    s.measure, s.value, s.reference, s.reference_group, s.win_rate_beyond, s.win_rate_within
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
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The separating cut computed the plain way: every candidate's sides counted by filtering.
    fn plain_cut(values: &[(f64, bool)]) -> Option<Cut> {
        let mut sorted: Vec<f64> = values.iter().map(|v| v.0).collect();
        sorted.sort_by(f64::total_cmp);
        let n = values.len();
        if n < 2 * MIN_SIDE {
            return None;
        }
        let won = values.iter().filter(|v| v.1).count() as f64;
        let mut best: Option<Cut> = None;
        for p in CANDIDATE_PERCENTILES {
            let t = sorted[(n * p / 100).min(n - 1)];
            let beyond: Vec<&(f64, bool)> = values.iter().filter(|v| v.0 > t).collect();
            let (nb, nw) = (beyond.len(), n - beyond.len());
            if nb < MIN_SIDE || nw < MIN_SIDE {
                continue;
            }
            let wb = beyond.iter().filter(|v| v.1).count() as f64;
            let (rb, rw) = (wb / nb as f64, (won - wb) / nw as f64);
            let pooled = won / n as f64;
            let z = (rw - rb) / (pooled * (1.0 - pooled) * (1.0 / nb as f64 + 1.0 / nw as f64)).sqrt();
            if z >= MIN_Z && best.is_none_or(|b| z > b.z) {
                best = Some(Cut {
                    threshold: t,
                    win_rate_beyond: rb,
                    win_rate_within: rw,
                    closed_beyond: nb as u64,
                    z,
                });
            }
        }
        best
    }

    /// `n` closed deals with a value uniform in [0, 100) and a win chance given by `chance`.
    fn closed(n: usize, seed: u64, chance: impl Fn(f64) -> f64) -> Vec<(f64, bool)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let v = (rng.gen_range(0..1000) as f64) / 10.0;
                (v, rng.gen_bool(chance(v)))
            })
            .collect()
    }

    #[test]
    fn a_measure_that_does_not_separate_won_from_lost_gives_no_threshold() {
        for seed in 0..20 {
            let mut values = closed(3_000, seed, |_| 0.3);
            assert_eq!(separating_cut(&mut values), None, "seed {seed}");
        }
        // Nor does one where beyond wins more often (slowness is not what loses there).
        let mut faster_loses = closed(3_000, 1, |v| if v > 70.0 { 0.6 } else { 0.3 });
        assert_eq!(separating_cut(&mut faster_loses), None);
    }

    #[test]
    fn the_threshold_is_where_deals_start_losing() {
        let mut values = closed(5_000, 3, |v| if v > 70.0 { 0.1 } else { 0.4 });
        let expected = plain_cut(&values);
        let cut = separating_cut(&mut values).expect("a separating cut");
        assert_eq!(Some(cut), expected);
        assert!((69.0..=71.0).contains(&cut.threshold), "{cut:?}");
        assert!((cut.win_rate_beyond - 0.1).abs() < 0.03, "{cut:?}");
        assert!((cut.win_rate_within - 0.4).abs() < 0.03, "{cut:?}");
        assert_eq!(
            cut.closed_beyond,
            values.iter().filter(|v| v.0 > cut.threshold).count() as u64
        );
        // Too few deals: no threshold at all.
        assert_eq!(separating_cut(&mut values[..2 * MIN_SIDE - 1].to_vec()), None);
    }

    #[test]
    fn the_fast_cut_equals_the_plain_one_with_ties() {
        for seed in 0..10 {
            // Values on a coarse grid: many ties at each candidate threshold.
            let mut values: Vec<(f64, bool)> = closed(2_000, seed, |v| if v > 50.0 { 0.2 } else { 0.35 })
                .into_iter()
                .map(|(v, w)| ((v / 10.0).floor(), w))
                .collect();
            let expected = plain_cut(&values);
            assert_eq!(separating_cut(&mut values), expected, "seed {seed}");
        }
    }

    #[test]
    fn sectors_with_enough_deals_get_their_own_threshold_or_none() {
        let s = sample(6_000, 7);
        let (overall, by_sector) = thresholds(&s);
        // The sample's lost deals answer slower and take longer: both separate overall.
        assert!(overall[0].is_some(), "{overall:?}");
        assert!(overall[2].is_some(), "{overall:?}");
        let mining = s.names.find("mining").expect("the sample has a rare sector");
        for (i, resolved) in by_sector[&mining].iter().enumerate() {
            assert_eq!(*resolved, overall[i], "a rare sector uses the overall threshold");
        }
        let retail = s.names.find("retail").expect("retail");
        let mut values: Vec<(f64, bool)> = s
            .deals
            .iter()
            .filter(|d| d.status.is_closed() && d.sector == Some(retail))
            .filter_map(|d| Some((d.response_hours?, d.status == Status::Won)))
            .collect();
        assert!(values.len() >= MIN_CLOSED_FOR_SECTOR);
        let own = plain_cut(&values).map(|c| (c, Group::Sector(retail)));
        assert_eq!(by_sector[&retail][0], own);
        assert_eq!(
            separating_cut(&mut values).map(|c| (c, Group::Sector(retail))),
            own
        );
    }

    #[test]
    fn at_most_a_third_of_the_open_deals_are_at_risk_the_worst_first() {
        let s = sample(6_000, 7);
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
        // Every listed deal is at least as bad as any deal left out.
        let listed: std::collections::HashSet<&str> =
            report.deals.iter().map(|d| d.external_id.as_str()).collect();
        let severity = |i: usize| Severity::of(&basis.check(&s.deals[i], as_of));
        let (in_list, left_out): (Vec<usize>, Vec<usize>) = basis
            .open
            .iter()
            .partition(|&&i| listed.contains(&*s.deals[i].external_id));
        for &l in &in_list {
            for &o in left_out.iter().filter(|&&o| severity(o).win_rate.is_finite()) {
                assert_ne!(
                    severity(o).worse_first(&severity(l)),
                    Ordering::Less,
                    "{} left out, worse than {}",
                    s.deals[o].external_id,
                    s.deals[l].external_id
                );
            }
        }
        // Each signal states a threshold its group's closed deals really have.
        for d in &report.deals {
            for signal in &d.signals {
                assert!(signal.value > signal.reference);
                assert!(signal.win_rate_beyond < signal.win_rate_within, "{signal:?}");
            }
        }
    }

    #[test]
    fn a_measure_that_separates_nothing_flags_no_deal() {
        // Response times unrelated to the outcome: deals that stand out on them are not at risk.
        let mut s = sample(6_000, 7);
        for d in &mut s.deals {
            d.response_hours = Some((d.id * 7_919 % 1_000) as f64 / 5.0);
        }
        let (overall, by_sector) = thresholds(&s);
        assert_eq!(overall[0], None, "{:?}", overall[0]);
        assert!(by_sector.values().all(|r| r[0].is_none()), "{by_sector:?}");
        let filter = DealFilter::new(&s, &FilterNames::default());
        let report = at_risk(&s, &filter, 1_700_000_000_000_i64 + 900 * DAY_MS, 100_000);
        assert!(report.at_risk_deals > 0, "the other measures still separate");
        assert!(report
            .deals
            .iter()
            .flat_map(|d| &d.signals)
            .all(|s| s.measure != "response_hours"));
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
                let full = at_risk(&s, &filter, as_of, 100_000);
                assert!(full.at_risk_deals <= full.open_deals.div_ceil(3));
                let stake = |d: &AtRiskDeal| d.value_at_stake.unwrap_or(f64::NEG_INFINITY);
                assert!(full.deals.windows(2).all(|w| stake(&w[0]) > stake(&w[1])
                    || (stake(&w[0]) == stake(&w[1]) && w[0].external_id <= w[1].external_id)));
                for limit in [0, 1, 7, 50] {
                    let top = at_risk(&s, &filter, as_of, limit);
                    assert_eq!(top.at_risk_deals, full.at_risk_deals);
                    assert_eq!(
                        top.deals[..],
                        full.deals[..limit.min(full.deals.len())],
                        "{limit}"
                    );
                }
            }
        }
    }
}
