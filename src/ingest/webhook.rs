//! CRM webhook events: configured sources, event parsing (with the source's field mapping) and
//! idempotent, ordered application.
//!
//! Every event of a delivery is processed in order inside ONE transaction, and its id is recorded
//! in that transaction with its effect, so an acknowledged event is applied exactly once: a
//! redelivery finds the id and answers the original outcome, a crash before the commit leaves
//! nothing behind. The fresh scores of the applied opportunities are recorded in that same
//! transaction. Deliveries that arrive together on different opportunities share that
//! transaction and its commit (`webhook_queue`), and runs of upserts are applied with set-based
//! statements (`webhook_sets`); each answer is sent only after the commit.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::event_scoring::{EventScoring, ScoreAnswer};
use super::mapping::ImportMapping;
use super::webhook_queue::{ApplyError, Delivery as QueuedDelivery, DeliveryQueue};
use crate::config::Settings;
use crate::domain::{Activity, FieldMessage, Opportunity, ParseOptions, Status, ValidationErrors};
use crate::i18n::format::{NBSP, NNBSP};
use crate::i18n::Localized;
use crate::store::activities::{add_in, AddActivitiesError};
use crate::store::opportunities::{delete_in, get_in, upsert_batch_in, UpsertOutcome};
use crate::store::webhooks::{self, EventRecord};
use crate::tr;

/// Most events in one `{"events": [...]}` delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 1000;
/// Longest accepted event id, in characters.
const MAX_EVENT_ID_LEN: usize = 200;

/// One configured CRM connection, ready to use. Its `Debug` output hides the secrets.
#[derive(Clone)]
pub struct Source {
    /// Name used in the URL.
    pub name: String,
    /// Accepted HMAC secrets; the first signs write-backs.
    pub secrets: Vec<String>,
    /// Field mapping applied to event `data` (empty mapping when none is configured).
    pub mapping: ImportMapping,
    /// Where score write-backs go.
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

/// All configured sources plus the signature tolerance.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    // Shared, so a delivery's unit of work can own its source without copying the mapping.
    by_name: HashMap<String, Arc<Source>>,
    /// Allowed clock gap for signatures, in seconds.
    pub tolerance_secs: u64,
}

/// A webhook source that cannot be used; reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum SourceConfigError {
    /// Bad or duplicate name.
    #[error("webhook source `{0}`: the name must be 1–64 letters, digits, `-` or `_`, and unique")]
    BadName(String),
    /// No secret.
    #[error("webhook source `{0}`: at least one non-empty secret is required")]
    NoSecret(String),
    /// The mapping file cannot be read or is invalid.
    #[error("webhook source `{source_name}`: mapping file {path}: {message}")]
    Mapping {
        /// Source name.
        source_name: String,
        /// Mapping file path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Sources {
    /// Validates the configured sources and loads their mapping files.
    pub fn from_settings(settings: &Settings) -> Result<Sources, SourceConfigError> {
        let mut by_name = HashMap::new();
        for s in &settings.webhook_sources {
            let name_ok = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok || by_name.contains_key(&s.name) {
                return Err(SourceConfigError::BadName(s.name.clone()));
            }
            if s.secrets.is_empty() || s.secrets.iter().any(|k| k.is_empty()) {
                return Err(SourceConfigError::NoSecret(s.name.clone()));
            }
            let mapping = match &s.mapping {
                None => ImportMapping::default(),
                Some(path) => {
                    let error = |message: String| SourceConfigError::Mapping {
                        source_name: s.name.clone(),
                        path: path.clone(),
                        message,
                    };
                    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
                    ImportMapping::from_toml(&text).map_err(|e| error(e.to_string()))?
                }
            };
            by_name.insert(
                s.name.clone(),
                Arc::new(Source {
                    name: s.name.clone(),
                    secrets: s.secrets.clone(),
                    mapping,
                    callback_url: s.callback_url.clone(),
                }),
            );
        }
        Ok(Sources {
            by_name,
            tolerance_secs: settings.webhook_tolerance_secs,
        })
    }

    /// The source named `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&Arc<Source>> {
        self.by_name.get(name)
    }
}

