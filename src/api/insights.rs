//! Sales Ops insights (`/v1/insights/*`) and objectives (`PUT /v1/objectives`). Each insight
//! answers JSON, or CSV with `?format=csv` or `Accept: text/csv`. See docs/insights.md.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{get, put, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;

use super::problems::problems;
use super::wants_csv;
use crate::auth::{AnalystAccess, RepAccess};
use crate::config::Settings;
use crate::domain::{to_epoch_ms, ValidationErrors};
use crate::error::{ApiError, ApiResult};
use crate::i18n::format::NBSP;
use crate::i18n::Lang;
use crate::insights::breakdown::{self, Field};
use crate::insights::filter::{DealFilter, FilterNames};
use crate::insights::pipeline::GroupBy;
use crate::insights::table::Table;
use crate::insights::{accounts, at_risk, objectives, period, pipeline, resources, success_factors};
use crate::insights::{CachedSnapshot, InsightsCache};
use crate::scoring::{score, RankBy};
use crate::serving::ActiveModel;
use crate::store::insights as store;
use crate::store::{opportunities, Db};
use crate::tr;

/// Default and maximum rows of the at-risk list.
const AT_RISK_DEFAULT: usize = 50;
const AT_RISK_MAX: usize = 500;
/// Default and maximum rows of the accounts list.
const ACCOUNTS_DEFAULT: usize = 1_000;
const ACCOUNTS_MAX: usize = 100_000;

/// What every insight request shares: whether it answers CSV, and the problems found in its
/// parameters so far (all reported together).
pub(super) struct Checks {
    pub(super) csv: bool,
    pub(super) errors: ValidationErrors,
}

impl Checks {
    /// Starts the checks with the answer format (`format=` or `Accept`).
    pub(super) fn new(req: &HttpRequest, format: Option<&str>) -> Self {
        let mut errors = ValidationErrors::default();
        let csv = wants_csv(req, format, &mut errors);
        Checks { csv, errors }
    }

    /// `value` when every parameter passed, else the 422 listing each problem.
    pub(super) fn passed<T>(self, value: Option<T>) -> ApiResult<(bool, T)> {
        match value {
            Some(v) if self.errors.is_empty() => Ok((self.csv, v)),
            _ => Err(self.errors.into()),
        }
    }

    /// Computes `work` on a snapshot at least as new as the last write and answers it as JSON
    /// or CSV (through `table`); the parameters must all have passed.
    async fn answer<T: Serialize + Send + 'static>(
        self,
        db: &Db,
        cache: &InsightsCache,
        work: impl FnOnce(&CachedSnapshot) -> T + Send + 'static,
        table: impl FnOnce(&T) -> Table,
    ) -> ApiResult<HttpResponse> {
        let (csv, ()) = self.passed(Some(()))?;
        let snapshot = cache.snapshot(db).await?;
        answer_on(csv, snapshot, work, table).await
    }
}

/// Computes `work` on `snapshot` and answers it as JSON or CSV (through `table`).
pub(super) async fn answer_on<T: Serialize + Send + 'static>(
    csv: bool,
    snapshot: Arc<CachedSnapshot>,
    work: impl FnOnce(&CachedSnapshot) -> T + Send + 'static,
    table: impl FnOnce(&T) -> Table,
) -> ApiResult<HttpResponse> {
    let report = compute(snapshot, work).await?;
    respond(csv, &report, table)
}

fn respond<T: Serialize>(csv: bool, report: &T, table: impl FnOnce(&T) -> Table) -> ApiResult<HttpResponse> {
    if !csv {
        return Ok(HttpResponse::Ok().json(report));
    }
    super::csv_answer(HttpResponse::Ok(), &table(report))
}

/// Runs an insight on a blocking thread: the passes over a large snapshot are CPU work.
async fn compute<T: Send + 'static>(
    snapshot: Arc<CachedSnapshot>,
    work: impl FnOnce(&CachedSnapshot) -> T + Send + 'static,
) -> ApiResult<T> {
    web::block(move || work(&snapshot))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("insights thread failed: {e}")))
}

