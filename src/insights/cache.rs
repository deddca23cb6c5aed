//! The cache that keeps the latest snapshot and what is derived from its deals alone.
//!
//! The snapshot is keyed by the database's change stamp (`insights_changes`, bumped by triggers
//! on every write to opportunities and scores), read *before* the rows: a snapshot is never older
//! than its stamp, so a cached snapshot is served only while no write has committed since it was
//! loaded. Parts derived from the deals (the at-risk basis) sit beside the snapshot, never inside
//! it: the snapshot stays plain data, and the cached pair cannot change once built.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use super::accounts::{self, AccountsReport};
use super::at_risk::{self, AtRiskReport, Basis};
use super::breakdown::AttributeColumn;
use super::customers::Basis as CustomersBasis;
use super::filter::DealFilter;
use super::snapshot::Snapshot;
use crate::config::InsightsConfig;
use crate::refresh::Refreshing;
use crate::store::insights as store;
use crate::store::Db;

/// A snapshot and what several requests would otherwise recompute from the same deals: each
/// part is built by the first request that needs it and reused by every later request on this
/// snapshot, so a request pays only for what depends on its own parameters. A new change stamp
/// means a new snapshot, hence new parts; nothing here can outlive the deals it came from. It
/// reads as its snapshot.
#[derive(Debug)]
pub struct CachedSnapshot {
    snapshot: Snapshot,
    /// The at-risk won-deal references and the open deals they are checked against.
    at_risk: OnceLock<Basis>,
    /// Every account's row, sorted: a request only takes its first rows.
    accounts: OnceLock<AccountsReport>,
    /// The customers basis, for the fields it was read with.
    customers: Mutex<Option<(InsightsConfig, Arc<CustomersBasis>)>>,
    /// Custom attribute columns read for breakdowns, by attribute name (at most
    /// [`KEPT_ATTRIBUTES`]; the snapshot itself holds no attributes, which most insights never read).
    attributes: Mutex<HashMap<String, Arc<AttributeColumn>>>,
}

/// Attribute columns kept per snapshot; further ones are read on each request.
const KEPT_ATTRIBUTES: usize = 16;

impl CachedSnapshot {
    /// `snapshot`, with nothing derived yet.
    pub fn new(snapshot: Snapshot) -> Self {
        CachedSnapshot {
            snapshot,
            at_risk: OnceLock::new(),
            accounts: OnceLock::new(),
            customers: Mutex::new(None),
            attributes: Mutex::new(HashMap::new()),
        }
    }

    /// [`at_risk::at_risk`] on this snapshot, with the basis built once and kept.
    pub fn at_risk(&self, filter: &DealFilter, as_of: i64, limit: usize) -> AtRiskReport {
        let basis = self.at_risk.get_or_init(|| Basis::new(&self.snapshot));
        at_risk::at_risk_on(&self.snapshot, basis, filter, as_of, limit)
    }
}

impl CachedSnapshot {
    /// [`accounts::accounts`] on this snapshot: every row is computed once and kept, a request
    /// copies its first `limit`.
    pub fn accounts(&self, limit: usize) -> AccountsReport {
        let all = self
            .accounts
            .get_or_init(|| accounts::accounts(&self.snapshot, usize::MAX));
        AccountsReport {
            accounts: all.accounts,
            repeat_rate: all.repeat_rate,
            rows: all.rows.iter().take(limit).cloned().collect(),
        }
    }

    /// True when the column of attribute `name` is kept with this snapshot (read once already).
    pub fn holds_attribute(&self, name: &str) -> bool {
        self.kept_attribute(name).is_some()
    }

    /// The customers basis kept for `fields`, if any.
    pub(crate) fn kept_customers(&self, fields: &InsightsConfig) -> Option<Arc<CustomersBasis>> {
        let kept = self.customers.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().filter(|(f, _)| f == fields).map(|(_, b)| b.clone())
    }

    /// Keeps the customers basis read with `fields` (replacing one read with other fields).
    pub(crate) fn keep_customers(&self, fields: &InsightsConfig, basis: Arc<CustomersBasis>) {
        let mut kept = self.customers.lock().unwrap_or_else(|p| p.into_inner());
        *kept = Some((fields.clone(), basis));
    }

    /// True when `column` is the column of attribute `name` kept with this snapshot (so it
    /// matches the snapshot's deals).
    pub(crate) fn keeps_attribute(&self, name: &str, column: &Arc<AttributeColumn>) -> bool {
        self.kept_attribute(name)
            .is_some_and(|kept| Arc::ptr_eq(&kept, column))
    }

