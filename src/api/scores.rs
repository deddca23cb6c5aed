//! Scoring endpoints: stateless scoring, stored scoring with history, rescoring, priority list.

use actix_web::body::SizedStream;
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{ContentType, CONTENT_LANGUAGE};
use actix_web::{get, post, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::batch_scoring::BatchJob;
use super::jobs::Jobs;
use super::problems::problems;
use super::score_body::{batch_items, ScoreBody};
use crate::auth::{AnalystAccess, RepAccess};
use crate::config::Settings;
use crate::domain::{Deal, FieldError, FieldMessage, ParseOptions, ValidationErrors};
use crate::error::{ApiError, ApiResult};
use crate::features::as_of::{as_of, AsOfRules};
use crate::i18n::format::NBSP;
use crate::i18n::Lang;
use crate::lifecycle::registry::active_model;
use crate::ranking::{Cursor, Search, SearchRefused, SortKey};
use crate::scoring::{score, Focus, Grade, RankBy, ScoreResult};
use crate::serving::{history_row, ActiveModel};
use crate::store::opportunities::{self, ListFilter};
use crate::store::scores::{self, ExplainedScore};
use crate::store::Db;
use crate::tr;

/// Most opportunities in one `POST /v1/score`.
pub const MAX_BATCH: usize = 10_000;
/// Batches above this size are scored on a blocking thread.
const INLINE_BATCH: usize = 64;

/// A 200 answer whose sentences are written in `lang`, saying so in `Content-Language`.
pub fn ok_in(lang: Lang) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header((CONTENT_LANGUAGE, lang.code()));
    response
}

/// Where a single score's JSON starts: its factors and levers make it 2–4 KB, which
/// `HttpResponseBuilder::json` reached by growing a 128-byte buffer five times, copying it each
/// time. Score answers are written by [`super::score_json`].
const SCORE_JSON_BYTES: usize = 4096;

/// `value` as the JSON body of `response`, written into a buffer of `capacity` bytes.
fn json_answer(mut response: HttpResponseBuilder, value: &impl Serialize, capacity: usize) -> HttpResponse {
    let mut body = Vec::with_capacity(capacity);
    match super::score_json::write(&mut body, value) {
        Ok(()) => response.content_type(ContentType::json()).body(body),
        // Only maps with non-string keys fail to serialize; answers have none.
        Err(e) => HttpResponse::from_error(JsonPayloadError::Serialize(e)),
    }
}

/// Query of the scoring endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScoreQuery {
    /// Rank levers by `probability` uplift (default) or expected `value` uplift.
    pub rank: Option<RankBy>,
    /// The instant to score at (a date, its midnight UTC, or an RFC 3339 time); default now. A
    /// deal sent is scored with its age at that instant; a stored deal is rebuilt as it stood
    /// then from its history and activities (docs/history.md), and that score is not recorded.
    /// The same instant gives the same score whatever day the request runs.
    #[param(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub as_of: Option<String>,
}

impl ScoreQuery {
    /// The `as_of` instant, when one was given; a 422 naming `as_of` when it is not a time.
    fn instant(&self) -> Result<Option<DateTime<Utc>>, ValidationErrors> {
        let Some(text) = self.as_of.as_deref() else {
            return Ok(None);
        };
        match crate::insights::period::parse_from(text) {
            Ok(ms) => Ok(Some(crate::domain::from_epoch_ms(ms))),
            Err(message) => {
                let mut errors = ValidationErrors::default();
                errors.push_localized("as_of", message);
                Err(errors)
            }
        }
    }
}

/// One item of a batch answer: a result or the item's errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// The score (absent when the item was invalid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ScoreResult>,
    /// Field errors of an invalid item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Answer to a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    /// Model version.
    pub model_version: String,
    /// Items scored.
    pub scored: usize,
    /// Items refused.
    pub invalid: usize,
    /// One entry per item, in request order.
    pub results: Vec<BatchItem>,
}

