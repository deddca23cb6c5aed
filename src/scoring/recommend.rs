//! The next intervention, by counterfactual rescoring: move each actionable feature to the
//! won-deal reference (within its bounds and direction), rescore, rank by uplift.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{self, Lever};
use super::ScoringConfig;
use crate::domain::{ContactRole, Deal};
use crate::features::encode::{encode_category, encode_numeric, observe, FeatureCode};
use crate::features::spec::{CoreField, Direction, Source};
use crate::features::{Encoder, FittedFeature};
use crate::i18n::Lang;
use crate::model::predict::feature_logit;
use crate::model::{sigmoid, ModelArtifact};

/// Smallest uplift (probability, 0–1) worth recommending.
const MIN_UPLIFT: f64 = 0.001;

/// How levers are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    /// By uplift in win probability (default).
    #[default]
    Probability,
    /// By uplift in expected value (uplift × amount).
    Value,
}

/// One recommended change.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Intervention {
    /// The actionable feature.
    pub feature: String,
    /// The spec's label for the lever, e.g. "Answer the prospect faster" (as the feature spec
    /// writes it, in every language).
    pub action: String,
    /// Plain-language sentence with the before → after probability.
    pub message: String,
    /// The deal's current value, as displayed in the answer's language (absent when missing).
    pub current_value: Option<String>,
    /// The value to reach, as displayed in the answer's language.
    pub target_value: String,
    /// Win probability once the target is reached (everything else unchanged).
    pub probability_after: f64,
    /// probability_after − probability.
    pub uplift: f64,
    /// uplift × amount, when the deal has an amount.
    pub expected_value_uplift: Option<f64>,
}

/// Features that describe the deal rather than what a rep does: never recommended as changes,
/// whatever a spec says.
fn never_a_lever(source: Source<'_>) -> bool {
    matches!(
        source,
        Source::Core(CoreField::CycleDays | CoreField::Sector | CoreField::Region | CoreField::Owner)
    )
}

enum Target {
    Number(f64),
    Level(String),
}

/// How `feature` encodes once its value is `target`: exactly what [`observe`] reads from a copy
/// of the deal holding that value (integral interaction counts, normalised contact roles),
/// without copying the deal. `None` when the target cannot be set on this feature.
fn target_code(feature: &FittedFeature, source: Source<'_>, target: &Target) -> Option<FeatureCode> {
    let finite = |x: f64| x.is_finite().then_some(x);
    match (&feature.encoder, source, target) {
        (Encoder::Numeric(enc), Source::Core(CoreField::InteractionCount), Target::Number(x)) => {
            Some(encode_numeric(feature, enc, finite((*x as i64) as f64)))
        }
        (
            Encoder::Numeric(enc),
            Source::Core(
                CoreField::ResponseHours
                | CoreField::Amount
                | CoreField::InteractionsPerWeek
                | CoreField::DaysSinceLastActivity,
            )
            | Source::Attribute(_),
            Target::Number(x),
        ) => Some(encode_numeric(feature, enc, finite(*x))),
        (Encoder::Categorical(enc), Source::Core(CoreField::ContactRole), Target::Level(l)) => Some(
            encode_category(enc, ContactRole::normalise(l).as_ref().map(ContactRole::as_str)),
        ),
        (Encoder::Categorical(enc), Source::Attribute(_), Target::Level(l)) => {
            Some(encode_category(enc, Some(l)))
        }
        _ => None,
    }
}

fn numeric_target(
    artifact: &ModelArtifact,
    index: usize,
    feature: &FittedFeature,
    opp: &Deal,
    current: Option<f64>,
    config: &ScoringConfig,
) -> Option<f64> {
    let actionable = feature.def.actionable()?;
    let reference = artifact.success_factors.get(index)?.numeric.as_ref()?;
    let mut target = reference
        .for_sector(opp.sector.as_deref(), config.min_sector_won)
        .won
        .as_ref()?
        .median;
    if let Some(min) = actionable.min() {
        target = target.max(min);
    }
    if let Some(max) = actionable.max() {
        target = target.min(max);
    }
    if matches!(feature.def.source(), Source::Core(CoreField::InteractionCount)) {
        target = target.ceil();
    }
    let helps = match (actionable.direction(), current) {
        (_, None) => true,
        (Direction::Increase, Some(c)) => target > c,
        (Direction::Decrease, Some(c)) => target < c,
        (Direction::Change, Some(c)) => target != c,
    };
    helps.then_some(target)
}

fn categorical_target(artifact: &ModelArtifact, index: usize, feature: &FittedFeature) -> Option<String> {
    let actionable = feature.def.actionable()?;
    if let Some(target) = actionable.target() {
        return Some(match feature.def.source() {
            Source::Core(CoreField::ContactRole) => ContactRole::normalise(target)?.as_str().to_owned(),
            _ => target.to_owned(),
        });
    }
    // No target named: the level with the largest effect that is a real category.
    let Encoder::Categorical(enc) = &feature.encoder else {
        return None;
    };
    artifact
        .success_factors
        .get(index)?
        .levels
        .iter()
        .filter(|l| enc.levels.contains(&l.level) && !l.level.starts_with('('))
        .max_by(|a, b| a.coefficient.total_cmp(&b.coefficient))
        .map(|l| l.level.clone())
}

