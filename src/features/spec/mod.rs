//! The feature spec: which deal fields the model uses and how each is encoded.
//!
//! A spec arrives as TOML (analysts' files, `training/features.toml`) or JSON (HTTP). Both texts
//! become one generic JSON value, so the two formats accept exactly the same specs; then:
//! - `raw`: serde reads the value into permissive structs that mirror the text (a wrong type
//!   or an unknown key is recorded, not fatal);
//! - `validate`: one step turns them into the always-valid [`FeatureSpec`] / [`FeatureDef`] /
//!   [`Actionable`], reporting every problem at once with its path;
//! - `def`: the valid types, whose fields are private and whose constructors (and stored-form
//!   deserialization) go through the same validator.
//!
//! `vocab` holds the words a spec is written with (core fields, kinds, transforms, directions).

mod def;
mod raw;
mod validate;
mod vocab;

#[cfg(test)]
mod def_tests;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::Value;

pub use def::{Actionable, FeatureDef};
pub use vocab::{CoreField, Direction, Kind, Source, Transform};

use crate::domain::FieldError;
use crate::i18n::format::NNBSP;
use crate::tr;

/// The default spec shipped with dealscore (`training/features.toml`).
/// Quantile bins of the age in the default spec of a snapshot job ([`FeatureSpec::for_snapshots`]).
pub const SNAPSHOT_AGE_BINS: usize = 16;

const DEFAULT_SPEC_TOML: &str = include_str!("../../../training/features.toml");
/// The as-of measures a snapshot job adds to the default spec ([`FeatureSpec::for_snapshots`]).
const SNAPSHOT_SPEC_TOML: &str = include_str!("../../../training/snapshot-features.toml");
/// Default number of quantile bins for a binned numeric feature.
pub const DEFAULT_BINS: usize = 8;
/// Default `min_count` for categorical features.
pub const DEFAULT_MIN_COUNT: usize = 20;
/// Most bins a numeric feature may ask for (keeps the design small and bins populated).
const MAX_BINS: usize = 100;

/// A validated feature spec: at least one feature, names unique, in design-matrix order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSpec {
    #[serde(rename = "feature")]
    features: Vec<FeatureDef>,
}

/// Every problem found in a spec; never empty when returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid feature spec: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct SpecErrors(pub Vec<FieldError>);

impl FeatureSpec {
    /// A spec of already valid definitions; refused when empty or when a name repeats.
    pub fn new(features: Vec<FeatureDef>) -> Result<FeatureSpec, SpecErrors> {
        validate::list(features)
    }

    /// Assembles a spec the validator has checked.
    fn from_checked(features: Vec<FeatureDef>) -> FeatureSpec {
        FeatureSpec { features }
    }

    /// The features, in design-matrix order.
    pub fn features(&self) -> &[FeatureDef] {
        &self.features
    }

    /// The default spec (`training/features.toml`, compiled in).
    pub fn default_spec() -> FeatureSpec {
        // The embedded file is covered by a unit test, so it always parses; the fallback (every
        // core field with its natural encoding, valid by construction) keeps this function
        // infallible without a panic path.
        FeatureSpec::from_toml(DEFAULT_SPEC_TOML).unwrap_or_else(|_| FeatureSpec {
            features: CoreField::ALL.into_iter().map(FeatureDef::natural).collect(),
        })
    }

    /// This spec as a snapshot job uses it. The default spec, there:
    /// - cuts the deal's age (`cycle_days`, a deal's age at each snapshot) into
    ///   [`SNAPSHOT_AGE_BINS`] bins instead of 8: snapshot ages sit at the plan's instants, and 8
    ///   quantile bins over them put every deal older than about two months into one bin, which
    ///   over-estimated the oldest open deals (docs/scoring-method.md);
    /// - adds the as-of measures of `training/snapshot-features.toml` (interactions per week,
    ///   days without activity) with their levers: measured at each snapshot's instant, they say
    ///   how a deal is being worked, which a final state cannot (it ends where the deal closed).
    ///
    /// Any other spec is used as written.
    pub fn for_snapshots(self) -> FeatureSpec {
        if self != FeatureSpec::default_spec() {
            return self;
        }
        let mut features: Vec<FeatureDef> = self
            .features
            .into_iter()
            .map(|feature| {
                if feature.name() != CoreField::CycleDays.name() {
                    return feature;
                }
                FeatureDef::binned(CoreField::CycleDays.name(), SNAPSHOT_AGE_BINS).unwrap_or(feature)
            })
            .collect();
        // The embedded file is covered by a unit test; were it ever invalid, the job would
        // still run on the default spec's features.
        if let Ok(extra) = FeatureSpec::from_toml(SNAPSHOT_SPEC_TOML) {
            features.extend(extra.features);
        }
        FeatureSpec { features }
    }

    /// Parses and validates a TOML spec (`[[feature]]` tables), listing every problem.
    pub fn from_toml(text: &str) -> Result<FeatureSpec, SpecErrors> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!("not valid TOML: {e}", "TOML invalide{NNBSP}: {e}"),
            )])
        })?;
        let value = serde_json::to_value(table).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!(
                    "unsupported TOML value: {e}",
                    "valeur TOML non prise en charge{NNBSP}: {e}"
                ),
            )])
        })?;
        validate::spec(&value)
    }

    /// Parses and validates a JSON spec: `{"feature": [ {...}, ... ]}` (`"features"` is accepted
    /// too), with the same fields as the TOML form.
    pub fn from_json(text: &str) -> Result<FeatureSpec, SpecErrors> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            SpecErrors(vec![FieldError::localized(
                "spec",
                tr!("not valid JSON: {e}", "JSON invalide{NNBSP}: {e}"),
            )])
        })?;
        validate::spec(&value)
    }

    /// The spec as TOML text (same format as `training/features.toml`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
