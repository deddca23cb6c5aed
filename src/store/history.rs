//! The `opportunity_history` table: every change of a deal's fields, appended in the transaction
//! of the write that made it (see `opportunities::upsert_batch_in`), plus imported field history.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Any, AnyConnection, FromRow, Transaction};

use super::opportunities::StoredOpportunity;
use super::sql::{list_placeholders_from, values_placeholders, Style};
use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms, Activity, ChangeSource, FieldChange, Previous, Touch};

/// The `field` of the row a deal's first write is recorded in: its `value` is a JSON object of
/// every field the write set (canonical values), read back as one change per field with an
/// unknown previous value. One row instead of one per field keeps a first import of many deals
/// from writing a dozen history rows per deal (docs/performance.md, "CSV import").
pub(super) const FIRST_WRITE: &str = "*";

/// Rows per multi-row insert (7 parameters each).
pub(super) const ROWS_PER_STATEMENT: usize = 500;
/// Deal ids per `IN (…)` list.
const IDS_PER_STATEMENT: usize = 400;

/// Where a write comes from and when its changes took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    /// The write path.
    pub source: ChangeSource,
    /// When the change took effect; `None`: when it is written.
    pub changed_at: Option<DateTime<Utc>>,
}

impl Provenance {
    /// A change that takes effect when it is written.
    pub fn written(source: ChangeSource) -> Provenance {
        Provenance {
            source,
            changed_at: None,
        }
    }

    /// A change that took effect at `at`.
    pub fn at(source: ChangeSource, at: DateTime<Utc>) -> Provenance {
        Provenance {
            source,
            changed_at: Some(at),
        }
    }
}

/// One history row to append.
#[derive(Debug, Clone)]
pub(super) struct NewChange {
    pub(super) opportunity_id: i64,
    pub(super) field: String,
    pub(super) value: Option<Value>,
    pub(super) previous: Previous,
    pub(super) changed_at: DateTime<Utc>,
    pub(super) source: ChangeSource,
}

/// Appends `changes` in the caller's transaction, in the order given, and returns how many rows
/// were added. An imported change already recorded (same deal, field and time) is skipped.
pub(super) async fn append_in(
    tx: &mut Transaction<'_, Any>,
    changes: &[NewChange],
    recorded_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let style = Style::of(tx);
    let recorded_at = to_epoch_ms(recorded_at);
    let mut added = 0;
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        // Only imported rows can collide (the partial unique index); a conflict target naming
        // that index's predicate is accepted by both SQLite and PostgreSQL.
        let imported = chunk.iter().any(|c| c.source == ChangeSource::HistoryImport);
        let on_conflict = if imported {
            " ON CONFLICT (opportunity_id, field, changed_at) WHERE source = 'history-import' DO NOTHING"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO opportunity_history (opportunity_id, field, value, previous, changed_at, source, \
             recorded_at) VALUES {}{on_conflict}",
            values_placeholders(style, chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for change in chunk {
            query = query
                .bind(change.opportunity_id)
                .bind(change.field.clone())
                .bind(change.value.as_ref().map(Value::to_string))
                .bind(match &change.previous {
                    Previous::Unknown => None,
                    Previous::Was(v) => Some(v.as_ref().unwrap_or(&Value::Null).to_string()),
                })
                .bind(to_epoch_ms(change.changed_at))
                .bind(change.source.as_str())
                .bind(recorded_at);
        }
        added += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(added)
}

/// One field change of a stored deal to import (a row of a CRM's field history export).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedChange {
    /// The deal's CRM id (it must exist).
    pub external_id: String,
    /// A tracked field.
    pub field: String,
    /// The value in canonical form (`None`: cleared).
    pub value: Option<Value>,
    /// When the change took effect.
    pub changed_at: DateTime<Utc>,
}

/// What importing a batch of changes did, per change in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportedOutcome {
    /// Recorded.
    Added,
    /// Already recorded by an earlier import (same deal, field and time): left as it was.
    AlreadyRecorded,
    /// The deal does not exist.
    UnknownDeal,
}

