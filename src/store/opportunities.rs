//! The `opportunities` table.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, FromRow, Transaction};

use super::history::{NewChange, Provenance};
use super::scope::Scope;
use super::sql::{bad_column, select_by_keys, values_placeholders, OptionalF64, Style};
use super::Db;
use crate::domain::{
    from_epoch_ms, history, to_epoch_ms, AttributeValue, ChangeSource, ContactRole, Deal, ExternalId,
    Opportunity, Previous, Status,
};

/// What an upsert did to one opportunity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertOutcome {
    /// It did not exist.
    Inserted,
    /// It existed with different content.
    Updated,
    /// It existed with exactly this content; nothing was written.
    Unchanged,
}

/// An opportunity as stored, with its effective interaction measures.
#[derive(Debug, Clone, Serialize)]
pub struct StoredOpportunity {
    /// Internal row id (stable; used for pagination).
    #[serde(skip)]
    pub id: i64,
    /// The opportunity; `interaction_count`, `response_hours` and `last_activity_at` are the
    /// effective values (derived from activities when there are any).
    #[serde(flatten)]
    pub opportunity: Opportunity,
    /// True when the interaction measures were derived from activities.
    pub derived_from_activities: bool,
    /// Last write time.
    pub updated_at: DateTime<Utc>,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this region.
    pub region: Option<String>,
    /// Only this sector.
    pub sector: Option<String>,
    /// Only the deals the caller may see (on top of the filters above, so a filter can narrow
    /// the scope but never widen it).
    pub scope: Scope,
}

const COLUMNS: &str = "external_id, name, account, sector, region, owner, contact_role, amount, currency, \
    stage, status, created_at, closed_at, reported_interaction_count, reported_response_hours, \
    reported_last_activity_at, interaction_count, response_hours, last_activity_at, attributes, \
    content_hash, updated_at";
const COLUMN_COUNT: usize = 22;
pub(super) const SELECT_COLUMNS: &str =
    "id, external_id, name, account, sector, region, owner, contact_role, amount, \
    currency, stage, status, created_at, closed_at, interaction_count, response_hours, last_activity_at, \
    derived_from_activities, attributes, updated_at";
/// Rows per multi-row statement: 22 columns × 400 rows stays under every backend's parameter limit.
const ROWS_PER_STATEMENT: usize = 400;

/// Hash of everything the client sent, to tell "unchanged" from "updated" without comparing
/// columns one by one.
pub fn content_hash(opp: &Opportunity) -> String {
    let json = serde_json::to_vec(opp).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

/// Inserts or replaces one opportunity (its changes recorded as the API's, effective now).
pub async fn upsert(db: &Db, opp: &Opportunity) -> Result<UpsertOutcome, sqlx::Error> {
    let outcomes = upsert_batch(db, std::slice::from_ref(opp)).await?;
    Ok(outcomes.first().copied().unwrap_or(UpsertOutcome::Unchanged))
}

/// Inserts or replaces a batch in one transaction (changes recorded as the API's, effective now).
/// External ids must be distinct within the batch.
pub async fn upsert_batch(db: &Db, opps: &[Opportunity]) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let provenance = vec![Provenance::written(ChangeSource::Api); opps.len()];
    let outcomes = upsert_batch_in(&mut tx, opps, &provenance).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// [`upsert_batch`] inside a caller's transaction (webhook events record their id alongside),
/// with where each write comes from and when it took effect (`provenance[i]` for `opps[i]`).
///
/// Every real change of a field is appended to the deal's history in this same transaction,
/// after the upsert and in the order of `opps`: a write that fails or is rolled back leaves no
/// history, and no history row exists without its write. A first write records every field it
/// sets; an unchanged deal records nothing.
pub async fn upsert_batch_in(
    tx: &mut Transaction<'_, Any>,
    opps: &[Opportunity],
    provenance: &[Provenance],
) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
    if provenance.len() != opps.len() {
        return Err(sqlx::Error::Protocol(format!(
            "upsert of {} opportunities given {} provenances",
            opps.len(),
            provenance.len()
        )));
    }
    let hashes: Vec<String> = opps.iter().map(content_hash).collect();
    let existing = existing_rows(tx, opps).await?;
    let mut outcomes = Vec::with_capacity(opps.len());
    let mut to_write: Vec<(&Opportunity, &str)> = Vec::new();
    for (opp, hash) in opps.iter().zip(&hashes) {
        let outcome = match existing.get(opp.external_id.as_str()) {
            None => UpsertOutcome::Inserted,
            Some(old) if old.content_hash == *hash => UpsertOutcome::Unchanged,
            Some(_) => UpsertOutcome::Updated,
        };
        if outcome != UpsertOutcome::Unchanged {
            to_write.push((opp, hash));
        }
        outcomes.push(outcome);
    }
    // What the changed deals held before this write, read before it overwrites them.
    let changed: Vec<&str> = opps
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| **outcome == UpsertOutcome::Updated)
        .map(|(opp, _)| opp.external_id.as_str())
        .collect();
    let before = reported_deals(tx, &changed).await?;
    let written_at = Utc::now();
    let now = to_epoch_ms(written_at);
    let style = Style::of(tx);
    // On PostgreSQL concurrent transactions can both miss a row in the lookup above and both
    // "insert" it; the statement itself says which row it really inserted (`xmax = 0`), so the
    // outcome follows the database. SQLite serialises writers, so the lookup is exact there.
    let returning = match style {
        Style::Dollar => " RETURNING external_id, (xmax = 0) AS inserted",
        Style::Question => "",
    };
    let mut conflicted: std::collections::HashSet<String> = std::collections::HashSet::new();
    for chunk in to_write.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO opportunities ({COLUMNS}) VALUES {} ON CONFLICT (external_id) DO UPDATE SET \
             name = excluded.name, account = excluded.account, sector = excluded.sector, \
             region = excluded.region, owner = excluded.owner, contact_role = excluded.contact_role, \
             amount = excluded.amount, currency = excluded.currency, stage = excluded.stage, \
             status = excluded.status, created_at = excluded.created_at, closed_at = excluded.closed_at, \
             reported_interaction_count = excluded.reported_interaction_count, \
             reported_response_hours = excluded.reported_response_hours, \
             reported_last_activity_at = excluded.reported_last_activity_at, \
             interaction_count = CASE WHEN opportunities.derived_from_activities = 1 \
                 THEN opportunities.interaction_count ELSE excluded.interaction_count END, \
             response_hours = CASE WHEN opportunities.derived_from_activities = 1 \
                 THEN opportunities.response_hours ELSE excluded.response_hours END, \
             last_activity_at = CASE WHEN opportunities.derived_from_activities = 1 \
                 THEN opportunities.last_activity_at ELSE excluded.last_activity_at END, \
             attributes = excluded.attributes, content_hash = excluded.content_hash, \
             updated_at = excluded.updated_at{returning}",
            values_placeholders(style, chunk.len(), COLUMN_COUNT)
        );
        // A prepared statement cached per connection (parsing this long statement on every write
        // was most of PostgreSQL's CPU under webhook load); its optional floats are bound with
        // `OptionalF64` so that a first execution with a NULL cannot mistype them.
        let mut query = sqlx::query(&sql);
        for (opp, hash) in chunk {
            let attributes = serde_json::to_string(&opp.attributes).unwrap_or_else(|_| "{}".into());
            query = query
                .bind(opp.external_id.to_string())
                .bind(opp.name.clone())
                .bind(opp.account.clone())
                .bind(opp.sector.clone())
                .bind(opp.region.clone())
                .bind(opp.owner.clone())
                .bind(opp.contact_role.as_ref().map(|r| r.as_str().to_owned()))
                .bind(OptionalF64(opp.amount))
                .bind(opp.currency.clone())
                .bind(opp.stage.clone())
                .bind(opp.status.as_str())
                .bind(opp.created_at.map(to_epoch_ms))
                .bind(opp.closed_at.map(to_epoch_ms))
                .bind(opp.interaction_count)
                .bind(OptionalF64(opp.response_hours))
                .bind(opp.last_activity_at.map(to_epoch_ms))
                .bind(opp.interaction_count)
                .bind(OptionalF64(opp.response_hours))
                .bind(opp.last_activity_at.map(to_epoch_ms))
                .bind(attributes)
                .bind(hash.to_string())
                .bind(now);
        }
        if returning.is_empty() {
            query.execute(&mut **tx).await?;
        } else {
            for row in query.fetch_all(&mut **tx).await? {
                let written = WrittenRow::from_row(&row)?;
                if !written.inserted {
                    conflicted.insert(written.external_id);
                }
            }
        }
    }
    if !conflicted.is_empty() {
        for (opp, outcome) in opps.iter().zip(outcomes.iter_mut()) {
            if *outcome == UpsertOutcome::Inserted && conflicted.contains(opp.external_id.as_str()) {
                *outcome = UpsertOutcome::Updated;
            }
        }
    }
    record_changes(tx, opps, provenance, &outcomes, &existing, &before, written_at).await?;
    // Opportunities whose measures come from activities keep them, but a changed reported value
    // may be the fallback for a measure the activities do not give (see activities.rs). Only rows
    // that existed can have activities, and the lookup above said which ones do.
    for (opp, outcome) in opps.iter().zip(&outcomes) {
        if *outcome != UpsertOutcome::Updated {
            continue;
        }
        if let Some(ExistingRow {
            id, derived: true, ..
        }) = existing.get(opp.external_id.as_str())
        {
            super::activities::refresh_derived(tx, *id).await?;
        }
    }
    Ok(outcomes)
}

