//! Set-based application of webhook events: runs of `opportunity.upserted` events become a few
//! multi-row statements instead of a dozen statements each.
//!
//! Measured (docs/performance.md, "Webhook deliveries"): applying events one by one cost about
//! fifteen statements per event, and on SQLite each statement is a hand-off to sqlx's connection thread and back, so
//! a batch of 1,000 events ran no faster per event than single deliveries. Here a run of upserts
//! is applied with one lookup of the ids already recorded, one advance of every opportunity's
//! event clock, one multi-row upsert and one insert of every event with its outcome.
//!
//! A run holds no event id and no opportunity twice, so the order of its events cannot change
//! any outcome: events on the same opportunity, repeated ids and every other event type are
//! applied one by one, in order, between runs (see [`apply_in_order`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::apply::{apply_one, duplicate, record_refused, settled, upsert_word, EventOutcome};
use super::event::{Action, EventStatus, Prepared, Refused};
use super::source::Source;
use crate::domain::{ChangeSource, Opportunity};
use crate::store::history::Provenance;
use crate::store::opportunities::upsert_batch_in;
use crate::store::webhooks::{self, EventRecord};

/// One event to apply, with the source it came from.
pub(super) type QueuedEvent<'a> = (&'a Source, &'a Result<Prepared, Box<Refused>>);

/// Applies `events` in order inside `tx` and returns one outcome per event, in the same order:
/// consecutive upserts on distinct opportunities with distinct ids together, everything else one
/// by one.
pub(super) async fn apply_in_order(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[QueuedEvent<'_>],
) -> Result<Vec<EventOutcome>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut run: Vec<(&Source, &Prepared)> = Vec::new();
    let mut run_ids: HashSet<(&str, &str)> = HashSet::new();
    let mut run_opportunities: HashSet<&str> = HashSet::new();
    for &(source, event) in events {
        match event {
            Ok(prepared) if matches!(prepared.action, Action::Upsert(_)) => {
                let id = (source.name.as_str(), prepared.id.as_str());
                if run_ids.contains(&id) || run_opportunities.contains(prepared.external_id.as_str()) {
                    outcomes.extend(apply_upserts(tx, &run).await?);
                    run.clear();
                    run_ids.clear();
                    run_opportunities.clear();
                }
                run_ids.insert(id);
                run_opportunities.insert(prepared.external_id.as_str());
                run.push((source, prepared));
            }
            other => {
                outcomes.extend(apply_upserts(tx, &run).await?);
                run.clear();
                run_ids.clear();
                run_opportunities.clear();
                outcomes.push(match other {
                    Ok(prepared) => apply_one(tx, source, prepared).await?,
                    Err(refused) => record_refused(tx, source, refused).await?,
                });
            }
        }
    }
    outcomes.extend(apply_upserts(tx, &run).await?);
    Ok(outcomes)
}

/// Applies a run of upserts (distinct ids, distinct opportunities) with set-based statements.
async fn apply_upserts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: &[(&Source, &Prepared)],
) -> Result<Vec<EventOutcome>, sqlx::Error> {
    if run.is_empty() {
        return Ok(Vec::new());
    }
    // 1. Ids already recorded are redeliveries (answered below, one by one).
    let mut ids_by_source: HashMap<&str, Vec<&str>> = HashMap::new();
    for (source, event) in run {
        ids_by_source
            .entry(source.name.as_str())
            .or_default()
            .push(event.id.as_str());
    }
    let mut recorded: HashMap<&str, HashSet<String>> = HashMap::new();
    for (source, ids) in &ids_by_source {
        recorded.insert(source, webhooks::recorded_among_in(tx, source, ids).await?);
    }
    let is_new = |source: &Source, event: &Prepared| {
        !recorded
            .get(source.name.as_str())
            .is_some_and(|ids| ids.contains(event.id.as_str()))
    };

    // 2. Move each new event's opportunity clock forward; a clock already past the event leaves
    //    it behind (recorded as ignored).
    //    In external-id order: on PostgreSQL this statement locks the clock rows, and concurrent
    //    groups taking them in one order cannot deadlock on them.
    let mut clocks: Vec<(&str, DateTime<Utc>)> = run
        .iter()
        .filter(|(source, event)| is_new(source, event))
        .map(|(_, event)| (event.external_id.as_str(), event.occurred_at))
        .collect();
    clocks.sort_unstable_by_key(|(id, _)| *id);
    let advanced = webhooks::advance_clocks_in(tx, &clocks).await?;
    let behind: Vec<&str> = clocks
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !advanced.contains(*id))
        .collect();
    let last_applied = webhooks::clocks_in(tx, &behind).await?;

    // 3. One upsert for every applied opportunity.
    //    Each change is recorded in the deal's history as of its event's time.
    let (to_upsert, provenance): (Vec<Opportunity>, Vec<Provenance>) = run
        .iter()
        .filter(|(source, event)| is_new(source, event) && advanced.contains(&event.external_id))
        .filter_map(|(_, event)| match &event.action {
            Action::Upsert(opportunity) => Some((
                opportunity.as_ref().clone(),
                Provenance::at(ChangeSource::Webhook, event.occurred_at),
            )),
            _ => None,
        })
        .unzip();
    let upserted = upsert_batch_in(tx, &to_upsert, &provenance).await?;
    let words: HashMap<&str, &'static str> = to_upsert
        .iter()
        .zip(upserted)
        .map(|(opportunity, outcome)| (opportunity.external_id.as_str(), upsert_word(Some(outcome))))
        .collect();

    // 4. Every new event recorded with its final status and answer, in one statement.
    let mut outcomes = Vec::with_capacity(run.len());
    let mut reasons: Vec<Option<String>> = Vec::with_capacity(run.len());
    let mut new_events: Vec<(usize, &Source, &Prepared)> = Vec::with_capacity(run.len());
    for &(source, event) in run {
        if !is_new(source, event) {
            reasons.push(None);
            outcomes.push(duplicate(tx, source, event).await?);
            continue;
        }
        let outcome = match words.get(event.external_id.as_str()) {
            Some(word) => {
                reasons.push(None);
                settled(event, EventStatus::Applied, Some(word), None)
            }
            None => {
                let last = last_applied
                    .get(event.external_id.as_str())
                    .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339());
                let reason = format!("older than the last applied event on this opportunity ({last})");
                let outcome = settled(event, EventStatus::Ignored, None, Some(&reason));
                reasons.push(Some(reason));
                outcome
            }
        };
        new_events.push((outcomes.len(), source, event));
        outcomes.push(outcome);
    }
    let texts: Vec<String> = new_events
        .iter()
        .map(|(i, ..)| outcomes[*i].body.to_string())
        .collect();
    let records: Vec<EventRecord<'_>> = new_events
        .iter()
        .zip(&texts)
        .map(|((i, source, event), text)| {
            event.record(source, outcomes[*i].status, reasons[*i].as_deref(), Some(text))
        })
        .collect();
    webhooks::record_claimed_many_in(tx, &records).await?;
    Ok(outcomes)
}