/// Parses one item to score: the whole body, or item `index` of a batch, whose field names in
/// errors get the `opportunities[3].` prefix (written only when there is an error: a batch
/// holds up to 10,000 items).
pub(crate) fn parse_for_scoring(value: &Value, index: Option<usize>) -> Result<Deal, ValidationErrors> {
    let prefix = || index.map_or_else(String::new, |i| format!("opportunities[{i}]."));
    match value {
        Value::Object(map) => Deal::parse_to_score(map, ParseOptions::default()).map_err(|mut e| {
            let prefix = prefix();
            for err in &mut e.0 {
                err.field = format!("{prefix}{}", err.field);
            }
            e
        }),
        _ => {
            let mut e = ValidationErrors::default();
            e.push_known(prefix().trim_end_matches('.'), FieldMessage::ExpectedOpportunity);
            Err(e)
        }
    }
}

problems!(ScoreProblems: AUTH, QUERY, JSON_BODY, VALIDATION, MODEL);
// A malformed `as_of` is a 422 naming it.
problems!(ScoreStoredProblems: AUTH, QUERY, NOT_FOUND, VALIDATION, MODEL);
problems!(RescoreProblems: AUTH, CONFLICT, MODEL);
problems!(PriorityProblems: AUTH, QUERY, VALIDATION, MODEL);

/// Scores one opportunity, or `{"opportunities": [...]}` (up to 10,000). Nothing is stored.
#[utoipa::path(post, path = "/v1/score", tag = "scoring", params(ScoreQuery),
    request_body(content = crate::api::opportunities::ScoreRequest,
        description = "one opportunity (status defaults to open; `created_at` or `cycle_days`), or {\"opportunities\": [...]}"),
    responses(
        (status = 200, description = "a ScoreResult for one deal, a BatchAnswer for a batch",
            content((ScoreResponse = "application/json"))),
        ScoreProblems),
    security(("api_key" = [])))]
#[post("")]
pub async fn score_stateless(
    req: HttpRequest,
    _caller: RepAccess,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    query: web::Query<ScoreQuery>,
    body: web::Json<ScoreBody>,
) -> ApiResult<HttpResponse> {
    let rank = query.rank.unwrap_or_default();
    let lang = Lang::of_request(&req);
    let at = query.instant()?;
    let now = at.unwrap_or_else(Utc::now);
    let model = active_model(&holder)?;
    let config = settings.scoring.clone();
    let batch = match body.into_inner() {
        ScoreBody::One(opportunity) => {
            let opp = parse_for_scoring(&opportunity, None)?;
            let result = score(&model, &config, &opp, now, None, rank, lang);
            return Ok(json_answer(ok_in(lang), &result, SCORE_JSON_BYTES));
        }
        ScoreBody::Batch(batch) => batch,
    };
    let Some(items) = batch_items(&batch) else {
        let mut e = ValidationErrors::default();
        e.push_known("opportunities", FieldMessage::ExpectedOpportunityList);
        return Err(e.into());
    };
    if items.len() > MAX_BATCH {
        let mut e = ValidationErrors::default();
        e.push_known(
            "opportunities",
            FieldMessage::TooManyOpportunities {
                max: MAX_BATCH,
                got: items.len(),
            },
        );
        return Err(e.into());
    }
    let job = BatchJob {
        model,
        config,
        rank,
        lang,
        now,
    };
    if items.len() <= INLINE_BATCH {
        let capacity = SCORE_JSON_BYTES * (items.len() + 1);
        return Ok(json_answer(ok_in(lang), &job.answer(&items), capacity));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks = job.answer_json(items, threads).await?;
    let length = chunks.iter().map(|c| c.len() as u64).sum();
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    Ok(ok_in(lang)
        .content_type(ContentType::json())
        .body(SizedStream::new(length, stream)))
}

/// The answer of `POST /v1/score` (documentation shape).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a documentation shape, never built")]
pub enum ScoreResponse {
    /// One deal's score.
    One(ScoreResult),
    /// A batch's answer.
    Batch(BatchAnswer),
}

/// A stored score with the full result.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredScoreAnswer {
    /// The opportunity scored.
    pub external_id: String,
    /// The result.
    #[serde(flatten)]
    pub result: ScoreResult,
    /// Recent score history, newest first: this score, or the last one recorded for the same
    /// deal and model; each entry says what moved it since the one before (`since_previous`).
    pub history: Vec<ExplainedScore>,
    /// For a score `as_of` an instant: the instant and the fields unknown then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOfNote>,
}

