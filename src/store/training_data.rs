//! What identifies the data a training run reads: counts and extremes of the closed deals in
//! its window, their recorded activities and field history. Two runs that see the same figures
//! read the same rows, so the second can say so instead of registering the same model again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::Db;
use crate::domain::to_epoch_ms;

/// The figures that change whenever a training run's input changes.
///
/// - A changed deal gets a new `updated_at`, so `last_update` moves.
/// - A deleted deal lowers `deals`; a deleted deal replaced by a new one keeps `deals` but moves
///   `id_sum`, since ids are never reused.
/// - New activities or field changes move their counts and largest ids. These are counted over
///   all deals, open ones included: one scan each instead of a join with the closed deals, and an
///   activity on an open deal only makes a run train when it could have been skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct DataVersion {
    /// Closed deals in the window.
    pub deals: i64,
    /// Sum of their row ids.
    pub id_sum: i64,
    /// Their latest `updated_at` (epoch ms; 0 without deals).
    pub last_update: i64,
    /// Activities recorded.
    pub activities: i64,
    /// Largest activity id (0 without any).
    pub last_activity: i64,
    /// Field changes recorded.
    pub changes: i64,
    /// Largest field-change id (0 without any).
    pub last_change: i64,
}

/// The [`DataVersion`] of the closed deals closed within `[since, until]` (both optional).
pub async fn data_version(
    db: &Db,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<DataVersion, sqlx::Error> {
    // One pass over the closed deals for all three of their figures. Sums are cast: PostgreSQL
    // sums BIGINTs as NUMERIC, which the Any driver cannot read.
    let sql = "SELECT deals, id_sum, last_update, \
           (SELECT COUNT(*) FROM activities) AS activities, \
           (SELECT COALESCE(MAX(id), 0) FROM activities) AS last_activity, \
           (SELECT COUNT(*) FROM opportunity_history) AS changes, \
           (SELECT COALESCE(MAX(id), 0) FROM opportunity_history) AS last_change \
         FROM (SELECT COUNT(*) AS deals, CAST(COALESCE(SUM(id), 0) AS BIGINT) AS id_sum, \
                 COALESCE(MAX(updated_at), 0) AS last_update \
               FROM opportunities WHERE status IN ('won', 'lost') \
                 AND closed_at >= $1 AND closed_at <= $2) AS closed";
    sqlx::query_as::<_, DataVersion>(sql)
        .bind(since.map(to_epoch_ms).unwrap_or(i64::MIN))
        .bind(until.map(to_epoch_ms).unwrap_or(i64::MAX))
        .fetch_one(&db.pool)
        .await
}
