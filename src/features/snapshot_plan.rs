//! Which instants of its open life a closed deal is seen at when a model learns from deals as
//! they stood while open (`training::snapshots`), recorded in the model artifact.

use chrono::{DateTime, Duration, Utc};

/// Most snapshots per deal a job may ask for.
pub const MAX_PER_DEAL: usize = 12;

/// Most ages a job may list.
pub const MAX_AGES: usize = 24;

/// Which instants of its open life a closed deal is seen at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPlan {
    /// This many instants spread evenly over each deal's open life: every deal weighs the same.
    PerDeal(usize),
    /// Each of these ages (days since creation) the deal reached while open: a deal weighs as
    /// much as it stayed open, like the open deals on any given day. A deal that closed before
    /// the first age is seen once, halfway through its life.
    Ages(Vec<u32>),
}

impl SnapshotPlan {
    /// The instants a deal open from `created` to `closed` is seen at.
    pub fn instants(&self, created: DateTime<Utc>, closed: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        match self {
            SnapshotPlan::PerDeal(n) => instants(created, closed, (*n).clamp(1, MAX_PER_DEAL)),
            SnapshotPlan::Ages(ages) => {
                let seen: Vec<DateTime<Utc>> = ages
                    .iter()
                    .map(|days| created + Duration::days(i64::from(*days)))
                    .filter(|at| *at < closed)
                    .collect();
                if seen.is_empty() {
                    instants(created, closed, 1)
                } else {
                    seen
                }
            }
        }
    }

    /// Checks the plan: a count of 1–[`MAX_PER_DEAL`], or 1–[`MAX_AGES`] distinct ages.
    pub fn check(&self) -> Result<(), String> {
        match self {
            SnapshotPlan::PerDeal(n) if !(1..=MAX_PER_DEAL).contains(n) => Err(format!(
                "snapshots per deal must be between 1 and {MAX_PER_DEAL}, got {n}"
            )),
            SnapshotPlan::Ages(ages) if ages.is_empty() || ages.len() > MAX_AGES => Err(format!(
                "between 1 and {MAX_AGES} snapshot ages are needed, got {}",
                ages.len()
            )),
            SnapshotPlan::Ages(ages) if ages.windows(2).any(|w| w[0] >= w[1]) => {
                Err("snapshot ages must be listed in increasing order, each once".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// The instants a deal open from `created` to `closed` is seen at: `per_deal` points spread
/// evenly inside its open life (`i / (per_deal + 1)` of the way, for i = 1..=per_deal), so none
/// is the creation or the close itself.
pub fn instants(created: DateTime<Utc>, closed: DateTime<Utc>, per_deal: usize) -> Vec<DateTime<Utc>> {
    let life = (closed - created).num_milliseconds();
    let parts = per_deal as i64 + 1;
    (1..parts)
        .map(|i| created + Duration::milliseconds(life * i / parts))
        .collect()
}