pub(super) fn window_of(
    from: Option<&str>,
    to: Option<&str>,
    errors: &mut ValidationErrors,
) -> Option<period::Window> {
    match period::window(from, to, Utc::now()) {
        Ok(w) => Some(w),
        Err((field, message)) => {
            errors.push_localized(field, message);
            None
        }
    }
}

fn limit_of(value: Option<usize>, default: usize, max: usize, errors: &mut ValidationErrors) -> usize {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        errors.push_localized(
            "limit",
            tr!(
                "must be between 1 and {max}",
                "doit être compris entre 1 et {max}"
            ),
        );
    }
    limit
}

/// A query struct of an insight: its own parameters, then `format` and `lang` that every insight
/// takes; unknown parameters are refused.
macro_rules! insight_query {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            /// `json` (default) or `csv`.
            #[param(pattern = "^(json|csv)$")]
            pub format: Option<String>,
            /// Language of sentences and problem details, `en` or `fr` (read by
            /// `Lang::of_request`, like `Accept-Language`; listed here so it is not an unknown
            /// parameter).
            pub lang: Option<String>,
        }
    };
}

pub mod competitors;

// Unknown query parameters and values of the wrong type are 400s; values of the right type that
// make no sense (a `to` before `from`, an unknown `group_by`) are 422s naming the parameter.
problems!(InsightProblems: AUTH, QUERY, VALIDATION);
problems!(PutObjectivesProblems: AUTH, JSON_BODY, VALIDATION);

insight_query! {
    /// Query of the pipeline insight.
    pub struct PipelineQuery {
        /// Window start: a date (YYYY-MM-DD) or RFC 3339 time; default 90 days before `to`.
        pub from: Option<String>,
        /// Window end: a date (inclusive) or RFC 3339 time (exclusive); default end of today (UTC).
        pub to: Option<String>,
        /// `month` (default), `quarter`, `region`, `owner` or `sector`.
        #[param(pattern = "^(month|quarter|region|owner|sector)$")]
        pub group_by: Option<String>,
        /// Only this region.
        pub region: Option<String>,
        /// Only this owner.
        pub owner: Option<String>,
        /// Only this sector.
        pub sector: Option<String>,
    }
}

/// Pipeline KPIs per group, against the previous period of equal length.
#[utoipa::path(get, path = "/v1/insights/pipeline", tag = "insights", params(PipelineQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((pipeline::PipelineReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/pipeline")]
pub async fn get_pipeline(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    query: web::Query<PipelineQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let window = window_of(q.from.as_deref(), q.to.as_deref(), &mut checks.errors);
    let group_by = GroupBy::parse(q.group_by.as_deref().unwrap_or("month"));
    if group_by.is_none() {
        checks.errors.push_localized(
            "group_by",
            tr!(
                "must be one of month, quarter, region, owner, sector",
                "doit valoir month, quarter, region, owner ou sector"
            ),
        );
    }
    let (Some(window), Some(group_by)) = (window, group_by) else {
        return Err(checks.errors.into());
    };
    let work = move |s: &CachedSnapshot| {
        let names = FilterNames {
            region: q.region.as_deref(),
            owner: q.owner.as_deref(),
            sector: q.sector.as_deref(),
            contact_role: None,
        };
        pipeline::pipeline(s, window, group_by, &DealFilter::new(s, &names))
    };
    checks.answer(&db, &cache, work, pipeline::table).await
}

insight_query! {
    /// Query of the success-factors insight.
    pub struct SuccessFactorsQuery {
        /// Only this sector.
        pub sector: Option<String>,
        /// Only this contact role.
        pub contact_role: Option<String>,
    }
}

