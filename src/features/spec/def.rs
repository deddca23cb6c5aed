//! Validated feature definitions: private fields, read through accessors, built only by the
//! validator (parsing, the constructors here, or reading a stored artifact).
//!
//! The stored form (inside model artifacts, in the models API, in `to_toml`) is the one the
//! spec is written in: `{name, kind, transform?, bins?, min_count?, actionable?}` with only the
//! options that apply to the kind.

use serde::{Deserialize, Serialize, Serializer};

use super::raw::{Field, RawActionable, RawFeature};
use super::validate;
use super::vocab::{CoreField, Direction, Kind, Source, Transform};
use super::{SpecErrors, DEFAULT_BINS, DEFAULT_MIN_COUNT};

/// How a feature becomes columns. The kind follows from it, so a categorical feature cannot
/// carry bins nor a numeric one a `min_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Numeric, one standardised column.
    Linear,
    /// Numeric, one standardised column of sign(x)·ln(1+|x|).
    Log,
    /// Numeric, this many quantile bins (2 to `MAX_BINS`).
    Bins(usize),
    /// Categorical; levels seen fewer than `min_count` (≥ 1) times become `(other)`.
    Categorical {
        /// Rare-level threshold.
        min_count: usize,
    },
}

/// One validated feature definition: its name parses as a [`Source`], its options fit its
/// kind and its lever fits both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "StoredFeatureDef")]
pub struct FeatureDef {
    name: String,
    encoding: Encoding,
    actionable: Option<Actionable>,
}

/// What a rep can do about a feature; used by the recommendation engine. Its label is
/// non-empty, its bounds finite and ordered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actionable {
    direction: Direction,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    label: String,
}

impl FeatureDef {
    /// Assembles a definition the validator has checked.
    pub(super) fn from_checked(
        name: String,
        encoding: Encoding,
        actionable: Option<Actionable>,
    ) -> FeatureDef {
        FeatureDef {
            name,
            encoding,
            actionable,
        }
    }

    /// A core field with its natural kind and default options (always valid).
    pub(super) fn natural(field: CoreField) -> FeatureDef {
        let encoding = match field.natural_kind() {
            Kind::Numeric => Encoding::Bins(DEFAULT_BINS),
            Kind::Categorical => Encoding::Categorical {
                min_count: DEFAULT_MIN_COUNT,
            },
        };
        FeatureDef::from_checked(field.name().to_owned(), encoding, None)
    }

    /// A numeric feature (`bins` with the default 8 bins, `linear` or `log`).
    pub fn numeric(name: &str, transform: Transform) -> Result<FeatureDef, SpecErrors> {
        validate::one_feature(&RawFeature {
            name: Field::Given(name.to_owned()),
            kind: Field::Given(Kind::Numeric.name().to_owned()),
            transform: Field::Given(transform.name().to_owned()),
            ..RawFeature::default()
        })
    }

    /// A numeric feature cut into `bins` quantile bins (2 to 100).
    pub fn binned(name: &str, bins: usize) -> Result<FeatureDef, SpecErrors> {
        validate::one_feature(&RawFeature {
            name: Field::Given(name.to_owned()),
            kind: Field::Given(Kind::Numeric.name().to_owned()),
            transform: Field::Given(Transform::Bins.name().to_owned()),
            bins: Field::Given(bins as u64),
            ..RawFeature::default()
        })
    }

    /// A categorical feature whose levels seen fewer than `min_count` (≥ 1) times in training
    /// become `(other)`.
    pub fn categorical(name: &str, min_count: usize) -> Result<FeatureDef, SpecErrors> {
        validate::one_feature(&RawFeature {
            name: Field::Given(name.to_owned()),
            kind: Field::Given(Kind::Categorical.name().to_owned()),
            min_count: Field::Given(min_count as u64),
            ..RawFeature::default()
        })
    }

    /// This feature with a lever for reps; refused when the lever does not fit the kind.
    pub fn with_actionable(self, actionable: Actionable) -> Result<FeatureDef, SpecErrors> {
        let mut raw = self.to_raw();
        raw.actionable = Field::Given(actionable.to_raw());
        validate::one_feature(&raw)
    }

    /// Spec name: a core field name or `attr.<attribute>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Numeric or categorical.
    pub fn kind(&self) -> Kind {
        match self.encoding {
            Encoding::Linear | Encoding::Log | Encoding::Bins(_) => Kind::Numeric,
            Encoding::Categorical { .. } => Kind::Categorical,
        }
    }

    /// Numeric encoding (`bins` for categorical features, which have none).
    pub fn transform(&self) -> Transform {
        match self.encoding {
            Encoding::Linear => Transform::Linear,
            Encoding::Log => Transform::Log,
            Encoding::Bins(_) | Encoding::Categorical { .. } => Transform::Bins,
        }
    }

    /// Number of quantile bins (8 for features that are not binned).
    pub fn bins(&self) -> usize {
        match self.encoding {
            Encoding::Bins(k) => k,
            _ => DEFAULT_BINS,
        }
    }

    /// Categorical levels seen fewer times than this in training become `(other)` (20 for
    /// numeric features, which have no levels).
    pub fn min_count(&self) -> usize {
        match self.encoding {
            Encoding::Categorical { min_count } => min_count,
            _ => DEFAULT_MIN_COUNT,
        }
    }

    /// What a rep can do about this feature, if anything.
    pub fn actionable(&self) -> Option<&Actionable> {
        self.actionable.as_ref()
    }