/// The four event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Create or replace an opportunity.
    Upserted,
    /// Close an opportunity (won/lost), merging `data` onto the stored one.
    Closed,
    /// Delete an opportunity and its activities.
    Deleted,
    /// Attach an activity.
    ActivityLogged,
}

impl EventType {
    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<EventType> {
        match text {
            "opportunity.upserted" => Some(EventType::Upserted),
            "opportunity.closed" => Some(EventType::Closed),
            "opportunity.deleted" => Some(EventType::Deleted),
            "activity.logged" => Some(EventType::ActivityLogged),
            _ => None,
        }
    }
}

/// Outcome status of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Its effect was committed.
    Applied,
    /// Already received: nothing changed, the original outcome is answered.
    Duplicate,
    /// Older than the last applied event on the same opportunity: recorded, not applied.
    Ignored,
    /// Invalid: recorded with the reason, not applied; a fixed redelivery with the same id is
    /// processed normally.
    Rejected,
}

impl EventStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Applied => "applied",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Ignored => "ignored",
            EventStatus::Rejected => "rejected",
        }
    }
}

/// The result of one event, as answered to the sender (and, without the score, stored).
#[derive(Debug, Clone)]
pub struct EventOutcome {
    /// Applied, duplicate, ignored or rejected (a duplicate's `body` carries the original status).
    pub status: EventStatus,
    /// The JSON answered for this event.
    pub body: Value,
    /// The opportunity whose score the answer should carry (opportunity events that were not
    /// rejected and did not delete it).
    pub score_for: Option<String>,
    /// The fresh score of `score_for`, when the delivery asked for scores.
    pub score: Option<ScoreAnswer>,
    /// Field errors of a rejected event.
    pub errors: ValidationErrors,
}

/// Why a whole delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Not JSON, or not an event / `{"events": [...]}` object.
    #[error("{0}")]
    Malformed(Localized),
    /// More than [`MAX_EVENTS_PER_DELIVERY`] events.
    #[error("{}", too_many_events(*.0))]
    TooManyEvents(usize),
    /// The database failed; nothing was committed.
    #[error(transparent)]
    Write(#[from] ApplyError),
}

/// The refusal of a delivery of `n` events, over [`MAX_EVENTS_PER_DELIVERY`], in every language.
pub fn too_many_events(n: usize) -> Localized {
    tr!(
        "{n} events in one delivery; at most {MAX_EVENTS_PER_DELIVERY} are accepted",
        "{n} événements dans une livraison{NNBSP}; {MAX_EVENTS_PER_DELIVERY} au plus sont acceptés"
    )
}

/// A parsed delivery: one event, or a batch.
#[derive(Debug)]
pub struct Delivery {
    /// True for `{"events": [...]}`.
    pub batch: bool,
    /// The raw events, in order.
    pub events: Vec<Value>,
}

/// "is required (the opportunity's CRM id)".
fn required_crm_id() -> Localized {
    tr!(
        "is required (the opportunity's CRM id)",
        "est obligatoire (l'identifiant CRM de l'opportunité)"
    )
}

/// Reads the body into events (no validation of the events themselves yet).
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        DeliveryError::Malformed(tr!(
            "the body is not valid JSON: {e}",
            "le corps n'est pas du JSON valide{NBSP}: {e}"
        ))
    })?;
    let Value::Object(mut object) = value else {
        return Err(DeliveryError::Malformed(tr!(
            "the body must be an event object or {{\"events\": [...]}}",
            "le corps doit être un objet événement ou {{\"events\": [...]}}"
        )));
    };
    if object.contains_key("events") && !object.contains_key("type") {
        let Some(Value::Array(events)) = object.remove("events") else {
            return Err(DeliveryError::Malformed(tr!(
                "`events` must be a list of event objects",
                "`events` doit être une liste d'objets événements"
            )));
        };
        if events.len() > MAX_EVENTS_PER_DELIVERY {
            return Err(DeliveryError::TooManyEvents(events.len()));
        }
        return Ok(Delivery { batch: true, events });
    }
    Ok(Delivery {
        batch: false,
        events: vec![Value::Object(object)],
    })
}

/// What an event will do, once parsed.
#[derive(Debug)]
pub(super) enum Action {
    Upsert(Box<Opportunity>),
    Close(String, Map<String, Value>),
    Delete(String),
    Activity(String, Activity),
}

