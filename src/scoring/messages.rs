//! Factor explanations in words a rep understands, with the won-deal reference.

use super::phrases::{FeaturePhrases, Phrases};
use super::text::{self, Standing};
use super::{Direction, Factor, ScoringConfig};
use crate::domain::Deal;
use crate::features::spec::{CoreField, Source};
use crate::features::{Encoder, FittedFeature};
use crate::i18n::Lang;
use crate::model::factors::NumericReference;
use crate::model::{Explanation, FeatureContribution, ModelArtifact};

/// Most factors listed per direction.
const MAX_PER_DIRECTION: usize = 5;
/// Contributions smaller than this (log-odds) are not worth a sentence.
const MIN_CONTRIBUTION: f64 = 0.01;

fn numeric_message(
    reference: Option<&NumericReference>,
    feature: &FittedFeature,
    words: &FeaturePhrases,
    opp: &Deal,
    contribution: &FeatureContribution,
    config: &ScoringConfig,
    lang: Lang,
) -> (String, Option<String>) {
    let (raw, value) = (contribution.raw, contribution.value.as_str());
    let name = words.label.as_str();
    let picked = reference.map(|r| r.pick_group(opp.sector.as_deref(), config.min_sector_won));
    let median = words.median(picked.and_then(|(key, _)| key));
    let reference_text = median.map(|m| m.reference.clone());
    let (Some(x), Some((_, group)), Some(m)) = (raw, picked, median) else {
        return (text::bare_factor(name, value, lang), reference_text);
    };
    let is_time = matches!(feature.def.source(), Source::Core(CoreField::ResponseHours));
    let standing = match group.fraction_won_at_or_below(x) {
        Some(f) if x > m.value => Standing::Above(f),
        Some(f) if x < m.value => Standing::Below(1.0 - f),
        _ => Standing::InLine,
    };
    let message = text::numeric_factor(name, value, standing, is_time, &m.text, lang);
    (message, reference_text)
}

fn categorical_message(
    feature: &FittedFeature,
    words: &FeaturePhrases,
    value: &str,
    lang: Lang,
) -> (String, Option<String>) {
    match words.category(value) {
        Some(p) => (p.message.clone(), Some(p.reference.clone())),
        None => {
            let level = text::level(feature.def.source(), value, lang);
            (text::rare_category(&words.label, &level, lang), None)
        }
    }
}

/// Up to 5 raising and 5 lowering factors, strongest first within each direction, worded in
/// `lang` (the explanation's display values must be in `lang` too, see [`crate::model::explain_in`]).
pub fn factors(
    artifact: &ModelArtifact,
    phrases: &Phrases,
    opp: &Deal,
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
            let words = phrases.feature(i)?;
            let (message, reference) = match &feature.encoder {
                Encoder::Numeric(_) => {
                    let reference = artifact.success_factors.get(i).and_then(|f| f.numeric.as_ref());
                    numeric_message(reference, feature, words, opp, c, config, lang)
                }
                Encoder::Categorical(_) => categorical_message(feature, words, &c.value, lang),
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
