//! Model versions: list, one report, the active one, activation (and rollback), comparison.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::error::{ApiError, ApiResult};
use crate::features::FeatureSpec;
use crate::i18n::format::NNBSP;
use crate::lifecycle::compare::Comparison;
use crate::lifecycle::registry::{
    activate_version, compare_versions, headline, load_active_verified, load_verified, Headline,
};
use crate::model::{Metrics, ModelArtifact, TrainingSummary};
use crate::serving::ActiveModel;
use crate::store::models::{self, ActivationRecord, ModelVersionRecord};
use crate::store::Db;
use crate::tr;

/// A version, or 404 for text no version can be (control characters, over 200 characters),
/// without asking the database (PostgreSQL refuses a NUL in a query parameter).
fn known_version(version: &str) -> ApiResult<()> {
    if version.is_empty() || version.chars().count() > 200 || version.chars().any(char::is_control) {
        return Err(ApiError::no_model_version(version));
    }
    Ok(())
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

problems!(ListProblems: AUTH);
problems!(VersionProblems: AUTH, NOT_FOUND, VALIDATION);
problems!(ActiveProblems: AUTH, NOT_FOUND, MODEL);
problems!(CompareProblems: AUTH, QUERY, NOT_FOUND, VALIDATION);

/// Every version, newest first, with counts and headline metrics.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = [VersionSummary]), ListProblems), security(("api_key" = [])))]
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
    /// Backtests, the headline: a model replayed on what was known at a past instant, scoring
    /// the deals open then as they stood, against how they ended (`as_of`, `open_deals`,
    /// `roc_auc`, `brier`, `calibration`, `by_age`…). Empty when the data had no dates.
    #[schema(value_type = Vec<Object>)]
    pub backtests: Vec<crate::model::Backtest>,
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
    /// The grade cut points recorded at training (null for artifacts trained without them,
    /// which grade on the configured fixed cuts).
    pub grade_cuts: Option<RecordedGradeCuts>,
}

/// Grade cut points derived from the data when the model was trained.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedGradeCuts {
    /// Which deals they come from: `open` (open at training) or `holdout`.
    pub basis: String,
    /// How many deals.
    pub deals: u64,
    /// Lowest win probability of grades A, B and C (the quartiles of those deals).
    pub probabilities: Vec<f64>,
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
        backtests: a.backtests,
        training: a.training,
        holdout_metrics: a.holdout_metrics,
        baseline_metrics: a.baseline_metrics,
        cv: a.cv,
        success_factors: a.success_factors,
        grade_cuts: a.cut_points.as_ref().map(|c| RecordedGradeCuts {
            basis: c.basis.clone(),
            deals: c.deals as u64,
            probabilities: crate::scoring::cuts::grade_probabilities(c).to_vec(),
        }),
        convergence: a.convergence,
    })
}

/// One version's report: metrics, calibration, success factors, spec, activations (404 unknown,
/// 422 when its stored artifact fails verification).
#[utoipa::path(get, path = "/v1/models/{version}", tag = "models",
    params(("version" = String, Path, description = "version id")),
    responses((status = 200, body = VersionReport), VersionProblems),
    security(("api_key" = [])))]
#[get("/models/{version}")]
pub async fn get(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let version = path.into_inner();
    known_version(&version)?;
    let (record, artifact) = load_verified(&db, &version).await?;
    let activations = models::activations(&db, Some(&version), 100).await?;
    Ok(HttpResponse::Ok().json(report(record, activations, artifact)?))
}

/// The active version's report (404 when no model is active, 503 `active-model-invalid` when
/// its artifact fails verification).
#[utoipa::path(get, path = "/v1/models/active", tag = "models",
    responses((status = 200, body = VersionReport), ActiveProblems),
    security(("api_key" = [])))]
#[get("/models/active")]
pub async fn active(_caller: AnalystAccess, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    let (record, artifact) = load_active_verified(&db).await?.ok_or_else(|| {
        ApiError::NotFound(
            tr!(
                "no model is active; train one (POST /v1/models/train)",
                "aucun modèle n'est actif{NNBSP}; entraînez-en un (POST /v1/models/train)"
            )
            .into(),
        )
    })?;
    let activations = models::activations(&db, Some(&record.version), 100).await?;
    Ok(HttpResponse::Ok().json(report(record, activations, artifact)?))
}

/// Makes a version the active one (rollback = activating an older one). The artifact is verified
/// first: one failing its checksum is refused (422) and the current model keeps serving. Recorded
/// with who and when; every server follows within its refresh period.
#[utoipa::path(post, path = "/v1/models/{version}/activate", tag = "models",
    params(("version" = String, Path, description = "version id")),
    responses((status = 200, body = ModelVersionRecord), VersionProblems),
    security(("api_key" = [])))]
#[post("/models/{version}/activate")]
pub async fn activate(
    caller: AnalystAccess,
    db: web::Data<Db>,
    serving: web::Data<ActiveModel>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let version = path.into_inner();
    known_version(&version)?;
    let record = activate_version(&db, &serving, &version, &caller.0.name).await?;
    Ok(HttpResponse::Ok().json(record))
}

/// `GET /v1/models/compare` query.
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
    responses((status = 200, body = Comparison), CompareProblems),
    security(("api_key" = [])))]
#[get("/models/compare")]
pub async fn compare(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    query: web::Query<CompareQuery>,
) -> ApiResult<HttpResponse> {
    known_version(&query.a)?;
    known_version(&query.b)?;
    let comparison = compare_versions(&db, &query.a, &query.b).await?;
    Ok(HttpResponse::Ok().json(comparison))
}