/// A parsed event.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) id: String,
    pub(super) type_name: String,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) external_id: String,
    pub(super) action: Action,
}

impl Prepared {
    /// The `webhook_events` row recording this event from `source`.
    pub(super) fn record<'a>(
        &'a self,
        source: &'a Source,
        status: EventStatus,
        reason: Option<&'a str>,
        outcome: Option<&'a str>,
    ) -> EventRecord<'a> {
        EventRecord {
            source: &source.name,
            sent_id: Some(&self.id),
            event_type: Some(&self.type_name),
            external_id: Some(&self.external_id),
            occurred_at: Some(self.occurred_at),
            status: status.as_str(),
            reason,
            outcome,
        }
    }
}

/// An event refused before touching the database.
#[derive(Debug)]
pub(super) struct Refused {
    id: Option<String>,
    type_name: Option<String>,
    pub(super) external_id: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    errors: ValidationErrors,
}

fn prepare(value: &Value, source: &Source) -> Result<Prepared, Box<Refused>> {
    let mut errors = ValidationErrors::default();
    let empty = Map::new();
    let object = match value {
        Value::Object(o) => o,
        _ => {
            errors.push_localized(
                "event",
                tr!("expected an event object", "un objet événement est attendu"),
            );
            &empty
        }
    };
    for key in object.keys() {
        if !["id", "type", "occurred_at", "data"].contains(&key.as_str()) {
            errors.push_known(key.clone(), FieldMessage::UnknownField);
        }
    }
    let id = match object.get("id") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_EVENT_ID_LEN => {
            if s.chars().any(char::is_control) {
                errors.push_known("id", FieldMessage::ControlCharacters);
            }
            Some(s.clone())
        }
        Some(Value::String(_)) => {
            errors.push_localized(
                "id",
                tr!(
                    "must be 1–{MAX_EVENT_ID_LEN} characters",
                    "doit compter de 1 à {MAX_EVENT_ID_LEN}{NBSP}caractères"
                ),
            );
            None
        }
        None | Some(Value::Null) => {
            errors.push_localized(
                "id",
                tr!(
                    "is required (unique per source)",
                    "est obligatoire (unique par source)"
                ),
            );
            None
        }
        Some(_) => {
            errors.push_known("id", FieldMessage::ExpectedString { got: None });
            None
        }
    };
    let type_name = object.get("type").and_then(Value::as_str).map(str::to_owned);
    let event_type = match &type_name {
        Some(t) => EventType::parse(t).or_else(|| {
            errors.push_localized(
                "type",
                tr!(
                    "unknown event type `{t}` (opportunity.upserted, opportunity.closed, \
                     opportunity.deleted, activity.logged)",
                    "type d'événement `{t}` inconnu (opportunity.upserted, opportunity.closed, \
                     opportunity.deleted, activity.logged)"
                ),
            );
            None
        }),
        None => {
            errors.push_known("type", FieldMessage::Required);
            None
        }
    };
    let occurred_at = match object.get("occurred_at").and_then(Value::as_str) {
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push_localized(
                    "occurred_at",
                    tr!(
                        "`{t}` is not an RFC 3339 timestamp",
                        "`{t}` n'est pas un horodatage RFC 3339"
                    ),
                );
                None
            }
        },
        None => {
            errors.push_localized(
                "occurred_at",
                tr!("is required (RFC 3339)", "est obligatoire (RFC 3339)"),
            );
            None
        }
    };
    let data = match object.get("data") {
        Some(Value::Object(d)) => Some(d.clone()),
        _ => {
            errors.push_localized(
                "data",
                tr!("is required (an object)", "est obligatoire (un objet)"),
            );
            None
        }
    };
    let mut external_id = None;
    let action = match (event_type, data) {
        (Some(kind), Some(data)) => match parse_action(kind, data, source) {
            Ok(action) => {
                external_id = Some(match &action {
                    Action::Upsert(o) => o.external_id.clone(),
                    Action::Close(id, _) | Action::Delete(id) | Action::Activity(id, _) => id.clone(),
                });
                Some(action)
            }
            Err((id, e)) => {
                external_id = id;
                errors.0.extend(e.0);
                None
            }
        },
        _ => None,
    };
    match (id, type_name.clone(), occurred_at, external_id.clone(), action) {
        (Some(id), Some(type_name), Some(occurred_at), Some(external_id), Some(action))
            if errors.is_empty() =>
        {
            Ok(Prepared {
                id,
                type_name,
                occurred_at,
                external_id,
                action,
            })
        }
        (id, _, _, _, _) => Err(Box::new(Refused {
            id,
            type_name,
            external_id,
            occurred_at,
            errors,
        })),
    }
}

