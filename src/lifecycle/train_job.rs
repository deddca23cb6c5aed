//! The training job shared by `dealscore-train` and the server: train, save the artifact
//! atomically, pass it through the promotion gate, register it. Nothing is written when training
//! fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::background::{run_cpu, run_low_priority};
use super::gate::{self, GateDecision, GatePolicy};
use super::point_in_time::{self, PointInTime, PointInTimeError, Prepared, TrainedOn};
use super::{backtest, cut_points, unchanged};
use crate::domain::Opportunity;
use crate::features::FeatureSpec;
use crate::model::{sigmoid, ModelArtifact};
use crate::store::models::{self, ModelStatus, NewModelVersion};
use crate::store::opportunities::{each_closed_deal, ClosedDealFields};
use crate::store::training_data::data_version;
use crate::store::Db;
use crate::training::backtest::holdout_start;
use crate::training::compact::{logits, reads_attributes, sources_for};
use crate::training::metrics::roc_auc;
use crate::training::{
    train_compact, CompactDeals, Phases, SplitKind, TrainError, TrainOptions, TrainProgress, TrainedModel,
};

/// Where the job's deals come from.
#[derive(Debug)]
pub enum TrainInput {
    /// Deals already read (a CSV, generated history); open ones are ignored.
    Deals(Vec<Opportunity>),
    /// The closed deals of the database, closed within the window (both ends optional).
    Database {
        /// Only deals closed on or after this time.
        since: Option<DateTime<Utc>>,
        /// Only deals closed on or before this time.
        until: Option<DateTime<Utc>>,
    },
}

/// What a finished job produced.
#[derive(Debug, Serialize)]
pub struct TrainJobOutcome {
    /// The trained model and its report.
    #[serde(flatten)]
    pub trained: TrainedModel,
    /// Where the artifact was written.
    pub artifact_path: PathBuf,
    /// Registry status (absent when not registered).
    pub status: Option<ModelStatus>,
    /// The promotion gate's decision (absent when not registered).
    pub gate: Option<GateDecision>,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainJobError {
    /// Training refused or failed (nothing written).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The artifact could not be serialised or written.
    #[error("cannot write the model artifact: {0}")]
    Write(String),
    /// The registry could not be updated.
    #[error("cannot register the model: {0}")]
    Db(#[from] sqlx::Error),
    /// Snapshots could not be prepared.
    #[error(transparent)]
    PointInTime(#[from] PointInTimeError),
    /// The closed deals could not be read from the database.
    #[error("cannot load the closed deals: {0}")]
    Load(sqlx::Error),
    /// Training from the database without a database.
    #[error("the database is needed to train without --from-csv")]
    NoDatabase,
    /// The active model was trained on the same deals, features and options: nothing trained,
    /// nothing registered.
    #[error(
        "unchanged: the active model {version} was trained on the same closed deals, features and \
         options; no new version was trained (forcing the activation trains anyway)"
    )]
    Unchanged {
        /// The active version.
        version: String,
    },
}

/// What to train and where the result goes.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// Feature spec.
    pub spec: FeatureSpec,
    /// Training options.
    pub options: TrainOptions,
    /// Folder for the artifact file.
    pub out_dir: PathBuf,
    /// Activate the new model whatever the gate says (recorded as forced).
    pub activate: bool,
    /// The promotion gate applied when registering.
    pub gate: GatePolicy,
    /// Who asked (recorded with an activation).
    pub who: String,
    /// Snapshots and the backtest, from the database the deals came from.
    pub point_in_time: PointInTime,
    /// Run the CPU work at the lowest scheduling priority: true in the server, whose HTTP workers
    /// come first; false for the command line, where the job is the process's whole work (run
    /// it under `nice` to yield to other work).
    pub low_priority: bool,
}

