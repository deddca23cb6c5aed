//! Backtests from the database: the deals open at a past instant, rebuilt as they stood then from
//! their recorded history and activities, scored by a model replayed on what was closed by then
//! (`training::backtest`), from the rows the training job already holds.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::background::run_cpu;
use crate::features::as_of::AsOfRules;
use crate::features::FeatureSpec;
use crate::model::Backtest;
use crate::store::opportunities;
use crate::store::{history, Db};
use crate::training::backtest::{backtest_compact, OpenAtInstant};
use crate::training::compact::{reads_attributes, sources_for};
use crate::training::{CompactDeals, FitSettings, TrainError, WarmStart};

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

/// How a replay fits: the job's alpha and iteration cap, and whether its CPU work runs at the
/// lowest priority (the server's jobs).
#[derive(Debug, Clone)]
pub struct ReplayFit {
    /// The job's fit settings at the alpha it chose.
    pub settings: FitSettings,
    /// Run the fit at the lowest scheduling priority.
    pub low_priority: bool,
    /// Where the fit starts: the job's fit on its training part, when there is one.
    pub warm: Option<WarmStart>,
}

/// The deals open at `at` that closed by `until` (every one closed since without it), as they
/// stood at `at`, rebuilt from their recorded history and activities, in (`closed_at`, id)
/// order. Only what `spec`'s features read is read of each deal: the rebuilt deal is only
/// scored, and a field no feature reads changes no score.
pub async fn read_open_at(
    db: &Db,
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    spec: &FeatureSpec,
) -> Result<Vec<OpenAtInstant>, sqlx::Error> {
    let attributes = reads_attributes(&sources_for(&[spec]));
    let rules = AsOfRules::default();
    // Each open deal with its closing time and id, for the closing order below.
    let mut open: Vec<(Option<DateTime<Utc>>, String, OpenAtInstant)> = Vec::new();
    // In row-id order, where each page's history and activities lie on neighbouring pages of
    // the database (as the snapshot load reads them).
    let mut pages = opportunities::ClosedDealsByRowId::open_at(db, at, until, attributes);
    while let Some(page) = pages.next_page().await? {
        let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
        let mut recorded = history::recorded(db, &ids, None).await?;
        open.extend(page.into_iter().map(|(id, deal)| {
            let history::Recorded {
                history: changes,
                activities,
                ..
            } = recorded.remove(&id).unwrap_or_default();
            let rebuilt = OpenAtInstant::rebuild(&deal, &changes, &activities, at, &rules);
            (deal.closed_at, deal.external_id.to_string(), rebuilt)
        }));
    }
    // In closing order, then by id: the order the metrics and cut points have always seen.
    open.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(open.into_iter().map(|(_, _, deal)| deal).collect())
}

/// Replays training at `at`: fits on the rows of `data` closed by then (the job's deals, or
/// their snapshots when it learns from snapshots), scores the deals open then as they stood
/// ([`read_open_at`] from `db`); `None` when too few outcomes were known by then.
///
/// Only the deals open at `at` that closed after it (up to `until`, the job's window) are read
/// again, with their timelines: they must be rebuilt as they stood then. What was known at `at`
/// is already in `data`, which the fit runs on, off the async threads (at the lowest priority
/// when `low_priority`).
pub async fn run(
    db: &Db,
    data: Arc<CompactDeals>,
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    spec: &FeatureSpec,
    fit: ReplayFit,
) -> Result<Option<Backtest>, BacktestError> {
    let open = read_open_at(db, at, until, spec).await?;
    replay(data, open, at, spec, fit).await
}

/// The replay of [`run`] on deals already read.
pub async fn replay(
    data: Arc<CompactDeals>,
    open: Vec<OpenAtInstant>,
    at: DateTime<Utc>,
    spec: &FeatureSpec,
    fit: ReplayFit,
) -> Result<Option<Backtest>, BacktestError> {
    let ReplayFit {
        settings,
        low_priority,
        warm,
    } = fit;
    let spec = spec.clone();
    let replay = run_cpu("dealscore-backtest", low_priority, move || {
        backtest_compact(&data, &open, at, &spec, &settings, warm.as_ref())
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
