//! A spec exactly as written: permissive structs that mirror the TOML/JSON text.
//!
//! Deserializing into these never fails on a value of the wrong type or an unknown key: each
//! field records whether it was absent, usable or wrong, and unknown keys are kept, so the
//! validator can report every problem at once instead of serde's first one.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One field as written in a spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) enum Field<T> {
    /// The key is not there.
    #[default]
    Absent,
    /// The key holds a value of the expected type.
    Given(T),
    /// The key holds a value of another type (including `null`).
    Wrong,
}

impl<T> Field<T> {
    /// Whether the key is there, whatever its value.
    pub(super) fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
}

impl<T> From<Option<T>> for Field<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Field::Absent, Field::Given)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only called when the key is present (absent keys take the default). Reading the value
        // generically first means a wrong type becomes `Wrong` rather than a serde error.
        let value = Value::deserialize(deserializer)?;
        Ok(T::deserialize(value).map_or(Field::Wrong, Field::Given))
    }
}

/// The whole spec: `{"feature": [...]}` (or `"features"`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawSpec {
    /// The feature list under its TOML name.
    #[serde(default)]
    pub feature: Field<Vec<Field<RawFeature>>>,
    /// The feature list under its plural name, accepted from JSON clients.
    #[serde(default)]
    pub features: Field<Vec<Field<RawFeature>>>,
    /// Any other key, reported as unknown.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// One `[[feature]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawFeature {
    /// Core field name or `attr.<name>`.
    #[serde(default)]
    pub name: Field<String>,
    /// `numeric` or `categorical`.
    #[serde(default)]
    pub kind: Field<String>,
    /// `linear`, `log` or `bins`.
    #[serde(default)]
    pub transform: Field<String>,
    /// Number of quantile bins.
    #[serde(default)]
    pub bins: Field<u64>,
    /// Rare-level threshold.
    #[serde(default)]
    pub min_count: Field<u64>,
    /// The lever reps have on this feature.
    #[serde(default)]
    pub actionable: Field<RawActionable>,
    /// Any other key, reported as unknown.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// An `actionable = { ... }` table.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawActionable {
    /// `increase`, `decrease` or `change`.
    #[serde(default)]
    pub direction: Field<String>,
    /// Lowest value a recommendation may propose.
    #[serde(default)]
    pub min: Field<f64>,
    /// Highest value a recommendation may propose.
    #[serde(default)]
    pub max: Field<f64>,
    /// Level to move to.
    #[serde(default)]
    pub target: Field<String>,
    /// Text shown to reps.
    #[serde(default)]
    pub label: Field<String>,
    /// Any other key, reported as unknown.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
