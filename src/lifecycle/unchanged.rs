//! Retraining on unchanged data: a training run from the database whose deals, features and
//! options are those of the active model's would fit the same model again. The job says so and
//! registers nothing (a forced run trains anyway).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::features::snapshot_plan::SnapshotPlan;
use crate::features::FeatureSpec;
use crate::model::ModelArtifact;
use crate::store::training_data::DataVersion;
use crate::training::TrainOptions;

/// What a run's fingerprint covers: everything that decides the fitted model except "now" and
/// the version id.
#[derive(Serialize)]
struct Covered<'a> {
    data: &'a DataVersion,
    spec: &'a FeatureSpec,
    snapshots: Option<&'a SnapshotPlan>,
    split: &'a crate::training::SplitKind,
    test_fraction: f64,
    seed: u64,
    cv_folds: usize,
    min_won: usize,
    min_lost: usize,
    alphas: &'a [f64],
    max_iterations: u64,
    cv_sample: usize,
    fit_sample: usize,
    window_since: Option<chrono::DateTime<chrono::Utc>>,
    window_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The SHA-256 (hex) of the data version, the spec, the snapshots and the options.
pub fn fingerprint(
    data: &DataVersion,
    spec: &FeatureSpec,
    snapshots: Option<&SnapshotPlan>,
    options: &TrainOptions,
) -> String {
    let covered = Covered {
        data,
        spec,
        snapshots,
        split: &options.split,
        test_fraction: options.test_fraction,
        seed: options.seed,
        cv_folds: options.cv_folds,
        min_won: options.min_won,
        min_lost: options.min_lost,
        alphas: &options.alphas,
        max_iterations: options.max_iterations,
        cv_sample: options.cv_sample,
        fit_sample: options.fit_sample,
        window_since: options.window_since,
        window_until: options.window_until,
    };
    // Serialising plain data with derived impls cannot fail; an empty text would only make every
    // run look changed.
    let text = serde_json::to_string(&covered).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The active model's version when it was trained on exactly `fingerprint`.
pub fn same_as(active: Option<&ModelArtifact>, fingerprint: &str) -> Option<String> {
    let active = active?;
    (active.training.data_fingerprint.as_deref() == Some(fingerprint)).then(|| active.version.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> DataVersion {
        DataVersion {
            deals: 120,
            id_sum: 7_260,
            last_update: 1_700_000_000_000,
            last_activity: 41,
            last_change: 9,
        }
    }

    #[test]
    fn any_change_in_data_spec_snapshots_or_options_changes_the_fingerprint() {
        let spec = FeatureSpec::default_spec();
        let options = TrainOptions::default();
        let base = fingerprint(&version(), &spec, None, &options);
        assert_eq!(base, fingerprint(&version(), &spec, None, &options));
        assert_eq!(base.len(), 64);
        // "now" and the version id are not part of it.
        let later = TrainOptions {
            now: options.now + chrono::Duration::days(3),
            version: Some("m-x".into()),
            ..options.clone()
        };
        assert_eq!(base, fingerprint(&version(), &spec, None, &later));
        let mut changed = Vec::new();
        for data in [
            DataVersion {
                deals: 121,
                ..version()
            },
            DataVersion {
                id_sum: 7_261,
                ..version()
            },
            DataVersion {
                last_update: 1_700_000_000_001,
                ..version()
            },
            DataVersion {
                last_activity: 42,
                ..version()
            },
            DataVersion {
                last_change: 10,
                ..version()
            },
        ] {
            changed.push(fingerprint(&data, &spec, None, &options));
        }
        changed.push(fingerprint(
            &version(),
            &spec,
            Some(&SnapshotPlan::PerDeal(3)),
            &options,
        ));
        let fewer = FeatureSpec::new(spec.features()[1..].to_vec()).expect("a smaller valid spec");
        changed.push(fingerprint(&version(), &fewer, None, &options));
        changed.push(fingerprint(
            &version(),
            &spec,
            None,
            &TrainOptions {
                seed: 7,
                ..options.clone()
            },
        ));
        changed.push(fingerprint(
            &version(),
            &spec,
            None,
            &TrainOptions {
                alphas: vec![1.0],
                ..options.clone()
            },
        ));
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(&base, other, "change {i}");
        }
    }
}
