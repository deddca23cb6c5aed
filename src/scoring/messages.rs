//! Factor explanations in words a rep understands, with the won-deal reference.

use super::text::{self, Standing};
use super::{Direction, Factor, ScoringConfig};
use crate::domain::Opportunity;
use crate::features::spec::{CoreField, Source};
use crate::features::{Encoder, FittedFeature};
use crate::i18n::Lang;
use crate::model::{Explanation, FeatureContribution, ModelArtifact};

/// Most factors listed per direction.
const MAX_PER_DIRECTION: usize = 5;
/// Contributions smaller than this (log-odds) are not worth a sentence.
const MIN_CONTRIBUTION: f64 = 0.01;

fn numeric_message(
    artifact: &ModelArtifact,
    index: usize,
    feature: &FittedFeature,
    opp: &Opportunity,
    contribution: &FeatureContribution,
    config: &ScoringConfig,
    lang: Lang,
) -> (String, Option<String>) {
    let (raw, value) = (contribution.raw, contribution.value.as_str());
    let source = feature.def.source();
    let name = text::feature_label(source, lang);
    let reference = artifact
        .success_factors
        .get(index)
        .and_then(|f| f.numeric.as_ref())
        .map(|n| n.for_sector(opp.sector.as_deref(), config.min_sector_won));
    let median = reference.and_then(|r| r.won.as_ref()).map(|q| q.median);
    let reference_text = median.map(|m| text::won_median(&text::quantity(source, m, lang), lang));
    let (Some(x), Some(group), Some(m)) = (raw, reference, median) else {
        return (text::bare_factor(&name, value, lang), reference_text);
    };
    let median_text = text::quantity(source, m, lang);
    let is_time = matches!(source, Source::Core(CoreField::ResponseHours));
    let standing = match group.fraction_won_at_or_below(x) {
        Some(f) if x > m => Standing::Above(f),
        Some(f) if x < m => Standing::Below(1.0 - f),
        _ => Standing::InLine,
    };
    let message = text::numeric_factor(&name, value, standing, is_time, &median_text, lang);
    (message, reference_text)
}

fn categorical_message(
    artifact: &ModelArtifact,
    index: usize,
    feature: &FittedFeature,
    value: &str,
    lang: Lang,
) -> (String, Option<String>) {
    let source = feature.def.source();
    let name = text::feature_label(source, lang);
    let level = text::level(source, value, lang);
    let closed = artifact.training.won + artifact.training.lost;
    let overall = if closed > 0 {
        artifact.training.won as f64 / closed as f64
    } else {
        0.0
    };
    let stat = artifact
        .success_factors
        .get(index)
        .and_then(|f| f.categories.iter().find(|c| c.level == value));
    match stat {
        Some(s) if s.count > 0 => (
            text::category_factor(&name, &level, s.win_rate, s.count, overall, lang),
            Some(text::category_reference(s.win_rate, overall, lang)),
        ),
        _ => (text::rare_category(&name, &level, lang), None),
    }
}

/// Up to 5 raising and 5 lowering factors, strongest first within each direction, worded in
/// `lang` (the explanation's display values must be in `lang` too, see [`crate::model::explain_in`]).
pub fn factors(
    artifact: &ModelArtifact,
    opp: &Opportunity,
    explanation: &Explanation,
    config: &ScoringConfig,
    lang: Lang,
) -> Vec<Factor> {
    let mut ranked: Vec<(usize, f64)> = explanation
        .contributions
        .iter()
        .enumerate()
        .filter(|(_, c)| c.contribution.abs() >= MIN_CONTRIBUTION)
        .map(|(i, c)| (i, c.contribution))
        .collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let raising = ranked.iter().filter(|(_, c)| *c > 0.0).take(MAX_PER_DIRECTION);
    let lowering = ranked.iter().filter(|(_, c)| *c < 0.0).take(MAX_PER_DIRECTION);
    raising
        .chain(lowering)
        .filter_map(|&(i, contribution)| {
            let feature = artifact.features.features.get(i)?;
            let c = explanation.contributions.get(i)?;
            let (message, reference) = match &feature.encoder {
                Encoder::Numeric(_) => numeric_message(artifact, i, feature, opp, c, config, lang),
                Encoder::Categorical(_) => categorical_message(artifact, i, feature, &c.value, lang),
            };
            Some(Factor {
                feature: c.feature.clone(),
                value: c.value.clone(),
                contribution,
                direction: if contribution > 0.0 {
                    Direction::Raises
                } else {
                    Direction::Lowers
                },
                reference,
                message,
            })
        })
        .collect()
}
