//! Coalesced single-opportunity writes: the `PUT`s waiting at one moment become one multi-row
//! upsert instead of one small transaction each.
//!
//! Measured on SQLite (docs/performance.md, "PUT throughput"): with one savepoint, hash lookup,
//! upsert, release and read-back per `PUT`, 32 concurrent clients spent most of the server's time handing each
//! statement to sqlx's SQLite worker thread and back, not in SQLite. Here one task takes every
//! `PUT` queued meanwhile and writes them with the import's set-based statements: one hash
//! lookup, one upsert and one read-back per group, whatever the group's size. Like the group
//! commit it runs on, it never waits to fill a group: a lone `PUT` is written at once.
//!
//! A group writes its rows in key order (external id, byte order), whatever order the `PUT`s
//! arrived in: on PostgreSQL several instances each write their own groups in concurrent
//! transactions, and two groups that locked the same rows in opposite orders would deadlock. In
//! key order every transaction takes its row locks in the same order, so they only wait for one
//! another. Writes to the same id keep their arrival order, so the last one sent is the one kept.
//!
//! A group fails as a whole only when the database fails; its writes are then retried one by one
//! (logged with the cause), so one write the database refuses does not take the others down with
//! it. Every answer is sent after the commit, so an acknowledged write is durable.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::activities::{add_in, AddActivitiesError};
use super::group_commit::{Ask, AskQueue, GroupCommit, GroupCommitError, TxWork};
use super::history::Provenance;
use super::opportunities::{get_many_in, upsert_batch_in, StoredOpportunity, UpsertOutcome};
use crate::domain::{Activity, ChangeSource, Opportunity};

/// Most writes coalesced into one group (bounds the statement sizes and one group's latency).
const MAX_GROUP: usize = 256;
/// Writes waiting before callers are made to wait for room.
const QUEUE_CAPACITY: usize = 4096;

/// One create-or-replace, with the activities sent alongside it.
#[derive(Debug, Clone)]
pub struct UpsertRequest {
    /// The opportunity as sent (validated).
    pub opportunity: Opportunity,
    /// Activities to attach after the upsert.
    pub activities: Vec<Activity>,
}

/// What a coalesced write did, and the row as stored after it.
#[derive(Debug, Clone)]
pub struct UpsertDone {
    /// Inserted, updated or unchanged.
    pub outcome: UpsertOutcome,
    /// The stored row after this write (effective measures included).
    pub stored: StoredOpportunity,
}

/// Why a coalesced write failed.
pub type UpsertError = GroupCommitError<sqlx::Error>;

type Reply = oneshot::Sender<Result<UpsertDone, UpsertError>>;

/// Handle to the coalescing task; cheap to clone.
#[derive(Clone, Debug)]
pub struct UpsertQueue {
    requests: AskQueue<UpsertRequest, UpsertDone>,
}

impl UpsertQueue {
    /// Starts the coalescing task in front of `writer` (needs a Tokio runtime).
    pub fn spawn(writer: GroupCommit) -> UpsertQueue {
        let (requests, queue) = AskQueue::new(QUEUE_CAPACITY);
        tokio::spawn(coalesce(writer, queue));
        UpsertQueue { requests }
    }

    /// Writes one opportunity (and its activities) with whatever else is queued, and answers
    /// after the commit.
    pub async fn upsert(&self, request: UpsertRequest) -> Result<UpsertDone, UpsertError> {
        self.requests.ask(request).await
    }
}

/// The coalescing loop: one group per iteration, until every handle is dropped.
async fn coalesce(writer: GroupCommit, mut queue: mpsc::Receiver<Ask<UpsertRequest, UpsertDone>>) {
    let mut pending = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut pending, MAX_GROUP).await > 0 {
        let (requests, replies): (Vec<UpsertRequest>, Vec<Reply>) = pending.drain(..).unzip();
        let results = write_group(&writer, requests).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (client disconnected): nothing to tell.
            let _ = reply.send(result);
        }
    }
}

/// Writes a group in one unit of the group commit; on a failure, each write again on its own.
/// The requests are shared, not copied, between the attempts.
async fn write_group(
    writer: &GroupCommit,
    requests: Vec<UpsertRequest>,
) -> Vec<Result<UpsertDone, UpsertError>> {
    let requests: Arc<[UpsertRequest]> = requests.into();
    let n = requests.len();
    match writer.run(group_work(Arc::clone(&requests), 0..n)).await {
        Ok(done) if done.len() == n => done.into_iter().map(Ok).collect(),
        Err(e) if n == 1 => vec![Err(e)],
        outcome => {
            match &outcome {
                Err(e) => {
                    tracing::warn!(writes = n, error = %e, "grouped upsert failed; retrying its writes one by one")
                }
                Ok(done) => tracing::warn!(
                    writes = n,
                    answers = done.len(),
                    "grouped upsert answered for the wrong number of writes; retrying them one by one"
                ),
            }
            let mut results = Vec::with_capacity(n);
            for i in 0..n {
                let alone = group_work(Arc::clone(&requests), i..i + 1);
                let result = writer.run(alone).await.map(one_result);
                if let Err(e) = &result {
                    tracing::warn!(
                        external_id = %requests[i].opportunity.external_id.as_str(),
                        error = %e,
                        "upsert failed on its own too"
                    );
                }
                results.push(result);
            }
            results
        }
    }
}

fn one_result(mut done: Vec<UpsertDone>) -> UpsertDone {
    // `group_work` answers once per request: a group of one answers exactly once.
    done.swap_remove(0)
}

/// The order in which a group's rows are written, as indices into `requests`: by external id
/// (byte order, the same in every instance), and in arrival order for the same id (a stable sort).
fn key_order(requests: &[UpsertRequest]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by(|&a, &b| {
        let id = |i: usize| requests[i].opportunity.external_id.as_str().as_bytes();
        id(a).cmp(id(b))
    });
    order
}

