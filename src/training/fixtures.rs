//! Test fixture: a model trained on generated deals (default spec, 3-fold CV), for unit tests
//! elsewhere in the crate that need a real artifact.

use chrono::{DateTime, Utc};

use super::{train, TrainOptions};
use crate::domain::Opportunity;
use crate::features::FeatureSpec;
use crate::generate::{generate, GeneratorConfig, SyntheticHistory};
use crate::model::ModelArtifact;

/// Trains on `deals` generated deals (seed `seed`, no activities): the artifact, every generated
/// deal, and the generator's end date (the "now" the model was trained at).
pub(crate) fn trained_on_generated(
    deals: usize,
    seed: u64,
) -> (ModelArtifact, Vec<Opportunity>, DateTime<Utc>) {
    trained_on_generated_with(deals, seed, &FeatureSpec::default_spec())
}

/// [`trained_on_generated`] with another feature spec.
pub(crate) fn trained_on_generated_with(
    deals: usize,
    seed: u64,
    spec: &FeatureSpec,
) -> (ModelArtifact, Vec<Opportunity>, DateTime<Utc>) {
    let (config, history) = generated(deals, seed);
    let options = TrainOptions {
        now: config.end,
        cv_folds: 3,
        ..TrainOptions::default()
    };
    let trained = train(
        &history.opportunities,
        spec,
        &options.check().expect("fixture options are valid"),
        &mut |_| {},
    )
    .expect("generated data trains");
    (trained.artifact, history.opportunities, config.end)
}

/// `deals` generated deals (seed `seed`, no activities) and the configuration they came from.
pub(crate) fn generated(deals: usize, seed: u64) -> (GeneratorConfig, SyntheticHistory) {
    let config = GeneratorConfig {
        deals,
        seed,
        with_activities: false,
        ..GeneratorConfig::default()
    };
    let history = generate(&config);
    (config, history)
}
