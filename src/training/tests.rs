//! End-to-end training tests: synthetic deals with a known signal, and the real salvirt data.

use chrono::{Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::domain::{AttributeValue, ContactRole, Deal, ExternalId, Status};
use crate::model::{explain, predict, ArtifactError};

const SECTORS: [&str; 4] = ["retail", "banking", "energy", "public"];
const ROLES: [&str; 3] = ["decision_maker", "influencer", "end_user"];

/// Synthetic closed deals: faster answers, more interactions and decision makers win more.
/// `won_bias` shifts the intercept to make won the minority (negative) or majority (positive).
fn synthetic(n: usize, seed: u64, won_bias: f64) -> Vec<Opportunity> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let response: f64 = rng.gen_range(0.5..120.0);
            let interactions: i64 = rng.gen_range(0..30);
            let sector = SECTORS[rng.gen_range(0..SECTORS.len())];
            let role = ROLES[rng.gen_range(0..ROLES.len())];
            let cycle: f64 = rng.gen_range(5.0..200.0);
            let z = won_bias - 0.03 * response
                + 0.08 * interactions as f64
                + if role == "decision_maker" { 1.0 } else { 0.0 }
                + if sector == "retail" { 0.5 } else { 0.0 };
            let won = rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp());
            let created = start + Duration::days(i as i64 % 600);
            Opportunity {
                external_id: ExternalId::parse(&format!("D-{i:05}")).expect("test ids are valid"),
                deal: Deal {
                    name: None,
                    account: None,
                    sector: Some(sector.to_owned()),
                    region: Some(if i % 2 == 0 { "north" } else { "south" }.to_owned()),
                    owner: None,
                    contact_role: ContactRole::normalise(role),
                    amount: if i % 10 == 0 {
                        None
                    } else {
                        Some(rng.gen_range(1_000.0..100_000.0))
                    },
                    currency: "EUR".into(),
                    stage: None,
                    status: if won { Status::Won } else { Status::Lost },
                    created_at: Some(created),
                    closed_at: Some(created + Duration::milliseconds((cycle * 86_400_000.0) as i64)),
                    interaction_count: Some(interactions),
                    response_hours: if i % 7 == 0 { None } else { Some(response) },
                    last_activity_at: None,
                    attributes: Default::default(),
                    cycle_days: None,
                },
            }
        })
        .collect()
}

fn options() -> TrainOptions {
    TrainOptions {
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ..TrainOptions::default()
    }
}

fn train_quiet(
    deals: &[Opportunity],
    spec: &FeatureSpec,
    opts: &TrainOptions,
) -> Result<TrainedModel, TrainError> {
    train(deals, spec, &opts.clone().check()?, &mut |_| {})
}

#[test]
fn predict_reproduces_training_time_probabilities() {
    let deals = synthetic(1500, 1, 0.0);
    let opts = options();
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &opts).unwrap();
    assert_eq!(trained.training_predictions.len(), deals.len());
    for (deal, expected) in deals.iter().zip(&trained.training_predictions) {
        assert_eq!(deal.external_id, expected.external_id);
        let p = predict(&trained.artifact, deal, opts.now);
        assert!(
            (p - expected.probability).abs() < 1e-12,
            "{p} vs {}",
            expected.probability
        );
    }
    assert!(
        trained.artifact.holdout_metrics.roc_auc > 0.7,
        "{:?}",
        trained.artifact.holdout_metrics
    );
    assert!(trained.artifact.baseline_metrics.roc_auc == 0.5);
    assert!(
        trained.artifact.convergence.converged,
        "{:?}",
        trained.artifact.convergence
    );
    let report = render_report(&trained);
    assert!(report.contains("Holdout metrics"), "{report}");
    assert!(serde_json::to_string(&trained)
        .unwrap()
        .contains("\"holdout_metrics\""));
}

