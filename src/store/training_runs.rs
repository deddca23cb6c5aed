//! The `training_runs` table (training runs started over HTTP or by the schedule) and the `leases`
//! table (which server runs the retraining schedule).
//!
//! One run at a time across every server sharing the database: a queued or running run holds
//! `active_slot = 1` under a unique index, so a second insert fails in the database itself, not
//! only in one server's memory.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// State of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Accepted, not started yet.
    Queued,
    /// Training (see `progress`).
    Running,
    /// Finished with a registered version and a gate decision.
    Succeeded,
    /// Stopped; `error` says why.
    Failed,
    /// Finished without training: the active model (`version`) was trained on the same closed
    /// deals, features and options.
    Unchanged,
}

impl RunState {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Unchanged => "unchanged",
        }
    }

    fn parse(text: &str) -> RunState {
        match text {
            "queued" => RunState::Queued,
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "unchanged" => RunState::Unchanged,
            _ => RunState::Failed,
        }
    }
}

/// Where a run is: phase name and steps done out of the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, FromRow)]
pub struct RunProgress {
    /// `queued`, `loading`, `cross_validation`, `holdout_fit`, `final_fit`, `gate`, `done`.
    pub phase: String,
    /// Steps done.
    pub done: i64,
    /// Steps in total (cross-validation fits + holdout fit + final fit + gate).
    pub total: i64,
}

/// One training run as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunRecord {
    /// Run id (`run-…`).
    pub id: String,
    /// State.
    pub state: RunState,
    /// `api` or `schedule`.
    pub trigger: String,
    /// Key name (or `schedule`) that asked for it.
    pub requested_by: String,
    /// What was asked: spec, window and options.
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// Progress.
    pub progress: RunProgress,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When training started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last sign of life of the server running it.
    pub heartbeat_at: DateTime<Utc>,
    /// The registered version (succeeded runs), or the active one a run found unchanged.
    pub version: Option<String>,
    /// The promotion gate's decision and figures (succeeded runs).
    #[schema(value_type = Option<Object>)]
    pub gate: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

const COLUMNS: &str = "id, state, trigger, requested_by, request, phase, done, total, created_at, \
                       started_at, finished_at, heartbeat_at, version, gate, error";

/// A `training_runs` row as [`COLUMNS`] reads it: times in epoch milliseconds, JSON as text.
#[derive(FromRow)]
struct RunRow {
    id: String,
    state: String,
    trigger: String,
    requested_by: String,
    request: String,
    #[sqlx(flatten)]
    progress: RunProgress,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    heartbeat_at: i64,
    version: Option<String>,
    gate: Option<String>,
    error: Option<String>,
}

impl From<RunRow> for RunRecord {
    fn from(row: RunRow) -> Self {
        // Shown as stored when it is not JSON, rather than failing the read.
        let json = |text: String| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        RunRecord {
            id: row.id,
            state: RunState::parse(&row.state),
            trigger: row.trigger,
            requested_by: row.requested_by,
            request: json(row.request),
            progress: row.progress,
            created_at: from_epoch_ms(row.created_at),
            started_at: row.started_at.map(from_epoch_ms),
            finished_at: row.finished_at.map(from_epoch_ms),
            heartbeat_at: from_epoch_ms(row.heartbeat_at),
            version: row.version,
            gate: row.gate.map(json),
            error: row.error,
        }
    }
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// Run id.
    pub id: &'a str,
    /// `api` or `schedule`.
    pub trigger: &'a str,
    /// Who asked.
    pub requested_by: &'a str,
    /// The request as JSON text.
    pub request: &'a str,
    /// The server instance that will run it (for heartbeats and crash recovery).
    pub owner: &'a str,
}

/// Why a run could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Another run is queued or running (its id).
    #[error("training run {0} is already in progress")]
    Busy(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The queued or running run, if any.
pub async fn in_progress(db: &Db) -> Result<Option<RunRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM training_runs WHERE active_slot = 1");
    let row: Option<RunRow> = sqlx::query_as(&sql).fetch_optional(&db.pool).await?;
    Ok(row.map(RunRecord::from))
}