/// The instant a stored deal was scored at, and what was not known of it then.
#[derive(Debug, Serialize, ToSchema)]
pub struct AsOfNote {
    /// The instant (RFC 3339).
    pub at: String,
    /// Fields unknown at that instant, left empty for the score (closing fields without a
    /// recorded value: `stage`, reported interaction measures…).
    pub hidden: Vec<String>,
}

/// Scores a stored opportunity with the active model and records the score in its history when
/// the model or the deal changed since the last recorded score.
#[utoipa::path(get, path = "/v1/opportunities/{external_id}/score", tag = "scoring",
    params(("external_id" = String, Path, description = "CRM id"), ScoreQuery),
    responses((status = 200, body = StoredScoreAnswer), ScoreStoredProblems),
    security(("api_key" = [])))]
#[get("/opportunities/{external_id}/score")]
pub async fn score_stored(
    req: HttpRequest,
    caller: RepAccess,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    path: web::Path<String>,
    query: web::Query<ScoreQuery>,
) -> ApiResult<HttpResponse> {
    let external_id = path.into_inner();
    super::opportunities::known_id(&external_id)?;
    let lang = Lang::of_request(&req);
    let at = query.instant()?;
    let model = active_model(&holder)?;
    let stored_opp = super::opportunities::in_scope(&db, &caller, &external_id).await?;
    if let Some(at) = at {
        // A score of the past is not the deal's score: answered, never recorded.
        let mut timelines = crate::store::history::timelines(&db, &[external_id.as_str()]).await?;
        let timeline = timelines
            .remove(external_id.as_str())
            .ok_or_else(|| ApiError::no_opportunity(&external_id))?;
        let then = as_of(
            &timeline.stored.opportunity.deal,
            &timeline.history,
            &timeline.activities,
            at,
            &AsOfRules::default(),
        );
        let rank = query.rank.unwrap_or_default();
        let result = score(&model, &settings.scoring, &then.deal, at, None, rank, lang);
        let history = scores::history_explained(&db, stored_opp.id, 20).await?;
        return Ok(ok_in(lang).json(StoredScoreAnswer {
            external_id,
            result,
            history,
            as_of: Some(AsOfNote {
                at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                hidden: then.hidden,
            }),
        }));
    }
    let latest = scores::latest_with_deal(&db, stored_opp.id).await?;
    let previous_score = latest.as_ref().map(|(p, _)| p.score.clamp(0, 100) as u8);
    let result = score(
        &model,
        &settings.scoring,
        &stored_opp.opportunity,
        Utc::now(),
        previous_score,
        query.rank.unwrap_or_default(),
        lang,
    );
    let deal_hash = opportunities::content_hash(&stored_opp.opportunity);
    // Reading a score is not news: a rep reloading a deal page must not grow its history. A row
    // is added only when the model or the deal changed since the last one.
    let unchanged = latest.as_ref().is_some_and(|(last, last_deal)| {
        last.model_version == result.model_version && last_deal.as_deref() == Some(deal_hash.as_str())
    });
    if !unchanged {
        let row = history_row(stored_opp.id, &result, Utc::now()).for_deal(deal_hash);
        scores::insert_batch(&db, &[row]).await?;
    }
    let history = scores::history_explained(&db, stored_opp.id, 20).await?;
    Ok(ok_in(lang).json(StoredScoreAnswer {
        external_id,
        result,
        history,
        as_of: None,
    }))
}

