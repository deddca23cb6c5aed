//! The `api_keys` table. Only a SHA-256 hash of each key is stored.

use chrono::{DateTime, Utc};

use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// A stored key's public details (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyRecord {
    /// Unique name among active keys.
    pub name: String,
    /// `rep`, `analyst` or `admin`.
    pub role: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    /// An active key already has this name.
    #[error("an active key named `{0}` already exists (revoke it first or pick another name)")]
    NameTaken(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a new key's hash under `name` with `role`.
pub async fn insert(db: &Db, name: &str, role: &str, key_hash: &str) -> Result<(), CreateKeyError> {
    let taken = sqlx::query("SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL")
        .bind(name.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    if taken.is_some() {
        return Err(CreateKeyError::NameTaken(name.to_owned()));
    }
    let result =
        sqlx::query("INSERT INTO api_keys (name, role, key_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(name.to_owned())
            .bind(role.to_owned())
            .bind(key_hash.to_owned())
            .bind(to_epoch_ms(Utc::now()))
            .execute(&db.pool)
            .await;
    match result {
        Ok(_) => Ok(()),
        // A concurrent creation with the same name hit the partial unique index.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(CreateKeyError::NameTaken(name.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The role and name of the active key with this hash.
pub async fn find_active(db: &Db, key_hash: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash.to_owned())
        .fetch_optional(&db.pool)
        .await
}

/// Every key, newest first.
pub async fn list(db: &Db) -> Result<Vec<ApiKeyRecord>, sqlx::Error> {
    let rows: Vec<ApiKeyRow> =
        sqlx::query_as("SELECT name, role, created_at, revoked_at FROM api_keys ORDER BY id DESC")
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(ApiKeyRecord::from).collect())
}

/// An `api_keys` row without its hash.
#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    name: String,
    role: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKeyRecord {
    fn from(row: ApiKeyRow) -> Self {
        ApiKeyRecord {
            name: row.name,
            role: row.role,
            created_at: from_epoch_ms(row.created_at),
            revoked_at: row.revoked_at.map(from_epoch_ms),
        }
    }
}

/// Revokes the active key named `name`. True when one was revoked.
pub async fn revoke(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(to_epoch_ms(Utc::now()))
        .bind(name.to_owned())
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
