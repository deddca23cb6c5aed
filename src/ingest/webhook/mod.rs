//! CRM webhook events: configured sources, event parsing (with the source's field mapping) and
//! idempotent, ordered application.
//!
//! Every event of a delivery is processed in order inside ONE transaction, and its id is recorded
//! in that transaction with its effect, so an acknowledged event is applied exactly once: a
//! redelivery finds the id and answers the original outcome, a crash before the commit leaves
//! nothing behind. The fresh scores of the applied opportunities are recorded in that same
//! transaction. Deliveries that arrive together on different opportunities share that
//! transaction and its commit (`queue`), and runs of upserts are applied with set-based
//! statements (`sets`); each answer is sent only after the commit.
//!
//! The files depend on each other in one direction only, each on those before it:
//! [`source`] (per-source config, secrets, mapping) → [`writeback`] (the score write-back
//! outbox, which needs only the source) → `score` (scoring after the events) → `event` (parsing
//! and checking one event) → `apply` (the transaction steps of one event) → `sets` (runs of
//! upserts) → `queue` (the delivery queue and its groups) → this module (the entry points `api`
//! and `app` call).

mod apply;
mod event;
mod queue;
mod score;
mod sets;
pub mod source;
pub mod writeback;

use std::sync::Arc;

use serde_json::Value;

use event::prepare;
use queue::Delivery as QueuedDelivery;

pub use apply::EventOutcome;
pub use event::{EventStatus, EventType};
pub use queue::{ApplyError, DeliveryQueue};
pub use score::{EventScoring, ScoreAnswer};
pub use source::{apply_mapping, Source, SourceConfigError, Sources};

use crate::i18n::format::NNBSP;
use crate::i18n::Localized;
use crate::tr;

/// Most events in one `{"events": [...]}` delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 1000;

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

/// Reads the body into events (no validation of the events themselves yet).
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        DeliveryError::Malformed(tr!(
            "the body is not valid JSON: {e}",
            "le corps n'est pas du JSON valide{NNBSP}: {e}"
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

/// Applies the events of one delivery, in order, in one transaction (shared with the deliveries
/// queued meanwhile, see `queue`), and commits before returning: every outcome handed
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

#[cfg(test)]
mod tests {
    use super::*;

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