/// Imports field changes in the caller's transaction (source `history-import`). The deals'
/// current fields are not touched: the history says what they were, the deal what they are.
pub async fn import_in(
    tx: &mut Transaction<'_, Any>,
    changes: &[ImportedChange],
) -> Result<Vec<ImportedOutcome>, sqlx::Error> {
    let mut ids: Vec<&str> = changes.iter().map(|c| c.external_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let known = super::opportunities::ids_in(tx, &ids).await?;
    let mut outcomes = Vec::with_capacity(changes.len());
    let now = Utc::now();
    // One statement per row to learn each row's fate (added or already there); imports of field
    // history are rare and small next to deal imports.
    for change in changes {
        let Some(&opportunity_id) = known.get(change.external_id.as_str()) else {
            outcomes.push(ImportedOutcome::UnknownDeal);
            continue;
        };
        let row = NewChange {
            opportunity_id,
            field: change.field.clone(),
            value: change.value.clone(),
            previous: Previous::Unknown,
            changed_at: change.changed_at,
            source: ChangeSource::HistoryImport,
        };
        let added = append_in(tx, std::slice::from_ref(&row), now).await?;
        outcomes.push(if added > 0 {
            ImportedOutcome::Added
        } else {
            ImportedOutcome::AlreadyRecorded
        });
    }
    Ok(outcomes)
}

/// A history row as read back.
#[derive(FromRow)]
struct ChangeRow {
    opportunity_id: i64,
    field: String,
    value: Option<String>,
    previous: Option<String>,
    changed_at: i64,
    source: String,
}

impl ChangeRow {
    /// The changes this row records: one, or one per field of a first write.
    fn into_changes(self, out: &mut Vec<FieldChange>) -> Result<(), sqlx::Error> {
        let (_, change) = self.into_change()?;
        if change.field != FIRST_WRITE {
            out.push(change);
            return Ok(());
        }
        let Some(Value::Object(fields)) = change.value else {
            return Err(not_an_object());
        };
        out.extend(
            (fields.into_iter())
                .map(|(field, value)| first_write_change(field, value, change.changed_at, change.source)),
        );
        Ok(())
    }

    /// [`Self::into_changes`] keeping the changes of `fields` only, into `recorded`; a first
    /// write's other fields are skipped unparsed, and any change left out is noted there.
    fn into_changes_of(self, fields: &BTreeSet<String>, recorded: &mut Recorded) -> Result<(), sqlx::Error> {
        let changed_at = from_epoch_ms(self.changed_at);
        if self.field != FIRST_WRITE {
            if fields.contains(&self.field) {
                return self.into_changes(&mut recorded.history);
            }
            recorded.left_out(changed_at);
            return Ok(());
        }
        let source = ChangeSource::parse(&self.source)
            .ok_or_else(|| super::sql::bad_column("source", format!("bad source {:?}", self.source)))?;
        let Some(text) = self.value.as_deref() else {
            return Err(not_an_object());
        };
        let (kept, others) = first_write_fields(text, fields).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                not_an_object()
            } else {
                super::sql::bad_column("value", e.to_string())
            }
        })?;
        if others {
            recorded.left_out(changed_at);
        }
        (recorded.history).extend(
            (kept.into_iter()).map(|(field, value)| first_write_change(field, value, changed_at, source)),
        );
        Ok(())
    }

    fn into_change(self) -> Result<(i64, FieldChange), sqlx::Error> {
        let json = |column: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| super::sql::bad_column(column, e.to_string()))
        };
        let value = match self.value.as_deref() {
            None => None,
            Some(text) => Some(json("value", text)?),
        };
        let previous = match self.previous.as_deref() {
            None => Previous::Unknown,
            Some(text) => Previous::Was(Some(json("previous", text)?).filter(|v| !v.is_null())),
        };
        let source = ChangeSource::parse(&self.source)
            .ok_or_else(|| super::sql::bad_column("source", format!("bad source {:?}", self.source)))?;
        Ok((
            self.opportunity_id,
            FieldChange {
                field: self.field,
                value,
                previous,
                changed_at: from_epoch_ms(self.changed_at),
                source,
            },
        ))
    }
}

