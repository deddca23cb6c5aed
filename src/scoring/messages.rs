//! Factor explanations in words a rep understands, with the won-deal reference.

use super::{Direction, Factor, ScoringConfig};
use crate::domain::Opportunity;
use crate::features::raw::display_numeric;
use crate::features::spec::{CoreField, Source};
use crate::features::{Encoder, FittedFeature};
use crate::model::{Explanation, ModelArtifact};

/// Most factors listed per direction.
const MAX_PER_DIRECTION: usize = 5;
/// Contributions smaller than this (log-odds) are not worth a sentence.
const MIN_CONTRIBUTION: f64 = 0.01;

fn label(feature: &FittedFeature) -> String {
    match feature.def.source() {
        Source::Core(CoreField::CycleDays) => "Deal age".into(),
        Source::Core(CoreField::InteractionCount) => "Interactions".into(),
        Source::Core(CoreField::ResponseHours) => "Response time".into(),
        Source::Core(CoreField::Amount) => "Amount".into(),
        Source::Core(CoreField::Sector) => "Sector".into(),
        Source::Core(CoreField::ContactRole) => "Contact role".into(),
        Source::Core(CoreField::Region) => "Region".into(),
        Source::Core(CoreField::Owner) => "Owner".into(),
        Source::Attribute(name) => name.replace('_', " "),
    }
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

fn numeric_message(
    artifact: &ModelArtifact,
    index: usize,
    feature: &FittedFeature,
    opp: &Opportunity,
    raw: Option<f64>,
    value: &str,
    config: &ScoringConfig,
) -> (String, Option<String>) {
    let name = label(feature);
    let reference = artifact
        .success_factors
        .get(index)
        .and_then(|f| f.numeric.as_ref())
        .map(|n| n.for_sector(opp.sector.as_deref(), config.min_sector_won));
    let median = reference.and_then(|r| r.won.as_ref()).map(|q| q.median);
    let reference_text = median.map(|m| format!("won median {}", display_numeric(&feature.def.source(), m)));
    let (Some(x), Some(group), Some(m)) = (raw, reference, median) else {
        return (format!("{name}: {value}"), reference_text);
    };
    let median_text = display_numeric(&feature.def.source(), m);
    let is_time = matches!(feature.def.source(), Source::Core(CoreField::ResponseHours));
    let message = match group.fraction_won_at_or_below(x) {
        Some(f) if x > m => {
            let word = if is_time { "slower" } else { "higher" };
            format!(
                "{name} of {value} is {word} than {} of won deals (median {median_text})",
                pct(f)
            )
        }
        Some(f) if x < m => {
            let word = if is_time { "faster" } else { "lower" };
            format!(
                "{name} of {value} is {word} than {} of won deals (median {median_text})",
                pct(1.0 - f)
            )
        }
        _ => format!("{name} of {value} is in line with won deals (median {median_text})"),
    };
    (message, reference_text)
}

fn categorical_message(
    artifact: &ModelArtifact,
    index: usize,
    feature: &FittedFeature,
    value: &str,
) -> (String, Option<String>) {
    let name = label(feature);
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
            format!(
                "{name} {}: {} of {} closed deals with it were won (all deals: {})",
                value.replace('_', " "),
                pct(s.win_rate),
                s.count,
                pct(overall)
            ),
            Some(format!("win rate {} (overall {})", pct(s.win_rate), pct(overall))),
        ),
        _ => (
            format!(
                "{name} {}: too rare in past deals to compare",
                value.replace('_', " ")
            ),
            None,
        ),
    }
}

/// Up to 5 raising and 5 lowering factors, strongest first within each direction.
pub fn factors(
    artifact: &ModelArtifact,
    opp: &Opportunity,
    explanation: &Explanation,
    config: &ScoringConfig,
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
                Encoder::Numeric(_) => numeric_message(artifact, i, feature, opp, c.raw, &c.value, config),
                Encoder::Categorical(_) => categorical_message(artifact, i, feature, &c.value),
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
