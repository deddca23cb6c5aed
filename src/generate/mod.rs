//! Synthetic CRM history: deals with a known ("true") win model, for demos, load tests and for
//! checking that training and recommendations recover what was put in.
//!
//! Generation is deterministic: deal *i* depends only on `(seed, end, deals, open_fraction, i)`,
//! so [`generate`] and the streaming [`generate_to_csv`] produce the same rows byte for byte.
//! The model and every distribution are documented in `docs/generator.md`.

mod competition;
mod contracts;
mod model;
mod world;

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{Activity, Opportunity};

pub use model::{
    amount_effect, attribute_effect, cycle_effect, interaction_effect, response_effect, role_effect,
    sector_effect, sigmoid, true_logit, true_strongest_lever, true_win_probability, AMOUNT_REFERENCE,
    AMOUNT_WEIGHT, COMPETITOR_WEIGHT, CYCLE_CURVATURE, CYCLE_OPTIMUM_DAYS, INTERACTION_DECLINE,
    INTERACTION_GAIN, INTERACTION_SCALE, INTERCEPT, LEAD_SOURCE_EFFECTS, MISSING_RESPONSE_HOURS,
    OPTIMAL_INTERACTIONS, RESPONSE_SCALE_HOURS, RESPONSE_WEIGHT, ROLE_EFFECTS, SECTOR_EFFECTS,
    TARGET_CONTACT_ROLE, TARGET_RESPONSE_HOURS,
};
use world::World;

/// Custom attribute columns written after the standard ones, in this order.
pub const ATTRIBUTE_COLUMNS: [&str; 6] = [
    "lead_source",
    "competitors",
    "deal_type",
    "contract_months",
    "competitor",
    "loss_reason",
];

/// Standard opportunity CSV columns, in order.
pub const OPPORTUNITY_COLUMNS: [&str; 16] = crate::domain::RECORD_FIELDS;

/// Activity CSV columns, in order.
pub const ACTIVITY_COLUMNS: [&str; 5] = ["opportunity_id", "id", "kind", "direction", "occurred_at"];

/// Field history CSV columns, in order: what `dealscore import --history` reads.
pub const HISTORY_COLUMNS: [&str; 4] = ["external_id", "field", "value", "changed_at"];

/// Truth CSV columns, in order: how each open deal eventually ends.
pub const TRUTH_COLUMNS: [&str; 4] = ["external_id", "status", "closed_at", "true_probability"];

/// How often [`generate_to_csv`] reports progress, in deals.
const PROGRESS_EVERY: usize = 10_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Number of deals (open and closed).
    pub deals: usize,
    /// Random seed; the same seed (with the same other fields) gives the same history.
    pub seed: u64,
    /// Share of deals that are still open (0–1); default 0.2.
    pub open_fraction: f64,
    /// Reference "now": closed deals close before it, the history spans the two years before it.
    pub end: DateTime<Utc>,
    /// Whether [`generate`] returns activity records and stage changes (the rows are the same
    /// either way).
    pub with_activities: bool,
    /// Distribution shift applied to every deal (default: none), to simulate a pipeline that no
    /// longer looks like the history a model learned from.
    pub shift: Shift,
    /// Prefix of the external ids (default `D-`), so a second generated population can be
    /// imported next to the first without overwriting it.
    pub id_prefix: String,
}

/// A documented distribution shift (`docs/generator.md`). Factors of 1 change nothing, byte
/// for byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Multiplies every deal amount (before rounding to 10). Default 1.
    pub amount_factor: f64,
    /// Multiplies every deal's typical answer delay, hence its `response_hours`. Default 1.
    pub response_factor: f64,
}

impl Default for Shift {
    fn default() -> Self {
        Shift {
            amount_factor: 1.0,
            response_factor: 1.0,
        }
    }
}

