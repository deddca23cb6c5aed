//! Encoding one opportunity with fitted encoders. Training builds its design matrix with
//! [`observe`] and scoring uses the same function, so the two cannot drift.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::fitted::{
    signed_log, CategoricalEncoder, Encoder, FittedFeature, FittedFeatures, NumericEncoder, NumericScale,
    MISSING_LEVEL, OTHER_LEVEL,
};
use super::raw::{category_value, display_numeric_in, numeric_value, NumericValue};
use super::spec::Transform;
use crate::domain::Deal;
use crate::i18n::Lang;

/// A feature whose value was missing or unusable and was filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImputedNote {
    /// Feature name.
    pub feature: String,
    /// What happened, e.g. "missing; imputed training median 6 h".
    pub message: String,
}

/// The non-zero entries of one feature's columns: at most a value column and the missing
/// indicator (column indices relative to the feature's offset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureCode {
    /// The active value column and its value (1 for a bin or level), if any.
    pub column: Option<(usize, f64)>,
    /// The missing-indicator column, when the value was missing and the column exists.
    pub indicator: Option<usize>,
}

/// What was read and how it was encoded, for one feature of one opportunity.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    /// The encoded entries.
    pub code: FeatureCode,
    /// Numeric features: the raw value, `None` when missing.
    pub raw: Option<f64>,
    /// Categorical features: the raw level text, `None` when empty.
    pub category: Option<Cow<'a, str>>,
    /// Numeric attribute that held non-numeric text (kept for messages).
    pub not_a_number: Option<String>,
}

impl Observation<'_> {
    /// True when the value was missing or unusable and an imputed value was used.
    pub fn imputed(&self) -> bool {
        self.raw.is_none() && self.category.is_none()
    }
}

/// Reads and encodes one feature of one opportunity.
pub fn observe<'a>(feature: &FittedFeature, opp: &'a Deal, now: DateTime<Utc>) -> Observation<'a> {
    let source = feature.def.source();
    match &feature.encoder {
        Encoder::Numeric(enc) => {
            let (raw, not_a_number) = match numeric_value(&source, opp, now) {
                NumericValue::Present(v) => (Some(v), None),
                NumericValue::Missing => (None, None),
                NumericValue::NotANumber(t) => (None, Some(t)),
            };
            Observation {
                code: encode_numeric(feature, enc, raw),
                raw,
                category: None,
                not_a_number,
            }
        }
        Encoder::Categorical(enc) => {
            let category = category_value(&source, opp);
            Observation {
                code: encode_category(enc, category.as_deref()),
                raw: None,
                category,
                not_a_number: None,
            }
        }
    }
}

/// Encodes a numeric value (`None`: missing, so the imputed value and the missing indicator).
pub fn encode_numeric(feature: &FittedFeature, enc: &NumericEncoder, raw: Option<f64>) -> FeatureCode {
    let x = raw.unwrap_or(enc.impute);
    let column = match &enc.scale {
        NumericScale::Bins { edges } => (NumericEncoder::bin_of(edges, x), 1.0),
        NumericScale::Standardised { mean, sd } => {
            let t = if feature.def.transform() == Transform::Log {
                signed_log(x)
            } else {
                x
            };
            (0, (t - mean) / sd)
        }
    };
    let indicator = if raw.is_none() && enc.missing_indicator {
        feature.columns.len().checked_sub(1)
    } else {
        None
    };
    FeatureCode {
        column: Some(column),
        indicator,
    }
}

/// Encodes a category's level text (`None`: the field is empty): its vocabulary column, else
/// `(other)` when the encoder has one.
pub fn encode_category(enc: &CategoricalEncoder, category: Option<&str>) -> FeatureCode {
    let key = category.unwrap_or(MISSING_LEVEL);
    let column = enc
        .levels
        .iter()
        .position(|l| l == key)
        .or_else(|| enc.other.then_some(enc.levels.len()))
        .map(|c| (c, 1.0));
    FeatureCode {
        column,
        indicator: None,
    }
}

/// The level (bin or category) an observation falls in, as shown in explanations: `[4,8.5)`,
/// `retail`, `(other)`, `(missing)`, or `standardised` for linear/log features.
pub fn level_name(feature: &FittedFeature, obs: &Observation<'_>) -> String {
    match &feature.encoder {
        Encoder::Numeric(enc) => match (&enc.scale, obs.code.column) {
            (NumericScale::Bins { .. }, Some((c, _))) => {
                let column = feature.columns.get(c).map(String::as_str).unwrap_or("");
                column
                    .strip_prefix(feature.def.name())
                    .unwrap_or(column)
                    .to_owned()
            }
            _ => match feature.def.transform() {
                Transform::Log => "log scale".to_owned(),
                _ => "linear".to_owned(),
            },
        },
        Encoder::Categorical(enc) => match obs.code.column {
            Some((c, _)) if c < enc.levels.len() => enc.levels[c].clone(),
            Some(_) => OTHER_LEVEL.to_owned(),
            None => OTHER_LEVEL.to_owned(),
        },
    }
}

/// Display text of the raw value in `lang`: `52 h`, `retail`, `missing (imputed 6 h)`.
pub fn display_value(feature: &FittedFeature, obs: &Observation<'_>, lang: Lang) -> String {
    match &feature.encoder {
        Encoder::Numeric(enc) => match obs.raw {
            Some(v) => display_numeric_in(&feature.def.source(), v, lang),
            None => {
                let imputed = display_numeric_in(&feature.def.source(), enc.impute, lang);
                match lang {
                    Lang::En => format!("missing (imputed {imputed})"),
                    Lang::Fr => format!("manquant (imputé\u{202F}: {imputed})"),
                }
            }
        },
        Encoder::Categorical(_) => match &obs.category {
            Some(c) => c.to_string(),
            None => MISSING_LEVEL.to_owned(),
        },
    }
}

