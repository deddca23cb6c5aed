//! The `activities` table, and the interaction measures derived from it.

use sqlx::{Any, Transaction};

use super::sql::{values_placeholders, OptionalF64, Style};
use super::Db;
use crate::domain::{
    derive_interactions, from_epoch_ms, to_epoch_ms, Activity, ActivityDirection, ActivityKind, Touch,
};

/// Result of attaching activities to one opportunity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AddedActivities {
    /// Activities newly stored.
    pub added: usize,
    /// Activities already known (same CRM id, or same kind, direction and time) and skipped.
    pub duplicates: usize,
}

/// Why activities could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AddActivitiesError {
    /// The opportunity does not exist.
    #[error("opportunity `{0}` does not exist")]
    UnknownOpportunity(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Attaches activities to an opportunity and refreshes its derived measures, in one transaction.
pub async fn add(
    db: &Db,
    external_id: &str,
    activities: &[Activity],
) -> Result<AddedActivities, AddActivitiesError> {
    let mut tx = db.begin_write().await?;
    let result = add_in(&mut tx, external_id, activities).await?;
    tx.commit().await?;
    Ok(result)
}

/// [`add`] inside a caller's transaction.
pub async fn add_in(
    tx: &mut Transaction<'_, Any>,
    external_id: &str,
    activities: &[Activity],
) -> Result<AddedActivities, AddActivitiesError> {
    let id = super::opportunities::id_of(tx, external_id)
        .await?
        .ok_or_else(|| AddActivitiesError::UnknownOpportunity(external_id.to_owned()))?;
    let mut added = 0;
    for chunk in activities.chunks(500) {
        let sql = format!(
            "INSERT INTO activities (opportunity_id, dedup_key, activity_id, kind, direction, occurred_at) \
             VALUES {} ON CONFLICT (opportunity_id, dedup_key) DO NOTHING",
            values_placeholders(Style::of(tx), chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for a in chunk {
            query = query
                .bind(id)
                .bind(a.dedup_key())
                .bind(a.id.clone())
                .bind(a.kind.as_str())
                .bind(a.direction.as_str())
                .bind(to_epoch_ms(a.occurred_at));
        }
        added += query.execute(&mut **tx).await?.rows_affected() as usize;
    }
    if added > 0 {
        refresh_derived(tx, id).await?;
    }
    Ok(AddedActivities {
        added,
        duplicates: activities.len() - added,
    })
}

/// Recomputes an opportunity's effective interaction measures from its activities (see
/// [`derive_interactions`] for the rule). Measures the activities cannot give — no answered
/// inbound activity yet — fall back to the values the client reported.
pub async fn refresh_derived(tx: &mut Transaction<'_, Any>, opportunity_id: i64) -> Result<(), sqlx::Error> {
    let rows: Vec<TouchRow> =
        sqlx::query_as("SELECT direction, occurred_at FROM activities WHERE opportunity_id = $1")
            .bind(opportunity_id)
            .fetch_all(&mut **tx)
            .await?;
    let events: Vec<_> = rows
        .into_iter()
        .map(|row| (direction(&row.direction), from_epoch_ms(row.occurred_at)))
        .collect();
    if events.is_empty() {
        sqlx::query(
            "UPDATE opportunities SET interaction_count = reported_interaction_count, \
             response_hours = reported_response_hours, last_activity_at = reported_last_activity_at, \
             derived_from_activities = 0 WHERE id = $1",
        )
        .bind(opportunity_id)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    let derived = derive_interactions(&events);
    sqlx::query(
        "UPDATE opportunities SET interaction_count = $1, \
         response_hours = COALESCE($2, reported_response_hours), \
         last_activity_at = CASE WHEN reported_last_activity_at IS NULL OR reported_last_activity_at < $3 \
             THEN $3 ELSE reported_last_activity_at END, \
         derived_from_activities = 1 WHERE id = $4",
    )
    .bind(derived.interaction_count)
    .bind(OptionalF64(derived.response_hours))
    .bind(derived.last_activity_at.map(to_epoch_ms))
    .bind(opportunity_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether any won or lost deal has a recorded activity: the history snapshot training learns
/// from. Stops at the first one found.
pub async fn any_on_closed_deals(db: &Db) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT a.id FROM activities a JOIN opportunities o ON o.id = a.opportunity_id \
         WHERE o.status IN ('won', 'lost') LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    Ok(found.is_some())
}

/// Activities of an opportunity, oldest first.
pub async fn list_for(db: &Db, external_id: &str) -> Result<Vec<Activity>, sqlx::Error> {
    let rows: Vec<ActivityRow> = sqlx::query_as(
        "SELECT a.activity_id, a.kind, a.direction, a.occurred_at FROM activities a \
         JOIN opportunities o ON o.id = a.opportunity_id WHERE o.external_id = $1 ORDER BY a.occurred_at, a.id",
    )
    .bind(external_id.to_owned())
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Activity::from).collect())
}

/// The activities of the deals with these internal ids that happened at or before `until` (all
/// without it), per deal, oldest first; 400 deals per statement.
pub async fn for_ids(
    conn: &mut sqlx::AnyConnection,
    ids: &[i64],
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<std::collections::HashMap<i64, Vec<Activity>>, sqlx::Error> {
    let style = Style::of(conn);
    let mut out: std::collections::HashMap<i64, Vec<Activity>> = std::collections::HashMap::new();
    for chunk in ids.chunks(400) {
        let sql = format!(
            "SELECT opportunity_id, activity_id, kind, direction, occurred_at FROM activities \
             WHERE occurred_at <= {} AND opportunity_id IN ({}) ORDER BY opportunity_id, occurred_at, id",
            match style {
                Style::Question => "?",
                Style::Dollar => "$1",
            },
            super::sql::list_placeholders_from(style, 2, chunk.len())
        );
        let mut query = sqlx::query_as::<_, OwnedActivityRow>(&sql)
            .persistent(style == Style::Question)
            .bind(until.map_or(i64::MAX, to_epoch_ms));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let id = row.opportunity_id;
            out.entry(id).or_default().push(Activity::from(ActivityRow {
                activity_id: row.activity_id,
                kind: row.kind,
                direction: row.direction,
                occurred_at: row.occurred_at,
            }));
        }
    }
    Ok(out)
}

/// The touches (direction and time) of every activity of the deals with these row ids, by id
/// (deals without any are absent), oldest first, one statement per 400 deals answering one JSON
/// value ([`super::sql::json_rows_by_keys`]): per activity its deal's id, its time, row id, and 1
/// when inbound (the column holds only what [`ActivityDirection::as_str`] writes), else 0. The
/// training timelines this serves rebuild deals as of past instants, which count activities and
/// read their times and directions only: millions of activities are read for snapshot
/// training, and their CRM ids and kinds are left in the database.
pub(super) async fn by_id(
    conn: &mut sqlx::AnyConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Touch>>, sqlx::Error> {
    let style = Style::of(conn);
    let mut rows: Vec<JsonTouch> = super::sql::json_rows_by_keys(conn, ids, |list| {
        let columns = "opportunity_id, occurred_at, id, CASE WHEN direction = 'inbound' THEN 1 ELSE 0 END";
        let from = format!("FROM activities WHERE opportunity_id IN ({list})");
        match style {
            Style::Question => format!("SELECT json_group_array(json_array({columns})) {from}"),
            Style::Dollar => format!("SELECT json_agg(json_build_array({columns}))::text {from}"),
        }
    })
    .await?;
    // By deal, oldest first; activities of one instant in the order they were stored.
    rows.sort_by_key(|a| (a.0, a.1, a.2));
    let mut out: std::collections::HashMap<i64, Vec<Touch>> = std::collections::HashMap::new();
    for JsonTouch(deal, occurred_at, _, inbound) in rows {
        out.entry(deal).or_default().push(Touch {
            direction: if inbound == 1 {
                ActivityDirection::Inbound
            } else {
                ActivityDirection::Outbound
            },
            occurred_at: from_epoch_ms(occurred_at),
        });
    }
    Ok(out)
}

/// An activity in a JSON page of [`by_id`]: its deal's row id, its time (epoch ms), row id, and
/// 1 when inbound, else 0.
#[derive(serde::Deserialize)]
struct JsonTouch(i64, i64, i64, u8);

/// An `activities` row with the deal it belongs to, as [`for_ids`] reads it.
#[derive(sqlx::FromRow)]
struct OwnedActivityRow {
    opportunity_id: i64,
    activity_id: Option<String>,
    kind: String,
    direction: String,
    occurred_at: i64,
}

/// When and which way an opportunity was touched: what its derived measures are computed from.
#[derive(sqlx::FromRow)]
struct TouchRow {
    direction: String,
    occurred_at: i64,
}

/// An `activities` row as [`list_for`] reads it.
#[derive(sqlx::FromRow)]
struct ActivityRow {
    activity_id: Option<String>,
    kind: String,
    direction: String,
    occurred_at: i64,
}

impl From<ActivityRow> for Activity {
    fn from(row: ActivityRow) -> Self {
        Activity {
            id: row.activity_id,
            kind: ActivityKind::parse(&row.kind).unwrap_or(ActivityKind::Other),
            direction: direction(&row.direction),
            occurred_at: from_epoch_ms(row.occurred_at),
        }
    }
}

/// A stored direction; only this code writes the column, so anything else is read as outbound
/// rather than failing the read.
fn direction(text: &str) -> ActivityDirection {
    ActivityDirection::parse(text).unwrap_or(ActivityDirection::Outbound)
}
