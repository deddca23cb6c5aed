//! A value derived from the whole database and kept in memory: rebuilt when the caller finds
//! it stale, one build at a time, and optionally rebuilt in the background while readers keep
//! the previous value. The priority list (`ranking`) and the insights snapshot (`insights`) are
//! both kept this way; each decides what "fresh" means.

use std::future::Future;
use std::sync::{Arc, Mutex};

/// The kept value and the lock that lets one build run at a time.
#[derive(Debug)]
pub struct Refreshing<T> {
    current: Arc<Mutex<Option<Arc<T>>>>,
    building: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Default for Refreshing<T> {
    fn default() -> Self {
        Refreshing {
            current: Arc::default(),
            building: Arc::default(),
        }
    }
}

fn store<T>(slot: &Mutex<Option<Arc<T>>>, value: Option<Arc<T>>) {
    if let Ok(mut current) = slot.lock() {
        *current = value;
    }
}

impl<T: Send + Sync + 'static> Refreshing<T> {
    /// The kept value, fresh or not.
    pub fn get(&self) -> Option<Arc<T>> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    /// The kept value if `is_fresh` says so, else a new one from `build`. Concurrent callers
    /// wait for one build. With `release_old`, the stale value is dropped before building, so
    /// two never sit in memory together.
    pub async fn fresh<E, Fut>(
        &self,
        is_fresh: impl Fn(&T) -> bool,
        release_old: bool,
        build: impl FnOnce() -> Fut,
    ) -> Result<Arc<T>, E>
    where
        Fut: Future<Output = Result<Arc<T>, E>>,
    {
        if let Some(hit) = self.get().filter(|v| is_fresh(v)) {
            return Ok(hit);
        }
        let _building = self.building.lock().await;
        // Another caller may have built it while this one waited.
        if let Some(hit) = self.get().filter(|v| is_fresh(v)) {
            return Ok(hit);
        }
        if release_old {
            store(&self.current, None);
        }
        let value = build().await?;
        store(&self.current, Some(value.clone()));
        Ok(value)
    }

    /// Starts `build` in the background unless a build is already running; the kept value
    /// stays readable meanwhile. A failed build is logged and the old value kept.
    pub fn rebuild_in_background<E, Fut>(&self, what: &'static str, build: Fut)
    where
        E: std::fmt::Display,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
    {
        let Ok(guard) = self.building.clone().try_lock_owned() else {
            return;
        };
        let current = self.current.clone();
        tokio::spawn(async move {
            match build.await {
                Ok(value) => store(&current, Some(value)),
                Err(e) => tracing::warn!(error = %e, "background rebuild of the {what} failed"),
            }
            drop(guard);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_once_while_fresh_and_again_when_not() {
        let kept: Refreshing<u32> = Refreshing::default();
        let v = kept
            .fresh(|_| true, false, || async { Ok::<_, String>(Arc::new(1)) })
            .await;
        assert_eq!(v.as_deref(), Ok(&1));
        let v = kept
            .fresh(|_| true, false, || async { Ok::<_, String>(Arc::new(2)) })
            .await;
        assert_eq!(v.as_deref(), Ok(&1), "fresh: not rebuilt");
        let v = kept
            .fresh(|v| *v == 2, true, || async { Ok::<_, String>(Arc::new(2)) })
            .await;
        assert_eq!(v.as_deref(), Ok(&2));
        let failed = kept
            .fresh(
                |_| false,
                false,
                || async { Err::<Arc<u32>, _>("down".to_string()) },
            )
            .await;
        assert!(failed.is_err());
        assert_eq!(
            kept.get().as_deref(),
            Some(&2),
            "a failed build keeps the old value"
        );
    }

    #[tokio::test]
    async fn background_rebuilds_keep_the_old_value_readable_and_run_one_at_a_time() {
        let kept: Refreshing<u32> = Refreshing::default();
        let _ = kept
            .fresh(|_| true, false, || async { Ok::<_, String>(Arc::new(1)) })
            .await;
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        kept.rebuild_in_background("test value", async move {
            let _ = wait.await;
            Ok::<_, String>(Arc::new(2))
        });
        // A second request while the first runs is ignored.
        kept.rebuild_in_background("test value", async { Ok::<_, String>(Arc::new(3)) });
        assert_eq!(kept.get().as_deref(), Some(&1));
        let _ = release.send(());
        for _ in 0..100 {
            if kept.get().as_deref() == Some(&2) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the background build never landed");
    }
}