/// Appends the history of a batch just upserted: for each write that was not unchanged, the
/// fields that differ from what the deal held `before` (every field for a new deal).
async fn record_changes(
    tx: &mut Transaction<'_, Any>,
    opps: &[Opportunity],
    provenance: &[Provenance],
    outcomes: &[UpsertOutcome],
    existing: &HashMap<String, ExistingRow>,
    before: &HashMap<String, Deal>,
    written_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let inserted: Vec<&str> = opps
        .iter()
        .zip(outcomes)
        .filter(|(opp, _)| !existing.contains_key(opp.external_id.as_str()))
        .filter(|(_, outcome)| **outcome != UpsertOutcome::Unchanged)
        .map(|(opp, _)| opp.external_id.as_str())
        .collect();
    let new_ids = ids_in(tx, &inserted).await?;
    // Written a statement's worth at a time: an import batch of 10,000 new deals holds some
    // 130,000 changes, which need not all sit in memory at once.
    let mut rows = Vec::with_capacity(super::history::ROWS_PER_STATEMENT + 32);
    for ((opp, outcome), provenance) in opps.iter().zip(outcomes).zip(provenance) {
        if *outcome == UpsertOutcome::Unchanged {
            continue;
        }
        let key = opp.external_id.as_str();
        let id = match existing.get(key) {
            Some(row) => row.id,
            None => new_ids.get(key).copied().ok_or(sqlx::Error::RowNotFound)?,
        };
        let changed_at = provenance.changed_at.unwrap_or(written_at);
        match before.get(key) {
            // A first write: every field it sets, in one row (see `history::FIRST_WRITE`). A
            // deal another transaction inserted meanwhile (PostgreSQL only, see the upsert) is
            // recorded the same way.
            None => rows.push(NewChange {
                opportunity_id: id,
                field: super::history::FIRST_WRITE.to_owned(),
                value: Some(serde_json::Value::Object(
                    history::tracked_values(&opp.deal).into_iter().collect(),
                )),
                previous: Previous::Unknown,
                changed_at,
                source: provenance.source,
            }),
            Some(old) => {
                for change in history::changed_fields(Some(old), &opp.deal) {
                    rows.push(NewChange {
                        opportunity_id: id,
                        field: change.field,
                        value: change.value,
                        previous: change.previous,
                        changed_at,
                        source: provenance.source,
                    });
                }
            }
        }
        if rows.len() >= super::history::ROWS_PER_STATEMENT {
            let rest = rows.split_off(super::history::ROWS_PER_STATEMENT);
            super::history::append_in(tx, &rows, written_at).await?;
            rows = rest;
        }
    }
    super::history::append_in(tx, &rows, written_at).await?;
    Ok(())
}

