//! `GET /v1/insights/at-risk`: open deals whose measures fall outside the won-deal reference,
//! ranked by the value at stake.
//!
//! References are the 75th percentile over won deals of the deal's sector when the sector has at
//! least [`MIN_WON_FOR_GROUP_TARGET`] won deals with the measure, else over all won deals:
//! - `response_hours` above the won p75;
//! - `days_since_last_interaction` (since the last activity, or creation when there is none)
//!   above the won p75 of the average gap between interactions (`cycle_days / interactions`);
//! - `age_days` (since creation) above the won p75 of `cycle_days`.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::period::rfc3339;
use super::snapshot::{Deal, NameId, Snapshot, DAY_MS};
use super::stats::quantile;
use super::table::{cell, opt, Table};
use crate::domain::Status;
use crate::model::factors::MIN_WON_FOR_GROUP_TARGET;
use crate::scoring::Intervention;

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

fn open_values(d: &Deal, as_of: i64) -> [Option<f64>; 3] {
    let days = |t: i64| (as_of - t) as f64 / DAY_MS as f64;
    [
        d.response_hours,
        d.last_activity_at.or(d.created_at).map(days),
        d.created_at.map(days),
    ]
}

fn signals(snapshot: &Snapshot, refs: &References, d: &Deal, as_of: i64) -> Vec<Signal> {
    let sector_refs = d.sector.and_then(|s| refs.by_sector.get(&s).map(|r| (s, r)));
    let values = open_values(d, as_of);
    let mut out = Vec::new();
    for (i, name) in SIGNALS.iter().enumerate() {
        let (reference, group) = match sector_refs.and_then(|(s, r)| Some((r[i]?, s))) {
            Some((r, s)) => (Some(r), format!("sector:{}", snapshot.names.name(s))),
            None => (refs.overall[i], "all".to_owned()),
        };
        if let (Some(value), Some(reference)) = (values[i], reference) {
            if value > reference {
                out.push(Signal {
                    measure: (*name).into(),
                    value,
                    reference,
                    reference_group: group,
                });
            }
        }
    }
    out
}

/// Finds the at-risk open deals passing `filter`, ranked, at most `limit` of them (interventions
/// are added by the caller, who has the model and the full records).
pub fn at_risk(snapshot: &Snapshot, filter: &DealFilter, as_of: i64, limit: usize) -> AtRiskReport {
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
        let found = signals(snapshot, &refs, d, as_of);
        if !found.is_empty() {
            let stake = d.amount.map(|a| d.probability.map_or(a, |p| p * a));
            risky.push((d, found, stake));
        }
    }
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
