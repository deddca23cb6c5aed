//! Scoring: probability → score, grade, trend, factor explanations, the next intervention and
//! the Sales Ops focus. Pure functions over a model artifact; no I/O.
//!
//! The rules are documented in `docs/recommendations.md`.

pub mod cuts;
#[cfg(test)]
mod lever_tests;
mod messages;
pub mod parallel;
mod phrases;
mod recommend;
mod text;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::config::ScoringConfig;
use crate::domain::Deal;
use crate::features::encode::observe;
use crate::features::Encoder;
use crate::i18n::Lang;
use crate::model::{explain_in, ModelArtifact};
pub use phrases::Phrasebook;
pub use recommend::{Intervention, RankBy};

/// A category level as a reader sees it in `lang`: contact roles dealscore knows by their name
/// (`end_user` → "end user" / "utilisateur final"), other levels as recorded with spaces for
/// underscores.
pub fn level_label(feature: &str, level: &str, lang: Lang) -> String {
    match crate::features::spec::Source::parse(feature) {
        Some(source) => text::level(source, level, lang),
        None => level.to_owned(),
    }
}

/// A feature's name for a reader in `lang` (`cycle_days` → "Deal age" / "Âge de l'affaire",
/// `attr.lead_source` → "lead source"): what pages and charts show instead of the spec name.
pub fn feature_name_label(feature: &str, lang: Lang) -> String {
    match crate::features::spec::Source::parse(feature) {
        Some(source) => text::feature_label(source, lang),
        None => feature.replace('_', " "),
    }
}

/// A–D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Grade {
    /// Highest odds.
    A,
    /// Good odds.
    B,
    /// Below usual odds.
    C,
    /// Unlikely.
    D,
}

impl Grade {
    /// The letter.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }

    /// Parses a letter (case-insensitive).
    pub fn parse(text: &str) -> Option<Grade> {
        match text.trim().to_ascii_uppercase().as_str() {
            "A" => Some(Grade::A),
            "B" => Some(Grade::B),
            "C" => Some(Grade::C),
            "D" => Some(Grade::D),
            _ => None,
        }
    }
}

/// Movement against the previous stored score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    /// Up by at least the threshold.
    Improving,
    /// Within the threshold.
    Steady,
    /// Down by at least the threshold.
    Declining,
    /// No previous score.
    New,
}

/// The three Sales Ops intents, plus the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Focus {
    /// High potential or a large available uplift: invest time now.
    Prioritize,
    /// Likely won: make the signature smooth.
    Secure,
    /// Likely lost and no lever lifts it: minimal effort.
    Deprioritize,
    /// Everything else: keep it warm.
    Nurture,
}

impl Focus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Focus::Prioritize => "prioritize",
            Focus::Secure => "secure",
            Focus::Deprioritize => "deprioritize",
            Focus::Nurture => "nurture",
        }
    }
}

/// Whether a factor raises or lowers the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Raises the win probability.
    Raises,
    /// Lowers it.
    Lowers,
}

/// One explained factor.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Factor {
    /// Feature name (`response_hours`, `attr.tier`, …).
    pub feature: String,
    /// The deal's value, as displayed in the answer's language (`30 days` / `30 jours`).
    pub value: String,
    /// Log-odds against the model's baseline (an average training deal).
    pub contribution: f64,
    /// Raises or lowers.
    pub direction: Direction,
    /// Reference from won deals (e.g. "won median 6 h"), in the answer's language, when the
    /// model has one.
    pub reference: Option<String>,
    /// Plain-language sentence in the answer's language.
    pub message: String,
}

/// The score of one opportunity: one shape everywhere (API, CLI, webhook answers).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoreResult {
    /// Model version that produced it.
    pub model_version: String,
    /// Win probability, 0–1.
    pub probability: f64,
    /// round(100 × probability).
    pub score: u8,
    /// A–D: quartiles of the scores recorded in the model (`cut_points`), or the configured
    /// fixed cuts.
    pub grade: Grade,
    /// Against the previous stored score.
    pub trend: Trend,
    /// Previous stored score, when there is one.
    pub previous_score: Option<u8>,
    /// probability × amount (absent without an amount).
    pub expected_value: Option<f64>,
    /// Up to 5 factors raising and 5 lowering the score, strongest first.
    pub factors: Vec<Factor>,
    /// The lever with the largest uplift, if any lever helps.
    pub next_intervention: Option<Intervention>,
    /// The other helpful levers, best first.
    pub alternatives: Vec<Intervention>,
    /// prioritize | secure | deprioritize | nurture.
    pub focus: Focus,
    /// Features that were missing and imputed, or categories unseen in training (sentences in
    /// the answer's language).
    pub imputed: Vec<String>,
}

