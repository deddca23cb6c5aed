//! The model registry's services, shared by the API and the pages: a stored version loaded and
//! verified, activation (and rollback), comparison of two versions, the headline figures of a
//! stored artifact, and the serving model or the 503 that says how to get one.
//!
//! They answer with [`ApiError`] so both front ends map a refusal the same way (404 unknown,
//! 422 refused); the HTTP handlers in `api::models` and the pages in `web::pages::models` only
//! parse their input and render the result.

use std::sync::Arc;

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::compare::{compare as compare_models, window_of, Comparison};
use crate::domain::ValidationErrors;
use crate::error::{ApiError, ApiResult, Code, Detail, KnownDetail};
use crate::i18n::format::NNBSP;
use crate::model::{ArtifactError, Metrics, ModelArtifact, TrainingSummary};
use crate::serving::{ActiveModel, LoadedModel};
use crate::store::models::{self, ModelVersionRecord};
use crate::store::{opportunities, Db};
use crate::tr;

/// The model, or the 503 that says how to get one: `active-model-invalid` when the registry's
/// active version was refused and nothing serves, else `no-active-model`.
pub fn active_model(holder: &ActiveModel) -> ApiResult<Arc<LoadedModel>> {
    holder.get().ok_or_else(|| match holder.refused_version() {
        Some(version) => ApiError::active_model_invalid(&version),
        None => ApiError::Unavailable {
            code: Code::NoActiveModel,
            detail: Detail::Known(KnownDetail::NoActiveModel),
        },
    })
}

/// Headline figures of a version (from its artifact).
#[derive(Debug, Serialize, ToSchema)]
pub struct Headline {
    /// Won deals trained on.
    pub won: usize,
    /// Lost deals trained on.
    pub lost: usize,
    /// Training-part rows.
    pub train_rows: usize,
    /// Holdout rows.
    pub holdout_rows: usize,
    /// Holdout ROC AUC.
    pub roc_auc: f64,
    /// Holdout average precision.
    pub pr_auc: f64,
    /// Holdout log loss.
    pub log_loss: f64,
    /// Holdout Brier score.
    pub brier: f64,
}

/// The parts of an artifact the list needs (the rest of the JSON is skipped).
#[derive(Deserialize)]
struct ArtifactHead {
    training: TrainingSummary,
    holdout_metrics: Metrics,
}

/// The headline of a stored artifact's JSON (`None` when it cannot be read).
pub fn headline(json: &str) -> Option<Headline> {
    let head: ArtifactHead = serde_json::from_str(json).ok()?;
    let (t, m) = (head.training, head.holdout_metrics);
    Some(Headline {
        won: t.won,
        lost: t.lost,
        train_rows: t.train_rows,
        holdout_rows: t.holdout_rows,
        roc_auc: m.roc_auc,
        pr_auc: m.pr_auc,
        log_loss: m.log_loss,
        brier: m.brier,
    })
}

/// A stored artifact checked against its own checksum and the one the registry recorded for
/// `record` (off the reactor: parsing a large artifact is CPU work).
async fn verify(
    record: &ModelVersionRecord,
    json: String,
) -> ApiResult<Result<ModelArtifact, ArtifactError>> {
    let registered = record.sha256.clone();
    web::block(move || ModelArtifact::from_registry_verified(&json, &registered))
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
}

/// The registry's active version and its artifact, integrity-checked: `None` when no version is
/// active, 503 `active-model-invalid` when its artifact fails verification.
pub async fn load_active_verified(db: &Db) -> ApiResult<Option<(ModelVersionRecord, ModelArtifact)>> {
    let Some((record, json)) = models::active(db).await? else {
        return Ok(None);
    };
    match verify(&record, json).await? {
        Ok(artifact) => Ok(Some((record, artifact))),
        Err(e) => {
            tracing::error!(version = %record.version, error = %e, "the active model's artifact is refused");
            Err(ApiError::active_model_invalid(&record.version))
        }
    }
}

/// A stored version and its artifact, integrity-checked against its own checksum and the
/// registry's (404 unknown, 422 refused).
pub async fn load_verified(db: &Db, version: &str) -> ApiResult<(ModelVersionRecord, ModelArtifact)> {
    let (record, json) = models::get(db, version)
        .await?
        .ok_or_else(|| ApiError::no_model_version(version))?;
    match verify(&record, json).await? {
        Ok(artifact) => Ok((record, artifact)),
        Err(e) => {
            let mut errors = ValidationErrors::default();
            errors.push_localized(
                "version",
                tr!(
                    "the stored artifact of `{version}` is refused: {e}",
                    "l'artefact enregistré de `{version}` est refusé{NNBSP}: {e}"
                ),
            );
            Err(ApiError::Validation(errors))
        }
    }
}

/// Activates `version` for every server (a retired version is recorded as a rollback) and
/// serves it here at once; the others follow from the registry.
pub async fn activate_version(
    db: &Db,
    serving: &ActiveModel,
    version: &str,
    who: &str,
) -> ApiResult<ModelVersionRecord> {
    let (record, artifact) = load_verified(db, version).await?;
    let reason = match record.status {
        models::ModelStatus::Retired => "rollback",
        _ => "activated",
    };
    models::activate(db, version, who, reason).await?;
    serving.set(artifact);
    let (record, _) = models::get(db, version)
        .await?
        .ok_or_else(|| ApiError::no_model_version(version))?;
    Ok(record)
}

/// Compares versions `a` and `b` on the newer one's holdout, rebuilt from the stored deals.
pub async fn compare_versions(db: &Db, a: &str, b: &str) -> ApiResult<Comparison> {
    let (_, a) = load_verified(db, a).await?;
    let (_, b) = load_verified(db, b).await?;
    let newer = if (b.created_at, &b.version) >= (a.created_at, &a.version) {
        &b
    } else {
        &a
    };
    let (since, until) = window_of(newer);
    let deals = opportunities::closed_deals(db, since, until).await?;
    let result = web::block(move || compare_models(&a, &b, &deals))
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    result.map_err(|e| {
        let mut errors = ValidationErrors::default();
        errors.push_localized("b", e.localized());
        ApiError::Validation(errors)
    })
}