/// Runs training on `input` (CPU work on a low-priority thread), writes `out_dir/<version>.json`,
/// and registers it in `registry` when given: activated when it is the first model, when it passes
/// the promotion gate against the active model, or when `activate` forces it. `source` is the
/// database [`TrainInput::Database`] reads (it may be open without being the registry). The
/// report's `phases` times every step, loading included.
pub async fn run(
    job: TrainJob,
    input: TrainInput,
    source: Option<&Db>,
    registry: Option<&Db>,
    progress: impl FnMut(TrainProgress) + Send + 'static,
) -> Result<TrainJobOutcome, TrainJobError> {
    let TrainJob {
        spec,
        options,
        out_dir,
        activate,
        gate: policy,
        who,
        point_in_time,
        low_priority,
    } = job;
    let out_dir: &Path = &out_dir;
    let who: &str = &who;
    let db = registry;
    let mut progress = progress;
    let options = options.check().map_err(TrainError::from)?;
    let now = options.now;
    let spec = if point_in_time.snapshots.is_some() {
        spec.for_snapshots()
    } else {
        spec
    };
    // The active model is read first: the deals are read once, for the candidate's features and
    // for the active model's, which the gate measures on the candidate's holdout.
    let active = match db {
        Some(db) => active_artifact(db).await?,
        None => None,
    };
    // From the database, the data version tells whether this run would fit the active model
    // again; a forced run trains anyway. It is read while the load starts: on unchanged data
    // the load is dropped as soon as that is known, on changed data the version's scans (cold
    // pages of three tables, seconds on a large database) ran beside it.
    let window = match &input {
        TrainInput::Database { since, until } => Some((*since, *until)),
        TrainInput::Deals(_) => None,
    };
    // The fingerprint counts the closed deals, which the snapshot load reserves its columns for.
    let closed_deals = point_in_time::ClosedDealCount::default();
    let check = async {
        let started = Instant::now();
        let (Some((since, until)), Some(source)) = (window, source) else {
            return Ok(None);
        };
        let version = data_version(source, since, until)
            .await
            .map_err(TrainJobError::Load)?;
        closed_deals.set(usize::try_from(version.deals).unwrap_or(0));
        let fingerprint = unchanged::fingerprint(&version, &spec, point_in_time.snapshots.as_ref(), &options);
        if !activate {
            if let Some(version) = unchanged::same_as(active.as_ref(), &fingerprint) {
                return Err(TrainJobError::Unchanged { version });
            }
        }
        Ok(Some((fingerprint, started.elapsed().as_secs_f64())))
    };
    let active_spec = active.as_ref().and_then(|a| a.features.spec().ok());
    let sources = {
        let mut specs = vec![&spec];
        specs.extend(active_spec.as_ref());
        sources_for(&specs)
    };
    // The backtest reads the deals closed after its instant within the same window.
    let window_until = window.and_then(|(_, until)| until);
    let (spec_used, max_iterations, split_kind) = (spec.clone(), options.max_iterations, options.split);
    let fit_sample = options.fit_sample();
    // The deals, and the phase that read them with its time.
    let load = async {
        let (data, prepared, phase) = match input {
            TrainInput::Database { since, until } if point_in_time.snapshots.is_some() => {
                progress(TrainProgress::Phase { name: "load".into() });
                let started = Instant::now();
                let source = source.ok_or(TrainJobError::NoDatabase)?;
                // Each closed deal's snapshots, built from its recorded history, go straight into
                // the compact columns, a page of deals at a time; no deal or snapshot is kept whole.
                let (data, prepared) = point_in_time::prepare_from_database(
                    &point_in_time,
                    source,
                    (since, until),
                    (options.split, options.test_fraction),
                    (CompactDeals::new(&sources, now), low_priority),
                    closed_deals.clone(),
                )
                .await?;
                (data, Some(prepared), ("load", started.elapsed().as_secs_f64()))
            }
            TrainInput::Database { since, until } => {
                progress(TrainProgress::Phase { name: "load".into() });
                let started = Instant::now();
                let source = source.ok_or(TrainJobError::NoDatabase)?;
                // Each deal goes straight into the compact columns, read with only the fields
                // features read; none is kept whole.
                let mut data = CompactDeals::new(&sources, now);
                let fields = ClosedDealFields::Features {
                    attributes: reads_attributes(&sources),
                };
                each_closed_deal(source, since, until, fields, |opp| data.push(&opp))
                    .await
                    .map_err(TrainJobError::Load)?;
                data.finish();
                (data, None, ("load", started.elapsed().as_secs_f64()))
            }
            TrainInput::Deals(deals) => {
                let (deals, prepared) =
                    point_in_time::prepare(&point_in_time, deals, options.split, options.test_fraction)
                        .await?;
                progress(TrainProgress::Phase {
                    name: "encode".into(),
                });
                let started = Instant::now();
                let sources = sources.clone();
                let data = run_cpu("dealscore-encode", low_priority, move || {
                    CompactDeals::from_deals(&deals, &sources, now)
                })
                .await
                .map_err(TrainJobError::Write)?;
                (data, Some(prepared), ("encode", started.elapsed().as_secs_f64()))
            }
        };
        Ok::<_, TrainJobError>((data, prepared, phase))
    };
    let (checked, (data, prepared, (phase, phase_seconds))) = tokio::try_join!(check, load)?;
    let mut job_phases = Phases::default();
    let fingerprint = checked.map(|(fingerprint, seconds)| {
        job_phases.add("fingerprint", seconds);
        fingerprint
    });
    job_phases.add(phase, phase_seconds);
    // Final states read from the database: the backtest looks from the start of the time
    // split's holdout, the split training makes of the same deals.
    let prepared = prepared.unwrap_or_else(|| Prepared {
        backtest_at: match (&point_in_time.source, split_kind) {
            (Some(_), SplitKind::Time) => {
                holdout_start(data.closed_at(), |i| data.id(i), options.test_fraction)
            }
            _ => None,
        },
        ..Prepared::default()
    });
    // Shared with the training's, the backtest's and the gate's CPU work, which run off the
    // async threads.
    let data = Arc::new(data);
    let train_data = Arc::clone(&data);
    let training = run_cpu("dealscore-train", low_priority, move || {
        let result = train_compact(&train_data, &spec, &options, &mut progress);
        (result, progress)
    });
    // The deals the backtest scores (open at its instant) and those the cut points score (open
    // now) do not depend on the model: they are read while it trains, whose fits after the
    // cross-validation keep one core busy and leave the other to the database.
    let reads = async {
        let open_then = match (point_in_time.source.as_ref(), prepared.backtest_at) {
            (Some(db), Some(at)) => Some(backtest::read_open_at(db, at, window_until, &spec_used).await),
            _ => None,
        };
        (open_then, cut_points::read_open(source.or(db), &spec_used).await)
    };
    let (trained, (open_then, open_now)) = tokio::join!(training, reads);
    let (result, progress) = trained.map_err(TrainJobError::Write)?;
    let mut progress = progress;
    let (mut trained, mut run) = result?;
    trained.artifact.training.data_fingerprint = fingerprint;
    trained.phases.prepend(job_phases);
    let started = Instant::now();
    let on = TrainedOn {
        data: Arc::clone(&data),
        spec: &spec_used,
        until: window_until,
        max_iterations,
        fit_sample,
        low_priority,
        warm: run.holdout_fit.take(),
        // A failed read is tried again there, which reports it as the backtest's.
        open: open_then.and_then(Result::ok),
    };
    progress(TrainProgress::Phase {
        name: "artifact".into(),
    });
    // Where grades and focus classes cut: quantiles of the deals open now, under this model.
    // They do not depend on the backtest, so both run at once: each reads the database, then
    // computes on a core of its own.
    let open_now = open_now.map_err(TrainJobError::Write)?;
    let calibrated = cut_points::calibrate(trained.artifact.clone(), open_now, low_priority);
    let backtest = point_in_time::finish(&point_in_time, prepared, &mut trained, on);
    let ((), calibrated) = tokio::join!(backtest, calibrated);
    trained.artifact.cut_points = calibrated.map_err(TrainJobError::Write)?.cut_points;
    trained.artifact.seal();
    trained
        .phases
        .add("backtest_and_cut_points", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let artifact = &trained.artifact;
    // The checksum covers the pretty form, so the registry stores exactly what the file holds.
    let json = artifact
        .to_json_pretty()
        .map_err(|e| TrainJobError::Write(e.to_string()))?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| TrainJobError::Write(format!("{}: {e}", out_dir.display())))?;
    let artifact_path = artifact
        .save_atomic(out_dir)
        .map_err(|e| TrainJobError::Write(format!("{}: {e}", out_dir.display())))?;
    let mut after = Phases::default();
    after.add("artifact", started.elapsed().as_secs_f64());
    let (status, gate) = match db {
        Some(db) => {
            progress(TrainProgress::Phase { name: "gate".into() });
            let started = Instant::now();
            let candidate = artifact.clone();
            let decision = run_cpu("dealscore-gate", low_priority, move || {
                // The active model scores the holdout rows as it scores deals when serving.
                let measured = active.as_ref().map(|a| {
                    let holdout_won: Vec<bool> = run.holdout.iter().map(|&r| data.won()[r]).collect();
                    let probabilities: Vec<f64> =
                        logits(&a.features, &data, &run.holdout, a.intercept, &|i| {
                            a.coefficient(i)
                        })
                        .into_iter()
                        .map(sigmoid)
                        .collect();
                    (a, roc_auc(&probabilities, &holdout_won))
                });
                gate::decide_measured(
                    &policy,
                    &candidate,
                    measured,
                    run.holdout.len(),
                    activate,
                    chrono::Utc::now(),
                )
            })
            .await
            .map_err(TrainJobError::Write)?;
            after.add("gate", started.elapsed().as_secs_f64());
            progress(TrainProgress::Phase {
                name: "register".into(),
            });
            let started = Instant::now();
            let gate_json =
                serde_json::to_string(&decision).map_err(|e| TrainJobError::Write(e.to_string()))?;
            let new = NewModelVersion {
                version: &artifact.version,
                created_at: artifact.created_at,
                sha256: &artifact.sha256,
                artifact_json: &json,
                train_rows: artifact.training.final_rows as i64,
                holdout_auc: Some(artifact.holdout_metrics.roc_auc).filter(|v| v.is_finite()),
            };
            let status = models::register_with_gate(
                db,
                &new,
                decision.outcome.activates(),
                who,
                decision.outcome.reason(),
                Some(&gate_json),
            )
            .await?;
            after.add("register", started.elapsed().as_secs_f64());
            (Some(status), Some(decision))
        }
        None => (None, None),
    };
    for (name, seconds) in after.iter() {
        trained.phases.add(name, seconds);
    }
    Ok(TrainJobOutcome {
        trained,
        artifact_path,
        status,
        gate,
    })
}

/// The registry's active model, if it loads. One whose artifact fails verification cannot be
/// measured, so the gate treats the candidate as if no model were active (logged).
async fn active_artifact(db: &Db) -> Result<Option<ModelArtifact>, sqlx::Error> {
    let Some((record, json)) = models::active(db).await? else {
        return Ok(None);
    };
    let parsed = run_low_priority("dealscore-load", move || ModelArtifact::from_json_verified(&json)).await;
    match parsed {
        Ok(Ok(artifact)) => Ok(Some(artifact)),
        Ok(Err(e)) => {
            tracing::warn!(version = %record.version, error = %e, "active model refused; the gate ignores it");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(version = %record.version, error = %e, "active model could not be loaded; the gate ignores it");
            Ok(None)
        }
    }
}