/// The recorded changes of the deals with these internal ids that took effect at or before
/// `until` (every change without it), per deal, oldest first (ties in the order recorded).
pub async fn for_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
    until: Option<DateTime<Utc>>,
) -> Result<HashMap<i64, Vec<FieldChange>>, sqlx::Error> {
    let style = Style::of(conn);
    let mut out: HashMap<i64, Vec<FieldChange>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT opportunity_id, field, value, previous, changed_at, source FROM opportunity_history \
             WHERE changed_at <= {} AND opportunity_id IN ({}) ORDER BY opportunity_id, changed_at, id",
            match style {
                Style::Question => "?".to_owned(),
                Style::Dollar => "$1".to_owned(),
            },
            list_placeholders_from(style, 2, chunk.len())
        );
        let mut query = sqlx::query_as::<_, ChangeRow>(&sql)
            .persistent(style == Style::Question)
            .bind(until.map_or(i64::MAX, to_epoch_ms));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let id = row.opportunity_id;
            row.into_changes(out.entry(id).or_default())?;
        }
    }
    Ok(out)
}

/// The recorded changes of one deal up to `until` (all without it), oldest first; `None` when
/// the deal does not exist.
pub async fn for_deal(
    db: &Db,
    external_id: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Option<Vec<FieldChange>>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM opportunities WHERE external_id = $1")
        .bind(external_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    let mut all = for_ids(&mut conn, &[id], until).await?;
    Ok(Some(all.remove(&id).unwrap_or_default()))
}

/// Everything the "as of" feature builder needs about one deal: the deal as stored now, its
/// recorded changes and its activities.
#[derive(Debug, Clone)]
pub struct DealTimeline {
    /// The deal as stored now.
    pub stored: StoredOpportunity,
    /// Its recorded changes, oldest first.
    pub history: Vec<FieldChange>,
    /// Its activities, oldest first.
    pub activities: Vec<Activity>,
}

/// Loads the whole timelines of several deals — the deals, all their changes, all their
/// activities — in three statements per 400 deals, whatever their number. The "as of" builder
/// needs the changes after the instant too (what a field held before its first recorded change).
/// Ids not found are left out.
pub async fn timelines(db: &Db, external_ids: &[&str]) -> Result<HashMap<String, DealTimeline>, sqlx::Error> {
    let stored = super::opportunities::get_many(db, external_ids).await?;
    let ids: Vec<i64> = stored.values().map(|s| s.id).collect();
    let mut conn = db.pool.acquire().await?;
    let mut history = for_ids(&mut conn, &ids, None).await?;
    let mut activities = super::activities::for_ids(&mut conn, &ids, None).await?;
    Ok(stored
        .into_iter()
        .map(|(external_id, stored)| {
            let timeline = DealTimeline {
                history: history.remove(&stored.id).unwrap_or_default(),
                activities: activities.remove(&stored.id).unwrap_or_default(),
                stored,
            };
            (external_id, timeline)
        })
        .collect())
}

/// One deal's recorded changes and activities, all of them, oldest first: what the "as of"
/// builder reads besides the deal itself.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Its recorded changes, oldest first.
    pub history: Vec<FieldChange>,
    /// Its activities' directions and times, oldest first.
    pub activities: Vec<Touch>,
    /// When reading only some fields' changes ([`recorded`] with a set of fields): the earliest
    /// time of the changes left out (`None`: none was).
    pub unread_since: Option<DateTime<Utc>>,
}

impl Recorded {
    /// Notes a change at `at` left out.
    fn left_out(&mut self, at: DateTime<Utc>) {
        self.unread_since = Some(self.unread_since.map_or(at, |earliest| earliest.min(at)));
    }
}

