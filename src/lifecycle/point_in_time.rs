//! The training job's point-in-time steps: before training, closed deals expanded into snapshots
//! of their open life; after it, backtests at past instants. Both read the deals' recorded
//! history and activities, so both need the database the deals came from.

use chrono::{DateTime, Utc};

use super::{backtest, snapshots};
use crate::domain::Opportunity;
use crate::features::FeatureSpec;
use crate::store::Db;
use crate::training::snapshots::SnapshotPlan;
use crate::training::split::time_split;
use crate::training::{SplitKind, TrainedModel};

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
}

/// What [`prepare`] did, for [`finish`] to record.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The snapshot plan, when expanded.
    pub plan: Option<SnapshotPlan>,
    /// Where the backtest looks from: the start of the time split's holdout, computed on the
    /// deals (not on their snapshots) so final-state and snapshot models are judged on the same
    /// open deals.
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
        (Some(_), SplitKind::Time) => holdout_start(&deals, test_fraction),
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

/// The earliest close of the time split's holdout over the closed deals (`None` when they
/// cannot be split in time).
fn holdout_start(deals: &[Opportunity], test_fraction: f64) -> Option<DateTime<Utc>> {
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    if closed.len() < 2 {
        return None;
    }
    let split = time_split(&closed, test_fraction).ok()?;
    split.holdout.iter().filter_map(|&i| closed[i].closed_at).min()
}

/// Records what [`prepare`] did in the artifact and adds the backtest at the start of the
/// holdout period (time split, deals from the database); warns rather than fails when the
/// backtest cannot be computed, the model itself being sound. Reseals the artifact.
pub async fn finish(
    plan: &PointInTime,
    prepared: Prepared,
    trained: &mut TrainedModel,
    spec: &FeatureSpec,
    max_iterations: u64,
) {
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
    let alpha = trained.artifact.cv.chosen_alpha;
    match backtest::run(db, at, spec, alpha, max_iterations, prepared.plan.as_ref()).await {
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
