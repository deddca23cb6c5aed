//! The `webhook_events` and `webhook_event_clock` tables: what each CRM delivery did, and the last
//! applied event time per opportunity.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, FromRow, Transaction};

use super::sql::{select_by_keys, values_placeholders, Style};
use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// One row to write to `webhook_events`.
#[derive(Debug, Clone, Default)]
pub struct EventRecord<'a> {
    /// Source name.
    pub source: &'a str,
    /// The id the sender gave, when it could be read.
    pub sent_id: Option<&'a str>,
    /// Event type as sent.
    pub event_type: Option<&'a str>,
    /// The opportunity the event is about.
    pub external_id: Option<&'a str>,
    /// When the event happened in the CRM.
    pub occurred_at: Option<DateTime<Utc>>,
    /// applied, duplicate, ignored or rejected.
    pub status: &'a str,
    /// Why (rejected, ignored, duplicate).
    pub reason: Option<&'a str>,
    /// Outcome JSON answered to the sender.
    pub outcome: Option<&'a str>,
}

/// A stored event as listed to admins.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// Row id (recent rows have larger ids).
    pub row: i64,
    /// The sender's event id, when it could be read.
    pub event_id: Option<String>,
    /// Event type as sent.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// The opportunity concerned.
    pub external_id: Option<String>,
    /// When the event happened in the CRM.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When dealscore received it.
    pub received_at: DateTime<Utc>,
    /// applied, duplicate, ignored or rejected.
    pub status: String,
    /// Why (rejections, ignored and duplicate events).
    pub reason: Option<String>,
    /// The outcome answered to the sender.
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<serde_json::Value>,
}

/// Reserves `event_id` for `source` inside the caller's transaction, as the first write of the
/// event's effect. `None` when the id is already recorded (a duplicate delivery). On PostgreSQL a
/// concurrent transaction holding the same id makes this wait for it, so the loser sees it as a
/// duplicate instead of failing.
pub async fn claim_in(
    tx: &mut Transaction<'_, Any>,
    record: &EventRecord<'_>,
    event_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_events (source, event_id, sent_id, event_type, external_id, occurred_at, \
         received_at, status, reason, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (source, event_id) DO NOTHING RETURNING id",
    )
    .bind(record.source.to_owned())
    .bind(event_id.to_owned())
    .bind(record.sent_id.map(str::to_owned))
    .bind(record.event_type.map(str::to_owned))
    .bind(record.external_id.map(str::to_owned))
    .bind(record.occurred_at.map(to_epoch_ms))
    .bind(to_epoch_ms(Utc::now()))
    .bind(record.status.to_owned())
    .bind(record.reason.map(str::to_owned))
    .bind(record.outcome.map(str::to_owned))
    .fetch_optional(&mut **tx)
    .await
}