/// Won vs lost reference measures from the data, beside the active model's factor effects.
#[utoipa::path(get, path = "/v1/insights/success-factors", tag = "insights", params(SuccessFactorsQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((success_factors::SuccessFactorsReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/success-factors")]
pub async fn get_success_factors(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    holder: web::Data<ActiveModel>,
    query: web::Query<SuccessFactorsQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let checks = Checks::new(&req, q.format.as_deref());
    let model = holder.get();
    let work = move |s: &CachedSnapshot| {
        let names = FilterNames {
            sector: q.sector.as_deref(),
            contact_role: q.contact_role.as_deref(),
            ..FilterNames::default()
        };
        success_factors::success_factors(
            s,
            &DealFilter::new(s, &names),
            model.as_ref().map(|m| &m.artifact),
        )
    };
    checks.answer(&db, &cache, work, success_factors::table).await
}

insight_query! {
    /// Query of the at-risk insight.
    pub struct AtRiskQuery {
        /// Only this owner.
        pub owner: Option<String>,
        /// 1–500 (default 50).
        #[param(minimum = 1, maximum = 500)]
        pub limit: Option<usize>,
        /// Instant ages and silences are measured at (date or RFC 3339); default now.
        pub as_of: Option<String>,
    }
}

/// Open deals outside the won-deal reference, ranked by value at stake, with the model's
/// recommended intervention; a rep or manager key lists only the deals of its scope.
#[utoipa::path(get, path = "/v1/insights/at-risk", tag = "insights", params(AtRiskQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((at_risk::AtRiskReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/at-risk")]
pub async fn get_at_risk(
    caller: RepAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    query: web::Query<AtRiskQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let limit = limit_of(q.limit, AT_RISK_DEFAULT, AT_RISK_MAX, &mut checks.errors);
    let as_of = match q.as_of.as_deref().map(period::parse_from) {
        None => to_epoch_ms(Utc::now()),
        Some(Ok(t)) => t,
        Some(Err(message)) => {
            checks.errors.push_localized("as_of", message);
            0
        }
    };
    let (csv, ()) = checks.passed(Some(()))?;
    let snapshot = cache.snapshot(&db).await?;
    let owner = q.owner.clone();
    let scope = caller.0.scope;
    let mut report = compute(snapshot, move |s| {
        let names = FilterNames {
            owner: owner.as_deref(),
            ..FilterNames::default()
        };
        // The references stay those of every won deal; only the deals checked and listed are
        // limited to the caller's scope.
        let filter = DealFilter::new(s, &names).within(s, &scope);
        s.at_risk(&filter, as_of, limit)
    })
    .await?;
    let lang = Lang::of_request(&req);
    if let Some(model) = holder.get() {
        // The full records (attributes included) of the listed deals only (at most `limit`), in
        // one read, scored as of `as_of`. A deal deleted since the snapshot gets no intervention.
        let ids: Vec<&str> = report.deals.iter().map(|d| d.external_id.as_str()).collect();
        let mut found = opportunities::get_many(&db, &ids).await?;
        let records: Vec<_> = report
            .deals
            .iter()
            .map(|d| found.remove(&d.external_id))
            .collect();
        let config = settings.scoring.clone();
        let at = crate::domain::from_epoch_ms(as_of);
        let model_version = model.version.clone();
        let interventions = web::block(move || {
            records
                .iter()
                .map(|r| {
                    r.as_ref().and_then(|r| {
                        score(&model, &config, &r.opportunity, at, None, RankBy::Value, lang)
                            .next_intervention
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("scoring thread failed: {e}")))?;
        for (d, i) in report.deals.iter_mut().zip(interventions) {
            d.recommended_intervention = i;
        }
        report.model_version = Some(model_version);
    }
    // The recommended interventions are sentences in `lang`.
    let mut response = respond(csv, &report, at_risk::table)?;
    response.headers_mut().insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(lang.code()),
    );
    Ok(response)
}

insight_query! {
    /// Query of the resources insight.
    pub struct ResourcesQuery {
        /// Window start (date or RFC 3339); default 90 days before `to`.
        pub from: Option<String>,
        /// Window end (date inclusive, or RFC 3339 exclusive); default end of today (UTC).
        pub to: Option<String>,
    }
}

/// Per region and per rep: open deals, won revenue, win rate, trend, forecast, workload flags.
#[utoipa::path(get, path = "/v1/insights/resources", tag = "insights", params(ResourcesQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((resources::ResourcesReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/resources")]
pub async fn get_resources(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    query: web::Query<ResourcesQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let Some(window) = window_of(q.from.as_deref(), q.to.as_deref(), &mut checks.errors) else {
        return Err(checks.errors.into());
    };
    let work = move |s: &CachedSnapshot| resources::resources(s, window);
    checks.answer(&db, &cache, work, resources::table).await
}

insight_query! {
    /// Query of the accounts insight.
    pub struct AccountsQuery {
        /// Most rows, 1–100000 (default 1000); totals cover every account.
        #[param(minimum = 1, maximum = 100_000)]
        pub limit: Option<usize>,
    }
}

/// Per account: deals, won revenue, average won deal value, win rate, first/last deal, repeat flag.
#[utoipa::path(get, path = "/v1/insights/accounts", tag = "insights", params(AccountsQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((accounts::AccountsReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/accounts")]
pub async fn get_accounts(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    query: web::Query<AccountsQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let limit = limit_of(q.limit, ACCOUNTS_DEFAULT, ACCOUNTS_MAX, &mut checks.errors);
    let work = move |s: &CachedSnapshot| s.accounts(limit);
    checks.answer(&db, &cache, work, accounts::table).await
}

insight_query! {
    /// Query of the breakdown insight.
    pub struct BreakdownQuery {
        /// The field: `sector`, `region`, `owner`, `contact_role`, `account`, `currency`, or
        /// `attr.<name>` for a custom attribute (required).
        #[param(required = true, pattern = "^(sector|region|owner|contact_role|account|currency|attr\\.[^\\u0000-\\u001F\\u007F-\\u009F]{1,200})$")]
        pub by: Option<String>,
        /// Window start (date or RFC 3339); default 90 days before `to`.
        pub from: Option<String>,
        /// Window end (date inclusive, or RFC 3339 exclusive); default end of today (UTC).
        pub to: Option<String>,
    }
}

/// Per value of one field: open, won and lost deals, win rate with its 95 % Wilson interval,
/// won revenue per currency, median won and lost cycle, and the active model's effect of the
/// value; values with fewer than 10 deals in the period share an `(other)` row.
#[utoipa::path(get, path = "/v1/insights/breakdown", tag = "insights", params(BreakdownQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((breakdown::BreakdownReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/breakdown")]
pub async fn get_breakdown(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    holder: web::Data<ActiveModel>,
    query: web::Query<BreakdownQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let window = window_of(q.from.as_deref(), q.to.as_deref(), &mut checks.errors);
    let field = q.by.as_deref().and_then(Field::parse);
    if field.is_none() {
        checks.errors.push_localized(
            "by",
            tr!(
                "required: sector, region, owner, contact_role, account, currency or attr.<name>",
                "obligatoire{NBSP}: sector, region, owner, contact_role, account, currency ou attr.<nom>"
            ),
        );
    }
    let (csv, (window, field)) = checks.passed(window.zip(field))?;
    let snapshot = cache.snapshot(&db).await?;
    let column = match &field {
        Field::Attribute(name) => Some(cache.attribute(&db, &snapshot, name).await?),
        Field::Core(_) => None,
    };
    let model = holder.get();
    let work = move |s: &CachedSnapshot| {
        let artifact = model.as_ref().map(|m| &m.artifact);
        breakdown::breakdown(s, &field, column.as_deref(), window, artifact)
    };
    answer_on(csv, snapshot, work, breakdown::table).await
}

/// Body of `PUT /v1/objectives` (for the API description; parsing is field by field). Two
/// objectives with the same scope, name, period, metric and currency are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectivesBody {
    /// 1 to 1000 objectives.
    #[schema(min_items = 1, max_items = 1000)]
    pub objectives: Vec<ObjectiveItem>,
}

/// One objective: a won-revenue target in a currency, or a won-deals count.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ObjectiveItem {
    /// Won revenue in a currency.
    Revenue(RevenueObjective),
    /// Won deals.
    Deals(DealsObjective),
}

/// A won-revenue target (documentation shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevenueObjective {
    /// `owner` or `region`.
    #[schema(pattern = "^(owner|region)$")]
    pub scope: String,
    /// The rep or region name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// `2026`, `2026-Q1` or `2026-03` (years 1970–9999).
    #[schema(pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})(-[Qq][1-4]|-(0[1-9]|1[0-2]))?$")]
    pub period: String,
    /// `won_revenue`.
    #[schema(pattern = "^won_revenue$")]
    pub metric: String,
    /// ISO 4217 code (three letters, any case).
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// The target, above 0 and below 10¹⁵.
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e15)]
    pub target: f64,
}

