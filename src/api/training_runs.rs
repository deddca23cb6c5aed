//! Training runs over HTTP: `POST /v1/models/train`, `GET /v1/training-runs[/{id}]`.
//! The runs live in the database, so every server sees them (docs/operations.md).

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::error::{ApiError, ApiResult};
use crate::i18n::format::{NBSP, NNBSP};
use crate::lifecycle::runner::{TrainRequest, Trainer};
use crate::store::training_runs::{self, CreateError, RunRecord};
use crate::store::Db;
use crate::tr;

// The body is read as bytes (an empty body means the defaults), so no 415: any media type is
// read as JSON.
problems!(StartProblems: AUTH, MALFORMED_BODY, CONFLICT, VALIDATION);
problems!(RunProblems: AUTH, NOT_FOUND);
problems!(ListProblems: AUTH, QUERY);

/// Starts a training run (202 with the run; 409 when one is already queued or running on any
/// server; 422 listing every problem of the spec, window and options). An empty body trains with
/// the defaults of `dealscore-train`.
#[utoipa::path(post, path = "/v1/models/train", tag = "models",
    request_body(content = Option<TrainRequest>, content_type = "application/json"),
    responses((status = 202, body = RunRecord), StartProblems),
    security(("api_key" = [])))]
#[post("/models/train")]
pub async fn start(
    caller: AnalystAccess,
    trainer: web::Data<Trainer>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let request: TrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TrainRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::MalformedBody(
                tr!(
                    "the body is not a valid training request: {e}",
                    "le corps n'est pas une demande d'entraînement valide{NBSP}: {e}"
                )
                .into(),
            )
        })?
    };
    let plan = request.plan()?;
    let trainer = trainer.into_inner();
    match trainer.submit(plan, "api", &caller.0.name).await {
        Ok(run) => Ok(HttpResponse::Accepted()
            .insert_header(("Location", format!("/v1/training-runs/{}", run.id)))
            .json(run)),
        Err(CreateError::Busy(id)) => Err(ApiError::Conflict(
            tr!(
                "training run {id} is already in progress; one run at a time (GET /v1/training-runs/{id})",
                "l'entraînement {id} est déjà en cours{NNBSP}; un seul à la fois (GET /v1/training-runs/{id})"
            )
            .into(),
        )),
        Err(CreateError::Db(e)) => Err(e.into()),
    }
}

/// One run: queued, running (with progress), succeeded (with version and gate decision),
/// unchanged (with the active version it would have trained again) or failed (with the reason).
#[utoipa::path(get, path = "/v1/training-runs/{id}", tag = "models",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunRecord), RunProblems),
    security(("api_key" = [])))]
#[get("/training-runs/{id}")]
pub async fn get(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let not_found = || ApiError::NotFound(tr!("no training run `{id}`", "aucun entraînement `{id}`").into());
    // No run id has control characters, and PostgreSQL refuses a NUL in a query parameter.
    if id.chars().any(char::is_control) {
        return Err(not_found());
    }
    let run = training_runs::get(&db, &id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(run))
}

/// `GET /v1/training-runs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Most runs returned, newest first (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Language of sentences and problem details, `en` or `fr` (read by `Lang::of_request`,
    /// like `Accept-Language`; listed here so it is not an unknown parameter).
    pub lang: Option<String>,
}

/// The newest runs first.
#[utoipa::path(get, path = "/v1/training-runs", tag = "models", params(ListQuery),
    responses((status = 200, body = [RunRecord]), ListProblems),
    security(("api_key" = [])))]
#[get("/training-runs")]
pub async fn list(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::limit_out_of_range(500));
    }
    Ok(HttpResponse::Ok().json(training_runs::list(&db, limit).await?))
}
