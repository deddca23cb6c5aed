//! Wall-clock time per phase of a training job, so that a slow run says where its time went.
//! Reported as `phases: {name: seconds}` in the JSON report, in the order the phases ran.

use std::time::Instant;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::TrainProgress;

/// Seconds spent in each phase, in the order the phases first ran. A phase entered twice adds up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases(Vec<(String, f64)>);

impl Phases {
    /// Adds `seconds` to phase `name` (appended when new).
    pub fn add(&mut self, name: &str, seconds: f64) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s += seconds,
            None => self.0.push((name.to_owned(), seconds)),
        }
    }

    /// Seconds spent in phase `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }

    /// Every phase and its seconds, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, s)| (n.as_str(), *s))
    }

    /// Puts `other`'s phases before this one's (a job's loading runs before training).
    pub fn prepend(&mut self, other: Phases) {
        let mut merged = other;
        for (name, seconds) in self.0.drain(..) {
            merged.add(&name, seconds);
        }
        *self = merged;
    }
}

impl Serialize for Phases {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, seconds) in &self.0 {
            // Milliseconds are all a phase's time is worth; more digits are noise.
            map.serialize_entry(name, &((seconds * 1000.0).round() / 1000.0))?;
        }
        map.end()
    }
}

/// Times consecutive phases: entering one ends the previous one, and announces the new one as
/// [`TrainProgress::Phase`].
#[derive(Debug)]
pub struct PhaseClock {
    phases: Phases,
    current: Option<(&'static str, Instant)>,
}

impl PhaseClock {
    /// A clock with no phase running yet.
    pub fn new() -> PhaseClock {
        PhaseClock {
            phases: Phases::default(),
            current: None,
        }
    }

    /// Ends the running phase and starts `name`.
    pub fn enter(&mut self, name: &'static str, progress: &mut dyn FnMut(TrainProgress)) {
        self.stop();
        self.current = Some((name, Instant::now()));
        progress(TrainProgress::Phase {
            name: name.to_owned(),
        });
    }

    /// Ends the running phase, if any.
    pub fn stop(&mut self) {
        if let Some((name, started)) = self.current.take() {
            self.phases.add(name, started.elapsed().as_secs_f64());
        }
    }

    /// Ends the running phase and returns every phase's time.
    pub fn finish(mut self) -> Phases {
        self.stop();
        self.phases
    }
}

impl Default for PhaseClock {
    fn default() -> Self {
        PhaseClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_keep_their_order_and_serialise_as_a_map() {
        let mut p = Phases::default();
        p.add("encode", 1.5);
        p.add("cross_validation", 2.0);
        p.add("encode", 0.25);
        let mut load = Phases::default();
        load.add("load", 3.0);
        p.prepend(load);
        assert_eq!(p.get("encode"), Some(1.75));
        let names: Vec<&str> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["load", "encode", "cross_validation"]);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"load":3.0,"encode":1.75,"cross_validation":2.0}"#
        );
    }

    #[test]
    fn a_clock_announces_each_phase_and_times_it() {
        let mut seen = Vec::new();
        let mut clock = PhaseClock::new();
        clock.enter("encode", &mut |p| seen.push(p));
        clock.enter("cross_validation", &mut |p| seen.push(p));
        let phases = clock.finish();
        assert_eq!(
            seen,
            [
                TrainProgress::Phase {
                    name: "encode".into()
                },
                TrainProgress::Phase {
                    name: "cross_validation".into()
                }
            ]
        );
        assert!(phases.get("encode").is_some_and(|s| s >= 0.0));
        assert!(phases.get("cross_validation").is_some());
    }
}