/// The recorded changes and activities of several deals, by row id, without reading the deals
/// themselves: for a caller that already holds them and their ids (the snapshot expansion reads
/// each closed deal once, in its page, where [`timelines`] would read it again). Two statements
/// per 400 deals, each answering one JSON value ([`super::sql::json_rows_by_keys`]); by row id,
/// neither walks the external-id index. Deals without changes or activities are left out. Of the
/// activities, only their directions and times are read ([`Touch`]): all the as-of rebuild this
/// serves reads of them.
///
/// With `fields`, only the changes of those fields are kept (a reader of the snapshots that reads
/// only them sees the same), and the other fields' values are never parsed: a first write holds
/// every field, most of which a feature set does not read. The earliest change left out is kept
/// in [`Recorded::unread_since`].
pub async fn recorded(
    db: &Db,
    ids: &[i64],
    fields: Option<&BTreeSet<String>>,
) -> Result<HashMap<i64, Recorded>, sqlx::Error> {
    // Changes and activities through two connections at once when the pool has one to spare: on
    // SQLite each has its own thread, so one statement runs while the other's answer is parsed.
    let mut conn = db.pool.acquire().await?;
    let (changes, activities) = match db.pool.try_acquire() {
        Some(mut second) => {
            tokio::join!(
                changes_by_id(&mut conn, ids, fields),
                super::activities::by_id(&mut second, ids)
            )
        }
        None => (
            changes_by_id(&mut conn, ids, fields).await,
            super::activities::by_id(&mut conn, ids).await,
        ),
    };
    let mut out = changes?;
    for (id, activities) in activities? {
        out.entry(id).or_default().activities = activities;
    }
    Ok(out)
}

/// The recorded changes of the deals with these row ids, by id (deals without any are absent),
/// oldest first; with `fields`, those of these fields only (see [`recorded`]).
async fn changes_by_id(
    conn: &mut sqlx::AnyConnection,
    ids: &[i64],
    fields: Option<&BTreeSet<String>>,
) -> Result<HashMap<i64, Recorded>, sqlx::Error> {
    let style = Style::of(conn);
    let mut rows: Vec<JsonChangeRow> = super::sql::json_rows_by_keys(conn, ids, |list| {
        let columns = "opportunity_id, id, field, value, previous, changed_at, source";
        let from = format!("FROM opportunity_history WHERE opportunity_id IN ({list})");
        match style {
            Style::Question => format!("SELECT json_group_array(json_array({columns})) {from}"),
            Style::Dollar => format!("SELECT json_agg(json_build_array({columns}))::text {from}"),
        }
    })
    .await?;
    // By deal, oldest first, and changes of one instant in the order they were recorded.
    rows.sort_by_key(|r| (r.0, r.5, r.1));
    let mut out: HashMap<i64, Recorded> = HashMap::new();
    for JsonChangeRow(opportunity_id, _, field, value, previous, changed_at, source) in rows {
        let row = ChangeRow {
            opportunity_id,
            field,
            value,
            previous,
            changed_at,
            source,
        };
        let recorded = out.entry(opportunity_id).or_default();
        match fields {
            None => row.into_changes(&mut recorded.history)?,
            Some(fields) => row.into_changes_of(fields, recorded)?,
        }
    }
    Ok(out)
}

/// One field of a deal's first write as a change: its previous value unknown, a null value an
/// empty field.
fn first_write_change(
    field: String,
    value: Value,
    changed_at: DateTime<Utc>,
    source: ChangeSource,
) -> FieldChange {
    FieldChange {
        field,
        value: Some(value).filter(|v| !v.is_null()),
        previous: Previous::Unknown,
        changed_at,
        source,
    }
}

/// The error of a first write whose value is not a JSON object of fields.
fn not_an_object() -> sqlx::Error {
    super::sql::bad_column("value", "a first write that is not an object")
}

/// The fields of a first write (the JSON text of its object) that `fields` holds, with their
/// values, in the order [`ChangeRow::into_changes`] gives them (by name, a repeated name's last
/// value), and whether the object held other fields, whose values are skipped unparsed.
fn first_write_fields(
    text: &str,
    fields: &BTreeSet<String>,
) -> Result<(Vec<(String, Value)>, bool), serde_json::Error> {
    use serde::Deserializer as _;
    let mut reader = serde_json::Deserializer::from_str(text);
    let (mut kept, others) = reader.deserialize_map(FieldsOf(fields))?;
    reader.end()?;
    // A stable sort keeps a repeated name's values in order: the last one stands, as in a map.
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            std::mem::swap(later, earlier);
        }
        same
    });
    Ok((kept, others))
}

/// A serde visitor of a first write's object keeping the fields of a set ([`first_write_fields`]).
struct FieldsOf<'a>(&'a BTreeSet<String>);

