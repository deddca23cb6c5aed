//! `GET /v1/insights/competitors`: win rates against each competitor of the configured
//! competitor field (`[insights] competitor_field`); see docs/insights.md.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::super::problems::problems;
use super::{answer_on, window_of, Checks};
use crate::auth::AnalystAccess;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::i18n::format::NNBSP;
use crate::insights::breakdown::Field;
use crate::insights::competitors::{self, Setup, Values, DEFAULT_LOST_TO_COMPETITOR};
use crate::insights::filter::{DealFilter, FilterNames};
use crate::insights::{CachedSnapshot, InsightsCache};
use crate::store::Db;
use crate::tr;

problems!(CompetitorsProblems: AUTH, QUERY, VALIDATION, NOT_CONFIGURED);

insight_query! {
    /// Query of the competitors insight.
    pub struct CompetitorsQuery {
        /// Window start (date or RFC 3339); default 90 days before `to`.
        pub from: Option<String>,
        /// Window end (date inclusive, or RFC 3339 exclusive); default end of today (UTC).
        pub to: Option<String>,
        /// Only this region.
        pub region: Option<String>,
        /// Only this owner.
        pub owner: Option<String>,
        /// Only this sector.
        pub sector: Option<String>,
    }
}

/// The configured field `key` of `[insights]`, parsed; a 409 `not-configured` that says how to
/// set it when it is unset (and `required`) or not a field.
fn configured(key: &str, value: Option<&str>, required: bool) -> ApiResult<Option<Field>> {
    let Some(text) = value else {
        if !required {
            return Ok(None);
        }
        return Err(ApiError::NotConfigured(
            tr!(
                "no competitor field is configured: set `{key}` in the `[insights]` table of the configuration file (e.g. `{key} = \"attr.competitor\"`) or DEALSCORE_INSIGHTS_COMPETITOR_FIELD, to a core field or `attr.<name>`, and restart",
                "aucun champ concurrent n'est configuré{NNBSP}: renseignez `{key}` dans la table `[insights]` du fichier de configuration (par ex. `{key} = \"attr.competitor\"`) ou DEALSCORE_INSIGHTS_COMPETITOR_FIELD, avec un champ standard ou `attr.<nom>`, puis redémarrez"
            )
            .into(),
        ));
    };
    Field::parse(text).map(Some).ok_or_else(|| {
        ApiError::NotConfigured(
            tr!(
                "`[insights] {key}` is `{text}`, which is not sector, region, owner, contact_role, account, currency or attr.<name>: correct it and restart",
                "`[insights] {key}` vaut `{text}`, qui n'est ni sector, region, owner, contact_role, account, currency ni attr.<nom>{NNBSP}: corrigez-le puis redémarrez"
            )
            .into(),
        )
    })
}

/// Per competitor and without one: open, won and lost deals, win rate with its 95 % Wilson
/// interval, its trend over the last 4 periods, deals lost to it by loss reason, and the win rate
/// by sector and by deal size band; competitors with fewer than 10 deals in the period share an
/// `(other)` row. Answers 409 `not-configured` until `[insights] competitor_field` is set.
#[utoipa::path(get, path = "/v1/insights/competitors", tag = "insights", params(CompetitorsQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`",
        content((competitors::CompetitorsReport = "application/json"), (String = "text/csv"))), CompetitorsProblems),
    security(("api_key" = [])))]
#[get("/insights/competitors")]
pub async fn get_competitors(
    _caller: AnalystAccess,
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    settings: web::Data<Settings>,
    query: web::Query<CompetitorsQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let config = &settings.insights;
    let competitor = configured("competitor_field", config.competitor_field.as_deref(), true)?;
    let loss_reason = configured("loss_reason_field", config.loss_reason_field.as_deref(), false)?;
    let mut checks = Checks::new(&req, q.format.as_deref());
    let window = window_of(q.from.as_deref(), q.to.as_deref(), &mut checks.errors);
    let (csv, (window, competitor)) = checks.passed(window.zip(competitor))?;
    let snapshot = cache.snapshot(&db).await?;
    let column = |field: &Field| match field {
        Field::Attribute(name) => Some(name.clone()),
        Field::Core(_) => None,
    };
    let competitor_column = match column(&competitor) {
        Some(name) => Some(cache.attribute(&db, &snapshot, &name).await?),
        None => None,
    };
    let reason_column = match loss_reason.as_ref().and_then(column) {
        Some(name) => Some(cache.attribute(&db, &snapshot, &name).await?),
        None => None,
    };
    let lost_to = config
        .lost_to_competitor
        .clone()
        .unwrap_or_else(|| DEFAULT_LOST_TO_COMPETITOR.to_owned());
    let work = move |s: &CachedSnapshot| {
        let setup = Setup {
            competitor_field: competitor.name(),
            competitors: Values::of(&competitor, competitor_column.as_deref()),
            loss_reasons: loss_reason
                .as_ref()
                .map(|f| (f.name(), Values::of(f, reason_column.as_deref()))),
            lost_to_competitor: lost_to,
        };
        let names = FilterNames {
            region: q.region.as_deref(),
            owner: q.owner.as_deref(),
            sector: q.sector.as_deref(),
            contact_role: None,
        };
        competitors::competitors(s, &setup, window, &DealFilter::new(s, &names))
    };
    answer_on(csv, snapshot, work, competitors::table).await
}