/// The imputation note for an observation in `lang`, if its value was filled in.
pub fn imputed_note(feature: &FittedFeature, obs: &Observation<'_>, lang: Lang) -> Option<ImputedNote> {
    let message = match &feature.encoder {
        Encoder::Numeric(enc) if obs.raw.is_none() => {
            let median = display_numeric_in(&feature.def.source(), enc.impute, lang);
            match (&obs.not_a_number, lang) {
                (Some(text), Lang::En) => {
                    format!("`{text}` is not a number; imputed training median {median}")
                }
                (None, Lang::En) => format!("missing; imputed training median {median}"),
                (Some(text), Lang::Fr) => format!(
                    "`{text}` n'est pas un nombre\u{202F}; remplacé par la médiane d'entraînement {median}"
                ),
                (None, Lang::Fr) => {
                    format!("manquant\u{202F}; remplacé par la médiane d'entraînement {median}")
                }
            }
        }
        Encoder::Categorical(enc) if obs.category.is_none() => {
            let has_missing_level = enc.levels.iter().any(|l| l == MISSING_LEVEL);
            match (has_missing_level, enc.other, lang) {
                (true, _, Lang::En) => format!("missing; encoded as the {MISSING_LEVEL} level"),
                (true, _, Lang::Fr) => format!("manquant\u{202F}; codé comme le niveau {MISSING_LEVEL}"),
                (false, true, Lang::En) => {
                    format!("missing; encoded as {OTHER_LEVEL} (missing was rare in training)")
                }
                (false, true, Lang::Fr) => format!(
                    "manquant\u{202F}; codé comme {OTHER_LEVEL} (valeur manquante rare à l'entraînement)"
                ),
                (false, false, Lang::En) => {
                    "missing; neutral encoding (never missing in training)".to_owned()
                }
                (false, false, Lang::Fr) => {
                    "manquant\u{202F}; codage neutre (jamais manquant à l'entraînement)".to_owned()
                }
            }
        }
        _ => return None,
    };
    Some(ImputedNote {
        feature: feature.def.name().to_owned(),
        message,
    })
}

/// Encodes an opportunity as one dense design-matrix row, with a note for each imputed value.
pub fn encode(fitted: &FittedFeatures, opp: &Deal, now: DateTime<Utc>) -> (Vec<f64>, Vec<ImputedNote>) {
    let mut row = vec![0.0; fitted.n_columns];
    let mut notes = Vec::new();
    for feature in &fitted.features {
        let obs = observe(feature, opp, now);
        write_code(&mut row, feature.offset, obs.code);
        if let Some(note) = imputed_note(feature, &obs, Lang::En) {
            notes.push(note);
        }
    }
    (row, notes)
}

/// Writes a feature code into a dense row at `offset`.
pub fn write_code(row: &mut [f64], offset: usize, code: FeatureCode) {
    if let Some((c, v)) = code.column {
        if let Some(slot) = row.get_mut(offset + c) {
            *slot = v;
        }
    }
    if let Some(c) = code.indicator {
        if let Some(slot) = row.get_mut(offset + c) {
            *slot = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AttributeValue, ExternalId, Opportunity, Status};
    use crate::features::FeatureSpec;

    fn deal(i: usize) -> Opportunity {
        Opportunity {
            external_id: ExternalId::parse(&format!("D-{i}")).expect("test ids are valid"),
            deal: Deal {
                name: None,
                account: None,
                sector: Some(if i % 3 == 0 { "retail" } else { "banking" }.to_owned()),
                region: None,
                owner: None,
                contact_role: None,
                amount: Some(1000.0 * i as f64),
                currency: "EUR".into(),
                stage: None,
                status: Status::Won,
                created_at: None,
                closed_at: None,
                interaction_count: Some(i as i64),
                response_hours: if i % 4 == 0 { None } else { Some(i as f64) },
                last_activity_at: None,
                attributes: [("tier".to_owned(), AttributeValue::Text(format!("t{}", i % 2)))].into(),
                cycle_days: None,
            },
        }
    }

    #[test]
    fn encoding_has_one_active_level_per_feature_and_notes_imputation() {
        let spec = FeatureSpec::from_toml(
            r#"
[[feature]]
name = "response_hours"
bins = 4
[[feature]]
name = "amount"
transform = "log"
[[feature]]
name = "sector"
min_count = 1
[[feature]]
name = "attr.tier"
kind = "categorical"
min_count = 1
"#,
        )
        .unwrap();
        let deals: Vec<_> = (1..=40).map(deal).collect();
        let refs: Vec<_> = deals.iter().collect();
        let fitted = FittedFeatures::fit(&spec, &refs, Utc::now());
        let names = fitted.column_names();
        assert_eq!(names.len(), fitted.n_columns);
        assert!(
            names.contains(&"response_hours=(missing)".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"sector=retail".to_owned()));
        assert!(names.contains(&"log(amount)".to_owned()));

        let (row, notes) = encode(&fitted, &deals[3], Utc::now()); // D-4: response_hours missing
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].feature, "response_hours");
        let rh = &fitted.features[0];
        let active: f64 = row[rh.offset..rh.offset + rh.columns.len()].iter().sum();
        assert_eq!(active, 2.0, "median bin + missing indicator");

        let mut unseen = deal(5);
        unseen.sector = Some("mining".into());
        let (row, _) = encode(&fitted, &unseen, Utc::now());
        let sector = &fitted.features[2];
        assert_eq!(
            row[sector.offset..sector.offset + sector.columns.len()]
                .iter()
                .sum::<f64>(),
            0.0
        );
    }
}