    fn kept_attribute(&self, name: &str) -> Option<Arc<AttributeColumn>> {
        // A poisoned lock only means another request panicked while inserting: read on.
        let kept = self.attributes.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(name).cloned()
    }

    fn keep_attribute(&self, name: &str, column: Arc<AttributeColumn>) {
        let mut kept = self.attributes.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEPT_ATTRIBUTES {
            kept.insert(name.to_owned(), column);
        }
    }
}

impl Deref for CachedSnapshot {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// Keeps the latest snapshot; reloads it when the change stamp moved.
#[derive(Debug, Default)]
pub struct InsightsCache {
    kept: Refreshing<CachedSnapshot>,
}

/// A snapshot and whether it predates the last write (a newer one is loading).
#[derive(Debug, Clone)]
pub struct MaybeStale {
    /// The snapshot.
    pub snapshot: Arc<CachedSnapshot>,
    /// True when the data changed since it was loaded.
    pub stale: bool,
}

async fn load(db: &Db, stamp: i64) -> Result<Arc<CachedSnapshot>, sqlx::Error> {
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
    Ok(Arc::new(CachedSnapshot::new(snapshot)))
}

impl InsightsCache {
    /// An empty cache (the first request loads).
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot kept, fresh or not (none before the first load).
    pub fn kept(&self) -> Option<Arc<CachedSnapshot>> {
        self.kept.get()
    }

    /// A snapshot at least as new as the last committed write. Concurrent callers wait for one
    /// load rather than each loading; the old snapshot is dropped before the new one loads, so
    /// two are never in memory at once.
    pub async fn snapshot(&self, db: &Db) -> Result<Arc<CachedSnapshot>, sqlx::Error> {
        let stamp = store::change_stamp(db).await?;
        self.kept
            .fresh(|s| s.stamp == stamp, true, || load(db, stamp))
            .await
    }

    /// The values of custom attribute `name` for the deals of `snapshot`, read once per snapshot.
    /// They are read after the snapshot: a column is kept only when no write came in between
    /// (the stamp did not move), so a kept column always matches its snapshot's deals.
    pub async fn attribute(
        &self,
        db: &Db,
        snapshot: &CachedSnapshot,
        name: &str,
    ) -> Result<Arc<AttributeColumn>, sqlx::Error> {
        if let Some(column) = snapshot.kept_attribute(name) {
            return Ok(column);
        }
        let pairs = store::attribute_values(db, name).await?;
        let column = Arc::new(AttributeColumn::aligned(snapshot, pairs));
        if store::change_stamp(db).await? == snapshot.stamp {
            snapshot.keep_attribute(name, column.clone());
        }
        Ok(column)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::Status;
    use crate::insights::snapshot::{sample, NameId};
    use crate::store::insights::DealRow;

    const AS_OF: i64 = 1_760_000_000_000;

    #[test]
    fn the_kept_at_risk_basis_answers_like_a_fresh_one_and_sees_every_deal() {
        let mut s = sample(300, 1);
        let before = at_risk::at_risk(&s, &Default::default(), AS_OF, 5);
        let mut row = sample_row(&s, 0);
        row.id = 10_000;
        s.push(row, &HashMap::new());
        let cached = CachedSnapshot::new(s);
        assert!(cached.at_risk.get().is_none());
        let after = cached.at_risk(&Default::default(), AS_OF, 5);
        assert!(cached.at_risk.get().is_some());
        assert_eq!(after.open_deals, before.open_deals + 1);
        assert_eq!(after, at_risk::at_risk(&cached, &Default::default(), AS_OF, 5));
    }

    /// A row like deal `i` of `s`, open.
    fn sample_row(s: &Snapshot, i: usize) -> DealRow {
        let d = &s.deals[i];
        let name = |id: Option<NameId>| id.map(|i| s.names.name(i).to_owned());
        DealRow {
            id: d.id,
            external_id: format!("{}-copy", d.external_id),
            account: name(d.account),
            sector: name(d.sector),
            region: name(d.region),
            owner: name(d.owner),
            contact_role: name(d.contact_role),
            amount: d.amount,
            currency: s.names.name(d.currency).to_owned(),
            status: Status::Open,
            created_at: d.created_at,
            closed_at: None,
            interaction_count: d.interaction_count,
            response_hours: d.response_hours,
            last_activity_at: d.last_activity_at,
        }
    }
}
