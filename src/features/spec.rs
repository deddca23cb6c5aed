//! The feature spec: which deal fields the model uses and how each is encoded.
//!
//! A spec arrives as TOML (analysts' files, `training/features.toml`) or JSON (HTTP). Both are
//! turned into one generic JSON value and validated by a single function, so the two formats
//! accept exactly the same specs and report every problem at once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::FieldError;
use crate::i18n::format::{NBSP, NNBSP};
use crate::tr;

/// The default spec shipped with dealscore (`training/features.toml`).
const DEFAULT_SPEC_TOML: &str = include_str!("../../training/features.toml");
/// Default number of quantile bins for a binned numeric feature.
pub const DEFAULT_BINS: usize = 8;
/// Default `min_count` for categorical features.
pub const DEFAULT_MIN_COUNT: usize = 20;
/// Most bins a numeric feature may ask for (keeps the design small and bins populated).
const MAX_BINS: usize = 100;

/// A deal field the model can read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreField {
    /// Days from creation to close (closed deals) or to now (open deals).
    CycleDays,
    /// Number of interactions.
    InteractionCount,
    /// Mean hours to answer the prospect.
    ResponseHours,
    /// Deal value.
    Amount,
    /// Account sector.
    Sector,
    /// Main contact's role.
    ContactRole,
    /// Sales region.
    Region,
    /// Owning rep.
    Owner,
}

impl CoreField {
    /// Every core field, in documentation order.
    pub const ALL: [CoreField; 8] = [
        CoreField::CycleDays,
        CoreField::InteractionCount,
        CoreField::ResponseHours,
        CoreField::Amount,
        CoreField::Sector,
        CoreField::ContactRole,
        CoreField::Region,
        CoreField::Owner,
    ];

    /// The field's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            CoreField::CycleDays => "cycle_days",
            CoreField::InteractionCount => "interaction_count",
            CoreField::ResponseHours => "response_hours",
            CoreField::Amount => "amount",
            CoreField::Sector => "sector",
            CoreField::ContactRole => "contact_role",
            CoreField::Region => "region",
            CoreField::Owner => "owner",
        }
    }

    /// The kind every core field naturally has.
    pub fn natural_kind(self) -> Kind {
        match self {
            CoreField::CycleDays
            | CoreField::InteractionCount
            | CoreField::ResponseHours
            | CoreField::Amount => Kind::Numeric,
            CoreField::Sector | CoreField::ContactRole | CoreField::Region | CoreField::Owner => {
                Kind::Categorical
            }
        }
    }

    fn parse(name: &str) -> Option<CoreField> {
        CoreField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where a feature's raw value comes from (borrowed from the spec name, so reading values on
/// the scoring path allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source<'a> {
    /// A core opportunity field.
    Core(CoreField),
    /// A custom attribute (`attr.<name>` in specs).
    Attribute(&'a str),
}

impl<'a> Source<'a> {
    /// Parses a spec name (`amount`, `attr.tier`).
    pub fn parse(name: &'a str) -> Option<Source<'a>> {
        match name.strip_prefix("attr.") {
            Some(attr) if !attr.is_empty() => Some(Source::Attribute(attr)),
            Some(_) => None,
            None => CoreField::parse(name).map(Source::Core),
        }
    }
}

/// Numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A number; encoded by [`Transform`].
    Numeric,
    /// A category; one-hot encoded.
    Categorical,
}

/// How a numeric feature becomes design-matrix columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// One column, standardised with the training mean and standard deviation.
    Linear,
    /// One column: sign(x)·ln(1+|x|), then standardised like `linear`.
    Log,
    /// Quantile bins learned on training data, one-hot encoded (the default).
    #[default]
    Bins,
}

/// Which way a rep can move an actionable feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Numeric: more is the intervention (e.g. more interactions).
    Increase,
    /// Numeric: less is the intervention (e.g. faster answers).
    Decrease,
    /// Categorical: switching to another level (optionally a given `target`).
    Change,
}