type ActionError = (Option<String>, ValidationErrors);

fn prefixed(errors: ValidationErrors) -> ValidationErrors {
    ValidationErrors(
        errors
            .0
            .into_iter()
            .map(|mut e| {
                e.field = format!("data.{}", e.field);
                e
            })
            .collect(),
    )
}

fn parse_action(kind: EventType, data: Map<String, Value>, source: &Source) -> Result<Action, ActionError> {
    let date_format = source.mapping.date_format.as_deref();
    match kind {
        EventType::Upserted => {
            let data = apply_mapping(data, &source.mapping);
            let id = data.get("external_id").and_then(Value::as_str).map(str::to_owned);
            let options = ParseOptions {
                date_format,
                ..ParseOptions::default()
            };
            Opportunity::parse(None, &data, options)
                .map(|o| Action::Upsert(Box::new(o)))
                .map_err(|e| (id, prefixed(e)))
        }
        EventType::Closed | EventType::Deleted => {
            let data = apply_mapping(data, &source.mapping);
            let id = data.get("external_id").and_then(Value::as_str).map(str::to_owned);
            let Some(id) = id.filter(|i| crate::domain::ExternalId::parse(i).is_ok()) else {
                let mut errors = ValidationErrors::default();
                errors.push_localized("data.external_id", required_crm_id());
                return Err((None, errors));
            };
            if kind == EventType::Deleted {
                return Ok(Action::Delete(id));
            }
            let status = data.get("status").and_then(Value::as_str).and_then(Status::parse);
            let mut errors = ValidationErrors::default();
            if !matches!(status, Some(Status::Won | Status::Lost)) {
                errors.push_localized(
                    "data.status",
                    tr!(
                        "must be won or lost for opportunity.closed",
                        "doit être won ou lost pour opportunity.closed"
                    ),
                );
            }
            if data.get("closed_at").is_none_or(Value::is_null) {
                errors.push_localized(
                    "data.closed_at",
                    tr!(
                        "is required for opportunity.closed",
                        "est obligatoire pour opportunity.closed"
                    ),
                );
            }
            if errors.is_empty() {
                Ok(Action::Close(id, data))
            } else {
                Err((Some(id), errors))
            }
        }
        EventType::ActivityLogged => {
            let mut data = data;
            let opportunity = data.remove("opportunity_id");
            let mut errors = ValidationErrors::default();
            let id = match opportunity.as_ref().and_then(Value::as_str) {
                Some(id) if crate::domain::ExternalId::parse(id).is_ok() => Some(id.to_owned()),
                _ => {
                    errors.push_localized("data.opportunity_id", required_crm_id());
                    None
                }
            };
            match (Activity::parse(&data, "data.", date_format), id) {
                (Ok(activity), Some(id)) if errors.is_empty() => Ok(Action::Activity(id, activity)),
                (parsed, id) => {
                    if let Err(e) = parsed {
                        errors.0.extend(e.0);
                    }
                    Err((id, errors))
                }
            }
        }
    }
}

