//! Training runs: validated requests, persisted runs, execution off the request threads with
//! progress and heartbeats in the database, crash recovery.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::default_plan::{self, SnapshotRequest};
use super::gate::GatePolicy;
use super::point_in_time::PointInTime;
use super::train_job::{self, TrainJob, TrainJobError};
use crate::domain::ValidationErrors;
use crate::features::FeatureSpec;
use crate::i18n::format::NNBSP;
use crate::serving::ActiveModel;
use crate::store::training_runs::{self, CreateError, NewRun, RunEnd, RunProgress, RunRecord};
use crate::store::Db;
use crate::tr;
use crate::training::{SplitKind, TrainOptions, TrainProgress};

/// How often a running run records a sign of life.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A run whose heartbeat is older than this is taken as interrupted (its server died). Several
/// heartbeats long, so a busy but live server is never mistaken for a dead one.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// Body of `POST /v1/models/train`: the same choices as `dealscore-train`. Every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// Feature spec: TOML or JSON text, or a JSON object (`{"feature": [...]}`). Default: the
    /// built-in spec (training/features.toml).
    #[schema(value_type = Option<Object>)]
    pub spec: Option<serde_json::Value>,
    /// Only deals closed on or after this time (RFC 3339 or YYYY-MM-DD).
    pub since: Option<String>,
    /// Only deals closed on or before this time.
    pub until: Option<String>,
    /// Training options.
    #[serde(default)]
    pub options: TrainRequestOptions,
    /// Activate the new model whatever the promotion gate says (recorded as forced).
    #[serde(default)]
    pub force: bool,
}

/// Training options of a request (defaults as in `dealscore-train`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequestOptions {
    /// `time` (default) or `random`.
    pub split: Option<String>,
    /// Share of closed deals held out (default 0.2).
    pub test_fraction: Option<f64>,
    /// Seed (default 42).
    pub seed: Option<u64>,
    /// Cross-validation folds (default 5).
    pub cv: Option<usize>,
    /// Fewest won deals accepted (default 40).
    pub min_won: Option<usize>,
    /// Fewest lost deals accepted (default 40).
    pub min_lost: Option<usize>,
    /// Learn from each closed deal as it stood at this many instants of its open life
    /// (docs/scoring-method.md). Needs the time split. Default: snapshots at 16 ages from 0 to
    /// 365 days when the closed deals have activities, else final states.
    #[schema(minimum = 1, maximum = 12)]
    pub snapshots: Option<usize>,
    /// Or learn from each closed deal as it stood at each of these ages in days (increasing,
    /// 1–24 of them) that it reached while open. Not with `snapshots`.
    #[schema(min_items = 1, max_items = 24)]
    pub snapshot_ages: Option<Vec<u32>>,
    /// Learn from each closed deal's final state, even when its history could give snapshots.
    /// Not with `snapshots` or `snapshot_ages`.
    pub final_state: Option<bool>,
}

/// A validated request, ready to run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Feature spec.
    pub spec: FeatureSpec,
    /// Options (`now` is set when the run starts).
    pub options: TrainOptions,
    /// Forced activation.
    pub force: bool,
    /// The instants each closed deal is seen at, as asked (resolved when the run starts).
    pub snapshots: SnapshotRequest,
    /// The request as recorded on the run.
    pub recorded: serde_json::Value,
}

fn parse_spec(value: &serde_json::Value) -> Result<FeatureSpec, Vec<crate::domain::FieldError>> {
    let result = match value {
        serde_json::Value::String(text) if text.trim_start().starts_with('{') => FeatureSpec::from_json(text),
        serde_json::Value::String(text) => FeatureSpec::from_toml(text),
        serde_json::Value::Object(_) => FeatureSpec::from_json(&value.to_string()),
        _ => {
            return Err(vec![crate::domain::FieldError::localized(
                "spec",
                tr!(
                    "must be TOML or JSON text, or a JSON object",
                    "doit être un texte TOML ou JSON, ou un objet JSON"
                ),
            )])
        }
    };
    result.map_err(|e| {
        e.0.into_iter()
            .map(|mut f| {
                f.field = format!("spec.{}", f.field);
                f
            })
            .collect()
    })
}