impl<'de> serde::de::Visitor<'de> for FieldsOf<'_> {
    type Value = (Vec<(String, Value)>, bool);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of fields")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (mut kept, mut others) = (Vec::new(), false);
        while let Some(name) = map.next_key_seed(FieldIn(self.0))? {
            match name {
                Some(name) => kept.push((name, map.next_value::<Value>()?)),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    others = true;
                }
            }
        }
        Ok((kept, others))
    }
}

/// A field name read as itself when a set holds it, else as `None` (without copying it).
struct FieldIn<'a>(&'a BTreeSet<String>);

impl<'de> serde::de::DeserializeSeed<'de> for FieldIn<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldIn<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Option<String>, E> {
        Ok(self.0.contains(name).then(|| name.to_owned()))
    }
}

/// An `opportunity_history` row in a JSON page of [`recorded`]: the deal's row id, the change's
/// row id, then [`ChangeRow`]'s other columns.
#[derive(serde::Deserialize)]
struct JsonChangeRow(i64, i64, String, Option<String>, Option<String>, i64, String);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn first_write(value: &str) -> ChangeRow {
        ChangeRow {
            opportunity_id: 7,
            field: FIRST_WRITE.to_owned(),
            value: Some(value.to_owned()),
            previous: None,
            changed_at: 1_000,
            source: "import".to_owned(),
        }
    }

    #[test]
    fn a_first_write_read_for_some_fields_keeps_those_as_the_whole_read_does() {
        let text =
            r#"{"stage":"won","amount":12.5,"sector":null,"owner":"ann","attributes.tier":{"deep":[1,2]}}"#;
        let mut whole = Vec::new();
        first_write(text).into_changes(&mut whole).unwrap();
        let read = fields(&["amount", "sector", "stage", "not_there"]);
        let mut some = Recorded::default();
        first_write(text).into_changes_of(&read, &mut some).unwrap();
        let expected: Vec<FieldChange> = whole.into_iter().filter(|c| read.contains(&c.field)).collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(some.history, expected);
        // `owner` and the attribute were left out, at the write's time.
        assert_eq!(some.unread_since, Some(from_epoch_ms(1_000)));

        let mut all = Recorded::default();
        let every = fields(&["amount", "sector", "stage", "owner", "attributes.tier"]);
        first_write(text).into_changes_of(&every, &mut all).unwrap();
        assert_eq!(all.history.len(), 5);
        assert_eq!(all.unread_since, None);
    }

    #[test]
    fn a_repeated_field_of_a_first_write_keeps_its_last_value_as_a_map_does() {
        let (kept, others) =
            first_write_fields(r#"{"b":1,"a":2,"b":3,"c":4}"#, &fields(&["a", "b"])).unwrap();
        assert_eq!(kept, vec![("a".to_owned(), json!(2)), ("b".to_owned(), json!(3))]);
        assert!(others);
    }

    #[test]
    fn a_first_write_that_is_not_an_object_or_not_json_is_refused() {
        let read = fields(&["stage"]);
        for text in [
            r#"["stage"]"#,
            "12",
            r#"{"stage": }"#,
            r#"{"stage":"won"} trailing"#,
        ] {
            let mut some = Recorded::default();
            assert!(
                first_write(text).into_changes_of(&read, &mut some).is_err(),
                "{text}"
            );
        }
        // Read whole, the same texts fail too.
        for text in [r#"["stage"]"#, r#"{"stage": }"#] {
            assert!(first_write(text).into_changes(&mut Vec::new()).is_err(), "{text}");
        }
    }

    #[test]
    fn a_change_of_a_field_not_read_is_left_out_and_its_time_kept() {
        let change = |field: &str, at: i64| ChangeRow {
            opportunity_id: 7,
            field: field.to_owned(),
            value: Some("\"x\"".to_owned()),
            previous: Some("\"y\"".to_owned()),
            changed_at: at,
            source: "api".to_owned(),
        };
        let read = fields(&["stage"]);
        let mut some = Recorded::default();
        for (field, at) in [("owner", 5_000), ("stage", 4_000), ("owner", 3_000)] {
            change(field, at).into_changes_of(&read, &mut some).unwrap();
        }
        assert_eq!(some.history.len(), 1);
        assert_eq!(some.history[0].field, "stage");
        assert_eq!(some.unread_since, Some(from_epoch_ms(3_000)));
    }
}
