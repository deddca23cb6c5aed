//! Records in a freshly trained artifact where its grades and focus classes cut: quantiles of
//! the deals it will score, the deals open in the database when it is trained from one. Without
//! a database or with too few open deals none are recorded, and the configured fixed cuts apply.

use chrono::Utc;

use crate::domain::{Deal, Opportunity};
use crate::features::FeatureSpec;
use crate::model::ModelArtifact;
use crate::scoring::cuts::derive;
use crate::store::{opportunities, Db};
use crate::training::compact::{reads_attributes, sources_for};

/// Fewest open deals whose quantiles are worth recording.
pub const MIN_DEALS: usize = 20;

/// The deals open in `db`, read with what `spec`'s features read: the cut points score each
/// deal and need nothing else of it (none without a database).
pub async fn read_open(db: Option<&Db>, spec: &FeatureSpec) -> Result<Vec<Opportunity>, String> {
    let mut open = Vec::new();
    if let Some(db) = db {
        let attributes = reads_attributes(&sources_for(&[spec]));
        let mut pages = opportunities::OpenFeaturePages::new(db, attributes);
        while let Some(page) =
            (pages.next_page().await).map_err(|e| format!("cannot load the open deals: {e}"))?
        {
            open.extend(page);
        }
    }
    Ok(open)
}

/// `artifact` with its `cut_points` set from `open` (the deals [`read_open`] read with the
/// spec the artifact was trained on, or a wider one) or left absent when there are fewer than
/// [`MIN_DEALS`], and its checksum renewed. The CPU work runs on a blocking thread, a
/// low-priority one when `low_priority`.
pub async fn calibrate(
    artifact: ModelArtifact,
    open: Vec<Opportunity>,
    low_priority: bool,
) -> Result<ModelArtifact, String> {
    let work = move || {
        let mut artifact = artifact;
        if open.len() >= MIN_DEALS {
            let open: Vec<&Deal> = open.iter().map(|o| &o.deal).collect();
            artifact.cut_points = derive(&artifact, &open, Utc::now(), "open");
            artifact.seal();
        }
        artifact
    };
    if low_priority {
        super::background::run_low_priority("dealscore-cuts", work).await
    } else {
        tokio::task::spawn_blocking(work).await.map_err(|e| e.to_string())
    }
}
