//! The training job's point-in-time steps: before training, closed deals expanded into snapshots
//! of their open life; after it, backtests at past instants. Both read the deals' recorded
//! history and activities, so both need the database the deals came from.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use super::background::run_cpu;
use super::{backtest, snapshots};
use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::features::FeatureSpec;
use crate::store::opportunities;
use crate::store::Db;
use crate::training::backtest::{holdout_start, OpenAtInstant};
use crate::training::snapshots::SnapshotPlan;
use crate::training::{CompactDeals, FitSample, FitSettings, SplitKind, TrainedModel, WarmStart};

/// How the job learns from deals as they stood while open, and checks it.
#[derive(Debug, Clone, Default)]
pub struct PointInTime {
    /// The database the deals were read from, which holds their history and activities; `None`
    /// for deals read from a file (no snapshots, no backtest).
    pub source: Option<Db>,
    /// The instants each closed deal is seen at; `None` trains on final states.
    pub snapshots: Option<SnapshotPlan>,
}

/// Why the point-in-time steps refused the job.
#[derive(Debug, thiserror::Error)]
pub enum PointInTimeError {
    /// Snapshots asked for without a database to read the deals' history from.
    #[error("snapshots need the deals' history: train from the database, not from a file")]
    NoHistory,
    /// Snapshots with a random split would put a deal's snapshots on both sides of it.
    #[error("snapshots need the time split: a deal's snapshots must stay on one side of it")]
    RandomSplit,
    /// The plan is out of range.
    #[error("{0}")]
    Plan(String),
    /// Reading the history failed.
    #[error("cannot read the deals' history: {0}")]
    Db(#[from] sqlx::Error),
    /// The thread expanding the snapshots stopped without a result.
    #[error("cannot expand the deals' snapshots: {0}")]
    Expansion(String),
}

/// How many closed deals a snapshot load reads, when something running beside it learns that
/// (the training job's data fingerprint counts them): once known, the load makes room in its
/// columns for all the rows to come, at the rate of rows per deal it has seen so far
/// ([`CompactDeals::reserve`]).
#[derive(Debug, Clone, Default)]
pub struct ClosedDealCount(Arc<OnceLock<usize>>);

impl ClosedDealCount {
    /// Tells the count; a second count is ignored.
    pub fn set(&self, deals: usize) {
        let _ = self.0.set(deals);
    }

