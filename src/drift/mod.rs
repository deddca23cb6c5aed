//! Drift detection: how far today's deals have moved from the data the active model learned
//! from, per feature, as a population stability index (PSI).
//!
//! - [`psi`]: the PSI formula, its epsilon and the levels (ok < 0.1 ≤ watch < 0.2 ≤ alert).
//! - [`report`]: binning a population with the artifact's training profile and comparing it.
//! - [`measure`]: reading the populations (open deals, deals closed since training) from the store.
//! - [`gauges`]: the Prometheus gauges and the server's refresh timer.
//!
//! Method and thresholds: `docs/drift.md`.

pub mod gauges;
pub mod measure;
pub mod psi;
pub mod report;

pub use gauges::DriftGauges;
pub use measure::{measure, DriftError};
pub use psi::{DriftLevel, ALERT, EPSILON, WATCH};
pub use report::{BinShift, DriftReport, FeatureDrift, Population, PopulationCounter, PopulationDrift};
