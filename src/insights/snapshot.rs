//! The in-memory snapshot every insight is computed from, and the cache that keeps it.
//!
//! Loading 1,000,000 opportunities through sqlx takes seconds, and medians are not SQL on
//! SQLite, so the insights load the few columns they need once into compact rows (categories
//! interned as numbers) and aggregate in Rust, in milliseconds. The snapshot is keyed by the
//! database's change stamp (`insights_changes`, bumped by triggers on every write to
//! opportunities and scores), read *before* the rows: a snapshot is never older than its stamp,
//! so a cached snapshot is served only while no write has committed since it was loaded.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::Status;
use crate::refresh::Refreshing;
use crate::store::insights::{self as store, DealRow};
use crate::store::Db;

/// Index of a category name in [`Names`].
pub type NameId = u32;

/// Interned category names (accounts, sectors, regions, owners, roles, currencies).
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<String>,
    index: HashMap<String, NameId>,
}

impl Names {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = NameId::try_from(self.names.len()).unwrap_or(NameId::MAX);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if any deal uses it.
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.index.get(name).copied()
    }

    /// The name of an id.
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

/// One opportunity, compact: names interned, times in epoch milliseconds.
#[derive(Debug, Clone)]
pub struct Deal {
    /// Internal id.
    pub id: i64,
    /// CRM id.
    pub external_id: Box<str>,
    /// Account.
    pub account: Option<NameId>,
    /// Sector.
    pub sector: Option<NameId>,
    /// Region.
    pub region: Option<NameId>,
    /// Owner.
    pub owner: Option<NameId>,
    /// Contact role.
    pub contact_role: Option<NameId>,
    /// Currency.
    pub currency: NameId,
    /// Amount.
    pub amount: Option<f64>,
    /// Status.
    pub status: Status,
    /// Creation.
    pub created_at: Option<i64>,
    /// Close.
    pub closed_at: Option<i64>,
    /// Interaction count.
    pub interaction_count: Option<i64>,
    /// Response time in hours.
    pub response_hours: Option<f64>,
    /// Last activity.
    pub last_activity_at: Option<i64>,
    /// Win probability of the latest stored score (open deals only).
    pub probability: Option<f64>,
}

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

impl Deal {
    /// `closed_at − created_at` in days for a closed deal with both dates.
    pub fn cycle_days(&self) -> Option<f64> {
        match (self.status, self.created_at, self.closed_at) {
            (Status::Won | Status::Lost, Some(c), Some(e)) => Some(((e - c) as f64 / DAY_MS as f64).max(0.0)),
            _ => None,
        }
    }

    /// True when the deal was open at `at`: created before it (or creation unknown) and either
    /// still open or closed at or after it.
    pub fn open_at(&self, at: i64) -> bool {
        if self.created_at.is_some_and(|c| c >= at) {
            return false;
        }
        match self.status {
            Status::Open => true,
            Status::Won | Status::Lost => self.closed_at.is_some_and(|e| e >= at),
        }
    }

    /// True when the deal closed (won or lost) within `[start, end)`.
    pub fn closed_within(&self, start: i64, end: i64) -> bool {
        self.status.is_closed() && self.closed_at.is_some_and(|e| e >= start && e < end)
    }
}