#[test]
fn contributions_add_up_to_the_logit_difference() {
    let deals = synthetic(800, 2, 0.0);
    let opts = options();
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &opts).unwrap();
    let mut open = deals[3].clone();
    open.status = Status::Open;
    open.closed_at = None;
    open.response_hours = None;
    open.sector = Some("mining".into()); // unseen level
    for deal in deals.iter().take(50).chain(std::iter::once(&open)) {
        let e = explain(&trained.artifact, deal, opts.now);
        let sum: f64 = e.contributions.iter().map(|c| c.contribution).sum();
        assert!((sum - (e.logit - e.baseline_logit)).abs() < 1e-9);
        assert!((e.probability - predict(&trained.artifact, deal, opts.now)).abs() < 1e-15);
    }
    let e = explain(&trained.artifact, &deals[1], opts.now);
    let rh = e
        .contributions
        .iter()
        .find(|c| c.feature == "response_hours")
        .unwrap();
    assert!(rh.value.ends_with(" h") && rh.raw.is_some(), "{rh:?}");
    assert!(rh.level.starts_with('['), "{rh:?}");
    let e = explain(&trained.artifact, &open, opts.now);
    assert!(
        e.imputed.iter().any(|m| m.starts_with("response_hours")),
        "{:?}",
        e.imputed
    );
    let rh = e
        .contributions
        .iter()
        .find(|c| c.feature == "response_hours")
        .unwrap();
    assert!(rh.value.starts_with("missing (imputed"), "{}", rh.value);
    let sector = e.contributions.iter().find(|c| c.feature == "sector").unwrap();
    assert_eq!(sector.value, "mining");
}

#[test]
fn orientation_is_right_when_won_is_the_minority_and_the_majority() {
    for bias in [-2.0, 2.0] {
        let deals = synthetic(1200, 3, bias);
        let won_share = deals.iter().filter(|d| d.status == Status::Won).count() as f64 / deals.len() as f64;
        assert!(
            if bias < 0.0 {
                won_share < 0.4
            } else {
                won_share > 0.6
            },
            "{won_share}"
        );
        let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
        // Mean predicted probability tracks the won share, and ranking is better than chance.
        let mean_p = trained
            .training_predictions
            .iter()
            .map(|p| p.probability)
            .sum::<f64>()
            / trained.training_predictions.len() as f64;
        assert!(
            (mean_p - won_share).abs() < 0.02,
            "bias {bias}: {mean_p} vs {won_share}"
        );
        assert!(trained.artifact.holdout_metrics.roc_auc > 0.65, "bias {bias}");
        // Decision makers raise the odds in both cases.
        let role = trained
            .artifact
            .success_factors
            .iter()
            .find(|f| f.feature == "contact_role")
            .unwrap();
        let coef = |level: &str| role.levels.iter().find(|l| l.level == level).unwrap().coefficient;
        assert!(coef("decision_maker") > coef("end_user"), "bias {bias}");
    }
}

#[test]
fn too_few_outcomes_is_a_clear_error() {
    let deals = synthetic(60, 4, -2.0);
    let err = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::TooFewOutcomes {
                min_won: 40,
                min_lost: 40,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("need at least 40 won and 40 lost"),
        "{err}"
    );
}

#[test]
fn trains_on_only_categorical_only_numeric_and_mixed_specs() {
    let deals = synthetic(600, 5, 0.0);
    for text in [
        "[[feature]]\nname = \"sector\"\n[[feature]]\nname = \"contact_role\"\nmin_count = 5\n",
        "[[feature]]\nname = \"response_hours\"\n[[feature]]\nname = \"interaction_count\"\ntransform = \"linear\"\n\
         [[feature]]\nname = \"amount\"\ntransform = \"log\"\n",
        "[[feature]]\nname = \"response_hours\"\nbins = 4\n[[feature]]\nname = \"contact_role\"\n",
    ] {
        let spec = FeatureSpec::from_toml(text).unwrap();
        let trained = train_quiet(&deals, &spec, &options()).unwrap();
        assert!(trained.artifact.holdout_metrics.roc_auc > 0.55, "{text}");
        for (deal, expected) in deals.iter().zip(&trained.training_predictions).take(100) {
            assert!((predict(&trained.artifact, deal, options().now) - expected.probability).abs() < 1e-12);
        }
    }
}

#[test]
fn artifact_round_trips_and_refuses_any_changed_byte() {
    let deals = synthetic(500, 6, 0.0);
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = trained.artifact.save_atomic(dir.path()).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("{}.json", trained.artifact.version)
    );
    let loaded = ModelArtifact::load_verified(&path).unwrap();
    // serde_json's default float parser may be 1 ulp off on some numbers, so compare what
    // matters: identity, structure and predictions.
    assert_eq!(loaded.version, trained.artifact.version);
    assert_eq!(loaded.sha256, trained.artifact.sha256);
    assert_eq!(
        loaded.features.column_names(),
        trained.artifact.features.column_names()
    );
    for deal in deals.iter().take(100) {
        let (a, b) = (
            predict(&loaded, deal, options().now),
            predict(&trained.artifact, deal, options().now),
        );
        assert!((a - b).abs() < 1e-12);
    }

    let text = std::fs::read_to_string(&path).unwrap();
    // Change one digit of the intercept.
    let at = text.find("\"intercept\": ").unwrap() + "\"intercept\": ".len() + 3;
    let mut bytes = text.clone().into_bytes();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        ModelArtifact::from_json_verified(&tampered),
        Err(ArtifactError::ChecksumMismatch { .. })
    ));
    let future = text.replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    assert!(matches!(
        ModelArtifact::from_json_verified(&future),
        Err(ArtifactError::UnsupportedFormat { found: 99 })
    ));
    assert!(trained.artifact.version.starts_with("m-20260101-000000-"));
}

