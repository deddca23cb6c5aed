//! `/v1/opportunities`: create or replace, read, list, delete, and attach activities.

use std::collections::BTreeMap;

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::problems::problems;
use crate::auth::{AnalystAccess, RepAccess};
use crate::domain::{
    Activity, ActivityDirection, ActivityKind, AttributeValue, ExternalId, Opportunity, ParseOptions, Status,
    ValidationErrors,
};
use crate::error::{ApiError, ApiResult};
use crate::i18n::format::NBSP;
use crate::store::opportunities::{ListFilter, StoredOpportunity, UpsertOutcome};
use crate::store::upsert_queue::{UpsertQueue, UpsertRequest};
use crate::store::{activities, opportunities, Db};
use crate::tr;

/// Most activities accepted in one request.
const MAX_ACTIVITIES_PER_REQUEST: usize = 10_000;

/// Opportunity fields (request body of `PUT`; documentation shape). Unknown fields are refused
/// (422 naming them); text is trimmed, and text that is empty once trimmed counts as absent.
/// Text fields are one line: no control characters (NUL, tab, line breaks, escape…).
/// Timestamps are RFC 3339 or `YYYY-MM-DD` in the years 1900–2200 (a day that does not exist,
/// such as 2026-02-30, fits the pattern and is still refused).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct OpportunityBody {
    /// CRM id; optional in the body (the URL gives it), must match when present. 1–200 chars.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_id: Option<String>,
    /// Deal name.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<String>,
    /// Account.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub account: Option<String>,
    /// Sector.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub sector: Option<String>,
    /// Region.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub region: Option<String>,
    /// Owning rep.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub owner: Option<String>,
    /// decision_maker, economic_buyer, champion, influencer, technical, end_user, procurement,
    /// other — or free text, normalised to lower snake case.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub contact_role: Option<String>,
    /// Deal value: a finite number, 0 ≤ amount ≤ 10¹⁵.
    #[schema(minimum = 0, maximum = 1e15)]
    pub amount: Option<f64>,
    /// An active ISO 4217 code, any case (default EUR); a withdrawn or unassigned code such as
    /// `HRK` or `ZZZ` is refused.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// CRM stage (free text).
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub stage: Option<String>,
    /// open, won or lost.
    pub status: Status,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub created_at: Option<String>,
    /// Required for won/lost, absent for open; not before `created_at`; in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub closed_at: Option<String>,
    /// ≥ 0; derived from activities when there are any.
    #[schema(minimum = 0, maximum = 1e12)]
    pub interaction_count: Option<i64>,
    /// Average hours to answer the prospect, 0–100,000; derived from activities when possible.
    #[schema(minimum = 0, maximum = 100_000)]
    pub response_hours: Option<f64>,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub last_activity_at: Option<String>,
    /// Custom CRM fields (at most 200; names 1–100 characters without control characters):
    /// text up to 1,000 characters (tabs and line breaks allowed, never a NUL) or a number
    /// between -10¹⁵ and 10¹⁵.
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    /// Activities to attach at the same time.
    #[schema(max_items = 10_000)]
    pub activities: Option<Vec<ActivityBody>>,
}

/// A deal to score (documentation shape of `POST /v1/score`): the fields of an opportunity, all
/// optional, with `cycle_days` in place of the dates if wanted. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreDeal {
    /// CRM id (optional; checked like a stored deal's, plays no part in the score).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_id: Option<String>,
    /// Deal name.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<String>,
    /// Account.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub account: Option<String>,
    /// Sector.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub sector: Option<String>,
    /// Region.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub region: Option<String>,
    /// Owning rep.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub owner: Option<String>,
    /// decision_maker, economic_buyer, champion, influencer, technical, end_user, procurement,
    /// other — or free text, normalised to lower snake case.
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub contact_role: Option<String>,
    /// Deal value: a finite number, 0 ≤ amount ≤ 10¹⁵.
    #[schema(minimum = 0, maximum = 1e15)]
    pub amount: Option<f64>,
    /// An active ISO 4217 code, any case (default EUR); a withdrawn or unassigned code such as
    /// `HRK` or `ZZZ` is refused.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// CRM stage (free text).
    #[schema(max_length = 1000, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub stage: Option<String>,
    /// open (default), won or lost.
    pub status: Option<Status>,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub created_at: Option<String>,
    /// Required for won/lost, absent for open; not before `created_at`; in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub closed_at: Option<String>,
    /// ≥ 0; derived from activities when there are any.
    #[schema(minimum = 0, maximum = 1e12)]
    pub interaction_count: Option<i64>,
    /// Average hours to answer the prospect, 0–100,000; derived from activities when possible.
    #[schema(minimum = 0, maximum = 100_000)]
    pub response_hours: Option<f64>,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub last_activity_at: Option<String>,
    /// Custom CRM fields (at most 200; names 1–100 characters without control characters):
    /// text up to 1,000 characters (tabs and line breaks allowed, never a NUL) or a number
    /// between -10¹⁵ and 10¹⁵.
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    /// Age of the deal in days, in place of `created_at` (0–110,000).
    #[schema(minimum = 0, maximum = 110_000)]
    pub cycle_days: Option<f64>,
}

