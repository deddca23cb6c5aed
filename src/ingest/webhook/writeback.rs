//! Score write-back to the CRM through a durable outbox.
//!
//! The scorer calls [`enqueue_score_change`] inside the transaction that stores the new score, so
//! a write-back exists exactly when the change was committed. A background worker
//! ([`spawn_worker`]) POSTs due rows to the source's `callback_url`, signed like incoming
//! webhooks, and retries failures with exponential backoff and jitter until
//! `outbox_max_attempts`, after which the row is dead-lettered (an admin can retry it). All state
//! lives in the database, so deliveries survive restarts, and a row is claimed with a
//! compare-and-set lease so two servers on one PostgreSQL never send it together.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;
use sqlx::{Any, Transaction};

use super::source::Sources;
use crate::ingest::signature;
use crate::store::outbox::{self, OutboxEntry};
use crate::store::Db;
use crate::telemetry::Metrics;

/// How long a claimed row stays reserved for the claimer; longer than the HTTP timeout, so a
/// live worker always finishes first, and short enough that a crashed one's rows come back soon.
const LEASE: Duration = Duration::from_secs(60);
/// HTTP timeout of one delivery.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Rows delivered per poll.
const BATCH: usize = 32;
/// Longest wait between two attempts, whatever the attempt number.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Header carrying a write-back's delivery id, the same on every attempt of that write-back.
pub const DELIVERY_HEADER: &str = "Dealscore-Delivery-Id";
/// Payload field carrying the same delivery id (covered by the signature, unlike the header).
pub const DELIVERY_FIELD: &str = "delivery_id";

/// Enqueues a score write-back for `external_id` to `source`, inside the caller's transaction.
/// The scorer calls it when the grade changes or the score moves by at least
/// `writeback_min_points`. Returns the outbox row id.
///
/// An object payload gets a fresh `delivery_id`, stored with the row: after a crash the outbox
/// may send a write-back again, and the receiver drops the repeat by that id.
pub async fn enqueue_score_change(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    external_id: &str,
    mut payload: Value,
) -> Result<i64, sqlx::Error> {
    if let Value::Object(map) = &mut payload {
        map.insert(DELIVERY_FIELD.into(), Value::String(new_delivery_id()));
    }
    outbox::insert_in(tx, source, external_id, &payload.to_string()).await
}

/// 128 random bits in hex: unique without coordination between servers sharing a database.
fn new_delivery_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The delivery id of a stored write-back and the body to send, which carries it. A row enqueued
/// without one (before delivery ids existed) gets one derived from its row id, so its attempts
/// still agree with each other.
fn with_delivery_id(entry: &OutboxEntry) -> (String, Value) {
    let mut payload = entry.payload.clone();
    if let Some(id) = payload.get(DELIVERY_FIELD).and_then(Value::as_str) {
        return (id.to_owned(), payload);
    }
    let id = format!("outbox-{}", entry.id);
    if let Value::Object(map) = &mut payload {
        map.insert(DELIVERY_FIELD.into(), Value::String(id.clone()));
    }
    (id, payload)
}

/// True when a move from `old` to `new` (scores 0–100, grades A–D) is worth writing back.
pub fn is_worth_writing_back(old: Option<(f64, &str)>, new: (f64, &str), min_points: f64) -> bool {
    match old {
        None => true,
        Some((old_score, old_grade)) => old_grade != new.1 || (new.0 - old_score).abs() >= min_points,
    }
}

/// Retry policy of the outbox.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before a row is dead.
    pub max_attempts: u32,
    /// Delay after the first failure; doubles with each further failure.
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// Delay before the next attempt after `attempts` failed ones: `base × 2^(attempts−1)`, capped
    /// at one hour, then "equal jitter" (a random point in its upper half) so senders that failed
    /// together do not retry together.
    pub fn delay_after(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self.base_delay.saturating_mul(1u32 << exponent).min(MAX_DELAY);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rng.gen_range(0.0..=1.0))
    }
}

/// Starts the delivery worker on the current Tokio runtime. It polls for due rows about every
/// `min(base_delay, 1 s)` and never touches the request path.
pub fn spawn_worker(
    db: Db,
    sources: Arc<Sources>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the write-back HTTP client; outbox disabled");
                return;
            }
        };
        let poll = policy
            .base_delay
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            match run_once(&db, &client, &sources, &metrics, policy).await {
                // A full batch suggests more are due: go again at once.
                Ok(n) if n >= BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox poll failed; will retry"),
            }
            tokio::time::sleep(poll).await;
        }
    })
}