/// The internal ids of the opportunities among `external_ids` that exist (400 per statement).
pub async fn ids_in(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    ids_on(tx, external_ids).await
}

/// [`ids_in`] outside a transaction.
pub async fn ids_of(db: &Db, external_ids: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    ids_on(&mut conn, external_ids).await
}

async fn ids_on(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    if external_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String)> = select_by_keys(conn, None, external_ids, |_, list| {
        format!("SELECT id, external_id FROM opportunities WHERE external_id IN ({list})")
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, external_id)| (external_id, id))
        .collect())
}

/// The columns [`reported_deals`] reads: the fields as the client last sent them.
#[derive(FromRow)]
struct ReportedRow {
    external_id: String,
    name: Option<String>,
    account: Option<String>,
    sector: Option<String>,
    region: Option<String>,
    owner: Option<String>,
    contact_role: Option<String>,
    amount: Option<f64>,
    currency: String,
    stage: Option<String>,
    #[sqlx(try_from = "String")]
    status: Status,
    created_at: Option<i64>,
    closed_at: Option<i64>,
    reported_interaction_count: Option<i64>,
    reported_response_hours: Option<f64>,
    reported_last_activity_at: Option<i64>,
    attributes: String,
}

/// The deals among `external_ids` as their last write sent them (the reported interaction
/// measures, not the ones derived from activities): what a new write is compared with.
async fn reported_deals(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, Deal>, sqlx::Error> {
    if external_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ReportedRow> = select_by_keys(tx, None, external_ids, |_, list| {
        format!(
            "SELECT external_id, name, account, sector, region, owner, contact_role, amount, currency, \
             stage, status, created_at, closed_at, reported_interaction_count, reported_response_hours, \
             reported_last_activity_at, attributes FROM opportunities WHERE external_id IN ({list})"
        )
    })
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let attributes: BTreeMap<String, AttributeValue> =
            serde_json::from_str(&row.attributes).map_err(|e| bad_column("attributes", e.to_string()))?;
        let deal = Deal {
            name: row.name,
            account: row.account,
            sector: row.sector,
            region: row.region,
            owner: row.owner,
            contact_role: row.contact_role.and_then(|r| ContactRole::normalise(&r)),
            amount: row.amount,
            currency: row.currency,
            stage: row.stage,
            status: row.status,
            created_at: row.created_at.map(from_epoch_ms),
            closed_at: row.closed_at.map(from_epoch_ms),
            interaction_count: row.reported_interaction_count,
            response_hours: row.reported_response_hours,
            last_activity_at: row.reported_last_activity_at.map(from_epoch_ms),
            attributes,
            cycle_days: None,
        };
        out.insert(row.external_id, deal);
    }
    Ok(out)
}

/// What PostgreSQL's `RETURNING` says of a written row.
#[derive(FromRow)]
struct WrittenRow {
    external_id: String,
    /// False when the row existed (a concurrent insert won the race).
    inserted: bool,
}

/// What the upsert needs to know of a row that already exists.
struct ExistingRow {
    id: i64,
    content_hash: String,
    /// True when its measures are derived from activities.
    derived: bool,
}

/// The columns [`existing_rows`] reads.
#[derive(FromRow)]
struct ExistingColumns {
    id: i64,
    external_id: String,
    content_hash: String,
    derived_from_activities: i64,
}

async fn existing_rows(
    tx: &mut Transaction<'_, Any>,
    opps: &[Opportunity],
) -> Result<HashMap<String, ExistingRow>, sqlx::Error> {
    let ids: Vec<&str> = opps.iter().map(|o| o.external_id.as_str()).collect();
    let rows: Vec<ExistingColumns> = select_by_keys(tx, None, &ids, |_, list| {
        format!(
            "SELECT id, external_id, content_hash, derived_from_activities FROM opportunities \
             WHERE external_id IN ({list})"
        )
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let existing = ExistingRow {
                id: row.id,
                content_hash: row.content_hash,
                derived: row.derived_from_activities == 1,
            };
            (row.external_id, existing)
        })
        .collect())
}

/// Reads one opportunity by external id.
pub async fn get(db: &Db, external_id: &str) -> Result<Option<StoredOpportunity>, sqlx::Error> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM opportunities WHERE external_id = $1");
    let row: Option<OpportunityRow> = sqlx::query_as(&sql)
        .bind(external_id.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    row.map(StoredOpportunity::try_from).transpose()
}

/// Reads several opportunities by external id, 400 per statement (one
/// round trip for a whole at-risk list instead of one per deal); ids not found are left out.
pub async fn get_many(
    db: &Db,
    external_ids: &[&str],
) -> Result<HashMap<String, StoredOpportunity>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    read_many(&mut conn, external_ids).await
}

