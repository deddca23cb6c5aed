//! Which instants a training job learns from when the analyst does not say: snapshots of each
//! closed deal's open life when the database holds the history to rebuild them, final states
//! otherwise (docs/scoring-method.md).

use crate::store::Db;
use crate::training::snapshots::{SnapshotPlan, DEFAULT_AGES};
use crate::training::SplitKind;

/// What a training request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotRequest {
    /// Nothing: [`resolve`] decides.
    Default,
    /// Final states, whatever the data holds (`--final-state`, `"final_state": true`).
    FinalState,
    /// This plan.
    Plan(SnapshotPlan),
}

/// The plan a job runs with: the one asked for; or, by default, snapshots at [`DEFAULT_AGES`]
/// when the deals come from the database `source`, the split is by time and some closed deal has
/// timestamped activities — otherwise final states (deals from a file, a random split, or a CRM
/// history without activities, whose snapshots would know nothing of the interactions).
pub async fn resolve(
    request: &SnapshotRequest,
    source: Option<&Db>,
    split: SplitKind,
) -> Result<Option<SnapshotPlan>, sqlx::Error> {
    match (request, source) {
        (SnapshotRequest::Plan(plan), _) => Ok(Some(plan.clone())),
        (SnapshotRequest::FinalState, _) | (SnapshotRequest::Default, None) => Ok(None),
        (SnapshotRequest::Default, Some(db)) => {
            if split != SplitKind::Time || !crate::store::activities::any_on_closed_deals(db).await? {
                return Ok(None);
            }
            Ok(Some(SnapshotPlan::Ages(DEFAULT_AGES.to_vec())))
        }
    }
}