impl Shift {
    /// Parses `name=factor` (`amount=3`, `response_hours=4`) into this shift; factors must be
    /// finite and positive.
    pub fn apply_spec(&mut self, spec: &str) -> Result<(), String> {
        let (name, factor) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}` is not NAME=FACTOR (e.g. amount=3)"))?;
        let factor: f64 = factor
            .trim()
            .parse()
            .map_err(|_| format!("`{factor}` in `{spec}` is not a number"))?;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!("the factor in `{spec}` must be a positive number"));
        }
        match name.trim() {
            "amount" => self.amount_factor = factor,
            "response_hours" => self.response_factor = factor,
            other => return Err(format!("cannot shift `{other}`: use amount or response_hours")),
        }
        Ok(())
    }
}

impl Default for GeneratorConfig {
    /// 10,000 deals, seed 42, 20 % open, ending 2026-01-01T00:00:00Z, with activities, no shift,
    /// ids `D-0000001…`. The end is
    /// fixed rather than "now" so the default output never changes.
    fn default() -> Self {
        GeneratorConfig {
            deals: 10_000,
            seed: 42,
            open_fraction: 0.2,
            end: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            with_activities: true,
            shift: Shift::default(),
            id_prefix: "D-".to_owned(),
        }
    }
}

/// A generated history held in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyntheticHistory {
    /// The deals, in external-id order.
    pub opportunities: Vec<Opportunity>,
    /// Activities as `(opportunity external_id, activity)`, grouped by deal and in time order
    /// within a deal; empty unless `with_activities`.
    pub activities: Vec<(String, Activity)>,
    /// Stage changes as `(opportunity external_id, change)`, grouped by deal and in time order
    /// within a deal; empty unless `with_activities`.
    pub stage_changes: Vec<(String, StageChange)>,
    /// How each open deal eventually ends, as `(external_id, outcome)` in deal order.
    pub eventual: Vec<(String, EventualOutcome)>,
}

/// A deal's stage from an instant on: one row of its field history.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    /// The stage (`qualification`, `proposal`, `negotiation`, `closed_won`, `closed_lost`).
    pub stage: String,
    /// When the deal entered it.
    pub at: DateTime<Utc>,
}

/// How an open deal of a generated history ends after the history's end: the truth its scores
/// can be judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventualOutcome {
    /// Won or lost.
    pub status: crate::domain::Status,
    /// When it closes (after the history's end).
    pub closed_at: DateTime<Utc>,
    /// The true win probability the outcome was drawn with: the true model on the finished deal
    /// (its whole cycle and every interaction of its life).
    pub true_probability: f64,
    /// The finished deal's interaction count (its whole life's; not in the truth file).
    pub final_interaction_count: i64,
    /// The finished deal's mean response time in hours (not in the truth file).
    pub final_response_hours: Option<f64>,
}

/// Where [`generate_to_csv`] writes: the opportunities, and each other file when given.
#[derive(Debug)]
pub struct CsvSinks<W: Write> {
    /// Opportunities ([`OPPORTUNITY_COLUMNS`] then [`ATTRIBUTE_COLUMNS`]).
    pub opportunities: W,
    /// Activities ([`ACTIVITY_COLUMNS`]).
    pub activities: Option<W>,
    /// Stage history ([`HISTORY_COLUMNS`]).
    pub history: Option<W>,
    /// How the open deals end ([`TRUTH_COLUMNS`]).
    pub truth: Option<W>,
}

/// Counts reported by [`generate_to_csv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerateSummary {
    /// Deals written.
    pub deals: usize,
    /// Open deals among them.
    pub open: usize,
    /// Won deals among them.
    pub won: usize,
    /// Lost deals among them.
    pub lost: usize,
    /// Activity rows written (0 without an activity output).
    pub activities: usize,
    /// Stage-change rows written (0 without a history output).
    pub stage_changes: usize,
}

impl GenerateSummary {
    fn count(&mut self, opp: &Opportunity) {
        self.deals += 1;
        match opp.status {
            crate::domain::Status::Open => self.open += 1,
            crate::domain::Status::Won => self.won += 1,
            crate::domain::Status::Lost => self.lost += 1,
        }
    }
}

/// Generates a whole history in memory. Deterministic for `(seed, end, deals, open_fraction)`.
pub fn generate(config: &GeneratorConfig) -> SyntheticHistory {
    let world = World::new(config);
    let mut history = SyntheticHistory {
        opportunities: Vec::with_capacity(config.deals),
        ..SyntheticHistory::default()
    };
    for index in 0..config.deals {
        let deal = world.deal(index, config.with_activities);
        let id = deal.opportunity.external_id.to_string();
        history
            .activities
            .extend(deal.activities.into_iter().map(|a| (id.clone(), a)));
        history
            .stage_changes
            .extend(deal.stage_changes.into_iter().map(|c| (id.clone(), c)));
        if let Some(outcome) = deal.eventual {
            history.eventual.push((id, outcome));
        }
        history.opportunities.push(deal.opportunity);
    }
    history
}

/// Generates deal by deal straight into CSV, holding only one deal in memory at a time.
///
/// Activities and stage changes are generated when `sinks.activities` or `sinks.history` is
/// given (whatever `config.with_activities` says). `progress` is called with the number of deals
/// done every 10,000 deals and once at the end. Produces exactly the bytes that
/// [`write_opportunities_csv`], [`write_activities_csv`], [`write_history_csv`] and
/// [`write_truth_csv`] write for [`generate`]'s result.
pub fn generate_to_csv<W: Write>(
    config: &GeneratorConfig,
    sinks: CsvSinks<W>,
    mut progress: impl FnMut(usize),
) -> csv::Result<GenerateSummary> {
    let world = World::new(config);
    let mut opp_writer = csv::Writer::from_writer(sinks.opportunities);
    write_opportunity_header(&mut opp_writer)?;
    let with_header = |sink: Option<W>, header: &[&str]| -> csv::Result<Option<csv::Writer<W>>> {
        sink.map(|out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(header)?;
            Ok(writer)
        })
        .transpose()
    };
    let mut act_writer = with_header(sinks.activities, &ACTIVITY_COLUMNS)?;
    let mut history_writer = with_header(sinks.history, &HISTORY_COLUMNS)?;
    let mut truth_writer = with_header(sinks.truth, &TRUTH_COLUMNS)?;
    let timelines = act_writer.is_some() || history_writer.is_some();
    let mut summary = GenerateSummary::default();
    for index in 0..config.deals {
        let deal = world.deal(index, timelines);
        let id = deal.opportunity.external_id.as_str();
        write_opportunity_row(&mut opp_writer, &deal.opportunity)?;
        if let Some(w) = act_writer.as_mut() {
            for activity in &deal.activities {
                write_activity_row(w, id, activity)?;
            }
            summary.activities += deal.activities.len();
        }
        if let Some(w) = history_writer.as_mut() {
            for change in &deal.stage_changes {
                write_history_row(w, id, change)?;
            }
            summary.stage_changes += deal.stage_changes.len();
        }
        if let (Some(w), Some(outcome)) = (truth_writer.as_mut(), deal.eventual.as_ref()) {
            write_truth_row(w, id, outcome)?;
        }
        summary.count(&deal.opportunity);
        if summary.deals % PROGRESS_EVERY == 0 {
            progress(summary.deals);
        }
    }
    opp_writer.flush()?;
    for writer in [act_writer, history_writer, truth_writer].iter_mut().flatten() {
        writer.flush()?;
    }
    progress(summary.deals);
    Ok(summary)
}