/// Every helpful lever for this deal, best first, worded in `lang`. `logit` is the deal's
/// log-odds ([`crate::model::Explanation::logit`]).
///
/// The model is additive over features, so a lever's probability is the deal's log-odds with
/// that one feature's share replaced by its share at the target: no copy of the deal, no
/// rescoring of the other features.
pub fn levers(
    artifact: &ModelArtifact,
    opp: &Deal,
    now: DateTime<Utc>,
    logit: f64,
    config: &ScoringConfig,
    rank: RankBy,
    lang: Lang,
) -> Vec<Intervention> {
    let probability = sigmoid(logit);
    let mut out = Vec::new();
    for (index, feature) in artifact.features.features.iter().enumerate() {
        let Some(actionable) = feature.def.actionable() else {
            continue;
        };
        let source = feature.def.source();
        if never_a_lever(source) {
            continue;
        }
        let obs = observe(feature, opp, now);
        let (target, current_text, target_text) = match &feature.encoder {
            Encoder::Numeric(_) => {
                let Some(t) = numeric_target(artifact, index, feature, opp, obs.raw, config) else {
                    continue;
                };
                (
                    Target::Number(t),
                    obs.raw.map(|c| text::quantity(source, c, lang)),
                    text::quantity(source, t, lang),
                )
            }
            Encoder::Categorical(_) => {
                let Some(t) = categorical_target(artifact, index, feature) else {
                    continue;
                };
                if obs.category.as_deref() == Some(t.as_str()) {
                    continue;
                }
                (
                    Target::Level(t.clone()),
                    obs.category.as_deref().map(str::to_owned),
                    t,
                )
            }
        };
        let Some(code) = target_code(feature, source, &target) else {
            continue;
        };
        let after = sigmoid(
            logit - feature_logit(artifact, feature, obs.code) + feature_logit(artifact, feature, code),
        );
        let uplift = after - probability;
        if uplift < MIN_UPLIFT {
            continue;
        }
        let now_text = current_text.as_deref().unwrap_or(text::unknown(lang));
        let (target, now) = (target_text.as_str(), now_text);
        let lever = match source {
            Source::Core(CoreField::ResponseHours) => Lever::Respond { target, now },
            Source::Core(CoreField::InteractionCount) => Lever::Interact { target, now },
            Source::Core(CoreField::ContactRole) => Lever::Engage { target, now },
            Source::Core(CoreField::InteractionsPerWeek) => Lever::Pace { target, now },
            Source::Core(CoreField::DaysSinceLastActivity) => Lever::Reengage { target, now },
            _ => Lever::Other {
                label: actionable.label(),
                feature: feature.def.name(),
                target,
                now,
            },
        };
        out.push(Intervention {
            feature: feature.def.name().to_owned(),
            action: actionable.label().to_owned(),
            message: text::intervention(lever, probability, after, lang),
            current_value: current_text,
            target_value: target_text,
            probability_after: after,
            uplift,
            expected_value_uplift: opp.amount.map(|a| a * uplift),
        });
    }
    match rank {
        RankBy::Probability => out.sort_by(|a, b| b.uplift.total_cmp(&a.uplift)),
        RankBy::Value => out.sort_by(|a, b| {
            b.expected_value_uplift
                .unwrap_or(0.0)
                .total_cmp(&a.expected_value_uplift.unwrap_or(0.0))
                .then(b.uplift.total_cmp(&a.uplift))
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AttributeValue, Opportunity, Status};
    use crate::features::FeatureSpec;
    use crate::model::predict;
    use crate::training::fixtures::trained_on_generated_with;

    /// The deal with the lever's value set: what rescoring a changed copy of the deal means.
    fn with_value(opp: &Opportunity, source: Source<'_>, target: &Target, now: DateTime<Utc>) -> Opportunity {
        let mut changed = opp.clone();
        match (source, target) {
            (Source::Core(CoreField::InteractionCount), Target::Number(x)) => {
                // A deal without interactions is silent since its creation; the copy keeps that
                // silence (a lever changes one feature, everything else equal).
                if changed.last_activity_at.is_none() && changed.interaction_count == Some(0) {
                    changed.last_activity_at = changed.created_at;
                }
                changed.interaction_count = Some(*x as i64)
            }
            (Source::Core(CoreField::ResponseHours), Target::Number(x)) => changed.response_hours = Some(*x),
            (Source::Core(CoreField::ContactRole), Target::Level(l)) => {
                changed.contact_role = ContactRole::normalise(l)
            }
            (Source::Core(CoreField::DaysSinceLastActivity), Target::Number(days)) => {
                // The latest activity moved to `days` before the instant the deal is seen at.
                let seen = opp.seen_at(now).expect("an open deal is seen now");
                let ms = (days * 86_400_000.0).round() as i64;
                changed.last_activity_at = Some(seen - chrono::TimeDelta::milliseconds(ms));
            }
            (Source::Attribute(name), Target::Number(x)) => {
                changed
                    .attributes
                    .insert(name.to_owned(), AttributeValue::Number(*x));
            }
            (Source::Attribute(name), Target::Level(l)) => {
                changed
                    .attributes
                    .insert(name.to_owned(), AttributeValue::Text(l.clone()));
            }
            other => panic!("no such lever in this spec: {:?}", other.0),
        }
        changed
    }

    /// Core levers, the re-engage lever, plus a numeric and a categorical attribute lever.
    fn spec() -> FeatureSpec {
        let mut text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/training/features.toml"))
                .expect("default spec file");
        text.push_str(
            r#"
[[feature]]
name = "days_since_last_activity"
kind = "numeric"
actionable = { direction = "decrease", min = 0.0, label = "Re-engage the prospect" }

[[feature]]
name = "attr.competitors"
kind = "numeric"
transform = "linear"
actionable = { direction = "decrease", min = 0.0, label = "Take a competitor out" }

[[feature]]
name = "attr.lead_source"
kind = "categorical"
min_count = 20
actionable = { direction = "change", label = "Work the best lead source" }
"#,
        );
        FeatureSpec::from_toml(&text).expect("valid spec")
    }

    #[test]
    fn lever_probabilities_equal_rescoring_a_changed_copy_of_the_deal() {
        let (artifact, history, now) = trained_on_generated_with(6_000, 5, &spec());
        let config = ScoringConfig::default();
        let mut checked = std::collections::BTreeMap::<String, usize>::new();
        for opp in history.iter().filter(|o| o.status == Status::Open) {
            let logit = crate::model::logit(&artifact, opp, now);
            for lever in levers(&artifact, opp, now, logit, &config, RankBy::Probability, Lang::En) {
                let (index, feature) = artifact
                    .features
                    .features
                    .iter()
                    .enumerate()
                    .find(|(_, f)| f.def.name() == lever.feature)
                    .expect("a lever is a feature of the model");
                let target = match &feature.encoder {
                    Encoder::Numeric(_) => {
                        let raw = observe(feature, opp, now).raw;
                        Target::Number(
                            numeric_target(&artifact, index, feature, opp, raw, &config).expect("a target"),
                        )
                    }
                    Encoder::Categorical(_) => {
                        Target::Level(categorical_target(&artifact, index, feature).expect("a target"))
                    }
                };
                let rescored = predict(
                    &artifact,
                    &with_value(opp, feature.def.source(), &target, now),
                    now,
                );
                assert!(
                    (lever.probability_after - rescored).abs() < 1e-12,
                    "{}: {} vs {rescored}",
                    lever.feature,
                    lever.probability_after
                );
                *checked.entry(lever.feature).or_default() += 1;
            }
        }
        eprintln!("levers checked: {checked:?}");
        for name in [
            "response_hours",
            "interaction_count",
            "contact_role",
            "days_since_last_activity",
            "attr.competitors",
            "attr.lead_source",
        ] {
            assert!(
                checked.get(name).copied().unwrap_or(0) > 10,
                "{name}: {checked:?}"
            );
        }
    }

    /// The as-of measures as levers speak a rep's words: touches a week, days without activity,
    /// in both languages.
    #[test]
    fn pace_and_silence_levers_say_touches_a_week_and_days_without_activity() {
        let text = r#"
[[feature]]
name = "contact_role"
kind = "categorical"

[[feature]]
name = "interactions_per_week"
kind = "numeric"
actionable = { direction = "increase", min = 0.0, max = 50.0, label = "Keep up the pace" }

[[feature]]
name = "days_since_last_activity"
kind = "numeric"
actionable = { direction = "decrease", min = 0.0, label = "Re-engage the prospect" }
"#;
        let spec = FeatureSpec::from_toml(text).expect("valid spec");
        let (artifact, history, now) = trained_on_generated_with(3_000, 7, &spec);
        let config = ScoringConfig::default();
        let mut seen = std::collections::BTreeSet::new();
        for opp in history.iter().filter(|o| o.status == Status::Open) {
            let logit = crate::model::logit(&artifact, opp, now);
            for lang in [Lang::En, Lang::Fr] {
                for lever in levers(&artifact, opp, now, logit, &config, RankBy::Probability, lang) {
                    // (sentence before the target, unit word of the target), per language.
                    let (en, fr) = match lever.feature.as_str() {
                        "interactions_per_week" => (
                            ("Touch the prospect ", "week"),
                            ("Contacter le prospect ", "semaine"),
                        ),
                        _ => (
                            ("Re-engage the prospect: no more than ", "day"),
                            ("Relancer le prospect\u{202F}: pas plus de ", "jour"),
                        ),
                    };
                    let (before, unit) = if lang == Lang::En { en } else { fr };
                    let said = [before, lever.target_value.as_str()].concat();
                    assert!(lever.message.starts_with(&said), "{}", lever.message);
                    assert!(lever.target_value.contains(unit), "{}", lever.target_value);
                    seen.insert((lever.feature, lang == Lang::En));
                }
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }
}