/// A won-deals target (documentation shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealsObjective {
    /// `owner` or `region`.
    #[schema(pattern = "^(owner|region)$")]
    pub scope: String,
    /// The rep or region name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// `2026`, `2026-Q1` or `2026-03` (years 1970–9999).
    #[schema(pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})(-[Qq][1-4]|-(0[1-9]|1[0-2]))?$")]
    pub period: String,
    /// `won_deals`.
    #[schema(pattern = "^won_deals$")]
    pub metric: String,
    /// The number of won deals, above 0 and below 10¹⁵.
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e15)]
    pub target: f64,
}

/// Answer of `PUT /v1/objectives`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ObjectivesStored {
    /// Objectives inserted or replaced.
    pub stored: usize,
}

/// Sets targets (won revenue in a currency, or won deal count) per rep or region and period.
/// An objective with the same scope, name, period, metric and currency is replaced. All or
/// nothing: one invalid item refuses the whole request.
#[utoipa::path(put, path = "/v1/objectives", tag = "insights",
    request_body = ObjectivesBody,
    responses((status = 200, body = ObjectivesStored), PutObjectivesProblems),
    security(("api_key" = [])))]
#[put("/objectives")]
pub async fn put_objectives(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let parsed = objectives::parse_objectives(&body)?;
    store::upsert_objectives(&db, &parsed).await?;
    Ok(HttpResponse::Ok().json(ObjectivesStored { stored: parsed.len() }))
}

