//! One event, parsed and checked against its source's mapping: what it will do ([`Action`]) or
//! why it is refused before touching the database ([`Refused`], every field error reported).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::source::{apply_mapping, Source};
use crate::domain::{Activity, FieldMessage, Opportunity, ParseOptions, Status, ValidationErrors};
use crate::i18n::format::NBSP;
use crate::i18n::Localized;
use crate::store::webhooks::EventRecord;
use crate::tr;

/// Longest accepted event id, in characters.
const MAX_EVENT_ID_LEN: usize = 200;

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

/// "is required (the opportunity's CRM id)".
fn required_crm_id() -> Localized {
    tr!(
        "is required (the opportunity's CRM id)",
        "est obligatoire (l'identifiant CRM de l'opportunité)"
    )
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
    pub(super) id: Option<String>,
    pub(super) type_name: Option<String>,
    pub(super) external_id: Option<String>,
    pub(super) occurred_at: Option<DateTime<Utc>>,
    pub(super) errors: ValidationErrors,
}

pub(super) fn prepare(value: &Value, source: &Source) -> Result<Prepared, Box<Refused>> {
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
        // Refused, and not recorded with the rejection: PostgreSQL cannot store a NUL.
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            errors.push_known("id", FieldMessage::ControlCharacters);
            None
        }
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_EVENT_ID_LEN => Some(s.clone()),
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
    let type_sent = object.get("type").and_then(Value::as_str);
    // A type with control characters is refused without being quoted back or recorded.
    let type_name = match type_sent {
        Some(t) if t.chars().any(char::is_control) => {
            errors.push_known("type", FieldMessage::ControlCharacters);
            None
        }
        other => other.map(str::to_owned),
    };
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
        None if type_sent.is_some() => None,
        None => {
            errors.push_known("type", FieldMessage::Required);
            None
        }
    };
    let occurred_at = match object.get("occurred_at").and_then(Value::as_str) {
        Some(t) if t.chars().any(char::is_control) => {
            errors.push_known("occurred_at", FieldMessage::ControlCharacters);
            None
        }
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
                    Action::Upsert(o) => o.external_id.to_string(),
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

pub(super) fn prefixed(errors: ValidationErrors) -> ValidationErrors {
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
            // Only a valid id is recorded with a rejection (a NUL would fail the record's write).
            let id = data
                .get("external_id")
                .and_then(Value::as_str)
                .filter(|id| crate::domain::ExternalId::parse(id).is_ok())
                .map(str::to_owned);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::webhook::source::tests::source;
    use serde_json::json;

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
        // Control characters in the envelope are refused and never kept for the record.
        let nul = json!({"id": "e\u{0}1", "type": "opportunity.deleted\u{0}", "occurred_at": "2025\n",
                         "data": {"external_id": "D-1"}});
        let refused = prepare(&nul, &s).unwrap_err();
        let fields: Vec<&str> = refused.errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "type", "occurred_at"]);
        assert_eq!((refused.id, refused.type_name), (None, None));
        assert!(!refused.errors.to_string().contains('\u{0}'));
        let closed = json!({"id": "e2", "type": "opportunity.closed", "occurred_at": "2025-01-01T00:00:00Z",
                            "data": {"external_id": "D-1", "status": "open"}});
        let refused = prepare(&closed, &s).unwrap_err();
        assert_eq!(refused.errors.0.len(), 2);
        assert_eq!(refused.external_id.as_deref(), Some("D-1"));
    }
}