/// The grade of a score.
pub fn grade(score: u8, cuts: [u8; 3]) -> Grade {
    if score >= cuts[0] {
        Grade::A
    } else if score >= cuts[1] {
        Grade::B
    } else if score >= cuts[2] {
        Grade::C
    } else {
        Grade::D
    }
}

/// The trend from a previous score.
pub fn trend(score: u8, previous: Option<u8>, threshold: u8) -> Trend {
    match previous {
        None => Trend::New,
        Some(p) if i16::from(score) - i16::from(p) >= i16::from(threshold.max(1)) => Trend::Improving,
        Some(p) if i16::from(p) - i16::from(score) >= i16::from(threshold.max(1)) => Trend::Declining,
        Some(_) => Trend::Steady,
    }
}

/// The focus rule (see docs/recommendations.md).
pub fn focus(probability: f64, best: Option<&Intervention>, config: &ScoringConfig) -> Focus {
    let best_after = best.map_or(probability, |b| b.probability_after);
    let best_uplift = best.map_or(0.0, |b| b.uplift);
    if probability >= config.secure_probability {
        Focus::Secure
    } else if probability >= config.prioritize_probability || best_uplift >= config.prioritize_uplift {
        Focus::Prioritize
    } else if probability < config.deprioritize_probability && best_after < config.deprioritize_probability {
        Focus::Deprioritize
    } else {
        Focus::Nurture
    }
}

/// What scoring reads: a model artifact and, when the caller keeps one for it, the phrasebook of
/// its sentences. The serving model keeps one (`serving::LoadedModel`), so its sentences are
/// written once per language; a bare artifact is scored with sentences written for that one call
/// (the same words, see `phrases.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ScoringModel<'a> {
    artifact: &'a ModelArtifact,
    phrases: Option<&'a Phrasebook>,
}

impl<'a> ScoringModel<'a> {
    /// `artifact` with `phrases`, a phrasebook kept for this artifact and no other.
    pub fn cached(artifact: &'a ModelArtifact, phrases: &'a Phrasebook) -> Self {
        ScoringModel {
            artifact,
            phrases: Some(phrases),
        }
    }
}

impl<'a> From<&'a ModelArtifact> for ScoringModel<'a> {
    fn from(artifact: &'a ModelArtifact) -> Self {
        ScoringModel {
            artifact,
            phrases: None,
        }
    }
}

/// Scores one opportunity with everything a rep needs, its sentences (factor messages and
/// references, interventions, imputation notes) and display values written in `lang`. Numbers,
/// grades and enums are the same in every language.
pub fn score<'a>(
    model: impl Into<ScoringModel<'a>>,
    config: &ScoringConfig,
    opp: &Deal,
    now: DateTime<Utc>,
    previous_score: Option<u8>,
    rank: RankBy,
    lang: Lang,
) -> ScoreResult {
    let model = model.into();
    let artifact = model.artifact;
    let explanation = explain_in(artifact, opp, now, lang);
    let probability = explanation.probability;
    let score = (probability * 100.0).round().clamp(0.0, 100.0) as u8;
    let written;
    let phrases = match model.phrases {
        Some(book) => book.get(artifact, lang),
        None => {
            written = phrases::Phrases::build(artifact, lang);
            &written
        }
    };
    let factors = messages::factors(artifact, phrases, opp, &explanation, config, lang);
    let mut levers = recommend::levers(artifact, opp, now, explanation.logit, config, rank, lang);
    let (grade, focus) = match cuts::data_cuts(artifact, config) {
        Some(data) => {
            // The best lever by probability, whatever order `rank` lists them in.
            let best_after = (levers.iter().map(|l| l.probability_after)).fold(probability, f64::max);
            let gain = cuts::lever_gain(&levers, opp.amount, data.typical_amount);
            (
                cuts::grade(probability, data),
                cuts::focus(probability, best_after, gain, data, config),
            )
        }
        None => (
            grade(score, config.grade_cuts),
            focus(probability, levers.first(), config),
        ),
    };
    let next_intervention = (!levers.is_empty()).then(|| levers.remove(0));
    let mut imputed = explanation.imputed;
    imputed.extend(unseen_categories(artifact, opp, now, lang));
    ScoreResult {
        model_version: artifact.version.clone(),
        probability,
        score,
        grade,
        trend: trend(score, previous_score, config.trend_threshold),
        previous_score,
        expected_value: opp.amount.map(|a| a * probability),
        focus,
        factors,
        next_intervention,
        alternatives: levers,
        imputed,
    }
}