/// What a rep can do about a feature; used by the recommendation engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actionable {
    /// Allowed direction of change.
    pub direction: Direction,
    /// Lowest value a recommendation may propose (numeric only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest value a recommendation may propose (numeric only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Level to move to (categorical only); any better level when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Text shown to reps, e.g. "Answer the prospect faster".
    pub label: String,
}

/// One validated feature definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDef {
    /// Spec name: a core field name or `attr.<attribute>`.
    pub name: String,
    /// Numeric or categorical.
    pub kind: Kind,
    /// Numeric encoding (numeric features only; see [`FeatureDef::transform`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    /// Number of quantile bins (binned numeric features only; see [`FeatureDef::bins`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<usize>,
    /// Rare-level threshold (categorical features only; see [`FeatureDef::min_count`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<usize>,
    /// What a rep can do about this feature, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actionable: Option<Actionable>,
}

impl FeatureDef {
    /// Numeric encoding; default `bins`.
    pub fn transform(&self) -> Transform {
        self.transform.unwrap_or_default()
    }

    /// Number of quantile bins; default 8.
    pub fn bins(&self) -> usize {
        self.bins.unwrap_or(DEFAULT_BINS)
    }

    /// Categorical levels seen fewer times than this in training become `(other)`; default 20.
    pub fn min_count(&self) -> usize {
        self.min_count.unwrap_or(DEFAULT_MIN_COUNT)
    }

    /// Where the raw value comes from. Specs are validated on construction, so the name always
    /// parses; a hand-built definition with a bad name reads as an always-missing attribute.
    pub fn source(&self) -> Source<'_> {
        Source::parse(&self.name).unwrap_or(Source::Attribute(&self.name))
    }
}

/// A validated feature spec (non-empty, unique names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The features, in design-matrix order.
    #[serde(rename = "feature")]
    pub features: Vec<FeatureDef>,
}

/// Every problem found in a spec; never empty when returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid feature spec: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct SpecErrors(pub Vec<FieldError>);

impl FeatureSpec {
    /// The default spec (`training/features.toml`, compiled in).
    pub fn default_spec() -> FeatureSpec {
        // The embedded file is covered by a unit test, so it always parses; the fallback keeps
        // this function infallible without a panic path.
        FeatureSpec::from_toml(DEFAULT_SPEC_TOML).unwrap_or_else(|_| FeatureSpec { features: Vec::new() })
    }

    /// Parses and validates a TOML spec (`[[feature]]` tables), listing every problem.
    pub fn from_toml(text: &str) -> Result<FeatureSpec, SpecErrors> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!("not valid TOML: {e}", "TOML invalide{NBSP}: {e}"),
            )])
        })?;
        let value = serde_json::to_value(table).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!(
                    "unsupported TOML value: {e}",
                    "valeur TOML non prise en charge{NBSP}: {e}"
                ),
            )])
        })?;
        validate(&value)
    }

    /// Parses and validates a JSON spec: `{"feature": [ {...}, ... ]}` (`"features"` is accepted
    /// too), with the same fields as the TOML form.
    pub fn from_json(text: &str) -> Result<FeatureSpec, SpecErrors> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!("not valid JSON: {e}", "JSON invalide{NBSP}: {e}"),
            )])
        })?;
        validate(&value)
    }

    /// The spec as TOML text (same format as `training/features.toml`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

const FEATURE_KEYS: [&str; 6] = ["name", "kind", "transform", "bins", "min_count", "actionable"];
const ACTIONABLE_KEYS: [&str; 5] = ["direction", "min", "max", "target", "label"];

