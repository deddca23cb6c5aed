//! Retention queries: which model versions and score-history rows a policy removes, and removing
//! them. The policy itself and the artifact files: `crate::retention`.

use chrono::{DateTime, Utc};
use sqlx::{Any, FromRow, Transaction};

use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepRules {
    /// The newest N model versions (by creation time) are kept, whatever their status.
    pub keep_versions: usize,
    /// Score-history rows scored before this time are removed, except each opportunity's latest.
    pub scores_before: DateTime<Utc>,
}

/// A model version a policy removes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrunedVersion {
    /// Version id.
    pub version: String,
    /// Its status (`candidate` or `retired`; the active model is never pruned).
    pub status: String,
    /// Training time.
    pub created_at: DateTime<Utc>,
}

/// What a policy removes (or removed).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PruneSet {
    /// Model versions, newest first.
    pub versions: Vec<PrunedVersion>,
    /// Score-history rows.
    pub score_rows: i64,
}

/// Rows of scores older than the cutoff that are not their opportunity's latest score.
const OLD_SCORES: &str = "FROM scores WHERE scored_at < $1 \
     AND id NOT IN (SELECT MAX(id) FROM scores GROUP BY opportunity_id)";

/// Versions outside the newest `keep_versions` that are not active, newest first.
async fn versions_to_prune(
    tx: &mut Transaction<'_, Any>,
    keep_versions: usize,
) -> Result<Vec<PrunedVersion>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, status, created_at FROM model_versions ORDER BY created_at DESC, version DESC",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .skip(keep_versions)
        .filter(|row| row.status != "active")
        .map(|row| PrunedVersion {
            version: row.version,
            status: row.status,
            created_at: from_epoch_ms(row.created_at),
        })
        .collect())
}

/// What retention reads of a `model_versions` row.
#[derive(FromRow)]
struct VersionRow {
    version: String,
    status: String,
    created_at: i64,
}

/// What `rules` would remove now, without removing anything.
pub async fn plan(db: &Db, rules: &KeepRules) -> Result<PruneSet, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let versions = versions_to_prune(&mut tx, rules.keep_versions).await?;
    let sql = format!("SELECT COUNT(*) AS n {OLD_SCORES}");
    let score_rows: i64 = sqlx::query_scalar(&sql)
        .bind(to_epoch_ms(rules.scores_before))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(PruneSet { versions, score_rows })
}

/// Removes what `rules` select, in one transaction: the versions' registry rows and the old
/// score-history rows. The selection is made inside the write transaction, so a version activated
/// concurrently is never removed.
pub async fn prune(db: &Db, rules: &KeepRules) -> Result<PruneSet, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let versions = versions_to_prune(&mut tx, rules.keep_versions).await?;
    for v in &versions {
        sqlx::query("DELETE FROM model_versions WHERE version = $1 AND status <> 'active'")
            .bind(v.version.clone())
            .execute(&mut *tx)
            .await?;
    }
    let sql = format!("DELETE {OLD_SCORES}");
    let score_rows = sqlx::query(&sql)
        .bind(to_epoch_ms(rules.scores_before))
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    tx.commit().await?;
    Ok(PruneSet { versions, score_rows })
}
