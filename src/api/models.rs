//! Model versions: list, one report, the active one, activation (and rollback), comparison.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AnalystAccess;
use crate::domain::ValidationErrors;
use crate::error::{ApiError, ApiResult, Problem};
use crate::features::FeatureSpec;
use crate::i18n::format::NBSP;
use crate::i18n::format::NNBSP;
use crate::lifecycle::compare::{compare as compare_models, window_of, Comparison};
use crate::model::{Metrics, ModelArtifact, TrainingSummary};
use crate::serving::ActiveModel;
use crate::store::models::{self, ActivationRecord, ModelVersionRecord};
use crate::store::{opportunities, Db};
use crate::tr;

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

/// A version in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    /// Registry record (status, created_at, activation, gate decision).
    #[serde(flatten)]
    pub record: ModelVersionRecord,
    /// Counts and headline metrics (absent when the stored artifact cannot be read).
    pub headline: Option<Headline>,
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

/// Every version, newest first, with counts and headline metrics.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = [VersionSummary])), security(("api_key" = [])))]
#[get("/models")]
pub async fn list(_caller: AnalystAccess, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    let versions = models::list_with_artifacts(&db).await?;
    let summaries = web::block(move || {
        versions
            .into_iter()
            .map(|(record, json)| VersionSummary {
                headline: headline(&json),
                record,
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    Ok(HttpResponse::Ok().json(summaries))
}

/// A version's full report.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionReport {
    /// Registry record.
    #[serde(flatten)]
    pub record: ModelVersionRecord,
    /// Activations of this version, newest first (who, when, why).
    pub activations: Vec<ActivationRecord>,
    /// The feature spec it was trained with.
    #[schema(value_type = Object)]
    pub spec: FeatureSpec,
    /// Data it was trained on.
    #[schema(value_type = Object)]
    pub training: TrainingSummary,
    /// Holdout metrics (incl. the calibration table).
    #[schema(value_type = Object)]
    pub holdout_metrics: Metrics,
    /// The prior-only baseline on the same holdout.
    #[schema(value_type = Object)]
    pub baseline_metrics: Metrics,
    /// Cross-validation of the L2 strength.
    #[schema(value_type = Object)]
    pub cv: crate::model::CvSummary,
    /// Success factors.
    #[schema(value_type = Vec<Object>)]
    pub success_factors: Vec<crate::model::SuccessFactor>,
    /// Solver outcome of the shipped fit.
    #[schema(value_type = Object)]
    pub convergence: crate::model::Convergence,
}

/// A stored version and its artifact, integrity-checked (404 unknown, 422 refused).
pub async fn load_verified(db: &Db, version: &str) -> ApiResult<(ModelVersionRecord, ModelArtifact)> {
    let (record, json) = models::get(db, version)
        .await?
        .ok_or_else(|| ApiError::no_model_version(version))?;
    let parsed = web::block(move || ModelArtifact::from_json_verified(&json))
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    match parsed {
        Ok(artifact) => Ok((record, artifact)),
        Err(e) => {
            let mut errors = ValidationErrors::default();
            errors.push_localized(
                "version",
                tr!(
                    "the stored artifact of `{version}` is refused: {e}",
                    "l'artefact enregistré de `{version}` est refusé{NBSP}: {e}"
                ),
            );
            Err(ApiError::Validation(errors))
        }
    }
}

fn report(
    record: ModelVersionRecord,
    activations: Vec<ActivationRecord>,
    a: ModelArtifact,
) -> ApiResult<VersionReport> {
    // Each definition of a loaded artifact is validated as it is read; an empty list or a repeated
    // name could only come from a hand-edited artifact, so this is an internal failure.
    let spec = a
        .features
        .spec()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    Ok(VersionReport {
        record,
        activations,
        spec,
        training: a.training,
        holdout_metrics: a.holdout_metrics,
        baseline_metrics: a.baseline_metrics,
        cv: a.cv,
        success_factors: a.success_factors,
        convergence: a.convergence,
    })
}

/// One version's report: metrics, calibration, success factors, spec, activations (404 unknown,
/// 422 when its stored artifact fails verification).
#[utoipa::path(get, path = "/v1/models/{version}", tag = "models",
    params(("version" = String, Path, description = "version id")),
    responses((status = 200, body = VersionReport), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
#[get("/models/{version}")]
pub async fn get(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let version = path.into_inner();
    let (record, artifact) = load_verified(&db, &version).await?;
    let activations = models::activations(&db, Some(&version), 100).await?;
    Ok(HttpResponse::Ok().json(report(record, activations, artifact)?))
}

/// The active version's report (404 when no model is active).
#[utoipa::path(get, path = "/v1/models/active", tag = "models",
    responses((status = 200, body = VersionReport), (status = 404, body = Problem)),
    security(("api_key" = [])))]
#[get("/models/active")]
pub async fn active(_caller: AnalystAccess, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    let (record, _) = models::active(&db).await?.ok_or_else(|| {
        ApiError::NotFound(
            tr!(
                "no model is active; train one (POST /v1/models/train)",
                "aucun modèle n'est actif{NNBSP}; entraînez-en un (POST /v1/models/train)"
            )
            .into(),
        )
    })?;
    let (record, artifact) = load_verified(&db, &record.version).await?;
    let activations = models::activations(&db, Some(&record.version), 100).await?;
    Ok(HttpResponse::Ok().json(report(record, activations, artifact)?))
}

/// Makes a version the active one (rollback = activating an older one). The artifact is verified
/// first: one failing its checksum is refused (422) and the current model keeps serving. Recorded
/// with who and when; every server follows within its refresh period.
#[utoipa::path(post, path = "/v1/models/{version}/activate", tag = "models",
    params(("version" = String, Path, description = "version id")),
    responses((status = 200, body = ModelVersionRecord), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
#[post("/models/{version}/activate")]
pub async fn activate(
    caller: AnalystAccess,
    db: web::Data<Db>,
    serving: web::Data<ActiveModel>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let record = activate_version(&db, &serving, &path.into_inner(), &caller.0.name).await?;
    Ok(HttpResponse::Ok().json(record))
}

/// `GET /v1/models/compare` query.
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// First version.
    pub a: String,
    /// Second version.
    pub b: String,
    /// Language of sentences and problem details, `en` or `fr` (read by `Lang::of_request`,
    /// like `Accept-Language`; listed here so it is not an unknown parameter).
    pub lang: Option<String>,
}

/// Metric and success-factor differences of two versions, both scored on the newer one's holdout
/// (rebuilt from the stored deals).
#[utoipa::path(get, path = "/v1/models/compare", tag = "models", params(CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
#[get("/models/compare")]
pub async fn compare(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    query: web::Query<CompareQuery>,
) -> ApiResult<HttpResponse> {
    let comparison = compare_versions(&db, &query.a, &query.b).await?;
    Ok(HttpResponse::Ok().json(comparison))
}