/// Sets the final status, reason and outcome of a claimed event. `keep_id` false releases the
/// event id (rejections), so a corrected redelivery with the same id is processed normally.
pub async fn finish_in(
    tx: &mut Transaction<'_, Any>,
    row_id: i64,
    status: &str,
    reason: Option<&str>,
    outcome: &str,
    keep_id: bool,
) -> Result<(), sqlx::Error> {
    let sql = if keep_id {
        "UPDATE webhook_events SET status = $1, reason = $2, outcome = $3 WHERE id = $4"
    } else {
        "UPDATE webhook_events SET status = $1, reason = $2, outcome = $3, event_id = NULL WHERE id = $4"
    };
    sqlx::query(sql)
        .bind(status.to_owned())
        .bind(reason.map(str::to_owned))
        .bind(outcome.to_owned())
        .bind(row_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The outcome first answered for `event_id` (JSON text).
pub async fn original_outcome_in(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    event_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let outcome: Option<Option<String>> =
        sqlx::query_scalar("SELECT outcome FROM webhook_events WHERE source = $1 AND event_id = $2")
            .bind(source.to_owned())
            .bind(event_id.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(outcome.flatten())
}

/// Writes a record that reserves no event id (rejections, duplicate deliveries).
pub async fn record_in(tx: &mut Transaction<'_, Any>, record: &EventRecord<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_events (source, event_id, sent_id, event_type, external_id, occurred_at, \
         received_at, status, reason, outcome) VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.source.to_owned())
    .bind(record.sent_id.map(str::to_owned))
    .bind(record.event_type.map(str::to_owned))
    .bind(record.external_id.map(str::to_owned))
    .bind(record.occurred_at.map(to_epoch_ms))
    .bind(to_epoch_ms(Utc::now()))
    .bind(record.status.to_owned())
    .bind(record.reason.map(str::to_owned))
    .bind(record.outcome.map(str::to_owned))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// [`record_in`] in its own transaction.
pub async fn record(db: &Db, record: &EventRecord<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    record_in(&mut tx, record).await?;
    tx.commit().await
}

/// Locks the opportunity's event clock row for the rest of the transaction and returns the time
/// of the last applied event (the far past when there is none). Locking before deciding makes
/// concurrent events on one opportunity wait for each other on PostgreSQL, so they are ordered by
/// the database, not by luck (SQLite already serialises writers).
pub async fn lock_clock_in(
    tx: &mut Transaction<'_, Any>,
    external_id: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_event_clock (external_id, occurred_at) VALUES ($1, $2) \
         ON CONFLICT (external_id) DO UPDATE SET occurred_at = webhook_event_clock.occurred_at \
         RETURNING occurred_at",
    )
    .bind(external_id.to_owned())
    .bind(NO_EVENT_YET)
    .fetch_one(&mut **tx)
    .await?;
    Ok(if last == NO_EVENT_YET {
        DateTime::<Utc>::MIN_UTC
    } else {
        from_epoch_ms(last)
    })
}

/// Clock value meaning "no event applied yet".
const NO_EVENT_YET: i64 = i64::MIN;

/// Records `occurred_at` as the last applied event time of the opportunity (after
/// [`lock_clock_in`]).
pub async fn set_clock_in(
    tx: &mut Transaction<'_, Any>,
    external_id: &str,
    occurred_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_event_clock SET occurred_at = $1 WHERE external_id = $2")
        .bind(to_epoch_ms(occurred_at))
        .bind(external_id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rows per multi-row statement (10 parameters each: well under every backend's limit).
const ROWS_PER_STATEMENT: usize = 400;

/// The ids among `event_ids` already recorded for `source` (redeliveries).
pub async fn recorded_among_in(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    event_ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let postgres = Style::of(tx) == Style::Dollar;
    let rows: Vec<(String,)> = select_by_keys(tx, Some(source), event_ids, |source, list| {
        if postgres {
            // PostgreSQL: one probe of the (source, event_id) key per id. Written as
            // `event_id IN (…)`, a table never analysed yet (a new database, in its first minute)
            // is planned on the (source, id) index, the planner assuming a source matches 0.5 %
            // of the rows, and every event of the source is filtered: 19 ms against 0.8 ms per
            // 400 ids at 120,000 events (EXPLAIN ANALYZE; docs/performance.md, "Webhook deliveries").
            // The LIMIT keeps the subquery from being flattened into a join that could be planned
            // the same way; the key is unique, so it drops nothing.
            format!(
                "SELECT e.event_id FROM unnest(ARRAY[{list}]) AS k (id) CROSS JOIN LATERAL \
                 (SELECT event_id FROM webhook_events WHERE source = {source} AND event_id = k.id LIMIT 1) e"
            )
        } else {
            format!("SELECT event_id FROM webhook_events WHERE source = {source} AND event_id IN ({list})")
        }
    })
    .await?;
    Ok(rows.into_iter().map(|(event_id,)| event_id).collect())
}

/// Records applied or ignored events with their outcome, each keeping its `sent_id` claimed as
/// its event id, in multi-row statements. The caller checked with [`recorded_among_in`] that no
/// id is recorded yet; should another transaction (another instance sharing PostgreSQL) record
/// one meanwhile, the unique key refuses the insert and the caller's transaction fails whole —
/// a retry then sees a duplicate.
pub async fn record_claimed_many_in(
    tx: &mut Transaction<'_, Any>,
    records: &[EventRecord<'_>],
) -> Result<(), sqlx::Error> {
    let style = Style::of(tx);
    let received_at = to_epoch_ms(Utc::now());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO webhook_events (source, event_id, sent_id, event_type, external_id, occurred_at, \
             received_at, status, reason, outcome) VALUES {}",
            values_placeholders(style, chunk.len(), 10)
        );
        let mut query = sqlx::query(&sql);
        for record in chunk {
            query = query
                .bind(record.source.to_owned())
                .bind(record.sent_id.map(str::to_owned))
                .bind(record.sent_id.map(str::to_owned))
                .bind(record.event_type.map(str::to_owned))
                .bind(record.external_id.map(str::to_owned))
                .bind(record.occurred_at.map(to_epoch_ms))
                .bind(received_at)
                .bind(record.status.to_owned())
                .bind(record.reason.map(str::to_owned))
                .bind(record.outcome.map(str::to_owned));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves each opportunity's event clock to the given time unless it is already later, and
/// returns the opportunities whose clock moved (or stayed equal): their events apply; the others
/// are older than the last applied event. Opportunities must be distinct within the call. On
/// PostgreSQL the clock rows stay locked until the commit, as with [`lock_clock_in`].
///
/// The statement only reports how many clocks moved: when all of them did (events arriving in
/// order, the usual case) nothing is read back. Returning every moved id instead cost a batch of
/// 1,000 events a row hand-off per event from SQLite's worker thread (docs/performance.md,
/// "Webhook deliveries").
/// When some did not move, the clocks are read: a clock that moved holds its event's time, one
/// that did not holds a later time.
pub async fn advance_clocks_in(
    tx: &mut Transaction<'_, Any>,
    clocks: &[(&str, DateTime<Utc>)],
) -> Result<HashSet<String>, sqlx::Error> {
    let style = Style::of(tx);
    let mut advanced = HashSet::with_capacity(clocks.len());
    for chunk in clocks.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO webhook_event_clock (external_id, occurred_at) VALUES {} \
             ON CONFLICT (external_id) DO UPDATE SET occurred_at = excluded.occurred_at \
             WHERE webhook_event_clock.occurred_at <= excluded.occurred_at",
            values_placeholders(style, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (external_id, occurred_at) in chunk {
            query = query
                .bind((*external_id).to_owned())
                .bind(to_epoch_ms(*occurred_at));
        }
        let moved = query.execute(&mut **tx).await?.rows_affected();
        if moved == chunk.len() as u64 {
            advanced.extend(chunk.iter().map(|(id, _)| (*id).to_owned()));
            continue;
        }
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| *id).collect();
        let now_at = clock_values_in(tx, &ids).await?;
        advanced.extend(
            chunk
                .iter()
                .filter(|(id, at)| now_at.get(*id) == Some(&to_epoch_ms(*at)))
                .map(|(id, _)| (*id).to_owned()),
        );
    }
    Ok(advanced)
}

/// The raw clock value (epoch ms, or `NO_EVENT_YET`) of each of the given opportunities that has
/// a clock row.
async fn clock_values_in(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = select_by_keys(tx, None, external_ids, |_, list| {
        format!("SELECT external_id, occurred_at FROM webhook_event_clock WHERE external_id IN ({list})")
    })
    .await?;
    Ok(rows.into_iter().collect())
}

/// The last applied event time of each of the given opportunities that has one.
pub async fn clocks_in(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, DateTime<Utc>>, sqlx::Error> {
    Ok(clock_values_in(tx, external_ids)
        .await?
        .into_iter()
        .filter(|(_, at)| *at != NO_EVENT_YET)
        .map(|(id, at)| (id, from_epoch_ms(at)))
        .collect())
}

/// The most recent events of a source, newest first, optionally with one status.
pub async fn list(
    db: &Db,
    source: &str,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let columns = "id, sent_id, event_type, external_id, occurred_at, received_at, status, reason, outcome";
    let rows: Vec<EventRow> =
        super::sql::recent_for_source(db, "webhook_events", columns, source, status, limit).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// A `webhook_events` row as [`list`] reads it: times in epoch milliseconds, the outcome as
/// JSON text.
#[derive(FromRow)]
struct EventRow {
    id: i64,
    sent_id: Option<String>,
    event_type: Option<String>,
    external_id: Option<String>,
    occurred_at: Option<i64>,
    received_at: i64,
    status: String,
    reason: Option<String>,
    outcome: Option<String>,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        StoredEvent {
            row: row.id,
            event_id: row.sent_id,
            event_type: row.event_type,
            external_id: row.external_id,
            occurred_at: row.occurred_at.map(from_epoch_ms),
            received_at: from_epoch_ms(row.received_at),
            status: row.status,
            reason: row.reason,
            outcome: row.outcome.and_then(|o| serde_json::from_str(&o).ok()),
        }
    }
}
