//! Scoring: win probability and its exact additive explanation. A dot product and a sigmoid over
//! the artifact's encoders and coefficients — no linfa on the request path.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::artifact::ModelArtifact;
use crate::domain::Deal;
use crate::features::encode::{display_value, imputed_note, level_name, observe, FeatureCode, ImputedNote};
use crate::features::FittedFeature;
use crate::i18n::Lang;

/// Numerically stable logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Σ coef·x over one feature's active columns: the feature's whole share of the log-odds.
pub fn feature_logit(artifact: &ModelArtifact, feature: &FittedFeature, code: FeatureCode) -> f64 {
    let mut sum = 0.0;
    if let Some((c, v)) = code.column {
        sum += artifact.coefficient(feature.offset + c) * v;
    }
    if let Some(c) = code.indicator {
        sum += artifact.coefficient(feature.offset + c);
    }
    sum
}

/// Log-odds of winning: intercept + Σ coefficient × encoded value.
pub fn logit(artifact: &ModelArtifact, opp: &Deal, now: DateTime<Utc>) -> f64 {
    let mut z = artifact.intercept;
    for feature in &artifact.features.features {
        z += feature_logit(artifact, feature, observe(feature, opp, now).code);
    }
    z
}

/// Probability that the deal is won. `now` sets the age (`cycle_days`) of open deals.
///
/// Allocation-free for core fields and text attributes.
pub fn predict(artifact: &ModelArtifact, opp: &Deal, now: DateTime<Utc>) -> f64 {
    sigmoid(logit(artifact, opp, now))
}

/// A score with every feature's share of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Win probability, sigmoid(`logit`).
    pub probability: f64,
    /// Log-odds of winning.
    pub logit: f64,
    /// Log-odds of an "average" deal: intercept + Σ mean training contribution per feature.
    pub baseline_logit: f64,
    /// sigmoid(`baseline_logit`).
    pub baseline_probability: f64,
    /// One entry per feature, in spec order; contributions sum to `logit − baseline_logit`.
    pub contributions: Vec<FeatureContribution>,
    /// Features whose value was missing and imputed, with what was used.
    pub imputed: Vec<String>,
}

/// One feature's share of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureContribution {
    /// Feature name.
    pub feature: String,
    /// Display value, e.g. `52 h`, `retail`, `missing (imputed 6 h)`.
    pub value: String,
    /// Raw numeric value, when numeric and present.
    pub raw: Option<f64>,
    /// Bin or level used, e.g. `[48,96)`, `retail`, `(other)`.
    pub level: String,
    /// Log-odds relative to the average training deal (positive helps winning).
    pub contribution: f64,
}

/// `feature: note`, with the space French puts before a colon.
fn note_text(note: &ImputedNote, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{}: {}", note.feature, note.message),
        Lang::Fr => format!("{}\u{202F}: {}", note.feature, note.message),
    }
}

/// Scores a deal and splits its log-odds into per-feature contributions.
///
/// Contribution of feature f = (Σ coef·x over f's columns) − (f's mean of the same over the
/// training rows). So the contributions add up to `logit − baseline_logit` exactly (up to
/// floating-point rounding, < 1e-9).
pub fn explain(artifact: &ModelArtifact, opp: &Deal, now: DateTime<Utc>) -> Explanation {
    explain_in(artifact, opp, now, Lang::En)
}

/// [`explain`] with the display values and imputation notes written in `lang`.
pub fn explain_in(artifact: &ModelArtifact, opp: &Deal, now: DateTime<Utc>, lang: Lang) -> Explanation {
    let features = &artifact.features.features;
    let mut contributions = Vec::with_capacity(features.len());
    let mut imputed = Vec::new();
    let mut logit = artifact.intercept;
    let mut baseline_logit = artifact.intercept;
    for (i, feature) in features.iter().enumerate() {
        let obs = observe(feature, opp, now);
        let raw_logit = feature_logit(artifact, feature, obs.code);
        let mean = artifact
            .success_factors
            .get(i)
            .map_or(0.0, |s| s.mean_contribution);
        logit += raw_logit;
        baseline_logit += mean;
        if let Some(note) = imputed_note(feature, &obs, lang) {
            imputed.push(note_text(&note, lang));
        }
        contributions.push(FeatureContribution {
            feature: feature.def.name().to_owned(),
            value: display_value(feature, &obs, lang),
            raw: obs.raw,
            level: level_name(feature, &obs),
            contribution: raw_logit - mean,
        });
    }
    Explanation {
        probability: sigmoid(logit),
        logit,
        baseline_logit,
        baseline_probability: sigmoid(baseline_logit),
        contributions,
        imputed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }
}