impl TrainRequest {
    /// Checks everything and reports every problem at once (field names as in the body).
    pub fn plan(&self) -> Result<RunPlan, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let spec = match &self.spec {
            None => Some(FeatureSpec::default_spec()),
            Some(value) => match parse_spec(value) {
                Ok(spec) => Some(spec),
                Err(problems) => {
                    errors.0.extend(problems);
                    None
                }
            },
        };
        let mut date = |field: &str, text: &Option<String>| -> Option<DateTime<Utc>> {
            let text = text.as_deref()?;
            match crate::domain::parse_timestamp(text) {
                Ok(t) => Some(t),
                Err(_) => {
                    errors.push_known(field, crate::domain::bad_timestamp(text, None));
                    None
                }
            }
        };
        let since = date("since", &self.since);
        let until = date("until", &self.until);
        if let (Some(s), Some(u)) = (since, until) {
            if s > u {
                errors.push_localized(
                    "until",
                    tr!("must not be before `since`", "ne doit pas précéder `since`"),
                );
            }
        }
        let o = &self.options;
        let defaults = TrainOptions::default();
        let split = match o.split.as_deref() {
            None | Some("time") => SplitKind::Time,
            Some("random") => SplitKind::Random,
            Some(other) => {
                errors.push_localized(
                    "options.split",
                    tr!(
                        "must be `time` or `random`, got `{other}`",
                        "doit être `time` ou `random`, reçu{NNBSP}: `{other}`"
                    ),
                );
                SplitKind::Time
            }
        };
        let test_fraction = o.test_fraction.unwrap_or(defaults.test_fraction);
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            errors.push_localized(
                "options.test_fraction",
                tr!(
                    "must be between 0 and 1 (exclusive)",
                    "doit être strictement compris entre 0 et 1"
                ),
            );
        }
        let cv = o.cv.unwrap_or(defaults.cv_folds);
        if !(2..=20).contains(&cv) {
            errors.push_localized(
                "options.cv",
                tr!("must be between 2 and 20", "doit être compris entre 2 et 20"),
            );
        }
        let min_won = o.min_won.unwrap_or(defaults.min_won);
        let min_lost = o.min_lost.unwrap_or(defaults.min_lost);
        for (field, value) in [("options.min_won", min_won), ("options.min_lost", min_lost)] {
            if value < 2 {
                errors.push_localized(field, tr!("must be at least 2", "doit valoir au moins 2"));
            }
        }
        use crate::training::snapshots::SnapshotPlan;
        let snapshots = match (o.snapshots, &o.snapshot_ages) {
            (Some(_), Some(_)) => {
                errors.push_localized(
                    "options.snapshot_ages",
                    tr!(
                        "give `snapshots` or `snapshot_ages`, not both",
                        "donnez `snapshots` ou `snapshot_ages`, pas les deux"
                    ),
                );
                None
            }
            (Some(n), None) => Some(("options.snapshots", SnapshotPlan::PerDeal(n))),
            (None, Some(ages)) => Some(("options.snapshot_ages", SnapshotPlan::Ages(ages.clone()))),
            (None, None) => None,
        };
        if let Some((field, plan)) = &snapshots {
            if let Err(reason) = plan.check() {
                errors.push_localized(*field, crate::i18n::Localized::new(reason.clone(), reason));
            } else if split == SplitKind::Random {
                errors.push_localized(
                    *field,
                    tr!(
                        "needs the time split: a deal's snapshots must stay on one side of it",
                        "demande le découpage temporel{NNBSP}: les instantanés d'une affaire doivent rester du même côté"
                    ),
                );
            }
        }
        if o.final_state == Some(true) && snapshots.is_some() {
            errors.push_localized(
                "options.final_state",
                tr!(
                    "give `final_state` or a snapshot plan, not both",
                    "donnez `final_state` ou un plan d'instantanés, pas les deux"
                ),
            );
        }
        let snapshots = match snapshots {
            Some((_, plan)) => SnapshotRequest::Plan(plan),
            None if o.final_state == Some(true) => SnapshotRequest::FinalState,
            None => SnapshotRequest::Default,
        };
        let options = TrainOptions {
            split,
            test_fraction,
            seed: o.seed.unwrap_or(defaults.seed),
            cv_folds: cv,
            min_won,
            min_lost,
            window_since: since,
            window_until: until,
            ..defaults
        };
        let spec = errors.into_result(spec)?;
        let spec = spec.unwrap_or_else(FeatureSpec::default_spec);
        let recorded = serde_json::json!({
            "spec": spec.to_toml().ok(),
            "since": since,
            "until": until,
            "options": {
                "split": match split { SplitKind::Time => "time", SplitKind::Random => "random" },
                "test_fraction": test_fraction,
                "seed": options.seed,
                "cv": cv,
                "min_won": min_won,
                "min_lost": min_lost,
                "snapshots": o.snapshots,
                "snapshot_ages": o.snapshot_ages,
                "final_state": o.final_state,
            },
            "force": self.force,
        });
        Ok(RunPlan {
            spec,
            options,
            force: self.force,
            snapshots,
            recorded,
        })
    }
}

