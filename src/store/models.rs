//! The `model_versions` registry: every trained model's artifact, its status and activations.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// Lifecycle state of a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Trained, not serving.
    Candidate,
    /// Serving (exactly one at a time).
    Active,
    /// Served before, replaced since.
    Retired,
}

impl ModelStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Active => "active",
            ModelStatus::Retired => "retired",
        }
    }

    fn parse(text: &str) -> ModelStatus {
        match text {
            "active" => ModelStatus::Active,
            "retired" => ModelStatus::Retired,
            _ => ModelStatus::Candidate,
        }
    }
}

/// One registered version, without its artifact text.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ModelVersionRecord {
    /// Version id.
    pub version: String,
    /// Status.
    pub status: ModelStatus,
    /// Training time.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the artifact.
    pub sha256: String,
    /// Closed deals the shipped model was fitted on.
    pub train_rows: i64,
    /// Holdout ROC AUC.
    pub holdout_auc: Option<f64>,
    /// Last activation time.
    pub activated_at: Option<DateTime<Utc>>,
    /// Who activated it last.
    pub activated_by: Option<String>,
}

/// What to register.
#[derive(Debug, Clone)]
pub struct NewModelVersion<'a> {
    /// Version id.
    pub version: &'a str,
    /// Training time.
    pub created_at: DateTime<Utc>,
    /// Checksum of the artifact.
    pub sha256: &'a str,
    /// Artifact JSON.
    pub artifact_json: &'a str,
    /// Rows the shipped model was fitted on.
    pub train_rows: i64,
    /// Holdout ROC AUC.
    pub holdout_auc: Option<f64>,
}

const RECORD_COLUMNS: &str =
    "version, status, created_at, sha256, train_rows, holdout_auc, activated_at, activated_by";

fn record(row: &sqlx::any::AnyRow) -> Result<ModelVersionRecord, sqlx::Error> {
    Ok(ModelVersionRecord {
        version: row.try_get("version")?,
        status: ModelStatus::parse(&row.try_get::<String, _>("status")?),
        created_at: from_epoch_ms(row.try_get("created_at")?),
        sha256: row.try_get("sha256")?,
        train_rows: row.try_get("train_rows")?,
        holdout_auc: row.try_get("holdout_auc")?,
        activated_at: row.try_get::<Option<i64>, _>("activated_at")?.map(from_epoch_ms),
        activated_by: row.try_get("activated_by")?,
    })
}

/// Registers a version as a candidate; when `activate` is true (or no model is active yet), makes
/// it the active one in the same transaction. Returns the resulting status.
pub async fn register(
    db: &Db,
    new: &NewModelVersion<'_>,
    activate: bool,
    who: &str,
    reason: &str,
) -> Result<ModelStatus, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO model_versions (version, status, created_at, sha256, artifact, train_rows, holdout_auc) \
         VALUES ($1, 'candidate', $2, $3, $4, $5, $6)",
    )
    .persistent(false)
    .bind(new.version.to_owned())
    .bind(to_epoch_ms(new.created_at))
    .bind(new.sha256.to_owned())
    .bind(new.artifact_json.to_owned())
    .bind(new.train_rows)
    .bind(new.holdout_auc)
    .execute(&mut *tx)
    .await?;
    let has_active = sqlx::query("SELECT 1 FROM model_versions WHERE status = 'active'")
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    let status = if activate || !has_active {
        let reason = if has_active { reason } else { "first model" };
        activate_in(&mut tx, new.version, who, reason).await?;
        ModelStatus::Active
    } else {
        ModelStatus::Candidate
    };
    tx.commit().await?;
    Ok(status)
}

async fn activate_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    version: &str,
    who: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    sqlx::query("UPDATE model_versions SET status = 'retired' WHERE status = 'active' AND version <> $1")
        .bind(version.to_owned())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE model_versions SET status = 'active', activated_at = $1, activated_by = $2 WHERE version = $3")
        .bind(now)
        .bind(who.to_owned())
        .bind(version.to_owned())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO model_activations (version, activated_at, activated_by, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(version.to_owned())
    .bind(now)
    .bind(who.to_owned())
    .bind(reason.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes `version` the active model (the previous one is retired). False when it does not exist.
pub async fn activate(db: &Db, version: &str, who: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let exists = sqlx::query("SELECT 1 FROM model_versions WHERE version = $1")
        .bind(version.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    activate_in(&mut tx, version, who, reason).await?;
    tx.commit().await?;
    Ok(true)
}

/// The active version and its artifact JSON.
pub async fn active(db: &Db) -> Result<Option<(ModelVersionRecord, String)>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLUMNS}, artifact FROM model_versions WHERE status = 'active'");
    let row = sqlx::query(&sql).fetch_optional(&db.pool).await?;
    row.map(|r| Ok((record(&r)?, r.try_get("artifact")?))).transpose()
}

/// One version and its artifact JSON.
pub async fn get(db: &Db, version: &str) -> Result<Option<(ModelVersionRecord, String)>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLUMNS}, artifact FROM model_versions WHERE version = $1");
    let row = sqlx::query(&sql)
        .bind(version.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| Ok((record(&r)?, r.try_get("artifact")?))).transpose()
}

/// Every version, newest first.
pub async fn list(db: &Db) -> Result<Vec<ModelVersionRecord>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM model_versions ORDER BY created_at DESC, version DESC");
    let rows = sqlx::query(&sql).fetch_all(&db.pool).await?;
    rows.iter().map(record).collect()
}