#[test]
fn time_split_holds_out_the_newest_deals() {
    let deals = synthetic(500, 7, 0.0);
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
    let t = &trained.artifact.training;
    assert_eq!(t.holdout_rows, 100);
    let from = t.holdout_from.unwrap();
    let newer = deals.iter().filter(|d| d.closed_at.unwrap() >= from).count();
    assert_eq!(newer, 100);
    // Same data, same options: same model.
    let again = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
    assert_eq!(again.artifact.coefficients, trained.artifact.coefficients);
}

/// Reads the salvirt B2B data set (CC BY 4.0, Bohanec et al. 2017) into opportunities whose
/// attributes are the 22 columns.
fn salvirt() -> Vec<Opportunity> {
    let path = std::path::Path::new("tests/data/salvirt_b2b.csv");
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let closed = Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap();
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let record = record.unwrap();
            let mut attributes = std::collections::BTreeMap::new();
            let mut status = Status::Open;
            for (name, value) in headers.iter().zip(record.iter()) {
                if name == "Status" {
                    status = Status::parse(value).unwrap();
                } else {
                    attributes.insert(name.to_owned(), AttributeValue::Text(value.to_owned()));
                }
            }
            Opportunity {
                external_id: ExternalId::parse(&format!("S-{i:03}")).expect("test ids are valid"),
                deal: Deal {
                    name: None,
                    account: None,
                    sector: None,
                    region: None,
                    owner: None,
                    contact_role: None,
                    amount: None,
                    currency: "EUR".into(),
                    stage: None,
                    status,
                    created_at: None,
                    closed_at: Some(closed),
                    interaction_count: None,
                    response_hours: None,
                    last_activity_at: None,
                    attributes,
                    cycle_days: None,
                },
            }
        })
        .collect()
}

#[test]
fn salvirt_cross_validated_auc_reaches_the_reference() {
    let deals = salvirt();
    assert_eq!(deals.len(), 448);
    let spec = FeatureSpec::from_toml(include_str!("../../training/examples/salvirt-features.toml")).unwrap();
    assert_eq!(spec.features().len(), 22);
    let opts = TrainOptions {
        split: SplitKind::Random,
        ..options()
    };
    let trained = train_quiet(&deals, &spec, &opts).unwrap();
    let best = trained
        .artifact
        .cv
        .results
        .iter()
        .find(|r| r.alpha == trained.artifact.cv.chosen_alpha)
        .unwrap();
    println!("{}", render_report(&trained));
    println!("salvirt CV AUC {:.4} (alpha {})", best.mean_auc, best.alpha);
    assert!(best.mean_auc >= 0.81, "{:?}", trained.artifact.cv);
    // The same protocol as the published/scikit-learn figure: 5-fold CV on all 448 rows.
    let all = cross_validate_all(&deals, &spec, &opts.clone().check().unwrap(), &mut |_| {}).unwrap();
    for r in &all.results {
        println!(
            "salvirt all-rows CV: alpha {:>6} AUC {:.4} ± {:.4}",
            r.alpha, r.mean_auc, r.sd_auc
        );
    }
    let chosen = all.results.iter().find(|r| r.alpha == all.chosen_alpha).unwrap();
    assert!(chosen.mean_auc >= 0.81, "{all:?}");
    let default_c = all.results.iter().find(|r| r.alpha == 1.0).unwrap();
    assert!(default_c.mean_auc >= 0.81, "{all:?}");
    for (deal, expected) in deals.iter().zip(&trained.training_predictions) {
        assert!((predict(&trained.artifact, deal, opts.now) - expected.probability).abs() < 1e-12);
    }
}

