//! Reads behind the insights: the change stamp, the compact deal rows the snapshot is built from,
//! latest score probabilities, one custom attribute's values, and the `objectives` table.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use futures_util::TryStreamExt;
use sqlx::FromRow;

use super::sql::{values_placeholders, Style};
use super::Db;
use crate::domain::{to_epoch_ms, AttributeValue, Status};

/// Rows of `insights_changes` above which the stamp read compacts them into one (PostgreSQL
/// appends one row per writing statement; SQLite always has one).
const COMPACT_ABOVE_ROWS: i64 = 1_000;

/// The change stamp: grows with every committed write to `opportunities` or `scores` (triggers
/// of migration 0004), never shrinks. Equal stamps mean equal data.
pub async fn change_stamp(db: &Db) -> Result<i64, sqlx::Error> {
    let changes: ChangesRow = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(weight), 0) AS BIGINT) AS stamp, COUNT(*) AS n, \
         CAST(COALESCE(MAX(id), 0) AS BIGINT) AS last FROM insights_changes",
    )
    .fetch_one(&db.pool)
    .await?;
    if changes.n > COMPACT_ABOVE_ROWS {
        compact_changes(db, changes.last).await?;
    }
    Ok(changes.stamp)
}

/// The summary of `insights_changes` [`change_stamp`] reads.
#[derive(FromRow)]
struct ChangesRow {
    /// Total weight: the stamp.
    stamp: i64,
    /// Rows.
    n: i64,
    /// Highest row id.
    last: i64,
}

/// Replaces the change rows up to `last` by one row of the same total weight, so the stamp keeps
/// its value. Concurrent compactions each move exactly the rows they deleted (`RETURNING`).
async fn compact_changes(db: &Db, last: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "WITH gone AS (DELETE FROM insights_changes WHERE id <= $1 RETURNING weight) \
         INSERT INTO insights_changes (weight) SELECT COALESCE(SUM(weight), 0) FROM gone",
    )
    .bind(last)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// One opportunity as the insights need it: categories as text, times in epoch ms.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DealRow {
    /// Internal id.
    pub id: i64,
    /// CRM id.
    pub external_id: String,
    /// Account.
    pub account: Option<String>,
    /// Sector.
    pub sector: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Owner (rep).
    pub owner: Option<String>,
    /// Contact role.
    pub contact_role: Option<String>,
    /// Amount.
    pub amount: Option<f64>,
    /// Currency.
    pub currency: String,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// Creation (epoch ms).
    pub created_at: Option<i64>,
    /// Close (epoch ms).
    pub closed_at: Option<i64>,
    /// Effective interaction count.
    pub interaction_count: Option<i64>,
    /// Effective response time (hours).
    pub response_hours: Option<f64>,
    /// Last activity (epoch ms).
    pub last_activity_at: Option<i64>,
}

/// One custom attribute's value of every opportunity that has it, as `(id, text)` in id order
/// (numbers as their text, `3` or `2.5`). Attributes are JSON text on both databases, so the
/// value is picked out here rather than with each database's JSON functions.
pub async fn attribute_values(db: &Db, name: &str) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut rows = sqlx::query_as::<_, (i64, String)>(
        "SELECT id, attributes FROM opportunities WHERE attributes <> '{}' ORDER BY id",
    )
    .fetch(&db.pool);
    let mut values = Vec::new();
    while let Some((id, text)) = rows.try_next().await? {
        // Stored by this service as a JSON object of numbers and strings; a row that is not
        // (edited by hand) has no value rather than failing the whole insight.
        let Ok(map) = serde_json::from_str::<BTreeMap<String, AttributeValue>>(&text) else {
            continue;
        };
        if let Some(v) = map.get(name) {
            values.push((id, v.to_text()));
        }
    }
    Ok(values)
}

