//! Training snapshots from the database: each closed deal with its recorded history and
//! activities, expanded into the states it went through while open (`training::snapshots`).

use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::store::{history, Db};
use crate::training::snapshots::{snapshots, SnapshotPlan};

/// Deals whose recorded changes and activities are read per round trip (three statements each
/// per 400 deals, see [`history::recorded`]).
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

/// What [`expand_each`] counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpandCounts {
    /// Closed deals with a recorded field history or activities before their close.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// Expands every closed deal of `deals` into the snapshots of its open life `plan` asks for,
/// read with its recorded history and activities; open deals are left out (no outcome yet).
pub async fn expand(db: &Db, deals: &[Opportunity], plan: &SnapshotPlan) -> Result<Expanded, sqlx::Error> {
    let mut rows = Vec::new();
    let mut counts = ExpandCounts::default();
    expand_each(db, deals, plan, &mut counts, |row| rows.push(row)).await?;
    Ok(Expanded {
        rows,
        with_history: counts.with_history,
        deals: counts.deals,
    })
}

/// [`expand`] handing each snapshot to `each`, deal after deal, for a reader that keeps less
/// than every snapshot whole (training reads them into compact columns); adds to `counts`.
pub async fn expand_each(
    db: &Db,
    deals: &[Opportunity],
    plan: &SnapshotPlan,
    counts: &mut ExpandCounts,
    mut each: impl FnMut(Opportunity),
) -> Result<(), sqlx::Error> {
    let rules = AsOfRules::default();
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    for chunk in closed.chunks(TIMELINES_PER_READ) {
        let ids: Vec<&str> = chunk.iter().map(|d| d.external_id.as_str()).collect();
        let mut recorded = history::recorded(db, &ids).await?;
        for deal in chunk {
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
            snapshots(deal, &changes, &activities, plan, &rules)
                .into_iter()
                .for_each(&mut each);
            counts.deals += 1;
        }
    }
    Ok(())
}
