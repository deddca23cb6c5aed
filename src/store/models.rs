//! The `model_versions` registry: every trained model's artifact, its status and activations.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

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
    /// The promotion gate's decision and figures when it was registered (absent for versions
    /// registered before the gate existed).
    #[schema(value_type = Option<Object>)]
    pub gate: Option<serde_json::Value>,
}

/// One activation: which version, when, by whom and why (`first model`, `gate`, `force`,
/// `rollback`, …).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ActivationRecord {
    /// Version activated.
    pub version: String,
    /// When.
    pub activated_at: DateTime<Utc>,
    /// Who (key name, `dealscore-train`, `schedule`).
    pub activated_by: String,
    /// Why.
    pub reason: String,
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
    "version, status, created_at, sha256, train_rows, holdout_auc, activated_at, activated_by, gate";

/// A `model_versions` row as [`RECORD_COLUMNS`] reads it.
#[derive(FromRow)]
struct VersionRow {
    version: String,
    status: String,
    created_at: i64,
    sha256: String,
    train_rows: i64,
    holdout_auc: Option<f64>,
    activated_at: Option<i64>,
    activated_by: Option<String>,
    gate: Option<String>,
}

impl From<VersionRow> for ModelVersionRecord {
    fn from(row: VersionRow) -> Self {
        ModelVersionRecord {
            version: row.version,
            status: ModelStatus::parse(&row.status),
            created_at: from_epoch_ms(row.created_at),
            sha256: row.sha256,
            train_rows: row.train_rows,
            holdout_auc: row.holdout_auc,
            activated_at: row.activated_at.map(from_epoch_ms),
            activated_by: row.activated_by,
            // A gate record this version cannot read is left out rather than failing the list.
            gate: row.gate.and_then(|text| serde_json::from_str(&text).ok()),
        }
    }
}

/// A version with its artifact JSON.
#[derive(FromRow)]
struct WithArtifactRow {
    #[sqlx(flatten)]
    record: VersionRow,
    artifact: String,
}

impl From<WithArtifactRow> for (ModelVersionRecord, String) {
    fn from(row: WithArtifactRow) -> Self {
        (row.record.into(), row.artifact)
    }
}

/// A `model_activations` row.
#[derive(FromRow)]
struct ActivationRow {
    version: String,
    activated_at: i64,
    activated_by: String,
    reason: String,
}

impl From<ActivationRow> for ActivationRecord {
    fn from(row: ActivationRow) -> Self {
        ActivationRecord {
            version: row.version,
            activated_at: from_epoch_ms(row.activated_at),
            activated_by: row.activated_by,
            reason: row.reason,
        }
    }
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
    register_with_gate(db, new, activate, who, reason, None).await
}

/// [`register`] that also records the promotion gate's decision (`gate`, JSON) on the version,
/// in the same transaction.
pub async fn register_with_gate(
    db: &Db,
    new: &NewModelVersion<'_>,
    activate: bool,
    who: &str,
    reason: &str,
    gate: Option<&str>,
) -> Result<ModelStatus, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO model_versions (version, status, created_at, sha256, artifact, train_rows, holdout_auc, gate) \
         VALUES ($1, 'candidate', $2, $3, $4, $5, $6, $7)",
    )
    .persistent(false)
    .bind(new.version.to_owned())
    .bind(to_epoch_ms(new.created_at))
    .bind(new.sha256.to_owned())
    .bind(new.artifact_json.to_owned())
    .bind(new.train_rows)
    .bind(new.holdout_auc)
    .bind(gate.map(str::to_owned))
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
    let row: Option<WithArtifactRow> = sqlx::query_as(&sql).fetch_optional(&db.pool).await?;
    Ok(row.map(Into::into))
}

/// One version and its artifact JSON.
pub async fn get(db: &Db, version: &str) -> Result<Option<(ModelVersionRecord, String)>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLUMNS}, artifact FROM model_versions WHERE version = $1");
    let row: Option<WithArtifactRow> = sqlx::query_as(&sql)
        .bind(version.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(Into::into))
}

/// Every version, newest first.
pub async fn list(db: &Db) -> Result<Vec<ModelVersionRecord>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM model_versions ORDER BY created_at DESC, version DESC");
    let rows: Vec<VersionRow> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Every activation, newest first (at most `limit`); only `version`'s when given.
pub async fn activations(
    db: &Db,
    version: Option<&str>,
    limit: usize,
) -> Result<Vec<ActivationRecord>, sqlx::Error> {
    let filter = if version.is_some() {
        "WHERE version = $1"
    } else {
        ""
    };
    let sql = format!(
        "SELECT version, activated_at, activated_by, reason FROM model_activations {filter} \
         ORDER BY id DESC LIMIT {limit}"
    );
    let mut query = sqlx::query_as::<_, ActivationRow>(&sql);
    if let Some(version) = version {
        query = query.bind(version.to_owned());
    }
    let rows = query.fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Every version with its artifact JSON, newest first.
pub async fn list_with_artifacts(db: &Db) -> Result<Vec<(ModelVersionRecord, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS}, artifact FROM model_versions ORDER BY created_at DESC, version DESC"
    );
    let rows: Vec<WithArtifactRow> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