/// Streams every opportunity to `each`, in id order. Only the columns the insights read.
pub async fn for_each_deal(db: &Db, mut each: impl FnMut(DealRow)) -> Result<(), sqlx::Error> {
    let mut rows = sqlx::query_as::<_, DealRow>(
        "SELECT id, external_id, account, sector, region, owner, contact_role, amount, currency, status, \
         created_at, closed_at, interaction_count, response_hours, last_activity_at FROM opportunities ORDER BY id",
    )
    .fetch(&db.pool);
    while let Some(row) = rows.try_next().await? {
        each(row);
    }
    Ok(())
}

/// The probability of the latest stored score of every scored open opportunity, by internal id.
pub async fn latest_open_probabilities(db: &Db) -> Result<HashMap<i64, f64>, sqlx::Error> {
    sqlx::query_as::<_, (i64, f64)>(
        "SELECT s.opportunity_id, s.probability FROM scores s \
         JOIN (SELECT opportunity_id, MAX(id) AS id FROM scores GROUP BY opportunity_id) latest ON latest.id = s.id \
         JOIN opportunities o ON o.id = s.opportunity_id WHERE o.status = 'open'",
    )
    .fetch(&db.pool)
    .try_collect()
    .await
}

/// Open deals by the focus and grade of their latest stored score: (focus, grade, count), in
/// focus then grade order; unscored open deals are not counted.
pub async fn open_focus_grade_counts(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT s.focus, s.grade, COUNT(*) AS n FROM scores s \
         JOIN (SELECT opportunity_id, MAX(id) AS id FROM scores GROUP BY opportunity_id) latest ON latest.id = s.id \
         JOIN opportunities o ON o.id = s.opportunity_id WHERE o.status = 'open' \
         GROUP BY s.focus, s.grade ORDER BY s.focus, s.grade",
    )
    .fetch(&db.pool)
    .try_collect()
    .await
}

/// A sales target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Objective {
    /// `owner` or `region`.
    pub scope: String,
    /// The rep or region name.
    pub name: String,
    /// `2026`, `2026-Q1` or `2026-03`.
    pub period: String,
    /// `won_revenue` or `won_deals`.
    pub metric: String,
    /// Currency of a `won_revenue` target; absent for `won_deals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The target.
    pub target: f64,
}

const OBJECTIVE_COLUMNS: usize = 7;

/// Inserts or replaces objectives (same scope, name, period, metric and currency) in one
/// transaction: all or nothing.
pub async fn upsert_objectives(db: &Db, objectives: &[Objective]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let now = to_epoch_ms(Utc::now());
    for chunk in objectives.chunks(500) {
        let sql = format!(
            "INSERT INTO objectives (scope, scope_value, period, metric, currency, target, updated_at) VALUES {} \
             ON CONFLICT (scope, scope_value, period, metric, currency) DO UPDATE SET \
             target = excluded.target, updated_at = excluded.updated_at",
            values_placeholders(Style::of(&tx), chunk.len(), OBJECTIVE_COLUMNS)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for o in chunk {
            query = query
                .bind(o.scope.clone())
                .bind(o.name.clone())
                .bind(o.period.clone())
                .bind(o.metric.clone())
                .bind(o.currency.clone().unwrap_or_default())
                .bind(o.target)
                .bind(now);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// The objectives of one period, in (scope, name, metric, currency) order.
pub async fn objectives_of_period(db: &Db, period: &str) -> Result<Vec<Objective>, sqlx::Error> {
    let rows: Vec<ObjectiveRow> = sqlx::query_as(
        "SELECT scope, scope_value, period, metric, currency, target FROM objectives WHERE period = $1 \
         ORDER BY scope, scope_value, metric, currency",
    )
    .bind(period.to_owned())
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Objective::from).collect())
}

/// An `objectives` row: a target without a currency stores `''`.
#[derive(FromRow)]
struct ObjectiveRow {
    scope: String,
    scope_value: String,
    period: String,
    metric: String,
    currency: String,
    target: f64,
}

impl From<ObjectiveRow> for Objective {
    fn from(row: ObjectiveRow) -> Self {
        Objective {
            scope: row.scope,
            name: row.scope_value,
            period: row.period,
            metric: row.metric,
            currency: (!row.currency.is_empty()).then_some(row.currency),
            target: row.target,
        }
    }
}