/// Starts and runs training runs for one server.
#[derive(Debug)]
pub struct Trainer {
    db: Db,
    model: Arc<ActiveModel>,
    models_dir: PathBuf,
    gate: GatePolicy,
    /// This server process, recorded as the owner of the runs it executes.
    instance: String,
    /// The runtime runs execute on (not an HTTP worker's): loading deals and writing progress
    /// never occupy a request thread.
    runtime: tokio::runtime::Handle,
}

impl Trainer {
    /// A trainer that executes runs on the current Tokio runtime.
    pub fn new(db: Db, model: Arc<ActiveModel>, models_dir: PathBuf, gate: GatePolicy) -> Trainer {
        Trainer {
            db,
            model,
            models_dir,
            gate,
            instance: format!("srv-{}", &crate::auth::generate_key()[3..15]),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// This server's instance id (run owner, lease holder).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Records a queued run and starts it in the background. [`CreateError::Busy`] when another
    /// run is queued or running on any server.
    pub async fn submit(
        self: &Arc<Self>,
        plan: RunPlan,
        trigger: &str,
        who: &str,
    ) -> Result<RunRecord, CreateError> {
        let id = format!("run-{}", &crate::auth::generate_key()[3..19]);
        let request = plan.recorded.to_string();
        let record = training_runs::create(
            &self.db,
            &NewRun {
                id: &id,
                trigger,
                requested_by: who,
                request: &request,
                owner: &self.instance,
            },
        )
        .await?;
        let trainer = Arc::clone(self);
        let who = who.to_owned();
        self.runtime
            .spawn(async move { trainer.execute(id, plan, who).await });
        Ok(record)
    }

    /// Marks failed the runs whose server stopped heartbeating ([`STALE_AFTER`]).
    pub async fn recover(&self) -> Result<Vec<String>, sqlx::Error> {
        let stale_before = Utc::now() - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
        let ids = training_runs::fail_stale(&self.db, stale_before).await?;
        for id in &ids {
            tracing::warn!(run = %id, "training run marked failed: interrupted");
        }
        Ok(ids)
    }

    async fn execute(&self, id: String, plan: RunPlan, who: String) {
        let outcome = self.train(&id, plan, &who).await;
        let end = match &outcome {
            Ok(Finished::Trained { version, gate }) => RunEnd::Trained { version, gate },
            Ok(Finished::Unchanged { version }) => RunEnd::Unchanged { version },
            Err(reason) => RunEnd::Failed { error: reason },
        };
        match (end, training_runs::finish(&self.db, &id, end).await) {
            (_, Err(e)) => tracing::error!(run = %id, error = %e, "cannot record the end of a training run"),
            (RunEnd::Trained { version, .. }, Ok(())) => {
                tracing::info!(run = %id, %version, "training run succeeded")
            }
            (RunEnd::Unchanged { version }, Ok(())) => {
                tracing::info!(run = %id, %version, "training run found the data unchanged")
            }
            (RunEnd::Failed { error }, Ok(())) => {
                tracing::warn!(run = %id, reason = %error, "training run failed")
            }
        }
        // Serve an activated model here at once; other servers follow within their refresh period.
        if let Err(e) = self.model.refresh(&self.db).await {
            tracing::warn!(error = %e, "model refresh after training failed");
        }
    }

    /// Runs the training: what it produced, or the failure reason.
    async fn train(&self, id: &str, plan: RunPlan, who: &str) -> Result<Finished, String> {
        training_runs::start(&self.db, id)
            .await
            .map_err(|e| e.to_string())?;
        let RunPlan {
            spec,
            mut options,
            force,
            snapshots,
            ..
        } = plan;
        options.now = Utc::now();
        let snapshots = default_plan::resolve(&snapshots, Some(&self.db), options.split)
            .await
            .map_err(|e| format!("cannot check the deals' activities: {e}"))?;
        let input = train_job::TrainInput::Database {
            since: options.window_since,
            until: options.window_until,
        };
        let cv_total = (options.cv_folds * options.alphas.len()) as i64;
        let total = cv_total + 3;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let job = TrainJob {
            spec,
            options,
            out_dir: self.models_dir.clone(),
            activate: force,
            gate: self.gate,
            who: who.to_owned(),
            point_in_time: PointInTime {
                source: Some(self.db.clone()),
                snapshots,
            },
            low_priority: true,
        };
        // Progress and heartbeats are written by a task of their own. The training future reads
        // the deals from the pool: awaiting a write between two of its polls would leave its
        // read unfinished and its connection checked out while the write (and every request
        // write queued behind it) waits for the pool or the lock.
        let recorder = self.runtime.spawn(record_progress(
            self.db.clone(),
            id.to_owned(),
            receiver,
            cv_total,
            total,
        ));
        let db = self.db.clone();
        let result = train_job::run(job, input, Some(&db), Some(&db), move |p| {
            // The recorder lives until the job ends; a send can only fail after that.
            let _ = sender.send(p);
        })
        .await;
        // The job (and with it the sender) is gone: the recorder writes what is left and stops.
        if let Err(e) = recorder.await {
            tracing::warn!(run = %id, error = %e, "training progress recorder stopped");
        }
        let outcome = match result {
            Err(TrainJobError::Unchanged { version }) => return Ok(Finished::Unchanged { version }),
            result => result.map_err(|e| e.to_string())?,
        };
        let gate = outcome
            .gate
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| "null".to_owned());
        let done = RunProgress {
            phase: "done".into(),
            done: total,
            total,
        };
        if let Err(e) = training_runs::progress(&self.db, id, &done).await {
            tracing::warn!(run = %id, error = %e, "cannot record training progress");
        }
        Ok(Finished::Trained {
            version: outcome.trained.artifact.version.clone(),
            gate,
        })
    }
}

/// What a run that did not fail produced.
enum Finished {
    /// A registered version and the gate decision (JSON).
    Trained { version: String, gate: String },
    /// Nothing: the active version was trained on the same input.
    Unchanged { version: String },
}

/// Records a run's progress and heartbeats until the training's sender is dropped. Events that
/// arrive while a write is under way are coalesced: only the newest is written, so a slow write
/// never builds a backlog.
async fn record_progress(
    db: Db,
    id: String,
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<TrainProgress>,
    cv_total: i64,
    total: i64,
) {
    let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            event = receiver.recv() => {
                let Some(mut event) = event else { return };
                while let Ok(newer) = receiver.try_recv() {
                    event = newer;
                }
                let progress = progress_of(&event, cv_total, total);
                if let Err(e) = training_runs::progress(&db, &id, &progress).await {
                    tracing::warn!(run = %id, error = %e, "cannot record training progress");
                }
            }
            _ = beat.tick() => {
                if let Err(e) = training_runs::heartbeat(&db, &id).await {
                    tracing::warn!(run = %id, error = %e, "cannot record a training heartbeat");
                }
            }
        }
    }
}