/// Renames mapped keys, drops ignored ones, maps status values and fills defaults, the way the
/// CSV import reads a row.
pub fn apply_mapping(data: Map<String, Value>, mapping: &ImportMapping) -> Map<String, Value> {
    if *mapping == ImportMapping::default() {
        return data;
    }
    let mut out = Map::with_capacity(data.len());
    let mut renamed = Vec::new();
    for (key, value) in data {
        if mapping.ignore.contains(&key) {
            continue;
        }
        match mapping.columns.iter().find(|(_, header)| **header == key) {
            // Mapped keys are inserted last so they win over a same-named raw key.
            Some((field, _)) => renamed.push((field.clone(), value)),
            None => {
                out.insert(key, value);
            }
        }
    }
    out.extend(renamed);
    if let Some(Value::String(raw)) = out.get("status") {
        let mapped = mapping.map_status(raw).to_owned();
        out.insert("status".into(), Value::String(mapped));
    }
    for (field, default) in &mapping.defaults {
        let missing = match out.get(field) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if missing {
            // Defaults are text in the mapping file; numeric fields need JSON numbers here.
            let numeric = ["amount", "interaction_count", "response_hours"].contains(&field.as_str());
            let value = numeric
                .then(|| default.trim().parse::<f64>().ok())
                .flatten()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(default.clone()), Value::Number);
            out.insert(field.clone(), value);
        }
    }
    out
}

#[derive(Serialize)]
struct OutcomeBody<'a> {
    id: Option<&'a str>,
    #[serde(rename = "type")]
    event_type: Option<&'a str>,
    status: EventStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [crate::domain::FieldError],
}

fn refused_outcome(refused: &Refused) -> EventOutcome {
    let reason = refused.errors.to_string();
    let body = serde_json::to_value(OutcomeBody {
        id: refused.id.as_deref(),
        event_type: refused.type_name.as_deref(),
        status: EventStatus::Rejected,
        external_id: refused.external_id.as_deref(),
        result: None,
        reason: Some(&reason),
        errors: &refused.errors.0,
    })
    .unwrap_or(Value::Null);
    EventOutcome {
        status: EventStatus::Rejected,
        body,
        score_for: None,
        score: None,
        errors: refused.errors.clone(),
    }
}

/// Applies the events of one delivery, in order, in one transaction (shared with the deliveries
/// queued meanwhile, see `webhook_queue`), and commits before returning: every outcome handed
/// back is durable.
pub async fn process(
    queue: &DeliveryQueue,
    source: &Arc<Source>,
    events: &[Value],
    scoring: Option<&EventScoring>,
) -> Result<Vec<EventOutcome>, DeliveryError> {
    let delivery = QueuedDelivery {
        source: Arc::clone(source),
        events: Arc::new(events.iter().map(|e| prepare(e, source)).collect()),
        scoring: scoring.cloned().map(Arc::new),
    };
    Ok(queue.apply(delivery).await?)
}

/// Records an event refused before touching the database, and answers its outcome.
pub(super) async fn record_refused(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source: &Source,
    refused: &Refused,
) -> Result<EventOutcome, sqlx::Error> {
    let outcome = refused_outcome(refused);
    let reason = refused.errors.to_string();
    let body = outcome.body.to_string();
    let record = EventRecord {
        source: &source.name,
        sent_id: refused.id.as_deref(),
        event_type: refused.type_name.as_deref(),
        external_id: refused.external_id.as_deref(),
        occurred_at: refused.occurred_at,
        status: EventStatus::Rejected.as_str(),
        reason: Some(&reason),
        outcome: Some(&body),
    };
    webhooks::record_in(tx, &record).await?;
    Ok(outcome)
}

/// Answers a redelivery of an event whose id is already recorded: the original outcome, marked
/// as a duplicate; the delivery itself is recorded and changes nothing.
pub(super) async fn duplicate(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source: &Source,
    event: &Prepared,
) -> Result<EventOutcome, sqlx::Error> {
    let original = webhooks::original_outcome_in(tx, &source.name, &event.id).await?;
    let mut body: Value = original
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_else(|| serde_json::json!({"id": event.id}));
    if let Value::Object(map) = &mut body {
        map.insert("duplicate".into(), Value::Bool(true));
    }
    let text = body.to_string();
    let record = event.record(
        source,
        EventStatus::Duplicate,
        Some("already received: nothing changed, original outcome answered"),
        Some(&text),
    );
    webhooks::record_in(tx, &record).await?;
    let score_for = match body.get("status").and_then(Value::as_str) {
        Some("applied" | "ignored") if event.type_name != "opportunity.deleted" => {
            Some(event.external_id.clone())
        }
        _ => None,
    };
    Ok(EventOutcome {
        status: EventStatus::Duplicate,
        body,
        score_for,
        score: None,
        errors: ValidationErrors::default(),
    })
}