/// [`get_many`] inside a caller's transaction (a write reads back what it wrote before its commit).
pub async fn get_many_in(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, StoredOpportunity>, sqlx::Error> {
    read_many(tx, external_ids).await
}

async fn read_many(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> Result<HashMap<String, StoredOpportunity>, sqlx::Error> {
    let rows: Vec<OpportunityRow> = select_by_keys(conn, None, external_ids, |_, list| {
        format!("SELECT {SELECT_COLUMNS} FROM opportunities WHERE external_id IN ({list})")
    })
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let stored = StoredOpportunity::try_from(row)?;
        out.insert(stored.opportunity.external_id.as_str().to_owned(), stored);
    }
    Ok(out)
}

/// The internal id of an opportunity, if it exists.
pub async fn id_of(tx: &mut Transaction<'_, Any>, external_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM opportunities WHERE external_id = $1")
        .bind(external_id.to_owned())
        .fetch_optional(&mut **tx)
        .await
}

/// Which of `external_ids` name a stored opportunity (400 per statement; a read, no lock taken).
pub async fn existing_ids(db: &Db, external_ids: &[&str]) -> Result<HashSet<String>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let rows: Vec<(String,)> = select_by_keys(&mut conn, None, external_ids, |_, list| {
        format!("SELECT external_id FROM opportunities WHERE external_id IN ({list})")
    })
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Deletes one opportunity (and its activities). True when it existed.
pub async fn delete(db: &Db, external_id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let existed = delete_in(&mut tx, external_id).await?;
    tx.commit().await?;
    Ok(existed)
}

/// [`delete`] inside a caller's transaction (webhook events record their id alongside).
pub async fn delete_in(tx: &mut Transaction<'_, Any>, external_id: &str) -> Result<bool, sqlx::Error> {
    // Explicit delete of children: PostgreSQL cascades, SQLite only with foreign_keys on.
    for child in ["activities", "opportunity_history"] {
        let sql = format!(
            "DELETE FROM {child} WHERE opportunity_id IN (SELECT id FROM opportunities WHERE external_id = $1)"
        );
        sqlx::query(&sql)
            .bind(external_id.to_owned())
            .execute(&mut **tx)
            .await?;
    }
    let done = sqlx::query("DELETE FROM opportunities WHERE external_id = $1")
        .bind(external_id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Reads one opportunity if it is in `scope`: one outside answers `None`, exactly like an
/// unknown id, so a caller cannot tell another owner's deal from one that does not exist.
pub async fn get_in_scope(
    db: &Db,
    external_id: &str,
    scope: &Scope,
) -> Result<Option<StoredOpportunity>, sqlx::Error> {
    let Some((condition, binds)) = scope.sql_condition(2) else {
        return get(db, external_id).await;
    };
    let sql = format!("SELECT {SELECT_COLUMNS} FROM opportunities WHERE external_id = $1 AND {condition}");
    let mut query = sqlx::query_as(&sql).bind(external_id.to_owned());
    for b in binds {
        query = query.bind(b);
    }
    let row: Option<OpportunityRow> = query.fetch_optional(&db.pool).await?;
    row.map(StoredOpportunity::try_from).transpose()
}

/// Reads one opportunity inside a caller's transaction.
pub async fn get_in(
    tx: &mut Transaction<'_, Any>,
    external_id: &str,
) -> Result<Option<StoredOpportunity>, sqlx::Error> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM opportunities WHERE external_id = $1");
    let row: Option<OpportunityRow> = sqlx::query_as(&sql)
        .bind(external_id.to_owned())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(StoredOpportunity::try_from).transpose()
}

/// One page of opportunities in id order, after the row `after_id` (exclusive).
/// Returns the page and whether more rows follow.
pub async fn list(
    db: &Db,
    filter: &ListFilter,
    after_id: i64,
    limit: usize,
) -> Result<(Vec<StoredOpportunity>, bool), sqlx::Error> {
    let mut clauses = vec!["id > $1".to_string()];
    let mut binds: Vec<String> = Vec::new();
    let mut add = |column: &str, value: Option<&str>| {
        if let Some(v) = value {
            binds.push(v.to_owned());
            clauses.push(format!("{column} = ${}", binds.len() + 1));
        }
    };
    add("status", filter.status.map(Status::as_str));
    add("owner", filter.owner.as_deref());
    add("region", filter.region.as_deref());
    add("sector", filter.sector.as_deref());
    if let Some((condition, values)) = filter.scope.sql_condition(binds.len() + 2) {
        clauses.push(condition);
        binds.extend(values);
    }
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM opportunities WHERE {} ORDER BY id LIMIT {}",
        clauses.join(" AND "),
        limit + 1
    );
    let mut query = sqlx::query_as(&sql).bind(after_id);
    for b in binds {
        query = query.bind(b);
    }
    let rows: Vec<OpportunityRow> = query.fetch_all(&db.pool).await?;
    let more = rows.len() > limit;
    let page = rows
        .into_iter()
        .take(limit)
        .map(StoredOpportunity::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((page, more))
}

/// One page of open deals with the latest stored score (0–100) of each, by internal id.
#[derive(Debug)]
pub struct OpenDealPage {
    /// The deals, in id order.
    pub deals: Vec<StoredOpportunity>,
    /// Latest stored score per deal id (deals never scored are absent).
    pub previous: HashMap<i64, u8>,
}

/// Walks every open deal in id order, [`OPEN_PAGE`] at a time, with their latest scores: what
/// the priority list and the rescoring job both score.
#[derive(Debug)]
pub struct OpenDealPages<'a> {
    db: &'a Db,
    after: i64,
    finished: bool,
}

/// Deals per page of [`OpenDealPages`].
pub const OPEN_PAGE: usize = 5000;

impl<'a> OpenDealPages<'a> {
    /// A walk from the first open deal.
    pub fn new(db: &'a Db) -> Self {
        OpenDealPages {
            db,
            after: 0,
            finished: false,
        }
    }

    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<OpenDealPage>, sqlx::Error> {
        if self.finished {
            return Ok(None);
        }
        let filter = ListFilter {
            status: Some(Status::Open),
            ..ListFilter::default()
        };
        let (deals, more) = list(self.db, &filter, self.after, OPEN_PAGE).await?;
        self.finished = !more;
        let Some(last) = deals.last() else {
            self.finished = true;
            return Ok(None);
        };
        self.after = last.id;
        let ids: Vec<i64> = deals.iter().map(|o| o.id).collect();
        let previous = super::scores::latest_for(self.db, &ids)
            .await?
            .into_iter()
            .map(|(id, score)| (id, score.clamp(0, 100) as u8))
            .collect();
        Ok(Some(OpenDealPage { deals, previous }))
    }
}

/// Walks every open deal in id order, [`OPEN_PAGE`] at a time, reading only what features read
/// (the columns of [`ClosedDealFields::Features`], the attributes only when `attributes`): for
/// work that scores the open deals and needs neither their other fields nor their latest
/// scores (a model's grade cut points). Each page is one statement returning one JSON value,
/// like the closed deals' lean pages: through the `Any` driver a row per deal costs a copy
/// and a conversion of every value.
#[derive(Debug)]
pub struct OpenFeaturePages<'a> {
    db: &'a Db,
    sql: String,
    after: i64,
    finished: bool,
}

