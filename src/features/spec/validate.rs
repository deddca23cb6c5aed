//! The one validation step: raw spec structs in, always-valid types out, every problem listed
//! with the path of the key it concerns (`feature[2].actionable.min`).
//!
//! Everything that builds a [`FeatureDef`] or an [`Actionable`] (parsing, the public
//! constructors, reading a stored artifact) goes through here, so the rules live in one place.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

mod lever;

use super::def::{Actionable, Encoding, FeatureDef};
use super::raw::{Field, RawActionable, RawFeature, RawSpec};
use super::vocab::{CoreField, Kind, Source, Transform};
use super::{FeatureSpec, SpecErrors, DEFAULT_BINS, DEFAULT_MIN_COUNT, MAX_BINS};
use crate::domain::FieldError;
use crate::i18n::format::NNBSP;
use crate::tr;

/// Validates a whole spec given as a generic value (the common form of TOML and JSON).
pub(super) fn spec(value: &Value) -> Result<FeatureSpec, SpecErrors> {
    // Every field of the raw structs accepts any value, so this only fails on a non-object root.
    let Ok(raw) = RawSpec::deserialize(value) else {
        return Err(SpecErrors(vec![FieldError::localized(
            "spec",
            tr!("must be an object/table", "doit être un objet ou une table"),
        )]));
    };
    let mut errors = Vec::new();
    for key in raw.unknown.keys() {
        errors.push(FieldError::localized(
            key.clone(),
            tr!(
                "unknown key (expected `feature`)",
                "clé inconnue (attendu{NNBSP}: `feature`)"
            ),
        ));
    }
    let list = match (raw.feature, raw.features) {
        (a, b) if a.is_present() && b.is_present() => {
            errors.push(FieldError::localized(
                "feature",
                tr!(
                    "give either `feature` or `features`, not both",
                    "donnez `feature` ou `features`, pas les deux"
                ),
            ));
            Vec::new()
        }
        (Field::Given(list), _) | (_, Field::Given(list)) => list,
        (Field::Wrong, _) | (_, Field::Wrong) => {
            errors.push(FieldError::localized(
                "feature",
                tr!("must be an array of tables", "doit être un tableau de tables"),
            ));
            Vec::new()
        }
        (Field::Absent, Field::Absent) => Vec::new(),
    };
    if list.is_empty() {
        errors.push(no_features());
    }
    let mut features = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("feature[{i}]");
        let Field::Given(raw) = item else {
            errors.push(FieldError::localized(
                path,
                tr!("must be a table", "doit être une table"),
            ));
            continue;
        };
        if let Some(def) = feature(raw, &path, &mut errors) {
            if !seen.insert(def.name().to_owned()) {
                errors.push(duplicate(&path, def.name()));
            }
            features.push(def);
        }
    }
    if errors.is_empty() {
        Ok(FeatureSpec::from_checked(features))
    } else {
        Err(SpecErrors(errors))
    }
}

/// Checks a list of already valid definitions: not empty, names unique.
pub(super) fn list(features: Vec<FeatureDef>) -> Result<FeatureSpec, SpecErrors> {
    let mut errors = Vec::new();
    if features.is_empty() {
        errors.push(no_features());
    }
    let mut seen = HashSet::new();
    for (i, def) in features.iter().enumerate() {
        if !seen.insert(def.name()) {
            errors.push(duplicate(&format!("feature[{i}]"), def.name()));
        }
    }
    if errors.is_empty() {
        Ok(FeatureSpec::from_checked(features))
    } else {
        Err(SpecErrors(errors))
    }
}

/// Validates one feature on its own; paths start with `feature`.
pub(super) fn one_feature(raw: &RawFeature) -> Result<FeatureDef, SpecErrors> {
    let mut errors = Vec::new();
    match feature(raw, "feature", &mut errors) {
        Some(def) if errors.is_empty() => Ok(def),
        _ => Err(SpecErrors(errors)),
    }
}

/// Validates one lever on its own, whatever the feature's kind; paths start with `actionable`.
pub(super) fn one_actionable(raw: &RawActionable) -> Result<Actionable, SpecErrors> {
    let mut errors = Vec::new();
    match lever::actionable(raw, None, "actionable", &mut errors) {
        Some(lever) if errors.is_empty() => Ok(lever),
        _ => Err(SpecErrors(errors)),
    }
}

fn no_features() -> FieldError {
    FieldError::localized(
        "feature",
        tr!("the spec has no features", "la spécification n'a aucune variable"),
    )
}

fn duplicate(path: &str, name: &str) -> FieldError {
    FieldError::localized(
        format!("{path}.name"),
        tr!("duplicate feature `{name}`", "variable `{name}` en double"),
    )
}

fn unknown_keys(raw: &serde_json::Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for key in raw.keys() {
        errors.push(FieldError::localized(
            format!("{path}.{key}"),
            tr!("unknown key", "clé inconnue"),
        ));
    }
}

