//! The words of a score that depend only on the model and the language, written once per model.
//!
//! A factor's label, a numeric feature's won median ("won median 6 h") and a category's whole
//! sentence ("Sector software: 47% of 748 closed deals with it were won (all deals: 40%)") are
//! the same for every deal the model scores, yet every score wrote them again. A [`Phrasebook`]
//! writes them the first time a language is asked for and hands out copies afterwards; with it
//! (and the cheaper per-deal sentences of the same change) a score went from 46,600 to 28,700
//! instructions (docs/performance.md, "Scoring throughput"). The sentences are the ones
//! [`super::text`] writes, so answers are the same with or without it (unit test below).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use super::text;
use crate::features::spec::Source;
use crate::features::Encoder;
use crate::i18n::Lang;
use crate::model::factors::NumericReference;
use crate::model::ModelArtifact;

/// A model's sentences in each language, built on first use. It is kept beside the artifact it
/// was built for (`serving::LoadedModel`), never inside it: the artifact stays plain data. An
/// artifact is not changed once loaded (servers share it behind an `Arc`), so the sentences
/// cannot go stale.
#[derive(Default)]
pub struct Phrasebook {
    by_lang: [OnceLock<Phrases>; 2],
}

impl Phrasebook {
    /// The sentences of `artifact` (the artifact this phrasebook is kept for) in `lang`.
    pub(super) fn get(&self, artifact: &ModelArtifact, lang: Lang) -> &Phrases {
        let slot = match lang {
            Lang::En => &self.by_lang[0],
            Lang::Fr => &self.by_lang[1],
        };
        slot.get_or_init(|| Phrases::build(artifact, lang))
    }
}

impl fmt::Debug for Phrasebook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phrasebook { .. }")
    }
}

/// Sentences of one model in one language, one entry per feature (the artifact's order).
pub(super) struct Phrases {
    features: Vec<FeaturePhrases>,
}

impl Phrases {
    /// The sentences of feature `index` (`None` past the model's features).
    pub(super) fn feature(&self, index: usize) -> Option<&FeaturePhrases> {
        self.features.get(index)
    }

    /// Writes the sentences of `artifact` in `lang`.
    pub(super) fn build(artifact: &ModelArtifact, lang: Lang) -> Phrases {
        let closed = artifact.training.won + artifact.training.lost;
        let overall_rate = if closed > 0 {
            artifact.training.won as f64 / closed as f64
        } else {
            0.0
        };
        let features = artifact
            .features
            .features
            .iter()
            .enumerate()
            .map(|(index, feature)| {
                let source = feature.def.source();
                let factor = artifact.success_factors.get(index);
                let label = text::feature_label(source, lang);
                let mut categories = HashMap::new();
                let mut medians = None;
                match &feature.encoder {
                    Encoder::Numeric(_) => {
                        medians = factor
                            .and_then(|f| f.numeric.as_ref())
                            .map(|reference| MedianPhrases::build(reference, source, lang));
                    }
                    Encoder::Categorical(_) => {
                        for stat in factor.map_or(&[][..], |f| &f.categories[..]) {
                            if stat.count == 0 {
                                continue;
                            }
                            // The first statistic of a level is the one scoring always used.
                            categories.entry(stat.level.clone()).or_insert_with(|| {
                                let level = text::level(source, &stat.level, lang);
                                CategoryPhrases {
                                    message: text::category_factor(
                                        &label,
                                        &level,
                                        stat.win_rate,
                                        stat.count,
                                        overall_rate,
                                        lang,
                                    ),
                                    reference: text::category_reference(stat.win_rate, overall_rate, lang),
                                }
                            });
                        }
                    }
                }
                FeaturePhrases {
                    label,
                    medians,
                    categories,
                }
            })
            .collect();
        Phrases { features }
    }
}

/// Sentences of one feature.
pub(super) struct FeaturePhrases {
    /// The feature's name for a rep ("Response time").
    pub label: String,
    medians: Option<MedianPhrases>,
    categories: HashMap<String, CategoryPhrases>,
}

impl FeaturePhrases {
    /// The won median of the reference group `sector` (`None`: the overall one), as
    /// [`NumericReference::pick_group`] names it; `None` when the group has no won deals.
    pub(super) fn median(&self, sector: Option<&str>) -> Option<&Median> {
        let medians = self.medians.as_ref()?;
        match sector {
            None => medians.overall.as_ref(),
            Some(s) => medians.by_sector.get(s),
        }
    }

    /// The factor sentence and reference of category `level`, when the training data had deals
    /// with it.
    pub(super) fn category(&self, level: &str) -> Option<&CategoryPhrases> {
        self.categories.get(level)
    }
}

/// Won medians of a numeric feature, overall and per sector.
struct MedianPhrases {
    overall: Option<Median>,
    by_sector: HashMap<String, Median>,
}

impl MedianPhrases {
    fn build(reference: &NumericReference, source: Source<'_>, lang: Lang) -> MedianPhrases {
        let median = |won: Option<f64>| {
            won.map(|value| {
                let text = text::quantity(source, value, lang);
                Median {
                    value,
                    reference: text::won_median(&text, lang),
                    text,
                }
            })
        };
        MedianPhrases {
            overall: median(reference.overall.won.as_ref().map(|q| q.median)),
            by_sector: reference
                .by_sector
                .iter()
                .filter_map(|(sector, group)| {
                    Some((sector.clone(), median(group.won.as_ref().map(|q| q.median))?))
                })
                .collect(),
        }
    }
}

