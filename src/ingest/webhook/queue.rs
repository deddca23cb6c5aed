//! Coalesced webhook deliveries: the deliveries waiting at one moment are applied together, in
//! one unit of the group commit, with set-based statements (`sets`).
//!
//! Sixteen CRM senders posting one event each used to cost sixteen rounds of a dozen statements;
//! coalesced, their upserts share one claim, one clock advance, one upsert, one outcome update and
//! one scoring pass. Like the group commit, the queue never waits to fill a group: a lone delivery
//! is applied at once, and groups only form while an earlier group is being committed.
//!
//! Deliveries are only grouped when they touch different opportunities, so every delivery's
//! events and scores are exactly what they would be had it been applied alone: concurrent
//! deliveries on one opportunity are applied one group after the other. A group that fails is
//! retried delivery by delivery, so one delivery the database refuses fails alone. Answers are
//! sent after the commit: every acknowledged event is durable.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::apply::EventOutcome;
use super::event::{EventStatus, Prepared, Refused};
use super::score::{score_many_in, EventScoring, ScoreRequest};
use super::sets::{apply_in_order, QueuedEvent};
use super::source::Source;
use crate::store::group_commit::{Ask, AskQueue, GroupCommit, GroupCommitError, TxWork};

/// Most deliveries taken from the queue at once.
const MAX_DELIVERIES: usize = 128;
/// Most events in one group (a group of batch deliveries stays one bounded transaction).
const MAX_GROUP_EVENTS: usize = 2_000;
/// Deliveries waiting before senders are made to wait for room.
const QUEUE_CAPACITY: usize = 1024;
/// Groups applied at the same time on PostgreSQL (one at a time on SQLite).
const GROUPS_IN_FLIGHT: usize = 4;
/// How often a group is retried after a transient database conflict (deadlock, busy).
const TRANSIENT_RETRIES: usize = 3;

/// Why a delivery could not be applied (nothing of it was committed).
pub type ApplyError = GroupCommitError<sqlx::Error>;

/// One delivery, parsed and checked, waiting to be applied.
#[derive(Clone)]
pub(super) struct Delivery {
    pub(super) source: Arc<Source>,
    pub(super) events: Arc<Vec<Result<Prepared, Box<Refused>>>>,
    pub(super) scoring: Option<Arc<EventScoring>>,
}

impl Delivery {
    /// The opportunities its events touch.
    fn opportunities(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|event| match event {
            Ok(prepared) => Some(prepared.external_id.as_str()),
            Err(refused) => refused.external_id.as_deref(),
        })
    }
}

type Reply = oneshot::Sender<Result<Vec<EventOutcome>, ApplyError>>;

/// Handle to the coalescing task; cheap to clone.
#[derive(Clone, Debug)]
pub struct DeliveryQueue {
    deliveries: AskQueue<Delivery, Vec<EventOutcome>>,
}

impl DeliveryQueue {
    /// Starts the coalescing task in front of `writer` (needs a Tokio runtime).
    pub fn spawn(writer: GroupCommit) -> DeliveryQueue {
        let (deliveries, queue) = AskQueue::new(QUEUE_CAPACITY);
        tokio::spawn(coalesce(writer, queue));
        DeliveryQueue { deliveries }
    }

    /// Applies one delivery with whatever else is queued; answers after the commit.
    pub(super) async fn apply(&self, delivery: Delivery) -> Result<Vec<EventOutcome>, ApplyError> {
        self.deliveries.ask(delivery).await
    }
}

