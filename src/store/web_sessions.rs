//! The `web_sessions` table: sign-ins of the web UI. Only hashes of the session token and of the
//! API key are stored; a session is valid while unexpired and while its key is not revoked.

use sqlx::FromRow;

use super::scope::Scope;
use super::Db;

/// A live session joined with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Name of the key that signed in.
    pub key_name: String,
    /// Role of that key (`rep`, `manager`, `analyst`, `admin`).
    pub role: String,
    /// The deals that key sees, as stored.
    pub scope: Scope,
    /// The token forms must echo back.
    pub csrf_token: String,
    /// Expiry, epoch milliseconds.
    pub expires_at: i64,
}

/// Stores a new session.
pub async fn insert(
    db: &Db,
    token_hash: &str,
    key_hash: &str,
    csrf_token: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, key_hash, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_owned())
    .bind(key_hash.to_owned())
    .bind(csrf_token.to_owned())
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The live session with this token hash: unexpired at `now_ms`, its key still active.
pub async fn find_live(db: &Db, token_hash: &str, now_ms: i64) -> Result<Option<SessionRecord>, sqlx::Error> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT k.name, k.role, k.scope_owners, k.scope_region, s.csrf_token, s.expires_at \
         FROM web_sessions s \
         JOIN api_keys k ON k.key_hash = s.key_hash AND k.revoked_at IS NULL \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash.to_owned())
    .bind(now_ms)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(SessionRecord {
            key_name: r.name,
            role: r.role,
            scope: Scope::of_key(super::api_keys::parse_owners(r.scope_owners)?, r.scope_region),
            csrf_token: r.csrf_token,
            expires_at: r.expires_at,
        })
    })
    .transpose()
}

/// A session row joined with its key's columns.
#[derive(FromRow)]
struct SessionRow {
    name: String,
    role: String,
    scope_owners: Option<String>,
    scope_region: Option<String>,
    csrf_token: String,
    expires_at: i64,
}

/// Ends a session (sign-out). Unknown tokens are not an error.
pub async fn delete(db: &Db, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
        .bind(token_hash.to_owned())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes sessions expired at `now_ms`; returns how many.
pub async fn delete_expired(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}