/// An element of a lean page ([`OpenFeaturePages`], [`ClosedDealPages`], [`ClosedDealsByRowId`]):
/// the deal's row id, then its [`FeatureRow`].
#[derive(Deserialize)]
struct KeyedFeatureRow(i64, FeatureRow);

impl KeyedFeatureRow {
    /// The row id and the deal.
    fn into_keyed_deal(self) -> Result<(i64, Opportunity), sqlx::Error> {
        Ok((self.0, self.1.into_deal()?))
    }
}

impl<'a> OpenFeaturePages<'a> {
    /// A walk from the first open deal.
    pub fn new(db: &'a Db, attributes: bool) -> Self {
        let columns = lean_columns(attributes);
        let page = format!(
            "SELECT {columns} FROM opportunities WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2"
        );
        OpenFeaturePages {
            db,
            sql: lean_page_json(db.backend, &page, "id"),
            after: 0,
            finished: false,
        }
    }

    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Opportunity>>, sqlx::Error> {
        if self.finished {
            return Ok(None);
        }
        let json: Option<String> = sqlx::query_scalar(&self.sql)
            .bind(self.after)
            .bind(OPEN_PAGE as i64)
            .fetch_one(&self.db.pool)
            .await?;
        let mut rows: Vec<KeyedFeatureRow> = super::sql::json_rows("page", json.as_deref())?;
        rows.sort_by_key(|row| row.0);
        self.finished = rows.len() < OPEN_PAGE;
        let Some(last) = rows.last() else {
            self.finished = true;
            return Ok(None);
        };
        self.after = last.0;
        let deals = rows
            .into_iter()
            .map(|row| row.1.into_deal())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(deals))
    }
}

/// Every won or lost deal, optionally restricted to a `closed_at` window, in
/// (`closed_at`, `external_id`) order.
pub async fn closed_deals(
    db: &Db,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Opportunity>, sqlx::Error> {
    let mut out = Vec::new();
    each_closed_deal(db, since, until, ClosedDealFields::Whole, |opp| out.push(opp)).await?;
    Ok(out)
}

/// Closed deals [`each_closed_deal`] reads per statement: a page holds its connection only while
/// the statement runs, and a few thousand deals keep the page's rows small next to the
/// compact columns they go into.
const CLOSED_PAGE: i64 = 4_000;

/// What [`each_closed_deal`] reads of each deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedDealFields {
    /// Every field: whole deals, as [`closed_deals`] gives them.
    Whole,
    /// Only what features read: the id, outcome, dates, sector, region, owner, contact role,
    /// amount, interaction count and response hours, and the custom attributes when
    /// `attributes` is true. Name, account, stage, currency and last activity are left empty:
    /// training reads each deal into compact columns and never looks at them.
    Features {
        /// Read the custom attributes (a spec with `attr.*` features needs them).
        attributes: bool,
    },
}

/// [`closed_deals`] one deal at a time, in the same order, for a reader that keeps less than
/// every whole deal (training reads them into compact columns); returns how many were read.
///
/// The deals are read in pages of [`CLOSED_PAGE`], each one statement on a connection taken from
/// the pool and given back before `each` sees its rows. A single statement streamed over the
/// whole load would keep a connection checked out (and, on SQLite, a read open) for as long as
/// the reader takes, and a reader that pauses would hold it while other work waits for the pool.
pub async fn each_closed_deal(
    db: &Db,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    fields: ClosedDealFields,
    mut each: impl FnMut(Opportunity) + Send,
) -> Result<usize, sqlx::Error> {
    let mut pages = ClosedDealPages::new(db, since, until, fields);
    let mut read = 0;
    while let Some(page) = pages.next_page().await? {
        read += page.len();
        page.into_iter().for_each(&mut each);
    }
    Ok(read)
}

/// Walks the closed deals of a window in (`closed_at`, `external_id`) order, a page of a few
/// thousand at a time, each page one statement on a pooled connection given back before the
/// page is returned: for a reader that does async work between pages (training snapshots read
/// each page's history).
#[derive(Debug)]
pub struct ClosedDealPages<'a> {
    db: &'a Db,
    query: ClosedQuery,
    fields: ClosedDealFields,
    until: i64,
    after_closed: i64,
    after_id: String,
    finished: bool,
}