/// The coalescing loop: every delivery waiting, in groups, until every handle is dropped.
///
/// On SQLite one group is applied at a time, in arrival order (there is one writer anyway). On
/// PostgreSQL up to [`GROUPS_IN_FLIGHT`] groups are applied concurrently, each in its own
/// transaction, so their round trips to the server overlap; concurrent groups on the same
/// opportunity are then ordered by the database (the event clock row is locked first, in
/// external-id order, see `sets`).
async fn coalesce(writer: GroupCommit, mut queue: mpsc::Receiver<Ask<Delivery, Vec<EventOutcome>>>) {
    let slots = Arc::new(Semaphore::new(if writer.runs_concurrently() {
        GROUPS_IN_FLIGHT
    } else {
        1
    }));
    let mut pending = Vec::with_capacity(MAX_DELIVERIES);
    loop {
        // A slot first, then the deliveries: on SQLite this waits for the previous group to
        // finish, so everything that arrived meanwhile forms the next group (taken earlier, the
        // groups would be smaller and the commits more numerous). The semaphore is never closed.
        let Ok(first_slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut pending, MAX_DELIVERIES).await == 0 {
            return;
        }
        let mut first_slot = Some(first_slot);
        for group in disjoint_groups(std::mem::take(&mut pending)) {
            // Later groups of this lot wait for a slot (on SQLite: for the group before them).
            let slot = match first_slot.take() {
                Some(slot) => slot,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let writer = writer.clone();
            tokio::spawn(async move {
                let (deliveries, replies): (Vec<Delivery>, Vec<Reply>) = group.into_iter().unzip();
                let results = apply_group(&writer, deliveries).await;
                drop(slot);
                for (reply, result) in replies.into_iter().zip(results) {
                    // The sender may have gone away (timed out): the events are committed anyway,
                    // and its redelivery will be answered as a duplicate.
                    let _ = reply.send(result);
                }
            });
        }
    }
}

/// Splits deliveries, in arrival order, into consecutive groups that share no opportunity and
/// stay under [`MAX_GROUP_EVENTS`] events.
fn disjoint_groups<T>(deliveries: Vec<(Delivery, T)>) -> Vec<Vec<(Delivery, T)>> {
    let mut groups: Vec<Vec<(Delivery, T)>> = Vec::new();
    let mut current: Vec<(Delivery, T)> = Vec::new();
    let mut touched: HashSet<String> = HashSet::new();
    let mut events = 0;
    for (delivery, reply) in deliveries {
        let overlaps = delivery.opportunities().any(|id| touched.contains(id));
        if !current.is_empty() && (overlaps || events + delivery.events.len() > MAX_GROUP_EVENTS) {
            groups.push(std::mem::take(&mut current));
            touched.clear();
            events = 0;
        }
        touched.extend(delivery.opportunities().map(str::to_owned));
        events += delivery.events.len();
        current.push((delivery, reply));
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Applies a group in one unit of the group commit; when that fails, each delivery on its own.
async fn apply_group(
    writer: &GroupCommit,
    deliveries: Vec<Delivery>,
) -> Vec<Result<Vec<EventOutcome>, ApplyError>> {
    if deliveries.len() > 1 {
        match with_retries(writer, &deliveries).await {
            Ok(per_delivery) if per_delivery.len() == deliveries.len() => {
                return per_delivery.into_iter().map(Ok).collect();
            }
            Ok(_) => {
                tracing::error!("a webhook group answered the wrong number of deliveries; retrying alone")
            }
            Err(e) => tracing::warn!(error = %e, deliveries = deliveries.len(),
                "a webhook group failed; applying its deliveries one by one"),
        }
    }
    let mut results = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let result = with_retries(writer, std::slice::from_ref(&delivery))
            .await
            .map(|per_delivery| per_delivery.into_iter().next().unwrap_or_default());
        results.push(result);
    }
    results
}

/// Runs a group, again after a transient conflict (a PostgreSQL deadlock, SQLite busy): safe,
/// because nothing of a failed attempt was committed.
async fn with_retries(
    writer: &GroupCommit,
    deliveries: &[Delivery],
) -> Result<Vec<Vec<EventOutcome>>, ApplyError> {
    let mut attempt = 0;
    loop {
        match writer.run(group_work(deliveries.to_vec())).await {
            Err(e) if attempt < TRANSIENT_RETRIES && is_transient(&e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "webhook deliveries hit a transient conflict; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt as u64)).await;
            }
            other => return other,
        }
    }
}

fn is_transient(e: &ApplyError) -> bool {
    let error = match e {
        GroupCommitError::Work(e) => e,
        GroupCommitError::Db(e) => e.as_ref(),
        GroupCommitError::Stopped => return false,
    };
    match error {
        // 23505: another instance sharing PostgreSQL recorded one of the event ids after this
        // group looked them up (`webhooks::record_claimed_many_in`); the retry answers it as a
        // duplicate.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => true,
        // Lock conflicts; not a pool timeout, which has already waited its full time.
        sqlx::Error::Database(_) => crate::store::is_contention(error),
        _ => false,
    }
}

/// The group as one unit of work: every event applied in order, then the scores the deliveries
/// asked for, all in the same transaction. Answers one list of outcomes per delivery.
fn group_work(deliveries: Vec<Delivery>) -> TxWork<Vec<Vec<EventOutcome>>, sqlx::Error> {
    Box::new(move |tx| {
        Box::pin(async move {
            let events: Vec<QueuedEvent<'_>> = deliveries
                .iter()
                .flat_map(|d| d.events.iter().map(move |event| (d.source.as_ref(), event)))
                .collect();
            let mut outcomes = apply_in_order(tx, &events).await?;
            if outcomes.len() != events.len() {
                // Cannot happen (one outcome per event); refuse the group rather than misanswer.
                return Err(sqlx::Error::Protocol(format!(
                    "{} outcomes for {} events",
                    outcomes.len(),
                    events.len()
                )));
            }

            // An event that changed nothing (duplicate, ignored) is answered with a score but
            // adds no history row: a redelivery must leave everything as it was.
            let mut wanted: Vec<(usize, String, bool, &Delivery, &EventScoring)> = Vec::new();
            let mut offset = 0;
            for delivery in &deliveries {
                if let Some(scoring) = delivery.scoring.as_deref() {
                    for (k, outcome) in outcomes[offset..offset + delivery.events.len()]
                        .iter()
                        .enumerate()
                    {
                        if let Some(id) = &outcome.score_for {
                            let record = outcome.status == EventStatus::Applied;
                            wanted.push((offset + k, id.clone(), record, delivery, scoring));
                        }
                    }
                }
                offset += delivery.events.len();
            }
            let requests: Vec<ScoreRequest<'_>> = wanted
                .iter()
                .map(|(_, id, record, delivery, scoring)| ScoreRequest {
                    external_id: id,
                    source: &delivery.source,
                    scoring,
                    record: *record,
                })
                .collect();
            let answers = score_many_in(tx, &requests).await;
            for ((slot, ..), answer) in wanted.iter().zip(answers) {
                outcomes[*slot].score = Some(answer);
            }

            let mut rest = outcomes.into_iter();
            Ok(deliveries
                .iter()
                .map(|d| rest.by_ref().take(d.events.len()).collect())
                .collect())
        })
    })
}
