//! Limits failed sign-ins per client address: after `limit` failures within a minute, further
//! attempts from that address are refused (HTTP 429) until the minute has passed. Keys are
//! 256-bit random, so guessing one is not the threat; this keeps a script from turning the
//! sign-in form into a stream of key lookups against the database, and makes the attempt visible
//! in the log.
//!
//! The address is the TCP peer's. Behind a reverse proxy every client shares the proxy's
//! address, so the limit then applies to all of them together (docs/web-ui.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses remembered before old windows are swept (bounds memory under a spray of addresses).
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// Failed sign-ins per client address, over a fixed window.
#[derive(Debug)]
pub struct SignInThrottle {
    limit: u32,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl SignInThrottle {
    /// At most `limit` failures per address per [`WINDOW`]; 0 disables the limit.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `address` has used up its failures at `now`: how long until it may try
    /// again.
    pub fn refused(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let failures = self.failures.lock().ok()?;
        let f = failures.get(&address)?;
        let elapsed = now.saturating_duration_since(f.since);
        (f.count >= self.limit && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    /// Records a failed attempt from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, f| now.saturating_duration_since(f.since) < WINDOW);
        }
        let entry = failures
            .entry(address)
            .or_insert(Failures { since: now, count: 0 });
        if now.saturating_duration_since(entry.since) >= WINDOW {
            *entry = Failures { since: now, count: 0 };
        }
        entry.count += 1;
    }

    /// Forgets `address`'s failures (after it signed in).
    pub fn succeeded(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let throttle = SignInThrottle::new(3);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.refused(a, t0), None);
            throttle.failed(a, t0);
        }
        let wait = throttle.refused(a, t0 + Duration::from_secs(20));
        assert_eq!(wait, Some(Duration::from_secs(40)));
        assert_eq!(throttle.refused(b, t0), None, "other addresses are not affected");
        assert_eq!(throttle.refused(a, t0 + WINDOW), None, "a new window starts");
        throttle.failed(a, t0 + WINDOW);
        assert_eq!(throttle.refused(a, t0 + WINDOW), None, "counted afresh");
    }

    #[test]
    fn success_forgets_and_zero_disables() {
        let throttle = SignInThrottle::new(1);
        let a: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        throttle.failed(a, now);
        assert!(throttle.refused(a, now).is_some());
        throttle.succeeded(a);
        assert_eq!(throttle.refused(a, now), None);
        let off = SignInThrottle::new(0);
        off.failed(a, now);
        off.failed(a, now);
        assert_eq!(off.refused(a, now), None);
    }
}
