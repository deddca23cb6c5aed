//! The `api_keys` table. Only a SHA-256 hash of each key is stored.

use chrono::{DateTime, Utc};

use super::scope::Scope;
use super::sql::bad_column;
use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// A stored key's public details (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyRecord {
    /// Unique name among active keys.
    pub name: String,
    /// `rep`, `manager`, `analyst` or `admin`.
    pub role: String,
    /// Owners whose deals the key sees (a rep: one name; a manager: a team); `None`: no owner.
    pub owners: Option<Vec<String>>,
    /// Region whose deals the key sees (a manager by region).
    pub region: Option<String>,
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

/// Stores a new key's hash under `name` with `role`, seeing every deal.
pub async fn insert(db: &Db, name: &str, role: &str, key_hash: &str) -> Result<(), CreateKeyError> {
    insert_scoped(db, name, role, key_hash, &Scope::All).await
}

/// Stores a new key's hash under `name` with `role`, seeing the deals of `scope`.
pub async fn insert_scoped(
    db: &Db,
    name: &str,
    role: &str,
    key_hash: &str,
    scope: &Scope,
) -> Result<(), CreateKeyError> {
    let (owners, region) = match scope {
        Scope::All => (None, None),
        Scope::Owners(names) => (Some(owners_text(names)), None),
        Scope::Region(region) => (None, Some(region.clone())),
    };
    let taken = sqlx::query("SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL")
        .bind(name.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    if taken.is_some() {
        return Err(CreateKeyError::NameTaken(name.to_owned()));
    }
    let result = sqlx::query(
        "INSERT INTO api_keys (name, role, key_hash, created_at, scope_owners, scope_region) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name.to_owned())
    .bind(role.to_owned())
    .bind(key_hash.to_owned())
    .bind(to_epoch_ms(Utc::now()))
    .bind(owners)
    .bind(region)
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

/// An active key as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    /// Key name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// The deals it sees, as stored (see [`Scope::of_key`]).
    pub scope: Scope,
}

/// The owner list as stored: a JSON array, so names may hold commas.
fn owners_text(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
}

/// The owner list read back; a value that is not a JSON array of strings is a decode error
/// rather than an empty list, which would silently hide every deal.
pub(super) fn parse_owners(text: Option<String>) -> Result<Option<Vec<String>>, sqlx::Error> {
    text.map(|t| serde_json::from_str::<Vec<String>>(&t).map_err(|e| bad_column("scope_owners", e)))
        .transpose()
}

/// The columns of a key that say what it may see.
#[derive(sqlx::FromRow)]
struct ActiveKeyRow {
    name: String,
    role: String,
    scope_owners: Option<String>,
    scope_region: Option<String>,
}

/// The active key with this hash.
pub async fn find_active(db: &Db, key_hash: &str) -> Result<Option<ActiveKey>, sqlx::Error> {
    let row: Option<ActiveKeyRow> = sqlx::query_as(
        "SELECT name, role, scope_owners, scope_region FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(key_hash.to_owned())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(ActiveKey {
            name: r.name,
            role: r.role,
            scope: Scope::of_key(parse_owners(r.scope_owners)?, r.scope_region),
        })
    })
    .transpose()
}

/// Every key, newest first.
pub async fn list(db: &Db) -> Result<Vec<ApiKeyRecord>, sqlx::Error> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT name, role, scope_owners, scope_region, created_at, revoked_at FROM api_keys \
         ORDER BY id DESC",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter().map(ApiKeyRecord::try_from).collect()
}

/// An `api_keys` row without its hash.
#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    name: String,
    role: String,
    scope_owners: Option<String>,
    scope_region: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = sqlx::Error;

    fn try_from(row: ApiKeyRow) -> Result<Self, sqlx::Error> {
        Ok(ApiKeyRecord {
            name: row.name,
            role: row.role,
            owners: parse_owners(row.scope_owners)?,
            region: row.scope_region,
            created_at: from_epoch_ms(row.created_at),
            revoked_at: row.revoked_at.map(from_epoch_ms),
        })
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
