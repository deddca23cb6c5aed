//! Training snapshots from the database: each closed deal with its recorded history and
//! activities, expanded into the states it went through while open (`training::snapshots`).
//!
//! Reading and expanding are separate steps ([`read_timelines`], [`expand_timelines`]) so that
//! the job can read the next page of deals while a CPU thread expands the last one.

use std::collections::HashMap;

use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::store::{history, Db};
use crate::training::snapshots::{snapshots, SnapshotPlan};

/// Deals whose recorded changes and activities are read per call of [`history::recorded`] (a
/// statement for the changes and one for the activities per 400 deals, on two connections).
const TIMELINES_PER_READ: usize = 2_000;

/// What [`expand`] produced.
#[derive(Debug, Default)]
pub struct Expanded {
    /// The snapshots of each closed deal, deal after deal.
    pub rows: Vec<Opportunity>,
    /// Closed deals with a recorded field history or activities.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// What [`expand_timelines`] counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpandCounts {
    /// Closed deals with a recorded field history or activities before their close.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// Closed deals with their recorded changes and activities, read and not yet expanded.
#[derive(Debug, Default)]
pub struct Timelines {
    /// The closed deals, in the order read.
    pub deals: Vec<Opportunity>,
    /// Their recorded changes and activities, by external id (deals with neither are absent).
    recorded: HashMap<String, history::Recorded>,
}

/// Expands every closed deal of `deals` into the snapshots of its open life `plan` asks for,
/// read with its recorded history and activities; open deals are left out (no outcome yet).
pub async fn expand(db: &Db, deals: &[Opportunity], plan: &SnapshotPlan) -> Result<Expanded, sqlx::Error> {
    let mut rows = Vec::new();
    let mut counts = ExpandCounts::default();
    let rules = AsOfRules::default();
    let closed = deals.iter().filter(|d| d.status.is_closed()).cloned().collect();
    let timelines = read_timelines(db, closed).await?;
    expand_timelines(timelines, plan, &rules, &mut counts, |row| rows.push(row));
    Ok(Expanded {
        rows,
        with_history: counts.with_history,
        deals: counts.deals,
    })
}

/// Reads the recorded changes and activities of `deals` (closed deals), [`TIMELINES_PER_READ`]
/// deals per round trip.
pub async fn read_timelines(db: &Db, deals: Vec<Opportunity>) -> Result<Timelines, sqlx::Error> {
    let mut recorded = HashMap::new();
    for chunk in deals.chunks(TIMELINES_PER_READ) {
        let ids: Vec<&str> = chunk.iter().map(|d| d.external_id.as_str()).collect();
        recorded.extend(history::recorded(db, &ids).await?);
    }
    Ok(Timelines { deals, recorded })
}

/// Expands each deal of `timelines` into the snapshots `plan` asks for, handing each to `each`,
/// deal after deal, for a reader that keeps less than every snapshot whole (training reads them
/// into compact columns); adds to `counts`. CPU work only.
pub fn expand_timelines(
    timelines: Timelines,
    plan: &SnapshotPlan,
    rules: &AsOfRules,
    counts: &mut ExpandCounts,
    mut each: impl FnMut(Opportunity),
) {
    let Timelines { deals, mut recorded } = timelines;
    for deal in deals.iter().filter(|d| d.status.is_closed()) {
        let history::Recorded {
            history: changes,
            activities,
        } = recorded.remove(deal.external_id.as_str()).unwrap_or_default();
        // A first write at the close is no history of the open life.
        let before_close = |at| deal.closed_at.is_none_or(|c| at < c);
        if changes.iter().any(|c| before_close(c.changed_at))
            || activities.iter().any(|a| before_close(a.occurred_at))
        {
            counts.with_history += 1;
        }
        snapshots(deal, &changes, &activities, plan, rules)
            .into_iter()
            .for_each(&mut each);
        counts.deals += 1;
    }
}