/// A batch to score: up to 10,000 deals, each answered by its index (an invalid one with its
/// field errors, the others scored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBatch {
    /// The deals, in the order of the answer's `results`.
    #[schema(max_items = 10_000)]
    pub opportunities: Vec<ScoreDeal>,
}

/// The body of `POST /v1/score`: one deal, or a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a documentation shape, never built")]
pub enum ScoreRequest {
    /// One deal, answered with a `ScoreResult`.
    One(ScoreDeal),
    /// A batch, answered with a `BatchAnswer`.
    Batch(ScoreBatch),
}

/// One activity (documentation shape). Unknown fields are refused.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ActivityBody {
    /// The CRM's activity id (recommended: makes repeated deliveries harmless).
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub id: Option<String>,
    /// email, call, meeting, demo or other.
    pub kind: ActivityKind,
    /// inbound (prospect → rep) or outbound.
    pub direction: ActivityDirection,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub occurred_at: String,
}

/// A stored opportunity as returned by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityView {
    /// The fields (effective interaction measures).
    #[serde(flatten)]
    #[schema(inline)]
    pub opportunity: OpportunityBody,
    /// True when `interaction_count`/`response_hours` come from activities.
    pub derived_from_activities: bool,
    /// Last write (RFC 3339).
    pub updated_at: String,
}