fn feature(raw: &RawFeature, path: &str, errors: &mut Vec<FieldError>) -> Option<FeatureDef> {
    let before = errors.len();
    unknown_keys(&raw.unknown, path, errors);
    let name = match &raw.name {
        Field::Given(s) => Some(s.as_str()),
        Field::Wrong => {
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            None
        }
        Field::Absent => {
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!("is required", "est obligatoire"),
            ));
            None
        }
    };
    let source = name.and_then(|n| {
        let source = Source::parse(n);
        if source.is_none() {
            let core = CoreField::ALL.map(CoreField::name).join(", ");
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!(
                    "unknown field `{n}` (core fields: {core}; custom attributes: attr.<name>)",
                    "champ `{n}` inconnu (champs de base{NNBSP}: {core}{NNBSP}; attributs personnalisés{NNBSP}: \
                     attr.<nom>)"
                ),
            ));
        }
        source
    });
    let kind = match &raw.kind {
        Field::Given(s) => match s.as_str() {
            "numeric" => Some(Kind::Numeric),
            "categorical" => Some(Kind::Categorical),
            other => {
                errors.push(FieldError::localized(
                    format!("{path}.kind"),
                    tr!(
                        "`{other}` is not one of numeric, categorical",
                        "`{other}` n'est pas numeric ni categorical"
                    ),
                ));
                None
            }
        },
        Field::Wrong => {
            errors.push(FieldError::localized(
                format!("{path}.kind"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            None
        }
        Field::Absent => match &source {
            Some(Source::Core(field)) => Some(field.natural_kind()),
            Some(Source::Attribute(_)) => {
                errors.push(FieldError::localized(
                    format!("{path}.kind"),
                    tr!(
                        "is required for custom attributes (numeric or categorical)",
                        "est obligatoire pour les attributs personnalisés (numeric ou categorical)"
                    ),
                ));
                None
            }
            None => None,
        },
    };
    if let (Some(Source::Core(field)), Some(kind)) = (&source, kind) {
        if field.natural_kind() != kind {
            let (name, natural, kind) = (field.name(), field.natural_kind().name(), kind.name());
            errors.push(FieldError::localized(
                format!("{path}.kind"),
                tr!(
                    "`{name}` is {natural}, not {kind}",
                    "`{name}` est {natural}, pas {kind}"
                ),
            ));
        }
    }
    let transform = match &raw.transform {
        Field::Absent => Transform::Bins,
        Field::Given(s) => match s.as_str() {
            "linear" => Transform::Linear,
            "log" => Transform::Log,
            "bins" => Transform::Bins,
            other => {
                errors.push(FieldError::localized(
                    format!("{path}.transform"),
                    tr!(
                        "`{other}` is not one of linear, log, bins",
                        "`{other}` n'est pas linear, log ni bins"
                    ),
                ));
                Transform::Bins
            }
        },
        Field::Wrong => {
            errors.push(FieldError::localized(
                format!("{path}.transform"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            Transform::Bins
        }
    };
    if kind == Some(Kind::Categorical) && raw.transform.is_present() {
        errors.push(FieldError::localized(
            format!("{path}.transform"),
            tr!(
                "only numeric features have a transform",
                "seules les variables numériques ont une transformation"
            ),
        ));
    }
    let bins = whole_number(&raw.bins, &format!("{path}.bins"), errors).unwrap_or(DEFAULT_BINS);
    if raw.bins.is_present() {
        if kind == Some(Kind::Categorical) {
            errors.push(FieldError::localized(
                format!("{path}.bins"),
                tr!(
                    "only numeric features have bins",
                    "seules les variables numériques ont des classes (bins)"
                ),
            ));
        } else if transform != Transform::Bins {
            errors.push(FieldError::localized(
                format!("{path}.bins"),
                tr!(
                    "bins only apply to transform = \"bins\"",
                    "bins ne s'applique qu'à transform = \"bins\""
                ),
            ));
        }
        if !(2..=MAX_BINS).contains(&bins) {
            errors.push(FieldError::localized(
                format!("{path}.bins"),
                tr!(
                    "must be between 2 and {MAX_BINS}",
                    "doit être compris entre 2 et {MAX_BINS}"
                ),
            ));
        }
    }
    let min_count =
        whole_number(&raw.min_count, &format!("{path}.min_count"), errors).unwrap_or(DEFAULT_MIN_COUNT);
    if raw.min_count.is_present() {
        if kind == Some(Kind::Numeric) {
            errors.push(FieldError::localized(
                format!("{path}.min_count"),
                tr!(
                    "only categorical features have min_count",
                    "seules les variables catégorielles ont min_count"
                ),
            ));
        }
        if min_count < 1 {
            errors.push(FieldError::localized(
                format!("{path}.min_count"),
                tr!("must be at least 1", "doit valoir au moins 1"),
            ));
        }
    }
    let lever = match &raw.actionable {
        Field::Absent => None,
        Field::Given(raw) => lever::actionable(raw, kind, &format!("{path}.actionable"), errors),
        Field::Wrong => {
            errors.push(FieldError::localized(
                format!("{path}.actionable"),
                tr!("must be a table", "doit être une table"),
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    // Only the options that apply to the kind are kept, so a spec written back out re-validates.
    let encoding = match (kind?, transform) {
        (Kind::Categorical, _) => Encoding::Categorical { min_count },
        (Kind::Numeric, Transform::Linear) => Encoding::Linear,
        (Kind::Numeric, Transform::Log) => Encoding::Log,
        (Kind::Numeric, Transform::Bins) => Encoding::Bins(bins),
    };
    Some(FeatureDef::from_checked(name?.to_owned(), encoding, lever))
}

/// A whole number ≥ 0 (saturating at `usize::MAX`), or `None` with an error when the key holds
/// anything else.
fn whole_number(raw: &Field<u64>, path: &str, errors: &mut Vec<FieldError>) -> Option<usize> {
    match raw {
        Field::Absent => None,
        Field::Given(n) => Some(usize::try_from(*n).unwrap_or(usize::MAX)),
        Field::Wrong => {
            errors.push(FieldError::localized(
                path,
                tr!(
                    "must be a whole number ≥ 0",
                    "doit être un nombre entier ≥{NNBSP}0"
                ),
            ));
            None
        }
    }
}