    /// Where the raw value comes from.
    pub fn source(&self) -> Source<'_> {
        // Names are validated on construction, so the fallback is never taken; it keeps this
        // accessor free of a panic path.
        Source::of(&self.name)
    }

    /// The options as stored: only those that apply to the kind.
    fn stored_options(&self) -> (Option<Transform>, Option<usize>, Option<usize>) {
        match self.encoding {
            Encoding::Linear => (Some(Transform::Linear), None, None),
            Encoding::Log => (Some(Transform::Log), None, None),
            Encoding::Bins(k) => (Some(Transform::Bins), Some(k), None),
            Encoding::Categorical { min_count } => (None, None, Some(min_count)),
        }
    }

    fn to_raw(&self) -> RawFeature {
        let (transform, bins, min_count) = self.stored_options();
        RawFeature {
            name: Field::Given(self.name.clone()),
            kind: Field::Given(self.kind().name().to_owned()),
            transform: transform.map(|t| t.name().to_owned()).into(),
            bins: bins.map(|k| k as u64).into(),
            min_count: min_count.map(|n| n as u64).into(),
            actionable: self.actionable.as_ref().map(Actionable::to_raw).into(),
            unknown: serde_json::Map::new(),
        }
    }
}

impl Actionable {
    /// Assembles a lever the validator has checked.
    pub(super) fn from_checked(
        direction: Direction,
        min: Option<f64>,
        max: Option<f64>,
        target: Option<String>,
        label: String,
    ) -> Actionable {
        Actionable {
            direction,
            min,
            max,
            target,
            label,
        }
    }

    /// A lever in `direction`, shown to reps as `label` (trimmed, non-empty).
    pub fn new(direction: Direction, label: &str) -> Result<Actionable, SpecErrors> {
        validate::one_actionable(&RawActionable {
            direction: Field::Given(direction.name().to_owned()),
            label: Field::Given(label.to_owned()),
            ..RawActionable::default()
        })
    }

    /// This lever bounded to `min..=max` (numeric features; finite, `min ≤ max`).
    pub fn with_range(self, min: Option<f64>, max: Option<f64>) -> Result<Actionable, SpecErrors> {
        let mut raw = self.to_raw();
        raw.min = min.into();
        raw.max = max.into();
        validate::one_actionable(&raw)
    }

    /// This lever aiming at one level (categorical features; non-empty).
    pub fn with_target(self, target: &str) -> Result<Actionable, SpecErrors> {
        let mut raw = self.to_raw();
        raw.target = Field::Given(target.to_owned());
        validate::one_actionable(&raw)
    }

    /// Allowed direction of change.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Lowest value a recommendation may propose (numeric only).
    pub fn min(&self) -> Option<f64> {
        self.min
    }

    /// Highest value a recommendation may propose (numeric only).
    pub fn max(&self) -> Option<f64> {
        self.max
    }

    /// Level to move to (categorical only); any better level when absent.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Text shown to reps, e.g. "Answer the prospect faster".
    pub fn label(&self) -> &str {
        &self.label
    }

    fn to_raw(&self) -> RawActionable {
        RawActionable {
            direction: Field::Given(self.direction.name().to_owned()),
            min: self.min.into(),
            max: self.max.into(),
            target: self.target.clone().into(),
            label: Field::Given(self.label.clone()),
            unknown: serde_json::Map::new(),
        }
    }
}

impl Serialize for FeatureDef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The stored form, field for field (order and omissions are part of the format).
        #[derive(Serialize)]
        #[serde(rename = "FeatureDef")]
        struct Stored<'a> {
            name: &'a str,
            kind: Kind,
            #[serde(skip_serializing_if = "Option::is_none")]
            transform: Option<Transform>,
            #[serde(skip_serializing_if = "Option::is_none")]
            bins: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            min_count: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            actionable: Option<&'a Actionable>,
        }
        let (transform, bins, min_count) = self.stored_options();
        Stored {
            name: &self.name,
            kind: self.kind(),
            transform,
            bins,
            min_count,
            actionable: self.actionable.as_ref(),
        }
        .serialize(serializer)
    }
}

/// The stored form as read back: typed like the format, checked by the validator on the way
/// into a [`FeatureDef`].
#[derive(Deserialize)]
struct StoredFeatureDef {
    name: String,
    kind: Kind,
    #[serde(default)]
    transform: Option<Transform>,
    #[serde(default)]
    bins: Option<usize>,
    #[serde(default)]
    min_count: Option<usize>,
    #[serde(default)]
    actionable: Option<StoredActionable>,
}

#[derive(Deserialize)]
struct StoredActionable {
    direction: Direction,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    target: Option<String>,
    label: String,
}

impl TryFrom<StoredFeatureDef> for FeatureDef {
    type Error = SpecErrors;

    fn try_from(stored: StoredFeatureDef) -> Result<FeatureDef, SpecErrors> {
        let actionable = stored.actionable.map(|a| RawActionable {
            direction: Field::Given(a.direction.name().to_owned()),
            min: a.min.into(),
            max: a.max.into(),
            target: a.target.into(),
            label: Field::Given(a.label),
            unknown: serde_json::Map::new(),
        });
        validate::one_feature(&RawFeature {
            name: Field::Given(stored.name),
            kind: Field::Given(stored.kind.name().to_owned()),
            transform: stored.transform.map(|t| t.name().to_owned()).into(),
            bins: stored.bins.map(|k| k as u64).into(),
            min_count: stored.min_count.map(|n| n as u64).into(),
            actionable: actionable.into(),
            unknown: serde_json::Map::new(),
        })
    }
}