    /// The count, once told.
    fn get(&self) -> Option<usize> {
        self.0.get().copied()
    }
}

/// Rows expected after `deals` closed deals gave `rows`, when `total` deals are read in all: at
/// the same rate, with a tenth more, so that a few longer-lived deals than the first ones do not
/// make every column grow once more (which copies it) near the end.
fn rows_to_come(rows: usize, deals: usize, total: usize) -> Option<usize> {
    if deals == 0 {
        return None;
    }
    // remaining × rows / deals × 11/10, rounded up, in integers wide enough not to overflow.
    let remaining = total.saturating_sub(deals) as u128;
    let to_come = (remaining * rows as u128 * 11).div_ceil(deals as u128 * 10);
    Some(usize::try_from(to_come).unwrap_or(usize::MAX))
}

/// What [`prepare`] did, for [`finish`] to record.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The snapshot plan, when expanded.
    pub plan: Option<SnapshotPlan>,
    /// Where the backtest looks from: the start of the time split's holdout (the instant before
    /// its first close, `training::backtest::instant_before`), computed on the deals (not on
    /// their snapshots) so final-state and snapshot models are judged on the same open deals.
    pub backtest_at: Option<DateTime<Utc>>,
    /// Closed deals with a history before their close.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// The rows to train on: `deals` as they are (final states), or each closed deal's snapshots;
/// and the backtest instant.
pub async fn prepare(
    plan: &PointInTime,
    deals: Vec<Opportunity>,
    split: SplitKind,
    test_fraction: f64,
) -> Result<(Vec<Opportunity>, Prepared), PointInTimeError> {
    let backtest_at = match (&plan.source, split) {
        (Some(_), SplitKind::Time) => deals_holdout_start(&deals, test_fraction),
        _ => None,
    };
    let Some(snapshots) = &plan.snapshots else {
        return Ok((
            deals,
            Prepared {
                backtest_at,
                ..Prepared::default()
            },
        ));
    };
    if split == SplitKind::Random {
        return Err(PointInTimeError::RandomSplit);
    }
    snapshots.check().map_err(PointInTimeError::Plan)?;
    let db = plan.source.as_ref().ok_or(PointInTimeError::NoHistory)?;
    let expanded = snapshots::expand(db, &deals, snapshots).await?;
    Ok((
        expanded.rows,
        Prepared {
            plan: Some(snapshots.clone()),
            backtest_at,
            with_history: expanded.with_history,
            deals: expanded.deals,
        },
    ))
}

/// [`prepare`] for the closed deals of the database `source` (closed within `since`..`until`)
/// with snapshots: page after page, each closed deal's snapshots go straight into `data`, so
/// neither the deals nor their snapshots are ever all held whole. Returns `data` holding the rows
/// [`prepare`] would give, in the same order (closing time, then external id by bytes, which is
/// also PostgreSQL's order of the ids under a `C` collation). `plan.snapshots` must be set.
///
/// Reading and expanding overlap: while one thread (at the lowest priority when `low_priority`)
/// expands a page, the next page and its history are read, so a job on two cores waits for the
/// slower of the two rather than for both. When `closed_deals` is told how many deals are read,
/// the columns are reserved for them once (the rows are the same either way).
pub async fn prepare_from_database(
    plan: &PointInTime,
    source: &Db,
    (since, until): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    (split, test_fraction): (SplitKind, f64),
    (data, low_priority): (CompactDeals, bool),
    closed_deals: ClosedDealCount,
) -> Result<(CompactDeals, Prepared), PointInTimeError> {
    let Some(snapshots) = &plan.snapshots else {
        return Err(PointInTimeError::Plan("no snapshot plan".into()));
    };
    if split == SplitKind::Random {
        return Err(PointInTimeError::RandomSplit);
    }
    snapshots.check().map_err(PointInTimeError::Plan)?;
    let history = plan.source.as_ref().ok_or(PointInTimeError::NoHistory)?;
    // One page expanding while the next is read, and one read ahead: enough to keep both busy,
    // and at most three pages of deals held at once.
    let (send, mut receive) = tokio::sync::mpsc::channel::<snapshots::Timelines>(1);
    let data_reads_attributes = data.reads_attributes();
    // The reader keeps the changes of the fields the columns read only, and never parses the
    // others' values.
    let fields_read = data.fields_read();
    let expand_plan = snapshots.clone();
    let expansion = run_cpu("dealscore-snapshots", low_priority, move || {
        let (mut data, mut counts, rules) = (data, snapshots::ExpandCounts::default(), AsOfRules::default());
        let mut reserved = false;
        while let Some(timelines) = receive.blocking_recv() {
            let plan = (&expand_plan, &rules);
            snapshots::expand_timelines(timelines, plan, &mut counts, |row| data.push(&row));
            if !reserved {
                let to_come =
                    (closed_deals.get()).and_then(|total| rows_to_come(data.len(), counts.deals, total));
                if let Some(rows) = to_come {
                    data.reserve(rows);
                    reserved = true;
                }
            }
        }
        // The deals came in row-id order; the rows go in closing order, as `prepare` gives them.
        data.finish_in_closing_order();
        (data, counts)
    });
    // The holdout's start is computed on the deals, whose closing times and ids are all kept.
    let mut closed_at: Vec<Option<DateTime<Utc>>> = Vec::new();
    let (mut ids, mut id_ends) = (String::new(), Vec::new());
    let reading = async {
        // The lean page (one JSON value per page) holds every field a feature reads; the
        // snapshots take the rest from the recorded history, as they would from a whole row. The
        // attributes' JSON, most of a row's bytes, is read only when a source is an attribute.
        // Pages in row-id order: each page's history and activities are then on neighbouring
        // pages of the database, where the closing order scatters them.
        let mut pages = opportunities::ClosedDealsByRowId::new(source, since, until, data_reads_attributes);
        let mut next = pages.next_page().await?;
        while let Some(page) = next {
            let closed: Vec<(Option<i64>, Opportunity)> = (page.into_iter())
                .filter(|(_, d)| d.status.is_closed())
                .map(|(id, d)| (Some(id), d))
                .collect();
            for (_, deal) in &closed {
                closed_at.push(deal.closed_at);
                ids.push_str(deal.external_id.as_str());
                id_ends.push(ids.len());
            }
            // The page's history and the next page come through two connections at once (on
            // SQLite, two threads).
            let (timelines, following) = tokio::join!(
                snapshots::read_timelines(history, closed, Some(&fields_read)),
                pages.next_page()
            );
            if send.send(timelines?).await.is_err() {
                // The expansion stopped (it panicked): its own error says why.
                break;
            }
            next = following?;
        }
        // Closing the channel ends the expansion.
        drop(send);
        Ok::<(), sqlx::Error>(())
    };
    let (expanded, read) = tokio::join!(expansion, reading);
    read?;
    let (data, counts) = expanded.map_err(PointInTimeError::Expansion)?;
    let id = |i: usize| &ids[if i == 0 { 0 } else { id_ends[i - 1] }..id_ends[i]];
    let backtest_at = holdout_start(&closed_at, id, test_fraction);
    let prepared = Prepared {
        plan: Some(snapshots.clone()),
        backtest_at,
        with_history: counts.with_history,
        deals: counts.deals,
    };
    Ok((data, prepared))
}

/// [`holdout_start`] over the closed deals of `deals`.
fn deals_holdout_start(deals: &[Opportunity], test_fraction: f64) -> Option<DateTime<Utc>> {
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    let closed_at: Vec<Option<DateTime<Utc>>> = closed.iter().map(|d| d.closed_at).collect();
    holdout_start(&closed_at, |i| closed[i].external_id.as_str(), test_fraction)
}

/// What the job trained on, for the backtest to replay on.
#[derive(Debug, Clone)]
pub struct TrainedOn<'a> {
    /// The rows trained on (deals, or their snapshots).
    pub data: Arc<CompactDeals>,
    /// The feature spec.
    pub spec: &'a FeatureSpec,
    /// The end of the job's window (`None`: every deal closed since).
    pub until: Option<DateTime<Utc>>,
    /// The job's L-BFGS iteration cap.
    pub max_iterations: u64,
    /// The most rows the job's fits read.
    pub fit_sample: FitSample,
    /// Run CPU work at the lowest scheduling priority.
    pub low_priority: bool,
    /// The job's fit on its training part, where the backtest's fit starts.
    pub warm: Option<WarmStart>,
    /// The deals open at the backtest's instant, when the job read them already
    /// ([`backtest::read_open_at`], while it trained); [`finish`] reads them otherwise.
    pub open: Option<Vec<OpenAtInstant>>,
}

