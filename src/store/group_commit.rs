//! Group commit: concurrent small writes share one transaction, so they share one commit.
//!
//! Every commit on SQLite with `synchronous = FULL` costs an fsync, and SQLite has one writer at a
//! time: with one transaction per request, 32 concurrent `PUT`s queue behind 32 fsyncs and behind
//! the busy handler's sleeps. Here a single writer task takes every write queued at that moment,
//! runs each in its own savepoint inside one transaction and commits once. A write that fails
//! rolls back its savepoint only; its caller gets its error and the others still commit. Callers
//! get their answer only after the commit, so an acknowledged write is durable.
//!
//! This is the SQLite path. On PostgreSQL each write runs in its own transaction (see `Route`).
//!
//! The writer never waits to fill a batch: a lone write is committed at once, and batching only
//! happens when writes arrive while a commit is in progress — latency stays that of one commit
//! under light load and throughput grows with load.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{Any, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{Backend, Db};

/// Most writes committed together (bounds one transaction's size and its latency).
const MAX_BATCH: usize = 128;
/// Writes waiting for the writer before callers are made to wait for room.
const QUEUE_CAPACITY: usize = 4096;

/// Work run inside the shared transaction (in its own savepoint).
pub type TxWork<T, E> =
    Box<dyn for<'a, 'b> FnOnce(&'a mut Transaction<'b, Any>) -> BoxFuture<'a, Result<T, E>> + Send>;

/// Why a grouped write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum GroupCommitError<E> {
    /// The work itself failed; its savepoint was rolled back.
    #[error(transparent)]
    Work(E),
    /// The database refused the transaction or its commit; nothing of the batch was written.
    #[error("the write could not be committed: {0}")]
    Db(Arc<sqlx::Error>),
    /// The writer has stopped (the server is shutting down).
    #[error("the database writer has stopped")]
    Stopped,
}

impl<E> GroupCommitError<E> {
    /// Converts the work's error, keeping the other cases.
    pub fn map_work<F>(self, f: impl FnOnce(E) -> F) -> GroupCommitError<F> {
        match self {
            GroupCommitError::Work(e) => GroupCommitError::Work(f(e)),
            GroupCommitError::Db(e) => GroupCommitError::Db(e),
            GroupCommitError::Stopped => GroupCommitError::Stopped,
        }
    }
}

/// Hands the caller its result once the batch's fate is known (`None` = committed).
type Settle = Box<dyn FnOnce(Option<Arc<sqlx::Error>>) + Send>;
/// A queued write, type-erased: runs in the batch's transaction (or learns that the transaction
/// could not begin) and returns how to settle its caller, and whether its work succeeded. `alone`
/// says the batch holds this write only: it then runs without a savepoint of its own (two fewer
/// statements), and its failure rolls the whole transaction back instead.
type Job = Box<
    dyn for<'a, 'b> FnOnce(
            Result<&'a mut Transaction<'b, Any>, Arc<sqlx::Error>>,
            bool,
        ) -> BoxFuture<'a, (Settle, bool)>
        + Send,
>;

/// Handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    route: Route,
}

#[derive(Clone, Debug)]
enum Route {
    /// SQLite: through the single writer task.
    Queue(mpsc::Sender<Job>),
    /// PostgreSQL: each write in its own transaction on the pool. PostgreSQL runs concurrent
    /// transactions in parallel and its WAL writer already flushes concurrent commits together;
    /// funnelling them through one connection would serialise their network round trips
    /// (measured: half the rate of direct transactions; docs/performance.md, "PUT throughput").
    Direct(Db),
}

impl GroupCommit {
    /// Starts the writer on `db` (a task on SQLite; needs a Tokio runtime).
    pub fn spawn(db: Db) -> GroupCommit {
        let route = match db.backend {
            Backend::Sqlite => {
                let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
                tokio::spawn(writer(db, queue));
                Route::Queue(jobs)
            }
            Backend::Postgres => Route::Direct(db),
        };
        GroupCommit { route }
    }