#[test]
fn check_reports_every_option_out_of_range() {
    let cases: Vec<(TrainOptions, Vec<InvalidOption>)> = vec![
        (options(), vec![]),
        (
            TrainOptions {
                test_fraction: 0.0,
                ..options()
            },
            vec![InvalidOption::TestFraction(0.0)],
        ),
        (
            TrainOptions {
                test_fraction: f64::NAN,
                ..options()
            },
            vec![InvalidOption::TestFraction(f64::NAN)],
        ),
        (
            TrainOptions {
                cv_folds: 1,
                ..options()
            },
            vec![InvalidOption::CvFolds(1)],
        ),
        (
            TrainOptions {
                alphas: vec![1.0, -1.0],
                ..options()
            },
            vec![InvalidOption::Alphas],
        ),
        (
            TrainOptions {
                max_iterations: 0,
                ..options()
            },
            vec![InvalidOption::MaxIterations],
        ),
        (
            TrainOptions {
                fit_sample: MIN_FIT_SAMPLE_ROWS - 1,
                ..options()
            },
            vec![InvalidOption::FitSample(MIN_FIT_SAMPLE_ROWS - 1)],
        ),
        (
            TrainOptions {
                fit_sample: 0,
                ..options()
            },
            vec![],
        ),
    ];
    for (given, expected) in cases {
        match given.clone().check() {
            Ok(valid) => {
                assert!(expected.is_empty(), "{given:?}");
                assert_eq!(*valid, given);
            }
            // NaN is not equal to itself: compare the words, which are what callers see.
            Err(InvalidOptions(found)) => assert_eq!(format!("{found:?}"), format!("{expected:?}")),
        }
    }
}

#[test]
fn invalid_options_keep_their_message() {
    let all_wrong = TrainOptions {
        test_fraction: 1.0,
        cv_folds: 1,
        alphas: vec![],
        max_iterations: 0,
        ..options()
    };
    let error = TrainError::from(all_wrong.check().unwrap_err());
    assert_eq!(
        error.to_string(),
        "invalid training options: test_fraction must be in (0, 1), got 1; cv_folds must be at least 2, \
         got 1; alphas must be a non-empty list of positive numbers; max_iterations must be at least 1"
    );
}

#[test]
fn a_feature_empty_in_every_closed_deal_is_dropped_with_a_warning() {
    let mut deals = synthetic(1200, 4, 0.0);
    for deal in &mut deals {
        deal.response_hours = None;
    }
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
    let names: Vec<&str> = trained
        .artifact
        .features
        .features
        .iter()
        .map(|f| f.def.name())
        .collect();
    assert!(!names.contains(&"response_hours"), "{names:?}");
    assert!(names.contains(&"interaction_count"), "{names:?}");
    assert!(
        trained
            .warnings
            .iter()
            .any(|w| w.contains("`response_hours` was dropped")),
        "{:?}",
        trained.warnings
    );
    // A feature with a single value somewhere is kept.
    deals[5].response_hours = Some(3.0);
    let trained = train_quiet(&deals, &FeatureSpec::default_spec(), &options()).unwrap();
    assert!(trained
        .artifact
        .features
        .features
        .iter()
        .any(|f| f.def.name() == "response_hours"));
    assert!(!trained.warnings.iter().any(|w| w.contains("was dropped")));
    // Nothing left to learn from: refused, naming the empty features.
    let only_response = FeatureSpec::from_toml("[[feature]]\nname = \"response_hours\"\n").unwrap();
    for deal in &mut deals {
        deal.response_hours = None;
    }
    let error = train_quiet(&deals, &only_response, &options()).unwrap_err();
    assert!(matches!(error, TrainError::AllFeaturesEmpty { .. }), "{error}");
    assert!(error.to_string().contains("response_hours"), "{error}");
}

#[test]
fn a_fit_sample_keeps_every_row_up_to_its_size_and_a_stratified_share_beyond() {
    let won: Vec<bool> = (0..30_000).map(|i| i % 3 == 0).collect();
    let rows: Vec<usize> = (0..won.len()).filter(|i| i % 2 == 0).collect();
    let every = FitSample { rows: 0, seed: 1 };
    assert_eq!(
        every.of(&rows, &won),
        (std::borrow::Cow::Borrowed(&rows[..]), 1.0)
    );
    let large = FitSample {
        rows: rows.len(),
        seed: 1,
    };
    assert_eq!(large.of(&rows, &won).1, 1.0);
    let small = FitSample {
        rows: 10_000,
        seed: 1,
    };
    let (sample, share) = small.of(&rows, &won);
    assert_eq!(sample.len(), 10_000);
    assert!((share - 10_000.0 / 15_000.0).abs() < 1e-12);
    assert!(sample.windows(2).all(|w| w[0] < w[1]), "ascending, no repeat");
    assert!(sample.iter().all(|r| r % 2 == 0), "drawn from the rows given");
    let won_share = sample.iter().filter(|&&r| won[r]).count() as f64 / sample.len() as f64;
    let given_share = rows.iter().filter(|&&r| won[r]).count() as f64 / rows.len() as f64;
    assert!(
        (won_share - given_share).abs() < 1e-3,
        "{won_share} vs {given_share}"
    );
    assert_eq!(
        small.of(&rows, &won).0,
        sample,
        "the same rows and seed give the same sample"
    );
    assert_ne!(FitSample { seed: 2, ..small }.of(&rows, &won).0, sample);
}