/// Answer of `POST /v1/opportunities/rescore`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RescoreStarted {
    /// Job id.
    pub job_id: String,
    /// Where to follow progress.
    pub status_url: String,
}

/// Rescores every open opportunity in the background (batches, off the request threads).
#[utoipa::path(post, path = "/v1/opportunities/rescore", tag = "scoring",
    responses((status = 202, body = RescoreStarted), RescoreProblems),
    security(("api_key" = [])))]
#[post("/opportunities/rescore")]
pub async fn rescore(
    _caller: AnalystAccess,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    jobs: web::Data<Jobs>,
) -> ApiResult<HttpResponse> {
    let model = active_model(&holder)?;
    if let Some(id) = jobs.running("rescore") {
        return Err(ApiError::Conflict(
            tr!(
                "rescoring job {id} is already running",
                "la tâche de recalcul {id} est déjà en cours"
            )
            .into(),
        ));
    }
    let total = opportunities::count_by_status(&db)
        .await?
        .get("open")
        .copied()
        .unwrap_or(0) as u64;
    let id = jobs.start("rescore", Some(total));
    let (db, jobs_ref, config, job_id) = (
        db.get_ref().clone(),
        jobs.clone(),
        settings.scoring.clone(),
        id.clone(),
    );
    tokio::spawn(async move {
        let result =
            crate::rescoring::rescore_all(&db, model, config, |done| jobs_ref.progress(&job_id, done)).await;
        jobs_ref.finish(&job_id, result.err().map(|e| e.to_string()));
    });
    Ok(HttpResponse::Accepted().json(RescoreStarted {
        status_url: format!("/v1/jobs/{id}"),
        job_id: id,
    }))
}

/// Query of the priority list. An unknown parameter is a 400 naming it: a misspelt filter must
/// not silently rank every deal.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PriorityQuery {
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this region.
    pub region: Option<String>,
    /// Only this sector.
    pub sector: Option<String>,
    /// Only this grade (A–D; empty: every grade).
    #[param(pattern = "^[A-D]?$")]
    pub grade: Option<String>,
    /// Only this focus (empty: every focus).
    #[param(pattern = "^(prioritize|secure|deprioritize|nurture)?$")]
    pub focus: Option<String>,
    /// `value` (expected value, default), `score`, or `uplift` (available uplift).
    #[param(pattern = "^(value|score|uplift)$")]
    pub sort: Option<String>,
    /// Only deals whose name or account contains this text, ignoring case (at most 200
    /// characters, no control characters; empty: every deal).
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub search: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page's `Next-Cursor` header (same `sort`); the next page
    /// starts after the last deal of that page.
    #[param(max_length = 1617, pattern = "^[vsu][0-9a-f]*$")]
    pub cursor: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// Language of sentences and problem details, `en` or `fr` (read by `Lang::of_request`,
    /// like `Accept-Language`; listed here so it is not an unknown parameter).
    pub lang: Option<String>,
}

pub use crate::ranking::PriorityItem;

/// Open deals ranked by priority, each with score, grade, expected value, focus and next
/// intervention; a rep or manager key ranks only the deals of its scope (the filters narrow it,
/// never widen it). A page holds up to `limit` deals; when more follow, the `Next-Cursor`
/// header gives the `cursor` of the next page and `Link` its URL. With `format=csv` the same
/// page is a CSV table (cells a spreadsheet would evaluate are escaped).
#[utoipa::path(get, path = "/v1/opportunities/priority", tag = "scoring", params(PriorityQuery),
    responses(
        (status = 200, description = "the page of deals: JSON, or CSV with `format=csv` or `Accept: text/csv`",
            content((Vec<PriorityItem> = "application/json"), (String = "text/csv")),
            headers(
                ("Next-Cursor" = String, description = "the `cursor` of the next page; absent on the last page"),
                ("Link" = String, description = "`<URL of the next page>; rel=\"next\"`; absent on the last page"))),
        PriorityProblems),
    security(("api_key" = [])))]