    /// True when writes run in transactions of their own, concurrently (PostgreSQL); false when
    /// they run one after the other, in the order they were queued (SQLite).
    pub fn runs_concurrently(&self) -> bool {
        matches!(self.route, Route::Direct(_))
    }

    /// Runs `work` in the next group transaction and returns its result after the commit.
    pub async fn run<T, E>(&self, work: TxWork<T, E>) -> Result<T, GroupCommitError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let jobs = match &self.route {
            Route::Queue(jobs) => jobs,
            Route::Direct(db) => return run_alone(db, work).await,
        };
        let (reply, answer) = oneshot::channel::<Result<T, GroupCommitError<E>>>();
        let job: Job = Box::new(move |tx, alone| {
            Box::pin(async move {
                let outcome = match tx {
                    Ok(tx) if alone => work(tx).await.map_err(GroupCommitError::Work),
                    Ok(tx) => run_in_savepoint(tx, work).await,
                    Err(e) => Err(GroupCommitError::Db(e)),
                };
                let succeeded = outcome.is_ok();
                let settle: Settle = Box::new(move |commit_error| {
                    let result = match (outcome, commit_error) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Some(db_error)) => Err(GroupCommitError::Db(db_error)),
                        (Ok(value), None) => Ok(value),
                    };
                    // The caller may have gone away (client disconnected): nothing to tell.
                    let _ = reply.send(result);
                });
                (settle, succeeded)
            })
        });
        jobs.send(job).await.map_err(|_| GroupCommitError::Stopped)?;
        answer.await.map_err(|_| GroupCommitError::Stopped)?
    }
}

/// A request to a coalescing task (`upsert_queue`, `ingest::webhook::queue`), with the channel
/// its answer comes back on once its write is committed or has failed.
pub type Ask<T, R> = (T, oneshot::Sender<Result<R, GroupCommitError<sqlx::Error>>>);

/// The sending side of a coalescing task's queue; cheap to clone.
pub struct AskQueue<T, R> {
    sender: mpsc::Sender<Ask<T, R>>,
}

impl<T, R> AskQueue<T, R> {
    /// A queue holding up to `capacity` requests, and the receiving side for the task.
    pub fn new(capacity: usize) -> (AskQueue<T, R>, mpsc::Receiver<Ask<T, R>>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (AskQueue { sender }, receiver)
    }

    /// Queues `request` (waiting for room when the queue is full) and waits for its answer.
    pub async fn ask(&self, request: T) -> Result<R, GroupCommitError<sqlx::Error>> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((request, reply))
            .await
            .map_err(|_| GroupCommitError::Stopped)?;
        answer.await.map_err(|_| GroupCommitError::Stopped)?
    }
}

impl<T, R> Clone for AskQueue<T, R> {
    fn clone(&self) -> Self {
        AskQueue {
            sender: self.sender.clone(),
        }
    }
}

impl<T, R> std::fmt::Debug for AskQueue<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AskQueue").finish_non_exhaustive()
    }
}

/// Runs one write in its own transaction.
async fn run_alone<T, E>(db: &Db, work: TxWork<T, E>) -> Result<T, GroupCommitError<E>> {
    let tx = db
        .begin_write()
        .await
        .map_err(|e| GroupCommitError::Db(Arc::new(e)))?;
    run_in(tx, work).await
}

/// Runs one write in a savepoint of the shared transaction.
async fn run_in_savepoint<T, E>(
    tx: &mut Transaction<'_, Any>,
    work: TxWork<T, E>,
) -> Result<T, GroupCommitError<E>> {
    let savepoint = Connection::begin(&mut **tx)
        .await
        .map_err(|e| GroupCommitError::Db(Arc::new(e)))?;
    run_in(savepoint, work).await
}

/// Runs `work` in a begun transaction or savepoint: committed (released) on success, rolled back
/// on failure.
async fn run_in<T, E>(mut tx: Transaction<'_, Any>, work: TxWork<T, E>) -> Result<T, GroupCommitError<E>> {
    match work(&mut tx).await {
        Ok(value) => {
            tx.commit().await.map_err(|e| GroupCommitError::Db(Arc::new(e)))?;
            Ok(value)
        }
        Err(e) => {
            // A failed savepoint rollback leaves it open; the outer commit then fails and every
            // write of the batch reports it, which is the safe outcome.
            let _ = tx.rollback().await;
            Err(GroupCommitError::Work(e))
        }
    }
}

