//! The training job shared by `dealscore-train` and the server: train, save the artifact
//! atomically, register it. Nothing is written when training fails.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::domain::Opportunity;
use crate::features::FeatureSpec;
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
    /// Activate the new model even when another one is active.
    pub activate: bool,
    /// Who asked (recorded with an activation).
    pub who: String,
}

/// Runs training on `deals` (CPU work on a blocking thread), writes `out_dir/<version>.json`,
/// and registers it in `db` when given (activated when `activate`, or when it is the first).
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
        who,
    } = job;
    let out_dir: &Path = &out_dir;
    let who: &str = &who;
    let mut progress = progress;
    let trained = tokio::task::spawn_blocking(move || train(&deals, &spec, &options, &mut progress))
        .await
        .map_err(|e| TrainJobError::Write(format!("training thread failed: {e}")))??;
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
    let status = match db {
        Some(db) => {
            let new = NewModelVersion {
                version: &artifact.version,
                created_at: artifact.created_at,
                sha256: &artifact.sha256,
                artifact_json: &json,
                train_rows: artifact.training.final_rows as i64,
                holdout_auc: Some(artifact.holdout_metrics.roc_auc).filter(|v| v.is_finite()),
            };
            let reason = if activate { "--activate" } else { "trained" };
            Some(models::register(db, &new, activate, who, reason).await?)
        }
        None => None,
    };
    Ok(TrainJobOutcome {
        trained,
        artifact_path,
        status,
    })
}