/// Records what [`prepare`] did in the artifact and adds the backtest at the start of the
/// holdout period (time split, deals from the database), replayed on the rows the job trained
/// on; warns rather than fails when the backtest cannot be computed, the model itself being
/// sound. Reseals the artifact.
pub async fn finish(plan: &PointInTime, prepared: Prepared, trained: &mut TrainedModel, on: TrainedOn<'_>) {
    let artifact = &mut trained.artifact;
    if let Some(snapshots) = &prepared.plan {
        artifact.training.snapshots = Some(snapshots.clone());
        artifact.training.deals_with_history = Some(prepared.with_history);
        if (prepared.with_history as f64) < backtest::MIN_HISTORY_SHARE * prepared.deals as f64 {
            trained.warnings.push(format!(
                "only {} of {} closed deals had a recorded field history or activities before their close; \
                 the others were seen on their current values with closing fields hidden \
                 (import the CRM's field history: dealscore import --history)",
                prepared.with_history, prepared.deals
            ));
        }
    }
    let (Some(db), Some(at)) = (plan.source.as_ref(), prepared.backtest_at) else {
        trained.artifact.seal();
        return;
    };
    let fit = backtest::ReplayFit {
        settings: FitSettings {
            alpha: trained.artifact.cv.chosen_alpha,
            max_iterations: on.max_iterations,
            sample: on.fit_sample,
        },
        low_priority: on.low_priority,
        warm: on.warm,
    };
    // The features the model was trained on: training drops a feature no closed deal has a value
    // for, and the replay follows the model (which also lets it reuse the job's fit), not the
    // spec asked for.
    let trained_spec = trained.artifact.features.spec().ok();
    let spec = trained_spec.as_ref().unwrap_or(on.spec);
    let replayed = match on.open {
        Some(open) => backtest::replay(on.data, open, at, spec, fit).await,
        None => backtest::run(db, on.data, at, on.until, spec, fit).await,
    };
    match replayed {
        Ok(Some(result)) => {
            trained.warnings.extend(backtest::history_warning(&result));
            trained.artifact.backtests = vec![result];
        }
        Ok(None) => trained.warnings.push(format!(
            "no backtest: too few deals had closed by {} to replay training then",
            at.format("%Y-%m-%d")
        )),
        Err(e) => trained.warnings.push(format!("no backtest: {e}")),
    }
    trained.artifact.seal();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_to_come_follow_the_rate_seen_with_a_tenth_more() {
        // 1,000 deals gave 5,500 rows; 9,000 more deals at 5.5 rows each, plus a tenth.
        assert_eq!(rows_to_come(5_500, 1_000, 10_000), Some(54_450));
        assert_eq!(rows_to_come(10, 10, 10), Some(0));
        assert_eq!(rows_to_come(0, 0, 10), None);
        // A count below the deals already read (deals closed since it was taken) asks for none.
        assert_eq!(rows_to_come(60, 20, 5), Some(0));
    }

    #[test]
    fn a_closed_deal_count_is_told_once() {
        let count = ClosedDealCount::default();
        assert_eq!(count.get(), None);
        let seen_elsewhere = count.clone();
        count.set(42);
        count.set(7);
        assert_eq!(seen_elsewhere.get(), Some(42));
    }
}