#[test]
fn a_model_fitted_on_a_sample_of_the_rows_ranks_the_holdout_as_the_full_fit_does() {
    let deals = synthetic(25_000, 21, 0.0);
    let spec = FeatureSpec::default_spec();
    let full = train_quiet(
        &deals,
        &spec,
        &TrainOptions {
            fit_sample: 0,
            ..options()
        },
    )
    .unwrap();
    let sampled = train_quiet(
        &deals,
        &spec,
        &TrainOptions {
            fit_sample: MIN_FIT_SAMPLE_ROWS,
            ..options()
        },
    )
    .unwrap();
    let (f, s) = (&full.artifact, &sampled.artifact);
    // The same rows are held out and scored; only the fits read fewer of them.
    assert_eq!(f.training.holdout_rows, s.training.holdout_rows);
    assert_eq!(f.cv.chosen_alpha, s.cv.chosen_alpha);
    assert_ne!(f.coefficients, s.coefficients, "the fits read different rows");
    let (fa, sa) = (f.holdout_metrics.roc_auc, s.holdout_metrics.roc_auc);
    assert!((fa - sa).abs() < 0.01, "{fa} vs {sa}");
    assert!(
        (full.holdout_fit_convergence.alpha_used / sampled.holdout_fit_convergence.alpha_used
            - 20_000.0 / 10_000.0)
            .abs()
            < 0.01,
        "alpha scaled to the sample"
    );
}

#[test]
fn the_holdout_and_shipped_fits_give_the_same_model_side_by_side_and_in_turn() {
    let deals = synthetic(3000, 5, 0.0);
    let spec = FeatureSpec::default_spec();
    let opts = TrainOptions {
        version: Some("fit-order".into()),
        ..options()
    }
    .check()
    .unwrap();
    let data = CompactDeals::from_deals(&deals, &compact::sources_for(&[&spec]), opts.now);
    let run = |order: fn(&CompactDeals, usize, usize) -> FitOrder| {
        let mut phases = Vec::new();
        let (trained, run) = train_compact_ordered(
            &data,
            &spec,
            &opts,
            &mut |p| {
                if let TrainProgress::Phase { name } = p {
                    phases.push(name);
                }
            },
            order,
        )
        .unwrap();
        (trained, run, phases)
    };
    let (side, side_run, side_phases) = run(|_, _, _| FitOrder::SideBySide);
    let (turn, turn_run, turn_phases) = run(|_, _, _| FitOrder::InTurn);
    assert_eq!(side_phases, turn_phases);
    assert!(side_phases.iter().any(|p| p == "refit"), "{side_phases:?}");
    let mut turn_artifact = turn.artifact.clone();
    turn_artifact.created_at = side.artifact.created_at;
    turn_artifact.sha256.clone_from(&side.artifact.sha256);
    assert_eq!(side.artifact, turn_artifact);
    assert!(side.artifact.profile.is_some());
    assert_eq!(side.holdout_fit_convergence, turn.holdout_fit_convergence);
    assert_eq!(side_run.probabilities, turn_run.probabilities);
    assert_eq!(side_run.holdout, turn_run.holdout);
}

#[test]
fn the_fits_run_side_by_side_only_when_a_second_matrix_is_no_larger_than_the_data() {
    let deals = synthetic(2000, 6, 0.0);
    let spec = FeatureSpec::default_spec();
    let data = CompactDeals::from_deals(&deals, &compact::sources_for(&[&spec]), options().now);
    let bytes = data.heap_bytes();
    // Ids, dates, outcomes and one value (or code) per source and row at least.
    assert!(
        bytes > data.len() * (8 + 1 + compact::sources_for(&[&spec]).len() * 4),
        "{bytes}"
    );
    // A fit reading every row of final states lays out more than the data holds.
    assert_eq!(FitOrder::by_memory(&data, data.len(), 40), FitOrder::InTurn);
    // A fit reading a sample of them (as of snapshots, several rows a deal) does not.
    let fitting = bytes / (40 * 8);
    assert_eq!(FitOrder::by_memory(&data, fitting, 40), FitOrder::SideBySide);
    assert_eq!(FitOrder::by_memory(&data, fitting + 1, 40), FitOrder::InTurn);
}