/// Every opportunity of the database at one change stamp.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The change stamp the rows are at least as new as.
    pub stamp: i64,
    /// The deals, in id order.
    pub deals: Vec<Deal>,
    /// Interned names.
    pub names: Names,
    /// When it was loaded (`None` for snapshots built in tests).
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Snapshot {
    /// Builds a snapshot from rows (the loader, and unit tests).
    pub fn from_rows(
        stamp: i64,
        rows: impl IntoIterator<Item = DealRow>,
        probabilities: &HashMap<i64, f64>,
    ) -> Self {
        let mut snapshot = Snapshot {
            stamp,
            ..Snapshot::default()
        };
        for row in rows {
            snapshot.push(row, probabilities);
        }
        snapshot
    }

    fn push(&mut self, row: DealRow, probabilities: &HashMap<i64, f64>) {
        let names = &mut self.names;
        let mut intern = |v: Option<String>| v.filter(|s| !s.is_empty()).map(|s| names.intern(&s));
        let account = intern(row.account);
        let sector = intern(row.sector);
        let region = intern(row.region);
        let owner = intern(row.owner);
        let contact_role = intern(row.contact_role);
        let currency = self.names.intern(&row.currency);
        self.deals.push(Deal {
            id: row.id,
            external_id: row.external_id.into_boxed_str(),
            account,
            sector,
            region,
            owner,
            contact_role,
            currency,
            amount: row.amount,
            status: row.status,
            created_at: row.created_at,
            closed_at: row.closed_at,
            interaction_count: row.interaction_count,
            response_hours: row.response_hours,
            last_activity_at: row.last_activity_at,
            probability: (row.status == Status::Open)
                .then(|| probabilities.get(&row.id).copied())
                .flatten(),
        });
    }

    /// The display name of an optional category (`(none)` when absent).
    pub fn label(&self, id: Option<NameId>) -> String {
        id.map_or_else(|| NONE_LABEL.to_owned(), |i| self.names.name(i).to_owned())
    }
}

/// Label of the group of deals without a value for the grouping field.
pub const NONE_LABEL: &str = "(none)";

/// Keeps the latest snapshot; reloads it when the change stamp moved.
#[derive(Debug, Default)]
pub struct InsightsCache {
    kept: Refreshing<Snapshot>,
}

/// A snapshot and whether it predates the last write (a newer one is loading).
#[derive(Debug, Clone)]
pub struct MaybeStale {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// True when the data changed since it was loaded.
    pub stale: bool,
}

async fn load(db: &Db, stamp: i64) -> Result<Arc<Snapshot>, sqlx::Error> {
    let started = std::time::Instant::now();
    let probabilities = store::latest_open_probabilities(db).await?;
    let mut snapshot = Snapshot {
        stamp,
        loaded_at: Some(chrono::Utc::now()),
        ..Snapshot::default()
    };
    store::for_each_deal(db, |row| snapshot.push(row, &probabilities)).await?;
    tracing::info!(
        deals = snapshot.deals.len(),
        stamp,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "insights snapshot loaded"
    );
    Ok(Arc::new(snapshot))
}

impl InsightsCache {
    /// An empty cache (the first request loads).
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot kept, fresh or not (none before the first load).
    pub fn kept(&self) -> Option<Arc<Snapshot>> {
        self.kept.get()
    }

    /// A snapshot at least as new as the last committed write. Concurrent callers wait for one
    /// load rather than each loading; the old snapshot is dropped before the new one loads, so
    /// two are never in memory at once.
    pub async fn snapshot(&self, db: &Db) -> Result<Arc<Snapshot>, sqlx::Error> {
        let stamp = store::change_stamp(db).await?;
        self.kept
            .fresh(|s| s.stamp == stamp, true, || load(db, stamp))
            .await
    }

    /// Like [`InsightsCache::snapshot`], but when the data changed since the last snapshot,
    /// answers that one at once and loads the new one in the background (memory then holds two
    /// snapshots until the load ends). For dashboards a person reads; the API keeps
    /// [`InsightsCache::snapshot`].
    pub async fn snapshot_or_recent(&self, db: &Db) -> Result<MaybeStale, sqlx::Error> {
        let stamp = store::change_stamp(db).await?;
        let Some(previous) = self.kept.get() else {
            let snapshot = self.snapshot(db).await?;
            return Ok(MaybeStale {
                snapshot,
                stale: false,
            });
        };
        if previous.stamp == stamp {
            return Ok(MaybeStale {
                snapshot: previous,
                stale: false,
            });
        }
        // One load at a time; if one is running, this view just uses the previous snapshot.
        let db = db.clone();
        self.kept
            .rebuild_in_background("insights snapshot", async move { load(&db, stamp).await });
        Ok(MaybeStale {
            snapshot: previous,
            stale: true,
        })
    }
}