/// A page of opportunities.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityPage {
    /// The opportunities, oldest first.
    #[schema(value_type = Vec<OpportunityView>)]
    pub items: Vec<StoredOpportunity>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/opportunities`. An unknown parameter is a 400 naming it: a misspelt filter
/// must not silently list every deal.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// open, won or lost (empty: every status).
    #[param(pattern = "^(open|won|lost)?$")]
    pub status: Option<String>,
    /// Owner (rep).
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub owner: Option<String>,
    /// Region.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub region: Option<String>,
    /// Sector.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub sector: Option<String>,
    /// Page size, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Language of sentences and problem details, `en` or `fr` (read by `Lang::of_request`,
    /// like `Accept-Language`; listed here so it is not an unknown parameter).
    pub lang: Option<String>,
}

/// The id of a stored opportunity, or 404: an id no opportunity can have (a NUL, a line break,
/// over 200 characters) is unknown, and never reaches the database (PostgreSQL refuses a NUL in
/// a query parameter).
pub(crate) fn known_id(id: &str) -> ApiResult<()> {
    match ExternalId::parse(id) {
        Ok(_) => Ok(()),
        Err(_) => Err(ApiError::no_opportunity(id)),
    }
}

/// The stored opportunity `external_id` when the caller's scope holds it, else the 404 an
/// unknown id gets: a deal outside the scope is not told apart from one that does not exist.
pub(crate) async fn in_scope(db: &Db, caller: &RepAccess, external_id: &str) -> ApiResult<StoredOpportunity> {
    known_id(external_id)?;
    opportunities::get_in_scope(db, external_id, &caller.0.scope)
        .await?
        .ok_or_else(|| ApiError::no_opportunity(external_id))
}

/// The query value `value` of parameter `name`, refused (400 naming it) when it holds a control
/// character: no stored owner, region, sector or name has one, and PostgreSQL refuses a NUL.
pub(crate) fn no_control_characters(name: &str, value: Option<&str>) -> ApiResult<()> {
    if value.is_some_and(|v| v.chars().any(char::is_control)) {
        return Err(ApiError::BadQuery(
            tr!(
                "{name} must not contain control characters",
                "{name} ne doit pas contenir de caractère de contrôle"
            )
            .into(),
        ));
    }
    Ok(())
}

fn validate_path_id(id: &str) -> ApiResult<()> {
    ExternalId::parse(id).map(|_| ()).map_err(|message| {
        let mut errors = ValidationErrors::default();
        errors.push_known("external_id", message);
        ApiError::Validation(errors)
    })
}

fn as_object(body: Value) -> ApiResult<serde_json::Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::MalformedBody(
            tr!(
                "the body must be a JSON object",
                "le corps doit être un objet JSON"
            )
            .into(),
        )),
    }
}

fn parse_activity_list(value: &Value, prefix: &str) -> Result<Vec<Activity>, ValidationErrors> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            let mut errors = ValidationErrors::default();
            errors.push_localized(
                prefix.trim_end_matches('.'),
                tr!(
                    "expected an activity object or a list of them",
                    "un objet activité ou une liste d'activités est attendu"
                ),
            );
            return Err(errors);
        }
    };
    let mut errors = ValidationErrors::default();
    if items.len() > MAX_ACTIVITIES_PER_REQUEST {
        errors.push_localized(
            prefix.trim_end_matches('.'),
            tr!(
                "at most {MAX_ACTIVITIES_PER_REQUEST} activities per request",
                "{MAX_ACTIVITIES_PER_REQUEST}{NBSP}activités au plus par requête"
            ),
        );
        return Err(errors);
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_prefix = if matches!(value, Value::Array(_)) {
            format!("{}[{i}].", prefix.trim_end_matches('.'))
        } else {
            prefix.to_string()
        };
        match item {
            Value::Object(map) => match Activity::parse(map, &item_prefix, None) {
                Ok(a) => out.push(a),
                Err(e) => errors.0.extend(e.0),
            },
            _ => errors.push_localized(
                item_prefix.trim_end_matches('.'),
                tr!("expected an object", "un objet est attendu"),
            ),
        }
    }
    errors.into_result(out)
}

problems!(PutProblems: AUTH, JSON_BODY, VALIDATION, GROUP_COMMIT);
problems!(ReadProblems: AUTH, NOT_FOUND);
problems!(ListProblems: AUTH, QUERY);
problems!(AddActivitiesProblems: AUTH, JSON_BODY, NOT_FOUND, VALIDATION);

/// Creates or replaces an opportunity (201 created, 200 replaced or unchanged).
#[utoipa::path(put, path = "/v1/opportunities/{external_id}", tag = "opportunities",
    params(("external_id" = String, Path, description = "CRM id")),
    request_body = OpportunityBody,
    responses(
        (status = 201, description = "created", body = OpportunityView),
        (status = 200, description = "replaced or unchanged", body = OpportunityView),
        PutProblems),
    security(("api_key" = [])))]
#[put("/opportunities/{external_id}")]
pub async fn put(
    _caller: AnalystAccess,
    queue: web::Data<UpsertQueue>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let external_id = path.into_inner();
    validate_path_id(&external_id)?;
    let mut fields = as_object(body.into_inner())?;
    let activity_value = fields.remove("activities");
    let parsed = Opportunity::parse(Some(&external_id), &fields, ParseOptions::default());
    let parsed_activities = activity_value
        .as_ref()
        .map(|v| parse_activity_list(v, "activities."))
        .transpose();
    let (opportunity, new_activities) = match (parsed, parsed_activities) {
        (Ok(o), Ok(a)) => (o, a.unwrap_or_default()),
        (o, a) => {
            let mut errors = ValidationErrors::default();
            if let Err(e) = o {
                errors.0.extend(e.0);
            }
            if let Err(e) = a {
                errors.0.extend(e.0);
            }
            return Err(errors.into());
        }
    };
    // Coalesced with the PUTs queued meanwhile: one multi-row upsert and one commit (one fsync)
    // for all of them.
    let done = queue
        .upsert(UpsertRequest {
            opportunity,
            activities: new_activities,
        })
        .await
        .map_err(|e| ApiError::from(e.map_work(ApiError::from)))?;
    Ok(match done.outcome {
        UpsertOutcome::Inserted => HttpResponse::Created().json(done.stored),
        _ => HttpResponse::Ok().json(done.stored),
    })
}

/// Reads one opportunity.
#[utoipa::path(get, path = "/v1/opportunities/{external_id}", tag = "opportunities",
    params(("external_id" = String, Path, description = "CRM id")),
    responses((status = 200, body = OpportunityView), ReadProblems),
    security(("api_key" = [])))]
#[get("/opportunities/{external_id}")]
pub async fn get(caller: RepAccess, db: web::Data<Db>, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let stored = in_scope(&db, &caller, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(stored))
}

/// Deletes one opportunity and its activities (204; 404 when unknown).
#[utoipa::path(delete, path = "/v1/opportunities/{external_id}", tag = "opportunities",
    params(("external_id" = String, Path, description = "CRM id")),
    responses((status = 204, description = "deleted"), ReadProblems),
    security(("api_key" = [])))]
#[delete("/opportunities/{external_id}")]
pub async fn delete(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let external_id = path.into_inner();
    known_id(&external_id)?;
    if opportunities::delete(&db, &external_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::no_opportunity(&external_id))
    }
}

/// Lists opportunities with filters and stable cursor pagination (id order); a rep or manager
/// key lists only the deals of its scope.
#[utoipa::path(get, path = "/v1/opportunities", tag = "opportunities", params(ListQuery),
    responses((status = 200, body = OpportunityPage), ListProblems),
    security(("api_key" = [])))]
#[get("/opportunities")]
pub async fn list(
    caller: RepAccess,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::BadQuery(
                tr!(
                    "status `{s}` is not one of open, won, lost",
                    "le statut `{s}` n'est pas open, won ni lost"
                )
                .into(),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::limit_out_of_range(1000));
    }
    for (name, value) in [
        ("owner", &query.owner),
        ("region", &query.region),
        ("sector", &query.sector),
    ] {
        no_control_characters(name, value.as_deref())?;
    }
    let after_id = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| {
            ApiError::BadQuery(
                tr!(
                    "cursor is not a cursor from this API",
                    "cursor n'est pas un curseur donné par cette API"
                )
                .into(),
            )
        })?,
    };
    let filter = ListFilter {
        status,
        owner: query.owner,
        region: query.region,
        sector: query.sector,
        scope: caller.0.scope,
    };
    let (items, more) = opportunities::list(&db, &filter, after_id, limit).await?;
    let next_cursor = if more {
        items.last().map(|o| encode_cursor(o.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(OpportunityPage { items, next_cursor }))
}

fn encode_cursor(id: i64) -> String {
    format!("o{id:x}")
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    i64::from_str_radix(cursor.strip_prefix('o')?, 16)
        .ok()
        .filter(|v| *v >= 0)
}

/// Result of attaching activities.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivitiesAdded {
    /// Newly stored.
    pub added: usize,
    /// Already known, skipped.
    pub duplicates: usize,
    /// The opportunity after its measures were refreshed.
    #[schema(value_type = OpportunityView)]
    pub opportunity: StoredOpportunity,
}

/// Attaches one activity or a list; derived measures are refreshed.
#[utoipa::path(post, path = "/v1/opportunities/{external_id}/activities", tag = "opportunities",
    params(("external_id" = String, Path, description = "CRM id")),
    request_body(content = Vec<ActivityBody>, description = "one activity object or a list"),
    responses((status = 200, body = ActivitiesAdded), AddActivitiesProblems),
    security(("api_key" = [])))]
#[post("/opportunities/{external_id}/activities")]
pub async fn add_activities(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let external_id = path.into_inner();
    known_id(&external_id)?;
    let parsed = parse_activity_list(&body, "")?;
    let result = activities::add(&db, &external_id, &parsed)
        .await
        .map_err(|e| match e {
            activities::AddActivitiesError::UnknownOpportunity(id) => ApiError::no_opportunity(&id),
            activities::AddActivitiesError::Db(e) => e.into(),
        })?;
    let opportunity = opportunities::get(&db, &external_id)
        .await?
        .ok_or_else(|| ApiError::no_opportunity(&external_id))?;
    Ok(HttpResponse::Ok().json(ActivitiesAdded {
        added: result.added,
        duplicates: result.duplicates,
        opportunity,
    }))
}

/// Lists an opportunity's activities, oldest first.
#[utoipa::path(get, path = "/v1/opportunities/{external_id}/activities", tag = "opportunities",
    params(("external_id" = String, Path, description = "CRM id")),
    responses((status = 200, body = Vec<ActivityBody>), ReadProblems),
    security(("api_key" = [])))]
#[get("/opportunities/{external_id}/activities")]
pub async fn list_activities(
    caller: RepAccess,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let external_id = path.into_inner();
    in_scope(&db, &caller, &external_id).await?;
    Ok(HttpResponse::Ok().json(activities::list_for(&db, &external_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(12345)), Some(12345));
        assert_eq!(decode_cursor("12345"), None);
        assert_eq!(decode_cursor("ozz"), None);
    }
}