impl<'a> ClosedDealPages<'a> {
    /// A walk from the first deal closed on or after `since` to the last closed on or before
    /// `until` (both optional).
    pub fn new(
        db: &'a Db,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        fields: ClosedDealFields,
    ) -> ClosedDealPages<'a> {
        let query = match fields {
            ClosedDealFields::Whole => ClosedQuery::whole(db),
            ClosedDealFields::Features { attributes } => ClosedQuery::features(db, attributes),
        };
        ClosedDealPages {
            db,
            query,
            fields,
            until: until.map(to_epoch_ms).unwrap_or(i64::MAX),
            after_closed: since.map(to_epoch_ms).unwrap_or(i64::MIN),
            // External ids are never empty, so "after ''" at `since` is the whole window.
            after_id: String::new(),
            finished: false,
        }
    }

    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Opportunity>>, sqlx::Error> {
        if self.finished {
            return Ok(None);
        }
        let page = match self.fields {
            ClosedDealFields::Whole => self.read::<OpportunityRow>().await?,
            ClosedDealFields::Features { .. } => self.read_json().await?,
        };
        self.finished = page.len() < CLOSED_PAGE as usize;
        let deals: Vec<Opportunity> = page.into_iter().map(|(_, deal)| deal).collect();
        Ok(Some(deals).filter(|p| !p.is_empty()))
    }

    async fn read<R: ClosedRow>(&mut self) -> Result<Vec<(i64, Opportunity)>, sqlx::Error> {
        let rows = sqlx::query_as::<_, R>(&self.query.0)
            .bind(self.after_closed)
            .bind(self.until)
            .bind(self.after_id.clone())
            .bind(CLOSED_PAGE)
            .fetch_all(&self.db.pool)
            .await?;
        if let Some(last) = rows.last() {
            // The window's condition makes closed_at present on every row read.
            self.after_closed = last.closed_at().unwrap_or(self.after_closed);
            self.after_id.clear();
            self.after_id.push_str(last.external_id());
        }
        rows.into_iter().map(ClosedRow::into_keyed_deal).collect()
    }

    /// A page read as one JSON array of [`KeyedFeatureRow`]s in one row (see
    /// [`ClosedQuery::features`]).
    async fn read_json(&mut self) -> Result<Vec<(i64, Opportunity)>, sqlx::Error> {
        let json: Option<String> = sqlx::query_scalar(&self.query.0)
            .bind(self.after_closed)
            .bind(self.until)
            .bind(self.after_id.clone())
            .bind(CLOSED_PAGE)
            .fetch_one(&self.db.pool)
            .await?;
        let mut rows: Vec<KeyedFeatureRow> = super::sql::json_rows("page", json.as_deref())?;
        if self.db.backend == super::Backend::Sqlite {
            // SQLite's aggregate is not asked to keep the page's order (see
            // `ClosedQuery::features`); its binary collation of the ids is Rust's byte order, so
            // this is the statement's order (a page that arrives in order is only checked).
            rows.sort_by(|KeyedFeatureRow(_, a), KeyedFeatureRow(_, b)| {
                (a.closed_at, &a.external_id).cmp(&(b.closed_at, &b.external_id))
            });
        }
        if let Some(KeyedFeatureRow(_, last)) = rows.last() {
            self.after_closed = last.closed_at().unwrap_or(self.after_closed);
            self.after_id.clear();
            self.after_id.push_str(last.external_id());
        }
        rows.into_iter().map(KeyedFeatureRow::into_keyed_deal).collect()
    }
}

/// Walks the closed deals of a window in row-id order (the order they were first stored), a page
/// of [`CLOSED_PAGE`] lean feature rows at a time, each with its row id; each page is one
/// statement on a pooled connection, given back before the page is returned.
///
/// For a reader that goes on to read each page's recorded history and activities (training
/// snapshots): those tables grow as the deals do, so a page of neighbouring row ids finds its
/// changes and activities on neighbouring pages of the file, where the closing order
/// ([`ClosedDealPages`]) scatters a page's lookups over the whole of it (docs/performance.md,
/// "Snapshot training at scale"). The reader puts the rows in closing order itself.
#[derive(Debug)]
pub struct ClosedDealsByRowId<'a> {
    db: &'a Db,
    sql: String,
    since: i64,
    until: i64,
    /// Only deals created by then (epoch ms), when set.
    created_by: Option<i64>,
    after_row: i64,
    finished: bool,
}

impl<'a> ClosedDealsByRowId<'a> {
    /// A walk over the deals closed within `since`..=`until` (both optional), reading the
    /// custom attributes only when `attributes` (their JSON is most of a row's bytes).
    pub fn new(
        db: &'a Db,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        attributes: bool,
    ) -> Self {
        let since = since.map(to_epoch_ms).unwrap_or(i64::MIN);
        ClosedDealsByRowId::walk(db, (since, until), attributes, None)
    }

    /// A walk over the deals open at `at` that closed by `until` (every one closed since without
    /// it): created by `at`, closed after it. The backtest reads them to rebuild them as they
    /// stood at `at`; deals created after `at` are left in the database, not read and dropped.
    pub fn open_at(db: &'a Db, at: DateTime<Utc>, until: Option<DateTime<Utc>>, attributes: bool) -> Self {
        let at = to_epoch_ms(at);
        // Closed after `at`: on or after the next millisecond, the unit times are stored in.
        ClosedDealsByRowId::walk(db, (at.saturating_add(1), until), attributes, Some(at))
    }

    /// The walk over deals closed from `since` (epoch ms) to `until`, created by `created_by`.
    fn walk(
        db: &'a Db,
        (since, until): (i64, Option<DateTime<Utc>>),
        attributes: bool,
        created_by: Option<i64>,
    ) -> Self {
        let columns = lean_columns(attributes);
        // On SQLite the unary `+` keeps the window's terms from choosing an index: the walk is
        // then a range of the table's own b-tree, in row-id order (see `ClosedQuery`).
        let (status, closed_at) = match db.backend {
            super::Backend::Sqlite => ("+status", "+closed_at"),
            super::Backend::Postgres => ("status", "closed_at"),
        };
        let created = if created_by.is_some() {
            " AND created_at <= $5"
        } else {
            ""
        };
        let page = format!(
            "SELECT {columns} FROM opportunities \
             WHERE {status} IN ('won', 'lost') AND {closed_at} >= $1 AND {closed_at} <= $2 \
             AND id > $3{created} ORDER BY id LIMIT $4"
        );
        ClosedDealsByRowId {
            db,
            sql: lean_page_json(db.backend, &page, "id"),
            since,
            until: until.map(to_epoch_ms).unwrap_or(i64::MAX),
            created_by,
            after_row: i64::MIN,
            finished: false,
        }
    }

    /// The next page of (row id, deal) by ascending row id, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<(i64, Opportunity)>>, sqlx::Error> {
        if self.finished {
            return Ok(None);
        }
        let mut query = sqlx::query_scalar(&self.sql)
            .bind(self.since)
            .bind(self.until)
            .bind(self.after_row)
            .bind(CLOSED_PAGE);
        if let Some(created_by) = self.created_by {
            query = query.bind(created_by);
        }
        let json: Option<String> = query.fetch_one(&self.db.pool).await?;
        let mut rows: Vec<KeyedFeatureRow> = super::sql::json_rows("page", json.as_deref())?;
        // SQLite's aggregate is not asked for an order (see `ClosedQuery::features`).
        rows.sort_by_key(|KeyedFeatureRow(id, _)| *id);
        self.finished = rows.len() < CLOSED_PAGE as usize;
        if let Some(KeyedFeatureRow(id, _)) = rows.last() {
            self.after_row = *id;
        }
        let page = (rows.into_iter())
            .map(KeyedFeatureRow::into_keyed_deal)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(page).filter(|p| !p.is_empty()))
    }
}

