//! Dashboard results kept per insights snapshot: a dashboard reread with the same period and
//! filters is served from memory until the data changes (the snapshot's change stamp moves) or
//! [`MAX_AGE`] passes (reports that depend on "now", like the at-risk list, stay fresh).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::insights::at_risk::AtRiskReport;
use crate::insights::resources::ResourcesReport;

/// Longest reuse of a result without any write.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Results kept per page kind (distinct filter combinations).
const CAPACITY: usize = 32;

/// One remembered result: query key, snapshot stamp, when it was computed, the result.
#[derive(Debug)]
struct Entry<V> {
    key: String,
    stamp: i64,
    at: Instant,
    value: Arc<V>,
}

/// A small most-recently-used map from a query key to a result of one snapshot.
#[derive(Debug)]
pub struct Memo<V> {
    entries: Mutex<VecDeque<Entry<V>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl<V> Memo<V> {
    /// The result for `key` computed from the snapshot `stamp`, if still fresh.
    pub fn get(&self, key: &str, stamp: i64) -> Option<Arc<V>> {
        let mut entries = self.entries.lock().ok()?;
        let position = entries
            .iter()
            .position(|e| e.key == key && e.stamp == stamp && e.at.elapsed() < MAX_AGE)?;
        let entry = entries.remove(position)?;
        let value = entry.value.clone();
        entries.push_front(entry);
        Some(value)
    }

    /// Remembers `value`, dropping the least recently used result beyond the capacity and every
    /// result of an older snapshot.
    pub fn put(&self, key: String, stamp: i64, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|e| e.stamp == stamp && e.key != key);
            entries.push_front(Entry {
                key,
                stamp,
                at: Instant::now(),
                value,
            });
            entries.truncate(CAPACITY);
        }
    }
}

/// The per-page memos, shared by every worker.
#[derive(Debug, Default)]
pub struct PageMemos {
    /// Pipeline: the reports and the filter choices.
    pub pipeline: Memo<crate::web::pages::pipeline::PipelineView>,
    /// Sales process: the at-risk list (level measures are cheap beside it but kept with it).
    pub process: Memo<(Vec<crate::web::pages::process::LevelMeasures>, AtRiskReport)>,
    /// Resources (objectives are read fresh: they have no change stamp).
    pub resources: Memo<ResourcesReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_reused_only_for_the_same_key_and_snapshot() {
        let memo: Memo<u32> = Memo::default();
        memo.put("a".into(), 1, Arc::new(10));
        assert_eq!(memo.get("a", 1).as_deref(), Some(&10));
        assert_eq!(memo.get("a", 2), None, "a newer snapshot");
        assert_eq!(memo.get("b", 1), None);
        memo.put("b".into(), 2, Arc::new(20));
        assert_eq!(memo.get("a", 1), None, "older snapshots are dropped");
        for i in 0..40 {
            memo.put(format!("k{i}"), 2, Arc::new(i));
        }
        assert_eq!(memo.get("b", 2), None, "least recently used beyond capacity");
        assert_eq!(memo.get("k39", 2).as_deref(), Some(&39));
    }
}
