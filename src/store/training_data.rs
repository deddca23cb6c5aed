//! What identifies the data a training run reads: counts and extremes of the closed deals in
//! its window, their recorded activities and field history. Two runs that see the same figures
//! read the same rows, so the second can say so instead of registering the same model again.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Db;
use crate::domain::to_epoch_ms;

/// The figures that change whenever a training run's input changes.
///
/// - A changed deal gets a new `updated_at`, so `last_update` moves.
/// - A deleted deal lowers `deals`; a deleted deal replaced by a new one keeps `deals` but moves
///   `id_sum`, since ids are never reused.
/// - A new activity or field change moves the largest id of its table. Those tables are only
///   ever added to (their rows go only with their deal, whose removal the deals' figures show),
///   so their largest ids say as much as counting their rows would: a count is a scan of
///   millions of rows, the largest id one step down an index. They are taken over all deals,
///   open ones included: an activity on an open deal only makes a run train when it could have
///   been skipped.
/// - On PostgreSQL, several writers may commit out of order: a write that commits after a later
///   one was read (a larger id, a later `updated_at`) goes unseen until the next change, and
///   the first run after any other write trains on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataVersion {
    /// Closed deals in the window.
    pub deals: i64,
    /// Sum of their row ids.
    pub id_sum: i64,
    /// Their latest `updated_at` (epoch ms; 0 without deals).
    pub last_update: i64,
    /// Largest activity id (0 without any).
    pub last_activity: i64,
    /// Largest field-change id (0 without any).
    pub last_change: i64,
}

/// The [`DataVersion`] of the closed deals closed within `[since, until]` (both optional).
pub async fn data_version(
    db: &Db,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<DataVersion, sqlx::Error> {
    // One pass over the closed deals for all three of their figures, and each history table's
    // largest id, through three connections at once (on SQLite, three threads). Sums are cast:
    // PostgreSQL sums BIGINTs as NUMERIC, which the Any driver cannot read.
    let deals = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT COUNT(*), CAST(COALESCE(SUM(id), 0) AS BIGINT), COALESCE(MAX(updated_at), 0) \
         FROM opportunities WHERE status IN ('won', 'lost') AND closed_at >= $1 AND closed_at <= $2",
    )
    .bind(since.map(to_epoch_ms).unwrap_or(i64::MIN))
    .bind(until.map(to_epoch_ms).unwrap_or(i64::MAX))
    .fetch_one(&db.pool);
    let activities =
        sqlx::query_as::<_, (i64,)>("SELECT COALESCE(MAX(id), 0) FROM activities").fetch_one(&db.pool);
    let changes = sqlx::query_as::<_, (i64,)>("SELECT COALESCE(MAX(id), 0) FROM opportunity_history")
        .fetch_one(&db.pool);
    let ((deals, id_sum, last_update), (last_activity,), (last_change,)) =
        tokio::try_join!(deals, activities, changes)?;
    Ok(DataVersion {
        deals,
        id_sum,
        last_update,
        last_activity,
        last_change,
    })
}
