//! Backtests from the database: the deals open at a past instant, rebuilt as they stood then from
//! their recorded history and activities, scored by a model replayed on what was closed by then
//! (`training::backtest`).

use chrono::{DateTime, Utc};

use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::features::FeatureSpec;
use crate::model::Backtest;
use crate::store::{history, opportunities, Db};
use crate::training::backtest::{backtest, OpenAtInstant};
use crate::training::snapshots::SnapshotPlan;
use crate::training::TrainError;

/// Below this share of open deals with a recorded history or activities before the instant, the
/// job warns that the backtest mostly scored current values (closing fields hidden).
pub const MIN_HISTORY_SHARE: f64 = 0.5;

/// Why a backtest could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// Reading the deals' timelines failed.
    #[error("cannot read the deals' history: {0}")]
    Db(#[from] sqlx::Error),
    /// The replayed fit failed.
    #[error("{0}")]
    Train(#[from] TrainError),
}

/// The deals of `closed` that were open at `at` (created by then, closed after), as they stood
/// at `at`, with their outcomes.
pub async fn open_at(
    db: &Db,
    closed: &[&Opportunity],
    at: DateTime<Utc>,
) -> Result<Vec<OpenAtInstant>, sqlx::Error> {
    let then_open: Vec<&Opportunity> = closed
        .iter()
        .copied()
        .filter(|d| OpenAtInstant::was_open(d, at))
        .collect();
    let ids: Vec<&str> = then_open.iter().map(|d| d.external_id.as_str()).collect();
    let mut timelines = history::timelines(db, &ids).await?;
    let rules = AsOfRules::default();
    Ok(then_open
        .into_iter()
        .map(|d| {
            let (changes, activities) = timelines
                .remove(d.external_id.as_str())
                .map(|t| (t.history, t.activities))
                .unwrap_or_default();
            OpenAtInstant::rebuild(d, &changes, &activities, at, &rules)
        })
        .collect())
}

/// Replays training at `at` on the database's deals: fits on those closed by then (on their
/// snapshots when `snapshots` is set), scores those open then as they stood; `None` when too few outcomes were known by then. The deals are read
/// here rather than shared with the job, which keeps only compact columns of them.
pub async fn run(
    db: &Db,
    at: DateTime<Utc>,
    spec: &FeatureSpec,
    alpha: f64,
    max_iterations: u64,
    snapshots: Option<&SnapshotPlan>,
) -> Result<Option<Backtest>, BacktestError> {
    let mut known = opportunities::closed_deals(db, None, Some(at)).await?;
    // The method replayed is the job's: on snapshots when the job learns from them.
    if let Some(plan) = snapshots {
        known = super::snapshots::expand(db, &known, plan).await?.rows;
    }
    let later = opportunities::closed_deals(db, Some(at + chrono::Duration::milliseconds(1)), None).await?;
    let later: Vec<&Opportunity> = later.iter().collect();
    let open = open_at(db, &later, at).await?;
    drop(later);
    let known: Vec<&Opportunity> = known.iter().collect();
    Ok(backtest(&known, &open, at, spec, alpha, max_iterations)?)
}

/// The warning the job adds when few of the backtest's deals had a history before the instant.
pub fn history_warning(result: &Backtest) -> Option<String> {
    if result.open_deals == 0 {
        return None;
    }
    let share = result.with_history as f64 / result.open_deals as f64;
    (share < MIN_HISTORY_SHARE).then(|| {
        format!(
            "backtest as of {}: only {} of {} open deals had a recorded field history or activities \
             before that instant; the others were scored on their current values with closing fields \
             hidden (import the CRM's field history: dealscore import --history)",
            result.as_of.format("%Y-%m-%d"),
            result.with_history,
            result.open_deals
        )
    })
}