/// Validates a generic spec value, collecting every problem.
fn validate(value: &Value) -> Result<FeatureSpec, SpecErrors> {
    let mut errors = Vec::new();
    let Some(root) = value.as_object() else {
        return Err(SpecErrors(vec![FieldError::localized(
            "spec",
            tr!("must be an object/table", "doit être un objet ou une table"),
        )]));
    };
    for key in root.keys() {
        if key != "feature" && key != "features" {
            errors.push(FieldError::localized(
                key.clone(),
                tr!(
                    "unknown key (expected `feature`)",
                    "clé inconnue (attendu{NBSP}: `feature`)"
                ),
            ));
        }
    }
    let list = match (root.get("feature"), root.get("features")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::localized(
                "feature",
                tr!(
                    "give either `feature` or `features`, not both",
                    "donnez `feature` ou `features`, pas les deux"
                ),
            ));
            None
        }
        (Some(v), None) | (None, Some(v)) => match v.as_array() {
            Some(list) => Some(list),
            None => {
                errors.push(FieldError::localized(
                    "feature",
                    tr!("must be an array of tables", "doit être un tableau de tables"),
                ));
                None
            }
        },
        (None, None) => None,
    };
    let list = list.map(Vec::as_slice).unwrap_or(&[]);
    if list.is_empty() {
        errors.push(FieldError::localized(
            "feature",
            tr!("the spec has no features", "la spécification n'a aucune variable"),
        ));
    }
    let mut features = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("feature[{i}]");
        let Some(obj) = item.as_object() else {
            errors.push(FieldError::localized(
                path,
                tr!("must be a table", "doit être une table"),
            ));
            continue;
        };
        if let Some(def) = validate_feature(obj, &path, &mut errors) {
            if !seen.insert(def.name.clone()) {
                let name = &def.name;
                errors.push(FieldError::localized(
                    format!("{path}.name"),
                    tr!("duplicate feature `{name}`", "variable `{name}` en double"),
                ));
            }
            features.push(def);
        }
    }
    if errors.is_empty() {
        Ok(FeatureSpec { features })
    } else {
        Err(SpecErrors(errors))
    }
}