/// Splits `order` into the runs written by one statement each: distinct ids only (a statement
/// cannot write a row twice), and a write with activities ends its run. Those activities are
/// added right after the run's upsert and lock their opportunity's row then, even when the upsert
/// left it unchanged (unlocked); ending the run there keeps every lock of the transaction in key
/// order.
fn runs(requests: &[UpsertRequest], order: &[usize]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for run in super::distinct_runs(
        order
            .iter()
            .map(|&i| requests[i].opportunity.external_id.as_str()),
    ) {
        debug_assert_eq!(run.start, start);
        for at in run.clone() {
            if !requests[order[at]].activities.is_empty() {
                runs.push(start..at + 1);
                start = at + 1;
            }
        }
        if start < run.end {
            runs.push(start..run.end);
            start = run.end;
        }
    }
    runs
}

/// The writes `requests[range]` inside the shared transaction, in key order (see the module
/// documentation); answers in the requests' order.
fn group_work(requests: Arc<[UpsertRequest]>, range: Range<usize>) -> TxWork<Vec<UpsertDone>, sqlx::Error> {
    Box::new(move |tx| {
        Box::pin(async move {
            let requests = &requests[range];
            let order = key_order(requests);
            let mut answers: Vec<Option<UpsertDone>> = vec![None; requests.len()];
            for run in runs(requests, &order) {
                let indices = &order[run];
                let run: Vec<&UpsertRequest> = indices.iter().map(|&i| &requests[i]).collect();
                let opportunities: Vec<Opportunity> = run.iter().map(|r| r.opportunity.clone()).collect();
                let provenance = vec![Provenance::written(ChangeSource::Api); opportunities.len()];
                let outcomes = upsert_batch_in(tx, &opportunities, &provenance).await?;
                for request in run.iter().filter(|r| !r.activities.is_empty()) {
                    match add_in(tx, &request.opportunity.external_id, &request.activities).await {
                        Ok(_) => {}
                        Err(AddActivitiesError::Db(e)) => return Err(e),
                        // Upserted just above, in this transaction: it exists.
                        Err(AddActivitiesError::UnknownOpportunity(id)) => {
                            tracing::error!(external_id = %id, "opportunity missing right after its upsert");
                            return Err(sqlx::Error::RowNotFound);
                        }
                    }
                }
                let ids: Vec<&str> = run.iter().map(|r| r.opportunity.external_id.as_str()).collect();
                let mut stored = get_many_in(tx, &ids).await?;
                for ((request, outcome), &i) in run.iter().zip(outcomes).zip(indices) {
                    let row = stored
                        .remove(request.opportunity.external_id.as_str())
                        .ok_or(sqlx::Error::RowNotFound)?;
                    answers[i] = Some(UpsertDone { outcome, stored: row });
                }
            }
            // Every request is in exactly one run, so every answer is set.
            answers
                .into_iter()
                .map(|a| a.ok_or(sqlx::Error::RowNotFound))
                .collect()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ParseOptions;
    use serde_json::json;

    fn request(id: &str, amount: f64) -> UpsertRequest {
        let fields = json!({"name": id, "status": "open", "amount": amount, "created_at": "2026-01-05"});
        let map = fields.as_object().cloned().unwrap_or_default();
        UpsertRequest {
            opportunity: Opportunity::parse(Some(id), &map, ParseOptions::default()).unwrap(),
            activities: Vec::new(),
        }
    }

    #[test]
    fn a_group_is_written_in_key_order_with_repeats_in_arrival_order() {
        let mut requests: Vec<UpsertRequest> = [("c", 1.0), ("a", 2.0), ("c", 3.0), ("b", 4.0), ("a", 5.0)]
            .into_iter()
            .map(|(id, amount)| request(id, amount))
            .collect();
        let order = key_order(&requests);
        assert_eq!(order, vec![1, 4, 3, 0, 2]);
        // Each run holds distinct ids, and the runs follow one another in key order.
        assert_eq!(runs(&requests, &order), vec![0..1, 1..4, 4..5]);
        // A write with activities ends its run.
        requests[3].activities.push(crate::domain::Activity {
            id: Some("x".into()),
            kind: crate::domain::ActivityKind::Call,
            direction: crate::domain::ActivityDirection::Outbound,
            occurred_at: chrono::Utc::now(),
        });
        assert_eq!(runs(&requests, &order), vec![0..1, 1..3, 3..4, 4..5]);
    }

    #[tokio::test]
    async fn concurrent_writes_answer_each_their_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/q.db", dir.path().display());
        let db = crate::store::Db::connect(
            &url,
            &crate::store::PoolOptions::from(&crate::config::Settings::default()),
        )
        .await
        .unwrap();
        let queue = UpsertQueue::spawn(GroupCommit::spawn(db.clone()));
        // 60 writes at once, three per id: per id, exactly one "inserted", and the row ends with
        // one of the amounts sent.
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    queue
                        .upsert(request(&format!("q-{}", i % 20), f64::from(i)))
                        .await
                })
            })
            .collect();
        let mut inserted = std::collections::HashMap::new();
        for (i, handle) in handles.into_iter().enumerate() {
            let done = handle.await.unwrap().unwrap();
            assert_eq!(
                done.stored.opportunity.external_id.as_str(),
                format!("q-{}", i % 20)
            );
            if done.outcome == UpsertOutcome::Inserted {
                *inserted.entry(i % 20).or_insert(0) += 1;
            }
        }
        assert_eq!(inserted.len(), 20);
        assert!(inserted.values().all(|n| *n == 1));
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM opportunities")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(count, 20);
    }
}
