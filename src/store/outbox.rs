//! The `webhook_outbox` table: score write-backs waiting to be delivered to a CRM.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, FromRow, Transaction};

use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// A write-back as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// Source (CRM connection) it goes to.
    pub source: String,
    /// The opportunity it is about.
    pub external_id: String,
    /// The JSON body that is POSTed.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// pending, delivered or dead.
    pub status: String,
    /// Delivery attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, source, external_id, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at";

/// Enqueues a delivery, due now, inside the caller's transaction (so it exists iff the change
/// that caused it was committed). Returns its id.
pub async fn insert_in(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    external_id: &str,
    payload: &str,
) -> Result<i64, sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    sqlx::query_scalar(
        "INSERT INTO webhook_outbox (source, external_id, payload, status, attempts, next_attempt_at, \
         created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
    )
    .bind(source.to_owned())
    .bind(external_id.to_owned())
    .bind(payload.to_owned())
    .bind(now)
    .fetch_one(&mut **tx)
    .await
}

/// Pending deliveries due at `now`, oldest due first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT {limit}"
    );
    let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
        .bind(to_epoch_ms(now))
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(OutboxEntry::from).collect())
}

/// Takes a due delivery for this process until `lease_until`. Only one of several servers
/// sharing the database wins: the update matches only while `next_attempt_at` still holds the
/// value the claimer read. A process that dies holding a lease leaves the row due again when the
/// lease ends.
pub async fn claim(
    db: &Db,
    id: i64,
    seen_next_attempt_at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_outbox SET next_attempt_at = $1 \
         WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3",
    )
    .bind(to_epoch_ms(lease_until))
    .bind(id)
    .bind(to_epoch_ms(seen_next_attempt_at))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records an attempt: `status` delivered, pending (retry at `next_attempt_at`) or dead.
pub async fn record_attempt(
    db: &Db,
    id: i64,
    attempts: i64,
    status: &str,
    next_attempt_at: DateTime<Utc>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(status.to_owned())
    .bind(attempts)
    .bind(to_epoch_ms(next_attempt_at))
    .bind(error.map(str::to_owned))
    .bind(to_epoch_ms(Utc::now()))
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The most recent deliveries of a source, newest first, optionally with one status.
pub async fn list(
    db: &Db,
    source: &str,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<OutboxEntry>, sqlx::Error> {
    let rows: Vec<OutboxRow> =
        super::sql::recent_for_source(db, "webhook_outbox", COLUMNS, source, status, limit).await?;
    Ok(rows.into_iter().map(OutboxEntry::from).collect())
}

/// What [`retry_now`] did.
#[derive(Debug, Clone)]
pub enum RetryResult {
    /// The delivery is pending again, due now, with a fresh attempt budget.
    Scheduled(Box<OutboxEntry>),
    /// No such delivery for this source.
    NotFound,
    /// It was already delivered.
    AlreadyDelivered,
}

/// Makes a dead or pending delivery due now with its attempt count reset.
pub async fn retry_now(db: &Db, source: &str, id: i64) -> Result<RetryResult, sqlx::Error> {
    let now = to_epoch_ms(Utc::now());
    let done = sqlx::query(
        "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND source = $3 AND status IN ('pending', 'dead')",
    )
    .bind(now)
    .bind(id)
    .bind(source.to_owned())
    .execute(&db.pool)
    .await?;
    let sql = format!("SELECT {COLUMNS} FROM webhook_outbox WHERE id = $1 AND source = $2");
    let row: Option<OutboxRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(source.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        None => RetryResult::NotFound,
        Some(_) if done.rows_affected() == 0 => RetryResult::AlreadyDelivered,
        Some(row) => RetryResult::Scheduled(Box::new(row.into())),
    })
}

/// A `webhook_outbox` row as [`COLUMNS`] reads it: times in epoch milliseconds, the payload as
/// text.
#[derive(FromRow)]
struct OutboxRow {
    id: i64,
    source: String,
    external_id: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<OutboxRow> for OutboxEntry {
    fn from(row: OutboxRow) -> Self {
        OutboxEntry {
            id: row.id,
            source: row.source,
            external_id: row.external_id,
            // Shown as stored when it is not JSON, rather than failing the whole list.
            payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::String(row.payload)),
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: from_epoch_ms(row.next_attempt_at),
            last_error: row.last_error,
            created_at: from_epoch_ms(row.created_at),
            updated_at: from_epoch_ms(row.updated_at),
        }
    }
}