/// The won median of one group.
pub(super) struct Median {
    /// Its value.
    pub value: f64,
    /// Its value with the unit ("6 h").
    pub text: String,
    /// "won median 6 h".
    pub reference: String,
}

/// Sentences of one category level.
pub(super) struct CategoryPhrases {
    /// "Sector software: 47% of 748 closed deals with it were won (all deals: 40%)".
    pub message: String,
    /// "win rate 47% (overall 40%)".
    pub reference: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Opportunity, Status};
    use crate::model::explain_in;
    use crate::scoring::{score, RankBy, ScoringConfig, ScoringModel};
    use crate::training::fixtures::trained_on_generated;

    /// A factor's (message, reference) written from scratch for this deal, the way scoring wrote
    /// them before the phrasebook.
    fn written_directly(
        artifact: &ModelArtifact,
        opp: &Opportunity,
        feature_name: &str,
        value: &str,
        raw: Option<f64>,
        config: &ScoringConfig,
        lang: Lang,
    ) -> (String, Option<String>) {
        let index = artifact
            .features
            .features
            .iter()
            .position(|f| f.def.name() == feature_name)
            .unwrap();
        let feature = &artifact.features.features[index];
        let source = feature.def.source();
        let name = text::feature_label(source, lang);
        let factor = &artifact.success_factors[index];
        match &feature.encoder {
            Encoder::Numeric(_) => {
                let group = factor
                    .numeric
                    .as_ref()
                    .map(|n| n.for_sector(opp.sector.as_deref(), config.min_sector_won));
                let median = group.and_then(|g| g.won.as_ref()).map(|q| q.median);
                let reference = median.map(|m| text::won_median(&text::quantity(source, m, lang), lang));
                let (Some(x), Some(group), Some(m)) = (raw, group, median) else {
                    return (text::bare_factor(&name, value, lang), reference);
                };
                let standing = match group.fraction_won_at_or_below(x) {
                    Some(f) if x > m => text::Standing::Above(f),
                    Some(f) if x < m => text::Standing::Below(1.0 - f),
                    _ => text::Standing::InLine,
                };
                let is_time = feature_name == "response_hours";
                let median_text = text::quantity(source, m, lang);
                (
                    text::numeric_factor(&name, value, standing, is_time, &median_text, lang),
                    reference,
                )
            }
            Encoder::Categorical(_) => {
                let closed = artifact.training.won + artifact.training.lost;
                let overall = artifact.training.won as f64 / closed as f64;
                let level = text::level(source, value, lang);
                match factor.categories.iter().find(|c| c.level == value) {
                    Some(s) if s.count > 0 => (
                        text::category_factor(&name, &level, s.win_rate, s.count, overall, lang),
                        Some(text::category_reference(s.win_rate, overall, lang)),
                    ),
                    _ => (text::rare_category(&name, &level, lang), None),
                }
            }
        }
    }

    #[test]
    fn factor_sentences_are_the_ones_written_directly() {
        let (artifact, deals, now) = trained_on_generated(6_000, 11);
        // A low bar, so that sectors with their own won reference are exercised too.
        let config = ScoringConfig {
            min_sector_won: 5,
            ..ScoringConfig::default()
        };
        let (mut compared, mut by_sector) = (0usize, 0usize);
        let book = Phrasebook::default();
        let kept = ScoringModel::cached(&artifact, &book);
        for opp in deals.iter().filter(|o| o.status == Status::Open).take(400) {
            for lang in Lang::ALL {
                let result = score(kept, &config, opp, now, None, RankBy::Probability, lang);
                let explanation = explain_in(&artifact, opp, now, lang);
                for factor in &result.factors {
                    let raw = explanation
                        .contributions
                        .iter()
                        .find(|c| c.feature == factor.feature)
                        .and_then(|c| c.raw);
                    let expected =
                        written_directly(&artifact, opp, &factor.feature, &factor.value, raw, &config, lang);
                    assert_eq!((factor.message.clone(), factor.reference.clone()), expected);
                    compared += 1;
                }
                let sector_group = artifact
                    .success_factors
                    .iter()
                    .filter_map(|f| f.numeric.as_ref())
                    .any(|n| {
                        n.pick_group(opp.sector.as_deref(), config.min_sector_won)
                            .0
                            .is_some()
                    });
                by_sector += usize::from(sector_group);
            }
        }
        assert!(compared > 2_000, "{compared}");
        assert!(by_sector > 100, "{by_sector}");
        // Sentences written for one call are the ones the kept phrasebook hands out.
        let opp = deals.iter().find(|o| o.status == Status::Open).unwrap();
        let config = ScoringConfig::default();
        assert_eq!(
            score(kept, &config, opp, now, None, RankBy::Probability, Lang::Fr),
            score(&artifact, &config, opp, now, None, RankBy::Probability, Lang::Fr)
        );
    }
}
