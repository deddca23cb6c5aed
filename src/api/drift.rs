//! `GET /v1/models/active/drift`: how far today's deals have moved from the active model's
//! training data (docs/drift.md).

use actix_web::{get, web, HttpResponse};
use chrono::Utc;

use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::drift::{measure, DriftError, DriftGauges, DriftReport};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::registry::active_model;
use crate::serving::ActiveModel;
use crate::store::Db;

impl From<DriftError> for ApiError {
    fn from(e: DriftError) -> Self {
        match e {
            DriftError::Db(e) => ApiError::from(e),
            // The model is fine for scoring; it is the request that cannot be answered until a
            // model with a profile is active.
            other @ (DriftError::NoProfile { .. } | DriftError::ProfileMismatch { .. }) => {
                ApiError::Conflict(other.localized().into())
            }
        }
    }
}

problems!(DriftProblems: AUTH, CONFLICT, MODEL);

/// Per feature, the population stability index between the active model's training data and
/// the open deals, and the deals closed since training, with a level and the most shifted bins.
/// Also refreshes the `dealscore_feature_psi` gauges.
#[utoipa::path(get, path = "/v1/models/active/drift", tag = "models",
    responses(
        (status = 200, body = DriftReport),
        DriftProblems),
    security(("api_key" = [])))]
#[get("/models/active/drift")]
pub async fn get(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    gauges: web::Data<DriftGauges>,
) -> ApiResult<HttpResponse> {
    let model = active_model(&holder)?;
    let report = match measure(&db, &model, Utc::now()).await {
        Ok(report) => report,
        Err(e) => {
            // No profile: the gauges must not keep showing a previous model's drift.
            if !matches!(e, DriftError::Db(_)) {
                gauges.clear();
            }
            return Err(e.into());
        }
    };
    // The gauges follow the serving model; skip them if a swap happened meanwhile.
    if holder.get().is_some_and(|m| m.version == report.model_version) {
        gauges.update(&report);
    }
    Ok(HttpResponse::Ok().json(report))
}
