//! Liveness, readiness and metrics (public).

use std::sync::Arc;

use actix_web::{get, web, HttpResponse};

use super::problems::problems;
use crate::error::Code;
use crate::i18n::Lang;
use crate::serving::ActiveModel;
use crate::store::Db;
use crate::telemetry::Metrics;

/// The body of the liveness and readiness answers.
#[derive(Debug, utoipa::ToSchema)]
pub struct HealthStatus {
    /// `ok` (alive) or `ready`.
    #[schema(pattern = "^(ok|ready)$")]
    pub status: String,
}

/// The database does not answer, or the active model failed verification and no model serves.
const NOT_READY: &[Code] = &[Code::DatabaseUnavailable, Code::ActiveModelInvalid];
problems!(ReadyProblems: NOT_READY);

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "alive", body = HealthStatus, example = json!({"status": "ok"}))))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers, and the registry's active model is not one that failed
/// verification with nothing else serving (an instance that can only answer 503 to scoring
/// should leave the load balancer's rotation).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "ready", body = HealthStatus, example = json!({"status": "ready"})),
    ReadyProblems))]
#[get("/readyz")]
pub async fn readyz(db: web::Data<Db>, model: web::Data<ActiveModel>) -> HttpResponse {
    if let (None, Some(version)) = (model.get(), model.refused_version()) {
        let code = Code::ActiveModelInvalid;
        return HttpResponse::build(code.status())
            .content_type("application/problem+json")
            .json(serde_json::json!({
                "type": code.problem_type(),
                "title": code.title(Lang::En),
                "status": code.status().as_u16(),
                "detail": format!("the active model `{version}` failed verification and no model is serving")
            }));
    }
    if db.ping().await {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        // Not an ApiError, so the problem middleware leaves it in English whatever the request asks.
        HttpResponse::build(Code::DatabaseUnavailable.status())
            .content_type("application/problem+json")
            .json(serde_json::json!({
                "type": Code::DatabaseUnavailable.problem_type(),
                "title": Code::DatabaseUnavailable.title(Lang::En),
                "status": Code::DatabaseUnavailable.status().as_u16(),
                "detail": "the database does not answer"
            }))
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Arc<Metrics>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