/// The writer loop: one batch per iteration, until every handle is dropped.
async fn writer(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let settles = commit_batch(&db, std::mem::take(&mut batch)).await;
        for (settle, error) in settles {
            settle(error);
        }
    }
}

/// Runs the jobs in one transaction; returns each job's settle with the batch's commit error.
async fn commit_batch(db: &Db, jobs: Vec<Job>) -> Vec<(Settle, Option<Arc<sqlx::Error>>)> {
    let mut tx = match db.begin_write().await {
        Ok(tx) => tx,
        Err(e) => {
            let error = Arc::new(e);
            tracing::warn!(error = %error, "group commit: cannot begin a transaction");
            let mut settles = Vec::new();
            for job in jobs {
                settles.push((job(Err(Arc::clone(&error)), false).await.0, None));
            }
            return settles;
        }
    };
    let alone = jobs.len() == 1;
    let mut settles = Vec::with_capacity(jobs.len());
    let mut failed = false;
    for job in jobs {
        let (settle, succeeded) = job(Ok(&mut tx), alone).await;
        failed |= !succeeded;
        settles.push(settle);
    }
    if alone && failed {
        // The lone write failed without a savepoint: nothing of it may be committed. Its caller
        // gets the work's own error.
        if let Err(e) = tx.rollback().await {
            tracing::warn!(error = %e, "group commit: rollback of a failed write failed");
        }
        return settles.into_iter().map(|s| (s, None)).collect();
    }
    let error = tx.commit().await.err().map(Arc::new);
    if let Some(e) = &error {
        tracing::warn!(error = %e, writes = settles.len(), "group commit failed");
    }
    settles.into_iter().map(|s| (s, error.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PoolOptions;

    async fn scratch_db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}/g.db", dir.path().display());
        let db = Db::connect(&url, &PoolOptions::from(&crate::config::Settings::default()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE scratch (x BIGINT NOT NULL)")
            .execute(&db.pool)
            .await
            .unwrap();
        db
    }

    fn insert(x: i64, fail_after: bool) -> TxWork<i64, String> {
        Box::new(move |tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO scratch (x) VALUES (?)")
                    .bind(x)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| e.to_string())?;
                if fail_after {
                    return Err(format!("job {x} fails after writing"));
                }
                Ok(x)
            })
        })
    }

    #[tokio::test]
    async fn a_lone_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_db(&dir).await;
        let writer = GroupCommit::spawn(db.clone());
        // One at a time: each batch holds a single write, run without a savepoint.
        assert!(matches!(
            writer.run(insert(1, true)).await,
            Err(GroupCommitError::Work(_))
        ));
        assert_eq!(writer.run(insert(2, false)).await.unwrap(), 2);
        let stored: Vec<i64> = sqlx::query_scalar("SELECT x FROM scratch ORDER BY x")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(stored, vec![2]);
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back_alone_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_db(&dir).await;
        let writer = GroupCommit::spawn(db.clone());
        // Submitted together so most of them share batches.
        let handles: Vec<_> = (0..200i64)
            .map(|x| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.run(insert(x, x % 3 == 0)).await })
            })
            .collect();
        let mut committed = Vec::new();
        for (x, handle) in handles.into_iter().enumerate() {
            match handle.await.unwrap() {
                Ok(value) => {
                    assert_ne!(value % 3, 0);
                    committed.push(value);
                }
                Err(GroupCommitError::Work(message)) => {
                    assert_eq!(x % 3, 0, "{message}");
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        let mut stored: Vec<i64> = sqlx::query_scalar("SELECT x FROM scratch ORDER BY x")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        stored.sort_unstable();
        committed.sort_unstable();
        assert_eq!(stored, committed);
        assert_eq!(stored.len(), 133);
    }
}