/// The statement of one page of closed deals, for a backend and a column list.
///
/// Keyset pagination on (`closed_at`, `external_id`): each page starts after the last deal of the
/// one before, so the plan must walk an index on `closed_at` in order and stop at the page's
/// limit. PostgreSQL's planner does (an index scan, then an incremental sort of equal
/// `closed_at`s). SQLite's, without statistics, prefers the `(status, id)` index for the
/// `status IN (...)` equality, then reads and sorts every closed deal for every page: a load
/// quadratic in the deals (11.6 s of a 250,000-deal job). The unary `+` on `status` is SQLite's
/// documented way to keep a term from choosing the index, so the `closed_at` range does.
/// (docs/performance.md, "Loading closed deals").
#[derive(Debug, Clone)]
struct ClosedQuery(String);

/// The columns [`FeatureRow`] reads, but the attributes.
const FEATURE_COLUMNS: &str = "external_id, sector, region, owner, contact_role, amount, status, \
    created_at, closed_at, interaction_count, response_hours, last_activity_at";

impl ClosedQuery {
    fn new(db: &Db, columns: &str) -> ClosedQuery {
        let status = match db.backend {
            super::Backend::Sqlite => "+status",
            super::Backend::Postgres => "status",
        };
        ClosedQuery(format!(
            "SELECT {columns} FROM opportunities WHERE {status} IN ('won', 'lost') \
             AND closed_at >= $1 AND closed_at <= $2 AND (closed_at > $1 OR external_id > $3) \
             ORDER BY closed_at, external_id LIMIT $4"
        ))
    }

    fn whole(db: &Db) -> ClosedQuery {
        ClosedQuery::new(db, SELECT_COLUMNS)
    }

    /// [`FeatureRow`]'s columns, the whole page aggregated into one JSON array of arrays, one
    /// per deal, in the page's order; an empty object stands for the attributes when they are
    /// not wanted (the JSON text is most of a row's bytes).
    ///
    /// One value per page instead of a row per deal: through sqlx's `Any` driver each row of
    /// the page costs, on SQLite, a copy of every value on the driver's worker thread, a hand-over
    /// through a channel to the async side and a conversion to `Any` values, which took as long
    /// as SQLite's own reading (docs/performance.md, "Training job"). The numbers keep every
    /// bit: the two REAL columns go as text, parsed by Rust's exact `f64` parser (serde_json's
    /// default one may miss by a unit in the last place). SQLite's JSON would write a REAL with
    /// 15 digits; `printf('%!.17g')` writes 17, which read back to the same `f64`. PostgreSQL's
    /// float8 text is its shortest exact form.
    ///
    /// SQLite's aggregate gets no `ORDER BY` of its own: it would sort the page's JSON values
    /// through a temporary b-tree (half the statement's time), while the page already comes in
    /// order from the subquery, and the reader sorts it again anyway (in Rust, where an ordered
    /// page costs one comparison a row). PostgreSQL's keeps it: its order of the ids is its
    /// collation's, which Rust cannot reproduce.
    fn features(db: &Db, attributes: bool) -> ClosedQuery {
        let page = ClosedQuery::new(db, &lean_columns(attributes)).0;
        ClosedQuery(lean_page_json(db.backend, &page, "closed_at, external_id"))
    }
}

/// The columns of a lean page: the row id, [`FEATURE_COLUMNS`] and the attributes, for which an
/// empty object stands when they are not wanted (their JSON is most of a row's bytes).
fn lean_columns(attributes: bool) -> String {
    let attributes = if attributes { "attributes" } else { "'{}'" };
    format!("id, {FEATURE_COLUMNS}, {attributes} AS attributes")
}

/// The statement answering `page` (one selecting [`lean_columns`]) as one JSON array of
/// [`KeyedFeatureRow`]s (see [`ClosedQuery::features`] for why one value a page). SQLite's
/// aggregate is given no order (it keeps the subquery's; the readers sort or check it);
/// PostgreSQL's is ordered by `order`, the page's own.
fn lean_page_json(backend: super::Backend, page: &str, order: &str) -> String {
    let row = feature_row_json(backend);
    match backend {
        super::Backend::Sqlite => format!("SELECT json_group_array(json_array(id, {row})) FROM ({page})"),
        super::Backend::Postgres => {
            format!(
                "SELECT json_agg(json_build_array(id, {row}) ORDER BY {order})::text FROM ({page}) AS page"
            )
        }
    }
}

/// The JSON array one [`FeatureRow`] is read from, of a statement's row selecting
/// [`FEATURE_COLUMNS`] and `attributes` (see [`ClosedQuery::features`] for why the REALs go as
/// text).
fn feature_row_json(backend: super::Backend) -> &'static str {
    match backend {
        super::Backend::Sqlite => {
            "json_array(external_id, sector, region, owner, contact_role, \
             CASE WHEN amount IS NULL THEN NULL ELSE printf('%!.17g', amount) END, status, \
             created_at, closed_at, interaction_count, \
             CASE WHEN response_hours IS NULL THEN NULL ELSE printf('%!.17g', response_hours) END, \
             last_activity_at, attributes)"
        }
        super::Backend::Postgres => {
            "json_build_array(external_id, sector, region, owner, contact_role, \
             amount::text, status, created_at, closed_at, interaction_count, response_hours::text, \
             last_activity_at, attributes)"
        }
    }
}

/// A closed-deal row: its key for the next page, and the deal it reads as.
trait ClosedRow: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin {
    fn closed_at(&self) -> Option<i64>;
    fn external_id(&self) -> &str;
    /// The deal and its row id.
    fn into_keyed_deal(self) -> Result<(i64, Opportunity), sqlx::Error>;
}

