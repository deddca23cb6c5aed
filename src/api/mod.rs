//! HTTP resources: one file per resource, thin handlers over the library modules.

pub mod batch_scoring;
pub mod customers;
pub mod docs;
pub mod drift;
pub mod health;
pub mod imports;
pub mod insights;
pub mod jobs;
pub mod models;
pub mod opportunities;
pub mod problems;
pub mod score_body;
pub mod score_json;
pub mod scores;
pub mod training_runs;
pub mod webhooks;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::domain::ValidationErrors;
use crate::insights::table::Table;

use crate::error::{ApiError, KnownDetail};
use crate::i18n::format::NBSP;
use crate::tr;

/// Registers every route under `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize, max_batch_body_bytes: usize) {
    cfg.app_data(json_config(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            web::scope("/v1")
                // Scoring accepts batches of up to 10,000 deals: a larger body limit there only.
                .service(
                    web::scope("/score")
                        .app_data(json_config(max_batch_body_bytes))
                        .service(scores::score_stateless),
                )
                // Literal paths before `/opportunities/{external_id}` so they are not taken as ids.
                .service(scores::priority)
                .service(scores::rescore)
                .service(scores::score_stored)
                .service(jobs::get)
                // Model lifecycle: literal paths before `/models/{version}`.
                .service(training_runs::start)
                .service(training_runs::list)
                .service(training_runs::get)
                .service(models::list)
                .service(models::active)
                .service(models::compare)
                .service(models::get)
                .service(models::activate)
                .service(opportunities::list)
                .service(opportunities::put)
                .service(opportunities::get)
                .service(opportunities::delete)
                .service(opportunities::add_activities)
                .service(opportunities::list_activities)
                .service(imports::create)
                .service(insights::get_pipeline)
                .service(insights::get_success_factors)
                .service(insights::get_at_risk)
                .service(insights::get_resources)
                .service(insights::get_accounts)
                .service(insights::get_breakdown)
                .service(insights::competitors::get_competitors)
                .service(insights::get_objectives)
                .service(insights::put_objectives)
                .service(customers::get_customers)
                .service(customers::put_costs)
                // No API key here: the signature is the authentication.
                .service(webhooks::receive)
                .service(webhooks::list_events)
                .service(webhooks::list_outbox)
                .service(webhooks::retry)
                .service(drift::get),
        );
}

/// JSON bodies: size limit and problem+json errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(json_error)
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    body_error(err).into()
}

/// Maps body read errors to problems (413 for size, 415 for media type, 400 otherwise).
pub fn body_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(KnownDetail::BodyTooLarge { limit }.into())
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(KnownDetail::NotJson.into()),
        JsonPayloadError::Deserialize(e) => ApiError::MalformedBody(
            tr!(
                "the body is not valid JSON: {e}",
                "le corps n'est pas du JSON valide{NBSP}: {e}"
            )
            .into(),
        ),
        JsonPayloadError::Serialize(e) => ApiError::Internal(anyhow::Error::new(e)),
        other => ApiError::MalformedBody(
            tr!(
                "cannot read the body: {other}",
                "impossible de lire le corps{NBSP}: {other}"
            )
            .into(),
        ),
    }
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadQuery(tr!("invalid path: {err}", "chemin invalide{NBSP}: {err}").into()).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadQuery(
        tr!(
            "invalid query string: {err}",
            "paramètres de requête invalides{NBSP}: {err}"
        )
        .into(),
    )
    .into()
}

/// True when the client asked for CSV (`format=csv`, or `Accept: text/csv` without `format`);
/// any other `format` than `json` or `csv` is recorded in `errors`.
pub(crate) fn wants_csv(req: &HttpRequest, format: Option<&str>, errors: &mut ValidationErrors) -> bool {
    match format.map(str::trim) {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            errors.push_localized(
                "format",
                tr!("must be `json` or `csv`", "doit être `json` ou `csv`"),
            );
            false
        }
        None => req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv")),
    }
}

/// `table` as a `text/csv` body of `response` (cells a spreadsheet would evaluate escaped).
pub(crate) fn csv_answer(mut response: HttpResponseBuilder, table: &Table) -> Result<HttpResponse, ApiError> {
    let text = table
        .to_csv()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    Ok(response
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .body(text))
}

/// Problem for routes that do not exist (an error, not a rendered response, so middleware such
/// as [`crate::error::localize_problems`] can read it).
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}
