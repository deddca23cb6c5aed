//! Warms, right after startup, the in-memory views that the first page views would otherwise
//! build while someone waits: the insights snapshot, the attribute columns the competitors
//! insight reads, and the priority list in each language.
//! At 1,000,000 deals these take tens of seconds to build (BENCHMARKS.md), so without warming the
//! first person to open a dashboard after a restart waits that long.
//!
//! Warming goes through the same single-flight builds as requests do, so a request that arrives
//! mid-warm waits for the build in progress instead of starting another one. The builds run one
//! after the other so that they take one core, not both.

use std::time::Instant;

use crate::config::InsightsConfig;
use crate::i18n::Lang;
use crate::insights::breakdown::Field;
use crate::insights::InsightsCache;
use crate::ranking::PriorityCache;
use crate::scoring::ScoringConfig;
use crate::serving::ActiveModel;
use crate::store::Db;

/// The custom attributes the competitors insight reads (its competitor and loss reason fields,
/// when they are attributes): at 1,000,000 deals reading one takes seconds.
pub fn competitor_attributes(config: &InsightsConfig) -> Vec<String> {
    [&config.competitor_field, &config.loss_reason_field]
        .into_iter()
        .filter_map(|f| match f.as_deref().and_then(Field::parse) {
            Some(Field::Attribute(name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// Builds the insights snapshot and the columns of `attributes` on it, then (when a model is
/// active) the priority list in every language. Failures are logged: the views are then built on
/// first use, as without warming.
pub async fn warm(
    db: &Db,
    model: &ActiveModel,
    scoring: &ScoringConfig,
    insights: &InsightsCache,
    priority: &PriorityCache,
    attributes: &[String],
) {
    let started = Instant::now();
    match insights.snapshot(db).await {
        Ok(snapshot) => {
            for name in attributes {
                if let Err(e) = insights.attribute(db, &snapshot, name).await {
                    tracing::warn!(error = %e, attribute = %name, "warming an attribute column failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "warming the insights snapshot failed"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_attribute_fields_are_warmed() {
        let config = InsightsConfig {
            competitor_field: Some("attr.competitor".into()),
            loss_reason_field: Some("sector".into()),
            ..InsightsConfig::default()
        };
        assert_eq!(competitor_attributes(&config), ["competitor"]);
        assert!(competitor_attributes(&InsightsConfig::default()).is_empty());
    }
}
