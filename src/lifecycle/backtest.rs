//! Backtests from the database: the deals open at a past instant, rebuilt as they stood then from
//! their recorded history and activities, scored by a model replayed on what was closed by then
//! (`training::backtest`), from the rows the training job already holds.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::background::run_cpu;
use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::features::FeatureSpec;
use crate::model::Backtest;
use crate::store::opportunities::{self, ClosedDealFields};
use crate::store::{history, Db};
use crate::training::backtest::{backtest_compact, OpenAtInstant};
use crate::training::{CompactDeals, TrainError, WarmStart};

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
    /// The replay's thread stopped without a result.
    #[error("{0}")]
    Worker(String),
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

/// How a replay fits: the job's alpha and iteration cap, and whether its CPU work runs at the
/// lowest priority (the server's jobs).
#[derive(Debug, Clone)]
pub struct ReplayFit {
    /// The alpha the job chose.
    pub alpha: f64,
    /// The job's L-BFGS iteration cap.
    pub max_iterations: u64,
    /// Run the fit at the lowest scheduling priority.
    pub low_priority: bool,
    /// Where the fit starts: the job's fit on its training part, when there is one.
    pub warm: Option<WarmStart>,
}

/// Replays training at `at`: fits on the rows of `data` closed by then (the job's deals, or
/// their snapshots when it learns from snapshots), scores the deals open then as they stood,
/// read from `db` with their history; `None` when too few outcomes were known by then.
///
/// Only the deals closed after `at` (up to `until`, the job's window) are read again, whole and
/// with their timelines: those open at `at` must be rebuilt as they stood then. What was known
/// at `at` is already in `data`, which the fit runs on, off the async threads (at the lowest
/// priority when `low_priority`).
pub async fn run(
    db: &Db,
    data: Arc<CompactDeals>,
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    spec: &FeatureSpec,
    fit: ReplayFit,
) -> Result<Option<Backtest>, BacktestError> {
    let ReplayFit {
        alpha,
        max_iterations,
        low_priority,
        warm,
    } = fit;
    let mut later = Vec::new();
    let since = at + chrono::Duration::milliseconds(1);
    opportunities::each_closed_deal(db, Some(since), until, ClosedDealFields::Whole, |deal| {
        if OpenAtInstant::was_open(&deal, at) {
            later.push(deal);
        }
    })
    .await?;
    let later_refs: Vec<&Opportunity> = later.iter().collect();
    let open = open_at(db, &later_refs, at).await?;
    drop(later_refs);
    drop(later);
    let spec = spec.clone();
    let replay = run_cpu("dealscore-backtest", low_priority, move || {
        backtest_compact(&data, &open, at, &spec, alpha, max_iterations, warm.as_ref())
    })
    .await
    .map_err(BacktestError::Worker)??;
    Ok(replay)
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