impl ClosedRow for OpportunityRow {
    fn closed_at(&self) -> Option<i64> {
        self.closed_at
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }

    fn into_keyed_deal(self) -> Result<(i64, Opportunity), sqlx::Error> {
        let stored = StoredOpportunity::try_from(self)?;
        Ok((stored.id, stored.opportunity))
    }
}

/// The columns features read of a closed deal ([`ClosedDealFields::Features`]), one element of
/// a page's JSON array (an array itself, in this field order).
#[derive(Deserialize)]
struct FeatureRow {
    external_id: String,
    sector: Option<String>,
    region: Option<String>,
    owner: Option<String>,
    contact_role: Option<String>,
    #[serde(deserialize_with = "exact_f64")]
    amount: Option<f64>,
    status: String,
    created_at: Option<i64>,
    closed_at: Option<i64>,
    interaction_count: Option<i64>,
    #[serde(deserialize_with = "exact_f64")]
    response_hours: Option<f64>,
    last_activity_at: Option<i64>,
    attributes: String,
}

/// A REAL of a page's JSON: a decimal text (SQLite's `%!.17g`, PostgreSQL's float8 text), or
/// null; a JSON number is taken too.
fn exact_f64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct ExactF64;
    impl serde::de::Visitor<'_> for ExactF64 {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number, a decimal text or null")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<f64>, E> {
            Ok(None)
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Option<f64>, E> {
            Ok(Some(v))
        }

        // A REAL column holds an f64: a whole number in its JSON is one, exactly.
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<f64>, E> {
            Ok(Some(v as f64))
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<f64>, E> {
            Ok(Some(v as f64))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<f64>, E> {
            v.parse().map(Some).map_err(E::custom)
        }
    }
    deserializer.deserialize_any(ExactF64)
}

impl FeatureRow {
    fn closed_at(&self) -> Option<i64> {
        self.closed_at
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }

    fn into_deal(self) -> Result<Opportunity, sqlx::Error> {
        let status = Status::parse(&self.status)
            .ok_or_else(|| bad_column("status", format!("bad status {:?}", self.status)))?;
        // An empty object needs no parser (the column list reads `'{}'` when attributes are
        // not wanted).
        let attributes: BTreeMap<String, AttributeValue> = if self.attributes == "{}" {
            BTreeMap::new()
        } else {
            serde_json::from_str(&self.attributes).map_err(|e| bad_column("attributes", e.to_string()))?
        };
        let external_id = ExternalId::parse(&self.external_id)
            .map_err(|_| bad_column("external_id", format!("bad external_id {:?}", self.external_id)))?;
        Ok(Opportunity {
            external_id,
            deal: Deal {
                name: None,
                account: None,
                sector: self.sector,
                region: self.region,
                owner: self.owner,
                contact_role: self.contact_role.and_then(|r| ContactRole::normalise(&r)),
                amount: self.amount,
                currency: String::new(),
                stage: None,
                status,
                created_at: self.created_at.map(from_epoch_ms),
                closed_at: self.closed_at.map(from_epoch_ms),
                interaction_count: self.interaction_count,
                response_hours: self.response_hours,
                last_activity_at: self.last_activity_at.map(from_epoch_ms),
                attributes,
                cycle_days: None,
            },
        })
    }
}

/// The external id of the first open deal stored (lowest row id), if any: a stable example of a
/// deal to score.
pub async fn first_open(db: &Db) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(
        "SELECT external_id FROM opportunities WHERE status = 'open' ORDER BY id LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await
}

/// The owner of the first open deal stored that has one (lowest row id), if any: a stable
/// example of an owner with a priority list.
pub async fn first_open_owner(db: &Db) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(
        "SELECT owner FROM opportunities WHERE status = 'open' AND owner IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await
}

/// Counts of stored opportunities per status.
pub async fn count_by_status(db: &Db) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) AS n FROM opportunities GROUP BY status")
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// An `opportunities` row as [`SELECT_COLUMNS`] reads it: times in epoch milliseconds, the
/// attributes as JSON text.
#[derive(FromRow)]
pub(super) struct OpportunityRow {
    id: i64,
    external_id: String,
    name: Option<String>,
    account: Option<String>,
    sector: Option<String>,
    region: Option<String>,
    owner: Option<String>,
    contact_role: Option<String>,
    amount: Option<f64>,
    currency: String,
    stage: Option<String>,
    #[sqlx(try_from = "String")]
    status: Status,
    created_at: Option<i64>,
    closed_at: Option<i64>,
    interaction_count: Option<i64>,
    response_hours: Option<f64>,
    last_activity_at: Option<i64>,
    derived_from_activities: i64,
    attributes: String,
    updated_at: i64,
}

impl TryFrom<OpportunityRow> for StoredOpportunity {
    type Error = sqlx::Error;

    fn try_from(row: OpportunityRow) -> Result<Self, sqlx::Error> {
        let attributes: BTreeMap<String, AttributeValue> =
            serde_json::from_str(&row.attributes).map_err(|e| bad_column("attributes", e.to_string()))?;
        let external_id = ExternalId::parse(&row.external_id)
            .map_err(|_| bad_column("external_id", format!("bad external_id {:?}", row.external_id)))?;
        let opportunity = Opportunity {
            external_id,
            deal: Deal {
                name: row.name,
                account: row.account,
                sector: row.sector,
                region: row.region,
                owner: row.owner,
                contact_role: row.contact_role.and_then(|r| ContactRole::normalise(&r)),
                amount: row.amount,
                currency: row.currency,
                stage: row.stage,
                status: row.status,
                created_at: row.created_at.map(from_epoch_ms),
                closed_at: row.closed_at.map(from_epoch_ms),
                interaction_count: row.interaction_count,
                response_hours: row.response_hours,
                last_activity_at: row.last_activity_at.map(from_epoch_ms),
                attributes,
                cycle_days: None,
            },
        };
        Ok(StoredOpportunity {
            id: row.id,
            opportunity,
            derived_from_activities: row.derived_from_activities != 0,
            updated_at: from_epoch_ms(row.updated_at),
        })
    }
}
