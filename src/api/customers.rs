//! Customers: acquisition spend (`PUT /v1/acquisition-costs`) and the customers insight
//! (`GET /v1/insights/customers`). See docs/insights.md.

use actix_web::{get, put, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;

use super::insights::{answer_on, window_of, Checks};
use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::config::Settings;
use crate::domain::to_epoch_ms;
use crate::error::ApiResult;
use crate::insights::customer_inputs::{basis, inputs};
use crate::insights::{acquisition, customers, CachedSnapshot, InsightsCache};
use crate::store::acquisition_costs as store;
use crate::store::Db;

problems!(CustomersProblems: AUTH, QUERY, VALIDATION);
problems!(PutCostsProblems: AUTH, JSON_BODY, VALIDATION);

/// Body of `PUT /v1/acquisition-costs` (for the API description; parsing is field by field).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CostsBody {
    /// 1 to 10,000 amounts.
    #[schema(min_items = 1, max_items = 10_000)]
    pub costs: Vec<CostItem>,
}

/// One amount of acquisition spend (documentation shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CostItem {
    /// `2026`, `2026-Q1` or `2026-03` (years 1970–9999).
    #[schema(pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})(-[Qq][1-4]|-(0[1-9]|1[0-2]))?$")]
    pub period: String,
    /// The region the money went to (a region of the deals), or absent.
    #[schema(max_length = 200)]
    pub region: Option<String>,
    /// The channel the money went to, or absent; not both a region and a channel.
    #[schema(max_length = 200)]
    pub channel: Option<String>,
    /// ISO 4217 code (three letters, any case).
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// The amount spent, from 0 to below 10¹⁵.
    #[schema(minimum = 0, exclusive_maximum = 1e15)]
    pub amount: f64,
}

/// Answer of `PUT /v1/acquisition-costs`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CostsStored {
    /// Rows written.
    pub stored: usize,
    /// Rows of the same periods that they replaced.
    pub replaced: u64,
}

/// Records acquisition spend. Every period named in the body is replaced as a whole: its earlier
/// rows (any region, channel or currency) are removed and the body's rows written, in one
/// transaction; other periods are left alone, and sending the same body twice gives the same
/// table. A period's spend is one total, per region or per channel, not a mix. All or nothing.
#[utoipa::path(put, path = "/v1/acquisition-costs", tag = "insights",
    request_body = CostsBody,
    responses((status = 200, body = CostsStored), PutCostsProblems),
    security(("api_key" = [])))]
#[put("/acquisition-costs")]
pub async fn put_costs(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let costs = acquisition::parse_body(&body)?;
    let replaced = store::replace_periods(&db, &costs).await?;
    Ok(HttpResponse::Ok().json(CostsStored {
        stored: costs.len(),
        replaced,
    }))
}

/// Query of the customers insight.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomersQuery {
    /// Window start (date or RFC 3339); default 90 days before `to`.
    pub from: Option<String>,
    /// Window end (date inclusive, or RFC 3339 exclusive); default end of today (UTC).
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// Language of problem details, `en` or `fr`.
    pub lang: Option<String>,
}

/// Acquisition cost, customer value, contract length, churn and net revenue retention of a
/// period; a figure that cannot be computed is null with its reason.
#[utoipa::path(get, path = "/v1/insights/customers", tag = "insights", params(CustomersQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((customers::CustomersReport = "application/json"), (String = "text/csv"))), CustomersProblems),
    security(("api_key" = [])))]
#[get("/insights/customers")]
pub async fn get_customers(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    settings: web::Data<Settings>,
    query: web::Query<CustomersQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let window = window_of(q.from.as_deref(), q.to.as_deref(), &mut checks.errors);
    let (csv, window) = checks.passed(window)?;
    let (snapshot, columns, costs) = inputs(&db, &cache, &settings.insights, window).await?;
    let now = to_epoch_ms(Utc::now());
    let fields = settings.insights.clone();
    let work = move |s: &CachedSnapshot| {
        let basis = basis(s, &fields, &columns);
        customers::report(s, &basis, &costs, window, now)
    };
    answer_on(csv, snapshot, work, customers::table).await
}