/// Applies one event of any type on its own (the set-based path takes runs of upserts).
pub(super) async fn apply_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source: &Source,
    event: &Prepared,
) -> Result<EventOutcome, sqlx::Error> {
    let record = event.record(source, EventStatus::Applied, None, None);
    // The id is claimed first: it is this transaction's first write (on SQLite that takes the
    // write lock up front instead of failing on a lock upgrade), and a redelivery racing this one
    // on PostgreSQL waits here, then sees a duplicate.
    let Some(row_id) = webhooks::claim_in(tx, &record, &event.id).await? else {
        return duplicate(tx, source, event).await;
    };

    let ordered = !matches!(event.action, Action::Activity(..));
    if ordered {
        let last = webhooks::lock_clock_in(tx, &event.external_id).await?;
        if event.occurred_at < last {
            let reason = format!(
                "older than the last applied event on this opportunity ({})",
                last.to_rfc3339()
            );
            return finish(tx, row_id, event, EventStatus::Ignored, None, Some(&reason), true).await;
        }
    }
    let result: Result<&str, ValidationErrors> = match &event.action {
        Action::Upsert(opportunity) => {
            let outcomes = upsert_batch_in(tx, std::slice::from_ref(opportunity.as_ref())).await?;
            Ok(upsert_word(outcomes.first().copied()))
        }
        Action::Close(id, data) => match close(tx, id, data, source).await? {
            Ok(word) => Ok(word),
            Err(errors) => Err(errors),
        },
        Action::Delete(id) => Ok(if delete_in(tx, id).await? {
            "deleted"
        } else {
            "not_found"
        }),
        Action::Activity(id, activity) => match add_in(tx, id, std::slice::from_ref(activity)).await {
            Ok(added) if added.added > 0 => Ok("added"),
            Ok(_) => Ok("already_known"),
            Err(AddActivitiesError::UnknownOpportunity(_)) => {
                let mut errors = ValidationErrors::default();
                errors.push_localized(
                    "data.opportunity_id",
                    tr!(
                        "opportunity `{id}` does not exist",
                        "l'opportunité `{id}` n'existe pas"
                    ),
                );
                Err(errors)
            }
            Err(AddActivitiesError::Db(e)) => return Err(e),
        },
    };
    match result {
        Ok(word) => {
            if ordered {
                webhooks::set_clock_in(tx, &event.external_id, event.occurred_at).await?;
            }
            finish(tx, row_id, event, EventStatus::Applied, Some(word), None, true).await
        }
        Err(errors) => {
            let reason = errors.to_string();
            let mut outcome = finish(
                tx,
                row_id,
                event,
                EventStatus::Rejected,
                None,
                Some(&reason),
                false,
            )
            .await?;
            if let Value::Object(map) = &mut outcome.body {
                map.insert(
                    "errors".into(),
                    serde_json::to_value(&errors.0).unwrap_or(Value::Null),
                );
            }
            outcome.errors = errors;
            Ok(outcome)
        }
    }
}

pub(super) fn upsert_word(outcome: Option<UpsertOutcome>) -> &'static str {
    match outcome {
        Some(UpsertOutcome::Inserted) => "inserted",
        Some(UpsertOutcome::Updated) => "updated",
        Some(UpsertOutcome::Unchanged) | None => "unchanged",
    }
}

/// Merges `data` onto the stored opportunity (or takes it alone when there is none) and upserts
/// the result.
async fn close(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    data: &Map<String, Value>,
    source: &Source,
) -> Result<Result<&'static str, ValidationErrors>, sqlx::Error> {
    let mut merged = match get_in(tx, id).await? {
        Some(stored) => match serde_json::to_value(&stored.opportunity) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    for (k, v) in data {
        merged.insert(k.clone(), v.clone());
    }
    let options = ParseOptions {
        date_format: source.mapping.date_format.as_deref(),
        ..ParseOptions::default()
    };
    match Opportunity::parse(None, &merged, options) {
        Ok(opportunity) => {
            let outcomes = upsert_batch_in(tx, std::slice::from_ref(&opportunity)).await?;
            Ok(Ok(upsert_word(outcomes.first().copied())))
        }
        Err(errors) => Ok(Err(prefixed(errors))),
    }
}

