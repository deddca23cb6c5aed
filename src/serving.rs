//! The active model in memory: loaded from the registry, verified, swapped atomically.
//!
//! Requests take an `Arc` snapshot, so a swap never disturbs a request in flight. A watcher polls
//! the registry so every server sharing a database follows activations made on any of them.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::model::ModelArtifact;
use crate::scoring::{Phrasebook, ScoreResult, ScoringModel};
use crate::store::scores::{NewScore, StoredScore};
use crate::store::{models, Db};

/// A model loaded to serve: its artifact (plain data, as stored) and the phrasebook of its
/// sentences, written once per language and reused by every score. It reads as its artifact.
#[derive(Debug)]
pub struct LoadedModel {
    /// The verified artifact.
    pub artifact: ModelArtifact,
    /// The artifact's sentences, built on first use.
    pub phrases: Phrasebook,
}

impl LoadedModel {
    /// `artifact` with an empty phrasebook.
    pub fn new(artifact: ModelArtifact) -> Self {
        LoadedModel {
            artifact,
            phrases: Phrasebook::default(),
        }
    }
}

impl Deref for LoadedModel {
    type Target = ModelArtifact;

    fn deref(&self) -> &ModelArtifact {
        &self.artifact
    }
}

impl<'a> From<&'a LoadedModel> for ScoringModel<'a> {
    fn from(model: &'a LoadedModel) -> Self {
        ScoringModel::cached(&model.artifact, &model.phrases)
    }
}

impl<'a> From<&'a Arc<LoadedModel>> for ScoringModel<'a> {
    fn from(model: &'a Arc<LoadedModel>) -> Self {
        ScoringModel::from(&**model)
    }
}

/// The model currently serving, if any.
#[derive(Debug, Default)]
pub struct ActiveModel {
    current: ArcSwapOption<LoadedModel>,
    /// The registry's active version when its artifact failed verification (cleared once the
    /// active version loads, or none is active): with nothing serving, scoring and readiness say
    /// so instead of "no model is active yet".
    refused: ArcSwapOption<String>,
}

/// Why a model version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The registry could not be read.
    #[error("cannot read the model registry: {0}")]
    Db(#[from] sqlx::Error),
    /// The stored artifact is corrupt or of an unknown format.
    #[error("model {version} refused: {reason}")]
    Refused {
        /// Version id.
        version: String,
        /// Why.
        reason: String,
    },
}

impl ActiveModel {
    /// An empty holder (no model: scoring answers 503).
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of the current model.
    pub fn get(&self) -> Option<Arc<LoadedModel>> {
        self.current.load_full()
    }

    /// Replaces the serving model.
    pub fn set(&self, artifact: ModelArtifact) {
        self.current.store(Some(Arc::new(LoadedModel::new(artifact))));
        self.refused.store(None);
    }

    /// The registry's active version whose artifact failed verification, if the last refresh
    /// refused it.
    pub fn refused_version(&self) -> Option<Arc<String>> {
        self.refused.load_full()
    }

    /// Loads the registry's active model if it differs from the one serving. The artifact must
    /// match its own checksum and the checksum the registry recorded; one that does not is
    /// refused (logged, remembered in [`ActiveModel::refused_version`]) and the previous model,
    /// if any, keeps serving. Returns the version now serving.
    pub async fn refresh(&self, db: &Db) -> Result<Option<String>, LoadError> {
        let serving = self.get().map(|m| m.version.clone());
        let Some((record, json)) = models::active(db).await? else {
            self.refused.store(None);
            return Ok(serving);
        };
        if serving.as_deref() == Some(record.version.as_str()) {
            self.refused.store(None);
            return Ok(serving);
        }
        let version = record.version.clone();
        let registered = record.sha256.clone();
        // Parsing a large artifact is CPU work; keep it off the reactor.
        let parsed =
            tokio::task::spawn_blocking(move || ModelArtifact::from_registry_verified(&json, &registered))
                .await
                .map_err(|e| LoadError::Refused {
                    version: version.clone(),
                    reason: e.to_string(),
                })?;
        match parsed {
            Ok(artifact) => {
                tracing::info!(version = %artifact.version, "serving model");
                self.set(artifact);
                Ok(Some(record.version))
            }
            Err(e) => {
                match &serving {
                    Some(previous) => tracing::error!(
                        version = %record.version, error = %e, previous = %previous,
                        "model artifact refused; previous model keeps serving"
                    ),
                    None => tracing::error!(
                        version = %record.version, error = %e,
                        "model artifact refused; no model is serving, scoring answers 503 active-model-invalid"
                    ),
                }
                self.refused.store(Some(Arc::new(record.version.clone())));
                Err(LoadError::Refused {
                    version: record.version,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Polls the registry every `every` (activations made by other servers are picked up).
    pub fn spawn_watcher(self: &Arc<Self>, db: Db, every: Duration) -> tokio::task::JoinHandle<()> {
        let holder = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_error: Option<String> = None;
            loop {
                ticker.tick().await;
                match holder.refresh(&db).await {
                    Ok(_) => last_error = None,
                    Err(e) => {
                        // Log a persistent failure once, not every tick.
                        let text = e.to_string();
                        if last_error.as_deref() != Some(text.as_str()) {
                            tracing::warn!(error = %text, "model refresh failed");
                            last_error = Some(text);
                        }
                    }
                }
            }
        })
    }
}

/// The history row that records `result`, scored at `scored_at`, for the opportunity with
/// internal id `opportunity_id` (the store keeps its own row type; scoring knows nothing of it).
pub fn history_row(
    opportunity_id: i64,
    result: &ScoreResult,
    scored_at: chrono::DateTime<chrono::Utc>,
) -> NewScore {
    NewScore {
        opportunity_id,
        score: StoredScore {
            model_version: result.model_version.clone(),
            probability: result.probability,
            score: i64::from(result.score),
            grade: result.grade.as_str().to_owned(),
            expected_value: result.expected_value,
            focus: result.focus.as_str().to_owned(),
            scored_at,
        },
        deal_hash: None,
    }
}