/// Delivers the rows due now once; returns how many were claimed.
pub async fn run_once(
    db: &Db,
    client: &reqwest::Client,
    sources: &Sources,
    metrics: &Metrics,
    policy: RetryPolicy,
) -> Result<usize, sqlx::Error> {
    let now = Utc::now();
    let due = outbox::due(db, now, BATCH).await?;
    let lease_until =
        now + chrono::Duration::from_std(LEASE).unwrap_or_else(|_| chrono::Duration::seconds(60));
    let mut claimed = Vec::with_capacity(due.len());
    for entry in due {
        if outbox::claim(db, entry.id, entry.next_attempt_at, lease_until).await? {
            claimed.push(entry);
        }
    }
    let count = claimed.len();
    let deliveries = claimed
        .into_iter()
        .map(|entry| deliver(db, client, sources, metrics, policy, entry));
    for result in futures_util::future::join_all(deliveries).await {
        result?;
    }
    Ok(count)
}

async fn deliver(
    db: &Db,
    client: &reqwest::Client,
    sources: &Sources,
    metrics: &Metrics,
    policy: RetryPolicy,
    entry: OutboxEntry,
) -> Result<(), sqlx::Error> {
    let attempts = entry.attempts + 1;
    let target = sources
        .get(&entry.source)
        .and_then(|s| Some((s.callback_url.clone()?, s.secrets.first()?.clone())));
    let result = match target {
        None => Err(format!(
            "source `{}` is not configured with a callback_url",
            entry.source
        )),
        Some((url, secret)) => {
            let (delivery_id, payload) = with_delivery_id(&entry);
            post(client, &url, &secret, &delivery_id, &payload).await
        }
    };
    match result {
        Ok(()) => {
            outbox::record_attempt(db, entry.id, attempts, "delivered", Utc::now(), None).await?;
            metrics.outbox_delivery(&entry.source, "delivered");
        }
        Err(error) => {
            let dead = attempts >= i64::from(policy.max_attempts.max(1));
            let next: DateTime<Utc> = if dead {
                Utc::now()
            } else {
                let attempts_u32 = u32::try_from(attempts).unwrap_or(u32::MAX);
                let delay = policy.delay_after(attempts_u32, &mut rand::thread_rng());
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::hours(1))
            };
            let status = if dead { "dead" } else { "pending" };
            tracing::warn!(id = entry.id, source = %entry.source, attempts, %error, status, "write-back failed");
            outbox::record_attempt(db, entry.id, attempts, status, next, Some(&error)).await?;
            metrics.outbox_delivery(&entry.source, if dead { "dead" } else { "retry" });
        }
    }
    Ok(())
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    delivery_id: &str,
    payload: &Value,
) -> Result<(), String> {
    let body = payload.to_string();
    let header = signature::header_value(secret, Utc::now().timestamp(), body.as_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(signature::HEADER, header)
        .header(DELIVERY_HEADER, delivery_id)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("callback answered HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(1000),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for attempts in 1..=6u32 {
            let full = 1000u64 << (attempts - 1);
            let d = policy.delay_after(attempts, &mut rng).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "{attempts}: {d}");
        }
        assert!(policy.delay_after(40, &mut rng) <= MAX_DELAY);
    }

    #[test]
    fn a_row_without_a_delivery_id_gets_one_from_its_row_id() {
        let entry = |payload: Value| OutboxEntry {
            id: 42,
            source: "crm".into(),
            external_id: "D-1".into(),
            payload,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Utc::now(),
            last_error: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let (id, body) = with_delivery_id(&entry(serde_json::json!({"delivery_id": "abc", "score": 1})));
        assert_eq!((id.as_str(), &body["score"]), ("abc", &serde_json::json!(1)));
        let (id, body) = with_delivery_id(&entry(serde_json::json!({"score": 1})));
        assert_eq!(id, "outbox-42");
        assert_eq!(body["delivery_id"], "outbox-42");
        assert_ne!(new_delivery_id(), new_delivery_id());
        assert_eq!(new_delivery_id().len(), 32);
    }

    #[test]
    fn a_grade_change_or_a_big_move_is_written_back() {
        assert!(is_worth_writing_back(None, (50.0, "B"), 5.0));
        assert!(is_worth_writing_back(Some((50.0, "B")), (51.0, "A"), 5.0));
        assert!(is_worth_writing_back(Some((50.0, "B")), (45.0, "B"), 5.0));
        assert!(!is_worth_writing_back(Some((50.0, "B")), (54.0, "B"), 5.0));
    }
}
