//! `POST /v1/imports`: the CSV import for analysts without shell access.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::error::{ApiError, ApiResult};
use crate::i18n::format::NBSP;
use crate::i18n::Lang;
use crate::ingest::csv_import::{too_many_rejected, ImportError};
use crate::ingest::{
    import_activities, import_history, import_opportunities, ImportMapping, ImportOptions, ImportSummary,
};
use crate::store::Db;
use crate::tr;

/// Query of `POST /v1/imports`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `opportunities` (default), `activities` or `history` (past field changes of stored deals:
    /// `external_id,field,value,changed_at`).
    #[param(pattern = "^(opportunities|activities|history)$")]
    pub kind: Option<String>,
    /// Check and count, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Refuse the whole file if any row is rejected.
    #[serde(default)]
    pub strict: bool,
    /// Refuse the whole file if more rows than this are rejected.
    pub max_errors: Option<usize>,
}

/// JSON form of the body: the CSV text plus a TOML mapping (same format as `--mapping`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The CSV file's content.
    pub csv: String,
    /// TOML mapping (optional).
    pub mapping: Option<String>,
}

problems!(ImportProblems: AUTH, QUERY, JSON_BODY, VALIDATION);

/// Imports a CSV body (`text/csv`, default mapping) or a JSON `{csv, mapping}` body.
/// Answers the import summary; with `strict`/`max_errors` exceeded, 422 and nothing written.
#[utoipa::path(post, path = "/v1/imports", tag = "imports", params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "CSV with a header line; or application/json {\"csv\": ..., \"mapping\": ...}"),
    responses(
        (status = 200, description = "imported (rejected rows listed)", body = ImportSummary),
        ImportProblems),
    security(("api_key" = [])))]
#[post("/imports")]
pub async fn create(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (csv, mapping) = if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        (body, ImportMapping::default())
    } else if content_type.starts_with("application/json") {
        let parsed: ImportBody = serde_json::from_slice(&body).map_err(|e| {
            ApiError::MalformedBody(tr!("invalid JSON body: {e}", "corps JSON invalide{NBSP}: {e}").into())
        })?;
        let mapping = match parsed.mapping.as_deref() {
            Some(text) => ImportMapping::from_toml(text).map_err(|e| {
                let mut errors = crate::domain::ValidationErrors::default();
                for problem in e.0 {
                    errors.push_localized("mapping", problem);
                }
                ApiError::Validation(errors)
            })?,
            None => ImportMapping::default(),
        };
        (web::Bytes::from(parsed.csv), mapping)
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "send the CSV as `Content-Type: text/csv`, or JSON {\"csv\", \"mapping\"} as application/json"
                .into(),
        ));
    };
    let options = ImportOptions {
        mapping,
        dry_run: query.dry_run,
        strict: query.strict,
        max_errors: query.max_errors,
        ..ImportOptions::default()
    };
    let open = move || Ok(std::io::Cursor::new(csv.clone()));
    let result = match query.kind.as_deref() {
        None | Some("opportunities") => import_opportunities(&db, open, &options, &|_| {}).await,
        Some("activities") => import_activities(&db, open, &options, &|_| {}).await,
        Some("history") => import_history(&db, open, &options, &|_| {}).await,
        Some(other) => {
            return Err(ApiError::BadQuery(
                tr!(
                    "kind `{other}` is not one of opportunities, activities, history",
                    "kind `{other}` n'est pas opportunities, activities ni history"
                )
                .into(),
            ))
        }
    };
    match result {
        Ok(summary) => Ok(HttpResponse::Ok().json(summary.in_lang(Lang::of_request(&req)))),
        Err(e) => Err(import_error(e)),
    }
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Read(m) => ApiError::MalformedBody(
            tr!("cannot read the CSV: {m}", "impossible de lire le CSV{NBSP}: {m}").into(),
        ),
        ImportError::Header(m) => {
            let mut errors = crate::domain::ValidationErrors::default();
            errors.push_localized("header", m);
            ApiError::Validation(errors)
        }
        ImportError::TooManyRejected {
            summary,
            rejected,
            limit,
        } => {
            let mut errors = crate::domain::ValidationErrors::default();
            for row in summary.rejected_rows.iter() {
                errors.push_localized(format!("line {}", row.line), row.localized_reason());
            }
            if errors.is_empty() {
                errors.push_localized("csv", too_many_rejected(rejected, &limit));
            }
            ApiError::Validation(errors)
        }
        ImportError::Db(e) => e.into(),
    }
}