#[get("/opportunities/priority")]
pub async fn priority(
    req: HttpRequest,
    caller: RepAccess,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    cache: web::Data<crate::ranking::PriorityCache>,
    query: web::Query<PriorityQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let lang = Lang::of_request(&req);
    let model = active_model(&holder)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::limit_out_of_range(500));
    }
    let grade = match query.grade.as_deref() {
        None | Some("") => None,
        Some(g) => Some(Grade::parse(g).ok_or_else(|| {
            ApiError::BadQuery(
                tr!(
                    "grade `{g}` is not one of A, B, C, D",
                    "la note `{g}` n'est pas A, B, C ni D"
                )
                .into(),
            )
        })?),
    };
    let focus = match query.focus.as_deref() {
        None | Some("") => None,
        Some(f) => Some(
            [
                Focus::Prioritize,
                Focus::Secure,
                Focus::Deprioritize,
                Focus::Nurture,
            ]
            .into_iter()
            .find(|x| x.as_str() == f)
            .ok_or_else(|| {
                ApiError::BadQuery(
                    tr!(
                        "focus `{f}` is not one of prioritize, secure, deprioritize, nurture",
                        "focus `{f}` n'est pas prioritize, secure, deprioritize ni nurture"
                    )
                    .into(),
                )
            })?,
        ),
    };
    let sort = match query.sort.as_deref() {
        None => SortKey::Value,
        Some(text) => SortKey::parse(text).ok_or_else(|| {
            ApiError::BadQuery(
                tr!(
                    "sort `{text}` is not one of value, score, uplift",
                    "sort `{text}` n'est pas value, score ni uplift"
                )
                .into(),
            )
        })?,
    };
    let search = Search::parse(query.search.as_deref().unwrap_or_default()).map_err(|refused| {
        ApiError::BadQuery(
            match refused {
                SearchRefused::TooLong => {
                    let max = Search::MAX_CHARS;
                    tr!(
                        "search must be at most {max} characters",
                        "search doit faire au plus {max}{NBSP}caractères"
                    )
                }
                SearchRefused::ControlCharacter => tr!(
                    "search must not contain control characters",
                    "search ne doit pas contenir de caractère de contrôle"
                ),
            }
            .into(),
        )
    })?;
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Cursor::decode(sort, text).ok_or_else(|| {
            let by = sort.as_str();
            ApiError::BadQuery(
                tr!(
                    "cursor is not a cursor of this list sorted by {by}",
                    "cursor n'est pas un curseur de cette liste triée par {by}"
                )
                .into(),
            )
        })?),
    };
    let mut errors = ValidationErrors::default();
    let csv = super::wants_csv(&req, query.format.as_deref(), &mut errors);
    errors.into_result(())?;
    let request = crate::ranking::PriorityQuery {
        filter: ListFilter {
            owner: query.owner,
            region: query.region,
            sector: query.sector,
            scope: caller.0.scope,
            ..ListFilter::default()
        },
        grade,
        focus,
        sort,
        search,
    };
    let scored = cache.scored(&db, model, &settings.scoring, lang).await?;
    let ranked = crate::ranking::ranked(&scored, &request);
    let (items, next) = crate::ranking::page(&ranked, sort, cursor.as_ref(), limit);
    let mut response = ok_in(lang);
    if let Some(next) = next.map(|c| c.encode()) {
        let kept = req
            .query_string()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
            .chain(std::iter::once(format!("cursor={next}").as_str()))
            .collect::<Vec<_>>()
            .join("&");
        response.insert_header(("Link", format!("<{}?{kept}>; rel=\"next\"", req.path())));
        response.insert_header(("Next-Cursor", next));
    }
    if csv {
        return super::csv_answer(response, &crate::ranking::table(&items));
    }
    Ok(response.json(items))
}