insight_query! {
    /// Query of the objectives insight.
    pub struct ObjectivesQuery {
        /// `2026`, `2026-Q1` or `2026-03` (required).
        #[param(
            required = true,
            pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})(-[Qq][1-4]|-(0[1-9]|1[0-2]))?$"
        )]
        pub period: Option<String>,
    }
}

/// Attainment, gap and forecast-to-target of each objective of a period.
#[utoipa::path(get, path = "/v1/insights/objectives", tag = "insights", params(ObjectivesQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((objectives::ObjectivesReport = "application/json"), (String = "text/csv"))), InsightProblems),
    security(("api_key" = [])))]
#[get("/insights/objectives")]
pub async fn get_objectives(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    query: web::Query<ObjectivesQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut checks = Checks::new(&req, q.format.as_deref());
    let parsed = q.period.as_deref().and_then(period::parse_period);
    if parsed.is_none() {
        checks.errors.push_localized(
            "period",
            tr!(
                "required: a year (2026), a quarter (2026-Q1) or a month (2026-03)",
                "obligatoire{NBSP}: une année (2026), un trimestre (2026-Q1) ou un mois (2026-03)"
            ),
        );
    }
    let Some((label, window)) = parsed.filter(|_| checks.errors.is_empty()) else {
        return Err(checks.errors.into());
    };
    let targets = store::objectives_of_period(&db, &label).await?;
    let work = move |s: &CachedSnapshot| objectives::attainment(s, &label, window, targets);
    checks.answer(&db, &cache, work, objectives::table).await
}