/// Maps a training event to the run's phase and steps.
fn progress_of(event: &TrainProgress, cv_total: i64, total: i64) -> RunProgress {
    let (phase, done) = match event {
        TrainProgress::Phase { name } => match name.as_str() {
            "holdout" => ("holdout_fit", cv_total),
            "refit" => ("final_fit", cv_total + 1),
            "gate" | "artifact" | "register" => ("gate", cv_total + 2),
            _ => ("cross_validation", 0),
        },
        TrainProgress::Prepared { .. } => ("cross_validation", 0),
        TrainProgress::CrossValidation { done, .. } => ("cross_validation", *done as i64),
        TrainProgress::HoldoutFit { .. } => ("holdout_fit", cv_total),
        TrainProgress::FinalFit { .. } => ("final_fit", cv_total + 1),
        TrainProgress::Finished { .. } => ("gate", cv_total + 2),
    };
    RunProgress {
        phase: phase.to_owned(),
        done,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reports_every_problem_at_once() {
        let request: TrainRequest = serde_json::from_value(serde_json::json!({
            "spec": "[[feature]]\nname = \"colour\"\n",
            "since": "yesterday-ish",
            "options": {"split": "sideways", "test_fraction": 1.5, "cv": 1, "min_won": 0}
        }))
        .unwrap();
        let errors = request.plan().unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        for field in [
            "since",
            "options.split",
            "options.test_fraction",
            "options.cv",
            "options.min_won",
        ] {
            assert!(fields.contains(&field), "{field} missing in {fields:?}");
        }
        assert!(fields.iter().any(|f| f.starts_with("spec")), "{fields:?}");
    }

    #[test]
    fn an_empty_request_uses_the_documented_defaults() {
        let plan = TrainRequest::default().plan().unwrap();
        assert_eq!(plan.spec, FeatureSpec::default_spec());
        assert_eq!(plan.options.cv_folds, 5);
        assert_eq!(plan.options.test_fraction, 0.2);
        assert!(!plan.force);
    }

    #[test]
    fn progress_counts_every_step() {
        let p = progress_of(&TrainProgress::HoldoutFit { alpha: 1.0 }, 25, 28);
        assert_eq!((p.phase.as_str(), p.done, p.total), ("holdout_fit", 25, 28));
    }
}
