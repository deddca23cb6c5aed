//! Warms, right after startup, the in-memory views that the first page views would otherwise
//! build while someone waits: the insights snapshot and the priority list in each language.
//! At 1,000,000 deals these take tens of seconds to build (BENCHMARKS.md), so without warming the
//! first person to open a dashboard after a restart waits that long.
//!
//! Warming goes through the same single-flight builds as requests do, so a request that arrives
//! mid-warm waits for the build in progress instead of starting another one. The builds run one
//! after the other so that they take one core, not both.

use std::time::Instant;

use crate::i18n::Lang;
use crate::insights::InsightsCache;
use crate::ranking::PriorityCache;
use crate::scoring::ScoringConfig;
use crate::serving::ActiveModel;
use crate::store::Db;

/// Builds the insights snapshot, then (when a model is active) the priority list in every
/// language. Failures are logged: the views are then built on first use, as without warming.
pub async fn warm(
    db: &Db,
    model: &ActiveModel,
    scoring: &ScoringConfig,
    insights: &InsightsCache,
    priority: &PriorityCache,
) {
    let started = Instant::now();
    if let Err(e) = insights.snapshot(db).await {
        tracing::warn!(error = %e, "warming the insights snapshot failed");
    }
    if let Some(artifact) = model.get() {
        for lang in Lang::ALL {
            if let Err(e) = priority.scored(db, artifact.clone(), scoring, lang).await {
                tracing::warn!(error = %e, lang = lang.code(), "warming the priority list failed");
            }
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "in-memory views warmed"
    );
}
