//! Feature spec and encoding, shared by training and scoring (one source of truth).
//!
//! - [`spec`]: the analyst-facing spec (TOML or JSON), validated with every problem listed.
//! - [`fitted`]: encoders learned on training rows (bins, vocabularies, imputation values).
//! - [`encode`](mod@encode): turning one opportunity into design-matrix entries.
//! - [`raw`]: reading a feature's raw value out of an opportunity.
//! - [`as_of`](mod@as_of): a deal as it stood at an instant, from its history and activities.

pub mod as_of;
pub mod encode;
pub mod fitted;
pub mod raw;
pub mod snapshot_plan;
pub mod spec;

pub use encode::{encode, observe, FeatureCode, ImputedNote, Observation};
pub use fitted::{
    CategoricalEncoder, Encoder, FittedFeature, FittedFeatures, NumericEncoder, NumericScale, MISSING_LEVEL,
    OTHER_LEVEL,
};
pub use spec::{
    Actionable, CoreField, Direction, FeatureDef, FeatureSpec, Kind, Source, SpecErrors, Transform,
};
