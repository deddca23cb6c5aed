//! The training job shared by `dealscore-train` and the server: train, save the artifact
//! atomically, pass it through the promotion gate, register it. Nothing is written when training
//! fails.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::background::run_low_priority;
use super::gate::{self, GateDecision, GatePolicy};
use super::holdout::holdout_deals;
use super::point_in_time::{self, PointInTime, PointInTimeError};
use crate::domain::Opportunity;
use crate::features::FeatureSpec;
use crate::model::ModelArtifact;
use crate::store::models::{self, ModelStatus, NewModelVersion};
use crate::store::Db;
use crate::training::{train, TrainError, TrainOptions, TrainProgress, TrainedModel};

/// What a finished job produced.
#[derive(Debug, Serialize)]
pub struct TrainJobOutcome {
    /// The trained model and its report.
    #[serde(flatten)]
    pub trained: TrainedModel,
    /// Where the artifact was written.
    pub artifact_path: PathBuf,
    /// Registry status (absent when not registered).
    pub status: Option<ModelStatus>,
    /// The promotion gate's decision (absent when not registered).
    pub gate: Option<GateDecision>,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainJobError {
    /// Training refused or failed (nothing written).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The artifact could not be serialised or written.
    #[error("cannot write the model artifact: {0}")]
    Write(String),
    /// The registry could not be updated.
    #[error("cannot register the model: {0}")]
    Db(#[from] sqlx::Error),
    /// Snapshots could not be prepared.
    #[error(transparent)]
    PointInTime(#[from] PointInTimeError),
}

/// What to train and where the result goes.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// Feature spec.
    pub spec: FeatureSpec,
    /// Training options.
    pub options: TrainOptions,
    /// Folder for the artifact file.
    pub out_dir: PathBuf,
    /// Activate the new model whatever the gate says (recorded as forced).
    pub activate: bool,
    /// The promotion gate applied when registering.
    pub gate: GatePolicy,
    /// Who asked (recorded with an activation).
    pub who: String,
    /// Snapshots and the backtest, from the database the deals came from.
    pub point_in_time: PointInTime,
}

/// Runs training on `deals` (CPU work on a low-priority thread), writes `out_dir/<version>.json`,
/// and registers it in `db` when given: activated when it is the first model, when it passes the
/// promotion gate against the active model, or when `activate` forces it.
pub async fn run(
    job: TrainJob,
    deals: Vec<Opportunity>,
    db: Option<&Db>,
    progress: impl FnMut(TrainProgress) + Send + 'static,
) -> Result<TrainJobOutcome, TrainJobError> {
    let TrainJob {
        spec,
        options,
        out_dir,
        activate,
        gate: policy,
        who,
        point_in_time,
    } = job;
    let out_dir: &Path = &out_dir;
    let who: &str = &who;
    let mut progress = progress;
    let options = options.check().map_err(TrainError::from)?;
    let (deals, prepared) =
        point_in_time::prepare(&point_in_time, deals, options.split, options.test_fraction).await?;
    let (spec_used, max_iterations) = (spec.clone(), options.max_iterations);
    let (trained, deals) = run_low_priority("dealscore-train", move || {
        let trained = train(&deals, &spec, &options, &mut progress);
        (trained, deals)
    })
    .await
    .map_err(TrainJobError::Write)?;
    let mut trained = trained?;
    point_in_time::finish(&point_in_time, prepared, &mut trained, &spec_used, max_iterations).await;
    let artifact = &trained.artifact;
    // The checksum covers the pretty form, so the registry stores exactly what the file holds.
    let json = artifact
        .to_json_pretty()
        .map_err(|e| TrainJobError::Write(e.to_string()))?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| TrainJobError::Write(format!("{}: {e}", out_dir.display())))?;
    let artifact_path = artifact
        .save_atomic(out_dir)
        .map_err(|e| TrainJobError::Write(format!("{}: {e}", out_dir.display())))?;
    let (status, gate) = match db {
        Some(db) => {
            let active = active_artifact(db).await?;
            let candidate = artifact.clone();
            let decision = run_low_priority("dealscore-gate", move || {
                let holdout = holdout_deals(&deals, &candidate.training).unwrap_or_default();
                gate::decide(
                    &policy,
                    &candidate,
                    &holdout,
                    active.as_ref(),
                    activate,
                    chrono::Utc::now(),
                )
            })
            .await
            .map_err(TrainJobError::Write)?;
            let gate_json =
                serde_json::to_string(&decision).map_err(|e| TrainJobError::Write(e.to_string()))?;
            let new = NewModelVersion {
                version: &artifact.version,
                created_at: artifact.created_at,
                sha256: &artifact.sha256,
                artifact_json: &json,
                train_rows: artifact.training.final_rows as i64,
                holdout_auc: Some(artifact.holdout_metrics.roc_auc).filter(|v| v.is_finite()),
            };
            let status = models::register_with_gate(
                db,
                &new,
                decision.outcome.activates(),
                who,
                decision.outcome.reason(),
                Some(&gate_json),
            )
            .await?;
            (Some(status), Some(decision))
        }
        None => (None, None),
    };
    Ok(TrainJobOutcome {
        trained,
        artifact_path,
        status,
        gate,
    })
}

/// The registry's active model, if it loads. One whose artifact fails verification cannot be
/// measured, so the gate treats the candidate as if no model were active (logged).
async fn active_artifact(db: &Db) -> Result<Option<ModelArtifact>, sqlx::Error> {
    let Some((record, json)) = models::active(db).await? else {
        return Ok(None);
    };
    let parsed = run_low_priority("dealscore-load", move || ModelArtifact::from_json_verified(&json)).await;
    match parsed {
        Ok(Ok(artifact)) => Ok(Some(artifact)),
        Ok(Err(e)) => {
            tracing::warn!(version = %record.version, error = %e, "active model refused; the gate ignores it");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(version = %record.version, error = %e, "active model could not be loaded; the gate ignores it");
            Ok(None)
        }
    }
}