/// Creates a queued run, unless one is queued or running anywhere ([`CreateError::Busy`]).
pub async fn create(db: &Db, new: &NewRun<'_>) -> Result<RunRecord, CreateError> {
    let now = to_epoch_ms(Utc::now());
    let inserted = sqlx::query(
        "INSERT INTO training_runs (id, state, active_slot, trigger, requested_by, request, phase, done, \
         total, created_at, heartbeat_at, owner) VALUES ($1, 'queued', 1, $2, $3, $4, 'queued', 0, 0, $5, $5, $6)",
    )
    .bind(new.id.to_owned())
    .bind(new.trigger.to_owned())
    .bind(new.requested_by.to_owned())
    .bind(new.request.to_owned())
    .bind(now)
    .bind(new.owner.to_owned())
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => get(db, new.id)
            .await?
            .ok_or_else(|| CreateError::Db(sqlx::Error::RowNotFound)),
        // The unique index on active_slot refused it: say which run holds the slot.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => match in_progress(db).await? {
            Some(running) => Err(CreateError::Busy(running.id)),
            // It finished in between; the caller may simply retry.
            None => Err(CreateError::Busy("(just finished)".to_owned())),
        },
        Err(e) => Err(CreateError::Db(e)),
    }
}

/// Marks a run as running.
pub async fn start(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    sqlx::query(
        "UPDATE training_runs SET state = 'running', phase = 'loading', started_at = $1, heartbeat_at = $1 \
         WHERE id = $2 AND state = 'queued'",
    )
    .bind(now)
    .bind(id.to_owned())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records progress (and a heartbeat).
pub async fn progress(db: &Db, id: &str, progress: &RunProgress) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE training_runs SET phase = $1, done = $2, total = $3, heartbeat_at = $4 \
         WHERE id = $5 AND state = 'running'",
    )
    .bind(progress.phase.clone())
    .bind(progress.done)
    .bind(progress.total)
    .bind(to_epoch_ms(Utc::now()))
    .bind(id.to_owned())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records a sign of life of the server running `id`.
pub async fn heartbeat(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE training_runs SET heartbeat_at = $1 WHERE id = $2 AND active_slot = 1")
        .bind(to_epoch_ms(Utc::now()))
        .bind(id.to_owned())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone, Copy)]
pub enum RunEnd<'a> {
    /// Trained and registered `version`; `gate` is the gate decision as JSON.
    Trained {
        /// The registered version.
        version: &'a str,
        /// The gate decision (JSON).
        gate: &'a str,
    },
    /// Nothing trained: the active model `version` was trained on the same input.
    Unchanged {
        /// The active version.
        version: &'a str,
    },
    /// Stopped with `error`.
    Failed {
        /// Why.
        error: &'a str,
    },
}

/// Ends a run as `outcome` says and frees the slot.
pub async fn finish(db: &Db, id: &str, outcome: RunEnd<'_>) -> Result<(), sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    let (state, version, gate, error, phase) = match outcome {
        RunEnd::Trained { version, gate } => ("succeeded", Some(version), Some(gate), None, "done"),
        RunEnd::Unchanged { version } => ("unchanged", Some(version), None, None, "done"),
        RunEnd::Failed { error } => ("failed", None, None, Some(error), "failed"),
    };
    sqlx::query(
        "UPDATE training_runs SET state = $1, active_slot = NULL, finished_at = $2, heartbeat_at = $2, \
         version = $3, gate = $4, error = $5, phase = $6 WHERE id = $7 AND active_slot = 1",
    )
    .bind(state)
    .bind(now)
    .bind(version.map(str::to_owned))
    .bind(gate.map(str::to_owned))
    .bind(error.map(str::to_owned))
    .bind(phase)
    .bind(id.to_owned())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Marks failed ("interrupted") every queued or running run whose last heartbeat is older than