fn validate_feature(
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<FeatureDef> {
    let before = errors.len();
    for key in obj.keys() {
        if !FEATURE_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::localized(
                format!("{path}.{key}"),
                tr!("unknown key", "clé inconnue"),
            ));
        }
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            None
        }
        None => {
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!("is required", "est obligatoire"),
            ));
            None
        }
    };
    let source = name.as_deref().and_then(|n| {
        let source = Source::parse(n);
        if source.is_none() {
            let core = CoreField::ALL.map(CoreField::name).join(", ");
            errors.push(FieldError::localized(
                format!("{path}.name"),
                tr!(
                    "unknown field `{n}` (core fields: {core}; custom attributes: attr.<name>)",
                    "champ `{n}` inconnu (champs de base{NBSP}: {core}{NNBSP}; attributs personnalisés{NBSP}: \
                     attr.<nom>)"
                ),
            ));
        }
        source
    });
    let kind = match obj.get("kind") {
        Some(Value::String(s)) => match s.as_str() {
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
        Some(_) => {
            errors.push(FieldError::localized(
                format!("{path}.kind"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            None
        }
        None => match &source {
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
            let (name, natural) = (field.name(), format!("{:?}", field.natural_kind()).to_lowercase());
            let kind = format!("{kind:?}").to_lowercase();
            errors.push(FieldError::localized(
                format!("{path}.kind"),
                tr!(
                    "`{name}` is {natural}, not {kind}",
                    "`{name}` est {natural}, pas {kind}"
                ),
            ));
        }
    }
    let transform = match obj.get("transform") {
        None => Transform::Bins,
        Some(Value::String(s)) => match s.as_str() {
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
        Some(_) => {
            errors.push(FieldError::localized(
                format!("{path}.transform"),
                tr!("must be a string", "doit être une chaîne"),
            ));
            Transform::Bins
        }
    };
    if kind == Some(Kind::Categorical) && obj.contains_key("transform") {
        errors.push(FieldError::localized(
            format!("{path}.transform"),
            tr!(
                "only numeric features have a transform",
                "seules les variables numériques ont une transformation"
            ),
        ));
    }
    let bins = positive_int(obj, "bins", path, errors).unwrap_or(DEFAULT_BINS);
    if obj.contains_key("bins") {
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
    let min_count = positive_int(obj, "min_count", path, errors).unwrap_or(DEFAULT_MIN_COUNT);
    if obj.contains_key("min_count") {
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
    let actionable = obj
        .get("actionable")
        .and_then(|v| validate_actionable(v, kind, &format!("{path}.actionable"), errors));
    if errors.len() > before {
        return None;
    }
    let kind = kind?;
    // Store only the options that apply to the kind, so a spec written back out re-validates.
    let numeric = kind == Kind::Numeric;
    Some(FeatureDef {
        name: name?,
        kind,
        transform: numeric.then_some(transform),
        bins: (numeric && transform == Transform::Bins).then_some(bins),
        min_count: (!numeric).then_some(min_count),
        actionable,
    })
}

fn positive_int(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<usize> {
    let value = obj.get(key)?;
    match value.as_u64() {
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        None => {
            errors.push(FieldError::localized(
                format!("{path}.{key}"),
                tr!(
                    "must be a whole number ≥ 0",
                    "doit être un nombre entier ≥{NNBSP}0"
                ),
            ));
            None
        }
    }
}

fn validate_actionable(
    value: &Value,
    kind: Option<Kind>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Actionable> {
    let Some(obj) = value.as_object() else {
        errors.push(FieldError::localized(
            path,
            tr!("must be a table", "doit être une table"),
        ));
        return None;
    };
    for key in obj.keys() {
        if !ACTIONABLE_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::localized(
                format!("{path}.{key}"),
                tr!("unknown key", "clé inconnue"),
            ));
        }
    }
    let direction = match obj.get("direction").and_then(Value::as_str) {
        Some("increase") => Some(Direction::Increase),
        Some("decrease") => Some(Direction::Decrease),
        Some("change") => Some(Direction::Change),
        Some(other) => {
            errors.push(FieldError::localized(
                format!("{path}.direction"),
                tr!(
                    "`{other}` is not one of increase, decrease, change",
                    "`{other}` n'est pas increase, decrease ni change"
                ),
            ));
            None
        }
        None => {
            errors.push(FieldError::localized(
                format!("{path}.direction"),
                tr!(
                    "is required (increase, decrease or change)",
                    "est obligatoire (increase, decrease ou change)"
                ),
            ));
            None
        }
    };
    match (direction, kind) {
        (Some(Direction::Change), Some(Kind::Numeric)) => errors.push(FieldError::localized(
            format!("{path}.direction"),
            tr!(
                "numeric features take increase or decrease, not change",
                "les variables numériques prennent increase ou decrease, pas change"
            ),
        )),
        (Some(Direction::Increase | Direction::Decrease), Some(Kind::Categorical)) => {
            errors.push(FieldError::localized(
                format!("{path}.direction"),
                tr!(
                    "categorical features take change, not increase/decrease",
                    "les variables catégorielles prennent change, pas increase/decrease"
                ),
            ))
        }
        _ => {}
    }
    let mut number = |key: &str| -> Option<f64> {
        let v = obj.get(key)?;
        match v.as_f64().filter(|x| x.is_finite()) {
            Some(x) => Some(x),
            None => {
                errors.push(FieldError::localized(
                    format!("{path}.{key}"),
                    tr!("must be a finite number", "doit être un nombre fini"),
                ));
                None
            }
        }
    };
    let min = number("min");
    let max = number("max");
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            errors.push(FieldError::localized(
                format!("{path}.min"),
                tr!(
                    "min ({lo}) is greater than max ({hi})",
                    "min ({lo}) est supérieur à max ({hi})"
                ),
            ));
        }
    }
    if kind == Some(Kind::Categorical) && (min.is_some() || max.is_some()) {
        errors.push(FieldError::localized(
            path,
            tr!(
                "min/max only apply to numeric features",
                "min/max ne s'appliquent qu'aux variables numériques"
            ),
        ));
    }
    let target = match obj.get("target") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push(FieldError::localized(
                format!("{path}.target"),
                tr!("must be a non-empty string", "doit être une chaîne non vide"),
            ));
            None
        }
    };
    if target.is_some() && kind == Some(Kind::Numeric) {
        errors.push(FieldError::localized(
            format!("{path}.target"),
            tr!(
                "target only applies to categorical features",
                "target ne s'applique qu'aux variables catégorielles"
            ),
        ));
    }
    let label = match obj.get("label") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push(FieldError::localized(
                format!("{path}.label"),
                tr!("must be a non-empty string", "doit être une chaîne non vide"),
            ));
            None
        }
        None => {
            errors.push(FieldError::localized(
                format!("{path}.label"),
                tr!("is required", "est obligatoire"),
            ));
            None
        }
    };
    Some(Actionable {
        direction: direction?,
        min,
        max,
        target,
        label: label?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<FeatureSpec, SpecErrors>) -> Vec<String> {
        result.unwrap_err().0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn default_spec_parses_and_marks_three_actionable_features() {
        let spec = FeatureSpec::from_toml(DEFAULT_SPEC_TOML).unwrap();
        let names: Vec<_> = spec.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cycle_days",
                "interaction_count",
                "response_hours",
                "amount",
                "sector",
                "contact_role",
                "region"
            ]
        );
        let actionable: Vec<_> = spec
            .features
            .iter()
            .filter(|f| f.actionable.is_some())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            actionable,
            ["interaction_count", "response_hours", "contact_role"]
        );
        assert_eq!(FeatureSpec::default_spec(), spec);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let text = r#"
[[feature]]
name = "colour"
kind = "numeric"
[[feature]]
name = "amount"
kind = "categorical"
[[feature]]
name = "attr.tier"
[[feature]]
name = "response_hours"
transform = "sqrt"
[[feature]]
name = "cycle_days"
bins = 1
[[feature]]
name = "sector"
actionable = { direction = "increase", label = "x" }
[[feature]]
name = "interaction_count"
actionable = { direction = "increase", min = 10.0, max = 2.0, label = "more" }
[[feature]]
name = "region"
colour = "blue"
[[feature]]
name = "owner"
[[feature]]
name = "owner"
"#;
        assert_eq!(
            fields(FeatureSpec::from_toml(text)),
            [
                "feature[0].name",
                "feature[1].kind",
                "feature[2].kind",
                "feature[3].transform",
                "feature[4].bins",
                "feature[5].actionable.direction",
                "feature[6].actionable.min",
                "feature[7].colour",
                "feature[9].name",
            ]
        );
    }

    #[test]
    fn empty_spec_is_rejected() {
        assert_eq!(fields(FeatureSpec::from_toml("")), ["feature"]);
        assert_eq!(fields(FeatureSpec::from_json(r#"{"feature": []}"#)), ["feature"]);
    }

    #[test]
    fn json_and_toml_give_the_same_spec() {
        let json = r#"{"features": [
            {"name": "response_hours", "kind": "numeric", "transform": "bins", "bins": 8,
             "actionable": {"direction": "decrease", "min": 1.0, "max": 168.0, "label": "Answer faster"}},
            {"name": "attr.tier", "kind": "categorical", "min_count": 5}
        ]}"#;
        let toml_text = r#"
[[feature]]
name = "response_hours"
kind = "numeric"
transform = "bins"
bins = 8
actionable = { direction = "decrease", min = 1.0, max = 168.0, label = "Answer faster" }
[[feature]]
name = "attr.tier"
kind = "categorical"
min_count = 5
"#;
        let a = FeatureSpec::from_json(json).unwrap();
        let b = FeatureSpec::from_toml(toml_text).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.features[1].source(), Source::Attribute("tier"));
        // Round trip through the TOML writer.
        assert_eq!(FeatureSpec::from_toml(&a.to_toml().unwrap()).unwrap(), a);
    }

    #[test]
    fn categorical_options_on_numeric_features_and_vice_versa_are_rejected() {
        let text = r#"
[[feature]]
name = "amount"
min_count = 3
actionable = { direction = "change", target = "x", label = "y" }
[[feature]]
name = "sector"
bins = 4
transform = "log"
actionable = { direction = "change", min = 1.0, label = "y" }
"#;
        assert_eq!(
            fields(FeatureSpec::from_toml(text)),
            [
                "feature[0].min_count",
                "feature[0].actionable.direction",
                "feature[0].actionable.target",
                "feature[1].transform",
                "feature[1].bins",
                "feature[1].actionable",
            ]
        );
    }
}
