//! The transaction steps of one event: claim its id, check the opportunity's event clock, apply
//! its action, record its outcome. A redelivered id answers the original outcome (a duplicate);
//! an event refused while parsing is recorded with its reasons.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::event::{prefixed, Action, EventStatus, Prepared, Refused};
use super::score::ScoreAnswer;
use super::source::Source;
use crate::domain::{ChangeSource, Opportunity, ParseOptions, ValidationErrors};
use crate::store::activities::{add_in, AddActivitiesError};
use crate::store::history::Provenance;
use crate::store::opportunities::{delete_in, get_in, upsert_batch_in, UpsertOutcome};
use crate::store::webhooks::{self, EventRecord};
use crate::tr;

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
            let provenance = [Provenance::at(ChangeSource::Webhook, event.occurred_at)];
            let outcomes =
                upsert_batch_in(tx, std::slice::from_ref(opportunity.as_ref()), &provenance).await?;
            Ok(upsert_word(outcomes.first().copied()))
        }
        Action::Close(id, data) => match close(tx, id, data, source, event.occurred_at).await? {
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
    occurred_at: DateTime<Utc>,
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
            let provenance = [Provenance::at(ChangeSource::Webhook, occurred_at)];
            let outcomes = upsert_batch_in(tx, std::slice::from_ref(&opportunity), &provenance).await?;
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