/// `stale_before`: its server died. A run another live server is running keeps heartbeating and
/// is left alone. Returns the ids marked.
pub async fn fail_stale(db: &Db, stale_before: DateTime<Utc>) -> Result<Vec<String>, sqlx::Error> {
    let cutoff = to_epoch_ms(stale_before);
    let stale = "SELECT id FROM training_runs WHERE active_slot = 1 AND heartbeat_at < $1";
    // Every live server sweeps on every tick, and almost every sweep finds nothing: a read first,
    // so that a sweep takes SQLite's write lock only when there is a run to mark. Held for
    // nothing, that lock made imports and webhook writes wait for the sweeping task, for as
    // long as its runtime was busy elsewhere.
    let any: Option<String> = sqlx::query_scalar(stale)
        .bind(cutoff)
        .fetch_optional(&db.pool)
        .await?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let mut tx = db.begin_write().await?;
    let ids: Vec<String> = sqlx::query_scalar(stale).bind(cutoff).fetch_all(&mut *tx).await?;
    let now = to_epoch_ms(Utc::now());
    let reason = format!(
        "interrupted: the server running it stopped (last heartbeat before {})",
        stale_before.to_rfc3339()
    );
    for id in &ids {
        sqlx::query(
            "UPDATE training_runs SET state = 'failed', active_slot = NULL, finished_at = $1, phase = 'failed', \
             error = $2 WHERE id = $3 AND active_slot = 1 AND heartbeat_at < $4",
        )
        .bind(now)
        .bind(reason.clone())
        .bind(id.clone())
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// One run.
pub async fn get(db: &Db, id: &str) -> Result<Option<RunRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM training_runs WHERE id = $1");
    let row: Option<RunRow> = sqlx::query_as(&sql)
        .bind(id.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(RunRecord::from))
}

/// The newest runs first, at most `limit`.
pub async fn list(db: &Db, limit: usize) -> Result<Vec<RunRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM training_runs ORDER BY created_at DESC, id DESC LIMIT {limit}");
    let rows: Vec<RunRow> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(RunRecord::from).collect())
}

/// Creation time of the newest run with this trigger.
pub async fn last_created(db: &Db, trigger: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let at: Option<i64> = sqlx::query_scalar("SELECT MAX(created_at) FROM training_runs WHERE trigger = $1")
        .bind(trigger.to_owned())
        .fetch_one(&db.pool)
        .await?;
    Ok(at.map(from_epoch_ms))
}

/// Takes or renews the lease `name` for `holder` until `now + ttl`. True when `holder` holds it
/// afterwards. A lease another holder let expire can be taken over.
pub async fn acquire_lease(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    // The conditional update is atomic on both databases: of two servers racing for an expired
    // lease, only the first update matches its WHERE clause.
    let updated = sqlx::query(
        "UPDATE leases SET holder = $1, expires_at = $2 WHERE name = $3 AND (holder = $1 OR expires_at < $4)",
    )
    .bind(holder.to_owned())
    .bind(until)
    .bind(name.to_owned())
    .bind(now)
    .execute(&db.pool)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(true);
    }
    let inserted = sqlx::query("INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)")
        .bind(name.to_owned())
        .bind(holder.to_owned())
        .bind(until)
        .execute(&db.pool)
        .await;
    match inserted {
        Ok(_) => Ok(true),
        // Someone else holds it (the row exists and is not expired).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Closed deals whose closing time is after `after` (all closed deals when `None`): the
/// "N deals closed since the active model" retraining trigger.
pub async fn closed_deals_after(db: &Db, after: Option<DateTime<Utc>>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM opportunities WHERE status IN ('won', 'lost') AND closed_at > $1",
    )
    .bind(after.map(to_epoch_ms).unwrap_or(i64::MIN))
    .fetch_one(&db.pool)
    .await
}