/// Writes opportunities as CSV: the standard columns, then [`ATTRIBUTE_COLUMNS`]. Attributes
/// outside that list are not written (the generator produces none).
pub fn write_opportunities_csv<W: Write>(opps: &[Opportunity], out: W) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    write_opportunity_header(&mut writer)?;
    for opp in opps {
        write_opportunity_row(&mut writer, opp)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes `(opportunity external_id, activity)` pairs as CSV with [`ACTIVITY_COLUMNS`].
pub fn write_activities_csv<W: Write>(acts: &[(String, Activity)], out: W) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(ACTIVITY_COLUMNS)?;
    for (opportunity_id, activity) in acts {
        write_activity_row(&mut writer, opportunity_id, activity)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes `(opportunity external_id, stage change)` pairs as CSV with [`HISTORY_COLUMNS`].
pub fn write_history_csv<W: Write>(changes: &[(String, StageChange)], out: W) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HISTORY_COLUMNS)?;
    for (opportunity_id, change) in changes {
        write_history_row(&mut writer, opportunity_id, change)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes `(opportunity external_id, eventual outcome)` pairs as CSV with [`TRUTH_COLUMNS`].
pub fn write_truth_csv<W: Write>(outcomes: &[(String, EventualOutcome)], out: W) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(TRUTH_COLUMNS)?;
    for (opportunity_id, outcome) in outcomes {
        write_truth_row(&mut writer, opportunity_id, outcome)?;
    }
    writer.flush()?;
    Ok(())
}

fn write_history_row<W: Write>(
    writer: &mut csv::Writer<W>,
    opportunity_id: &str,
    change: &StageChange,
) -> csv::Result<()> {
    writer.write_record([
        opportunity_id,
        "stage",
        change.stage.as_str(),
        &format_time(change.at),
    ])
}

fn write_truth_row<W: Write>(
    writer: &mut csv::Writer<W>,
    opportunity_id: &str,
    outcome: &EventualOutcome,
) -> csv::Result<()> {
    writer.write_record([
        opportunity_id,
        outcome.status.as_str(),
        &format_time(outcome.closed_at),
        &outcome.true_probability.to_string(),
    ])
}

/// RFC 3339 in UTC with a `Z` and whole seconds, e.g. `2025-03-01T10:00:00Z`.
fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn write_opportunity_header<W: Write>(writer: &mut csv::Writer<W>) -> csv::Result<()> {
    writer.write_record(OPPORTUNITY_COLUMNS.iter().chain(ATTRIBUTE_COLUMNS.iter()))
}

fn write_opportunity_row<W: Write>(writer: &mut csv::Writer<W>, opp: &Opportunity) -> csv::Result<()> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let time = |v: Option<DateTime<Utc>>| v.map(format_time).unwrap_or_default();
    // f64's Display is the shortest text that parses back to the same value, so rows round-trip.
    let number = |v: Option<f64>| v.map(|n| n.to_string()).unwrap_or_default();
    let mut row = vec![
        opp.external_id.to_string(),
        text(&opp.name),
        text(&opp.account),
        text(&opp.sector),
        text(&opp.region),
        text(&opp.owner),
        opp.contact_role
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        number(opp.amount),
        opp.currency.clone(),
        text(&opp.stage),
        opp.status.as_str().to_owned(),
        time(opp.created_at),
        time(opp.closed_at),
        opp.interaction_count.map(|n| n.to_string()).unwrap_or_default(),
        number(opp.response_hours),
        time(opp.last_activity_at),
    ];
    row.extend(
        ATTRIBUTE_COLUMNS
            .iter()
            .map(|c| opp.attributes.get(*c).map(|v| v.to_text()).unwrap_or_default()),
    );
    writer.write_record(&row)
}

fn write_activity_row<W: Write>(
    writer: &mut csv::Writer<W>,
    opportunity_id: &str,
    activity: &Activity,
) -> csv::Result<()> {
    let occurred_at = format_time(activity.occurred_at);
    writer.write_record([
        opportunity_id,
        activity.id.as_deref().unwrap_or_default(),
        activity.kind.as_str(),
        activity.direction.as_str(),
        occurred_at.as_str(),
    ])
}

#[cfg(test)]
mod tests;