async fn finish(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row_id: i64,
    event: &Prepared,
    status: EventStatus,
    result: Option<&str>,
    reason: Option<&str>,
    keep_id: bool,
) -> Result<EventOutcome, sqlx::Error> {
    let outcome = settled(event, status, result, reason);
    webhooks::finish_in(
        tx,
        row_id,
        status.as_str(),
        reason,
        &outcome.body.to_string(),
        keep_id,
    )
    .await?;
    Ok(outcome)
}

/// The outcome of a claimed event once its fate is known (applied, ignored or rejected).
pub(super) fn settled(
    event: &Prepared,
    status: EventStatus,
    result: Option<&str>,
    reason: Option<&str>,
) -> EventOutcome {
    let body = serde_json::to_value(OutcomeBody {
        id: Some(&event.id),
        event_type: Some(&event.type_name),
        status,
        external_id: Some(&event.external_id),
        result,
        reason,
        errors: &[],
    })
    .unwrap_or(Value::Null);
    let score_for = match (status, &event.action) {
        (EventStatus::Rejected, _) | (_, Action::Delete(_)) => None,
        _ => Some(event.external_id.clone()),
    };
    EventOutcome {
        status,
        body,
        score_for,
        score: None,
        errors: ValidationErrors::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(mapping: &str) -> Source {
        Source {
            name: "crm".into(),
            secrets: vec!["k".into()],
            mapping: ImportMapping::from_toml(mapping).unwrap(),
            callback_url: None,
        }
    }

    #[test]
    fn mapping_renames_maps_status_and_fills_defaults() {
        let s = source(
            "ignore = [\"Notes\"]\n[columns]\nexternal_id = \"DealId\"\nstatus = \"Outcome\"\n\
             [status_values]\n\"Closed Won\" = \"won\"\n[defaults]\ncurrency = \"USD\"\namount = \"10\"\n",
        );
        let data = json!({"DealId": "D-1", "Outcome": "Closed Won", "Notes": "x", "closed_at": "2025-01-02"});
        let Value::Object(data) = data else { unreachable!() };
        let out = apply_mapping(data, &s.mapping);
        assert_eq!(out["external_id"], "D-1");
        assert_eq!(out["status"], "won");
        assert_eq!(out["currency"], "USD");
        assert_eq!(out["amount"], 10.0);
        assert!(!out.contains_key("Notes"));
    }

    #[test]
    fn events_are_checked_field_by_field() {
        let s = source("");
        let ok = json!({"id": "e1", "type": "opportunity.deleted", "occurred_at": "2025-01-01T00:00:00Z",
                        "data": {"external_id": "D-1"}});
        assert!(prepare(&ok, &s).is_ok());
        let bad = json!({"id": "", "type": "opportunity.renamed", "data": 3});
        let refused = prepare(&bad, &s).unwrap_err();
        let fields: Vec<&str> = refused.errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "type", "occurred_at", "data"]);
        let closed = json!({"id": "e2", "type": "opportunity.closed", "occurred_at": "2025-01-01T00:00:00Z",
                            "data": {"external_id": "D-1", "status": "open"}});
        let refused = prepare(&closed, &s).unwrap_err();
        assert_eq!(refused.errors.0.len(), 2);
        assert_eq!(refused.external_id.as_deref(), Some("D-1"));
    }

    #[test]
    fn deliveries_are_single_events_or_bounded_batches() {
        assert!(!parse_delivery(br#"{"id":"e"}"#).unwrap().batch);
        assert_eq!(parse_delivery(br#"{"events":[{},{}]}"#).unwrap().events.len(), 2);
        assert!(matches!(parse_delivery(b"{"), Err(DeliveryError::Malformed(_))));
        assert!(matches!(
            parse_delivery(br#"{"events": 3}"#),
            Err(DeliveryError::Malformed(_))
        ));
        let many = format!("{{\"events\":[{}]}}", vec!["{}"; 1001].join(","));
        assert!(matches!(
            parse_delivery(many.as_bytes()),
            Err(DeliveryError::TooManyEvents(1001))
        ));
    }
}
