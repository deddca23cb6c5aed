//! The model artifact (save, load, verify), prediction and explanation. No linfa here: scoring
//! is a dot product and a sigmoid over the artifact's own data.
//!
//! - [`artifact`]: [`ModelArtifact`], checksum, atomic save, verified load.
//! - [`predict`](mod@predict): [`predict()`], [`explain()`].
//! - [`evaluation`]: metric records stored in the artifact.
//! - [`factors`]: success factors and won/lost reference values.
//! - [`profile`]: the training distributions a drift check compares open deals with.

pub mod artifact;
pub mod cuts;
pub mod evaluation;
pub mod factors;
pub mod predict;
pub mod profile;

pub use artifact::{ArtifactError, ColumnCoefficient, ModelArtifact, TrainingSummary, FORMAT_VERSION};
pub use evaluation::{
    AgeBand, Backtest, CalibrationBin, ConfusionMatrix, Convergence, CvResult, CvSummary, Metrics, RocPoint,
};
pub use factors::{
    CategoryStat, GroupReference, LevelEffect, NumericReference, Quartiles, SuccessFactor,
    MIN_WON_FOR_GROUP_TARGET,
};
pub use predict::{explain, explain_in, logit, predict, sigmoid, Explanation, FeatureContribution};