/// Categories the model never saw in training (scored as the `(other)` level).
fn unseen_categories(artifact: &ModelArtifact, opp: &Deal, now: DateTime<Utc>, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    for feature in &artifact.features.features {
        if let Encoder::Categorical(enc) = &feature.encoder {
            let obs = observe(feature, opp, now);
            if let Some(level) = obs.category.as_deref() {
                if !enc.counts.contains_key(level) {
                    out.push(text::unseen_category(
                        feature.def.name(),
                        level,
                        crate::features::fitted::OTHER_LEVEL,
                        lang,
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn feature_names_read_as_labels_in_both_languages() {
        use super::{feature_name_label, Lang};
        assert_eq!(feature_name_label("cycle_days", Lang::En), "Deal age");
        assert_eq!(feature_name_label("cycle_days", Lang::Fr), "Âge de l'affaire");
        assert_eq!(feature_name_label("sector", Lang::Fr), "Secteur");
        assert_eq!(feature_name_label("attr.lead_source", Lang::Fr), "lead source");
        assert_eq!(feature_name_label("odd_name", Lang::En), "odd name");
        assert_eq!(
            super::level_label("contact_role", "end_user", Lang::Fr),
            "utilisateur final"
        );
        assert_eq!(
            super::level_label("contact_role", "end_user", Lang::En),
            "end user"
        );
    }

    use super::*;

    #[test]
    fn grades_follow_the_cut_points() {
        let cuts = [60, 40, 20];
        for (score, expected) in [
            (100, Grade::A),
            (60, Grade::A),
            (59, Grade::B),
            (40, Grade::B),
            (39, Grade::C),
            (20, Grade::C),
            (19, Grade::D),
            (0, Grade::D),
        ] {
            assert_eq!(grade(score, cuts), expected, "{score}");
        }
    }

    #[test]
    fn trends_use_the_threshold() {
        assert_eq!(trend(50, None, 5), Trend::New);
        assert_eq!(trend(55, Some(50), 5), Trend::Improving);
        assert_eq!(trend(54, Some(50), 5), Trend::Steady);
        assert_eq!(trend(45, Some(50), 5), Trend::Declining);
        assert_eq!(trend(46, Some(50), 5), Trend::Steady);
    }

    fn lever(after: f64, uplift: f64) -> Intervention {
        Intervention {
            feature: "response_hours".into(),
            action: "Answer faster".into(),
            message: String::new(),
            current_value: None,
            target_value: "6 h".into(),
            probability_after: after,
            uplift,
            expected_value_uplift: None,
        }
    }

    #[test]
    fn focus_rule_table() {
        let c = ScoringConfig::default();
        assert_eq!(focus(0.7, None, &c), Focus::Secure);
        assert_eq!(focus(0.45, None, &c), Focus::Prioritize);
        assert_eq!(focus(0.25, Some(&lever(0.40, 0.15)), &c), Focus::Prioritize);
        assert_eq!(focus(0.10, Some(&lever(0.15, 0.05)), &c), Focus::Deprioritize);
        assert_eq!(focus(0.10, None, &c), Focus::Deprioritize);
        assert_eq!(focus(0.15, Some(&lever(0.22, 0.07)), &c), Focus::Nurture);
        assert_eq!(focus(0.30, None, &c), Focus::Nurture);
    }

    /// Settings cannot name the model's threshold, so they repeat it; this keeps the two equal.
    #[test]
    fn default_sector_threshold_is_the_models() {
        assert_eq!(
            ScoringConfig::default().min_sector_won,
            crate::model::MIN_WON_FOR_GROUP_TARGET
        );
    }
}
