//! `/v1/webhooks/{source}`: signed CRM events in (authenticated by signature, not API key), and
//! admin views of received events and of the score write-back outbox.

use std::sync::Arc;

use actix_web::http::header::CONTENT_LANGUAGE;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::problems::problems;
use crate::auth::AdminAccess;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult, Code, KnownDetail};
use crate::i18n::format::NBSP;
use crate::i18n::Lang;
use crate::ingest::signature;
use crate::ingest::webhook::{
    self, parse_delivery, DeliveryError, DeliveryQueue, EventOutcome, EventScoring, EventStatus, ScoreAnswer,
    Source, Sources,
};
use crate::store::outbox::{self, OutboxEntry, RetryResult};
use crate::store::webhooks::{self as event_store, EventRecord, StoredEvent};
use crate::store::Db;
use crate::telemetry::Metrics;
use crate::tr;

/// Query of `POST /v1/webhooks/{source}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiveQuery {
    /// `false` leaves the score out of the answer (default true).
    pub score: Option<bool>,
}

/// Answer to a batch delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOutcome {
    /// One outcome per event, in order.
    #[schema(value_type = Vec<EventOutcomeDoc>)]
    pub events: Vec<EventAnswer>,
    /// Counts per status (a duplicate counts as duplicate).
    pub summary: BatchSummary,
}

/// Counts of a batch's outcomes.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BatchSummary {
    /// Applied now.
    pub applied: usize,
    /// Already received before.
    pub duplicate: usize,
    /// Older than the last applied event on their opportunity.
    pub ignored: usize,
    /// Invalid.
    pub rejected: usize,
}

fn source_or_404<'a>(sources: &'a Sources, name: &str) -> ApiResult<&'a Arc<Source>> {
    sources.get(name).ok_or_else(|| {
        ApiError::NotFound(
            tr!(
                "no webhook source `{name}` is configured",
                "aucune source de webhook `{name}` n'est configurée"
            )
            .into(),
        )
    })
}

async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> ApiResult<web::BytesMut> {
    let too_large = || ApiError::PayloadTooLarge(KnownDetail::BodyTooLarge { limit }.into());
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::MalformedBody(
                tr!(
                    "cannot read the body: {e}",
                    "impossible de lire le corps{NBSP}: {e}"
                )
                .into(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Declares the documentation shape of one event type: the envelope every event has, with the
/// type's name and its `data`.
macro_rules! event_doc {
    ($(#[$doc:meta])* $name:ident, $type_pattern:literal, $data:ty) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The sender's event id, unique per source: 1–200 characters without control
            /// characters. A redelivery with the same id is answered as a duplicate.
            #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
            pub id: String,
            /// The event type.
            #[serde(rename = "type")]
            #[schema(pattern = $type_pattern)]
            pub kind: String,
            /// When it happened in the CRM (RFC 3339); events of one opportunity apply in this
            /// order, an older one is ignored.
            #[schema(pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
            pub occurred_at: String,
            /// The event's fields, named as in the CSV import or as the source's mapping renames
            /// them (shown here without a mapping).
            pub data: $data,
        }
    };
}

event_doc!(
    /// `opportunity.upserted`: create or replace an opportunity.
    UpsertedEvent, "^opportunity\\.upserted$", crate::api::opportunities::OpportunityBody
);
event_doc!(
    /// `opportunity.closed`: close a stored opportunity, merging `data` onto it.
    ClosedEvent, "^opportunity\\.closed$", ClosedData
);
event_doc!(
    /// `opportunity.deleted`: delete an opportunity and its activities.
    DeletedEvent, "^opportunity\\.deleted$", DeletedData
);
event_doc!(
    /// `activity.logged`: attach an activity to a stored opportunity.
    ActivityLoggedEvent, "^activity\\.logged$", ActivityData
);

/// `data` of `opportunity.closed`: the outcome, and any other opportunity field to change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClosedData {
    /// The opportunity's CRM id.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_id: String,
    /// won or lost.
    #[schema(pattern = "^(won|lost)$")]
    pub status: String,
    /// RFC 3339 or YYYY-MM-DD, not before the deal's `created_at`.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub closed_at: String,
}

/// `data` of `opportunity.deleted`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletedData {
    /// The opportunity's CRM id.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_id: String,
}

/// `data` of `activity.logged`: the activity, and the opportunity it belongs to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityData {
    /// The opportunity's CRM id.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub opportunity_id: String,
    /// The CRM's activity id (makes repeated deliveries harmless).
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub id: Option<String>,
    /// email, call, meeting, demo or other.
    pub kind: crate::domain::ActivityKind,
    /// inbound (prospect → rep) or outbound.
    pub direction: crate::domain::ActivityDirection,
    /// RFC 3339 or YYYY-MM-DD, in the years 1900–2200.
    #[schema(
        pattern = "^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub occurred_at: String,
}

/// One CRM event (documentation shape): `{id, type, occurred_at, data}`, `data` per type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a documentation shape, never built")]
pub enum WebhookEvent {
    /// Create or replace.
    Upserted(UpsertedEvent),
    /// Close.
    Closed(ClosedEvent),
    /// Delete.
    Deleted(DeletedEvent),
    /// Attach an activity.
    ActivityLogged(ActivityLoggedEvent),
}

/// A batch of events, applied in order in one transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBatch {
    /// 1 to 1,000 events (more: 413).
    #[schema(max_items = 1000)]
    pub events: Vec<WebhookEvent>,
}

/// The body of `POST /v1/webhooks/{source}`: one event or a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a documentation shape, never built")]
pub enum WebhookDelivery {
    /// One event, answered with its outcome.
    One(WebhookEvent),
    /// A batch, answered with every outcome.
    Batch(WebhookBatch),
}

/// One event's outcome as answered (documentation shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOutcomeDoc {
    /// The event id (absent when it could not be read).
    pub id: Option<String>,
    /// The event type as sent.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// applied, duplicate, ignored or rejected (a duplicate carries the original's).
    #[schema(pattern = "^(applied|duplicate|ignored|rejected)$")]
    pub status: String,
    /// The opportunity concerned.
    pub external_id: Option<String>,
    /// What the event did (`created`, `updated`, `deleted`, `closed`, `activity_added`…).
    pub result: Option<String>,
    /// Why it was rejected, ignored or a duplicate.
    pub reason: Option<String>,
    /// The field errors of a rejected event.
    pub errors: Option<Vec<crate::domain::FieldError>>,
    /// True for a redelivery.
    pub duplicate: Option<bool>,
    /// The opportunity's fresh score (opportunity events, unless `score=false`).
    #[schema(value_type = Option<Object>)]
    pub score: Option<Value>,
    /// `scored`, or why no score was written.
    pub scoring: Option<String>,
    /// Why scoring was skipped.
    pub scoring_reason: Option<String>,
}

/// The 200 answer: one event's outcome, or a batch with no rejected event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReceiveAnswer {
    /// A single event.
    One(EventOutcomeDoc),
    /// A batch.
    Batch(BatchOutcome),
}

/// A delivery's own problems: a missing, malformed, wrong or stale signature (401), a body that
/// is not JSON (400), over the byte limit or with more than 1,000 events (413), a single event
/// that is invalid (422).
const DELIVERY: &[Code] = &[
    Code::Unauthorized,
    Code::MalformedBody,
    Code::PayloadTooLarge,
    Code::Validation,
];
problems!(ReceiveProblems: DATABASE, QUERY, NOT_FOUND, DELIVERY, GROUP_COMMIT);
problems!(ListProblems: AUTH, QUERY, NOT_FOUND);
// An outbox id that is not a number is a 400 like a bad query parameter.
problems!(RetryProblems: AUTH, QUERY, NOT_FOUND, CONFLICT);

/// Receives one signed event or a batch (`{"events": [...]}`, up to 1,000, applied in order).
/// 2xx only after the commit. A single event answers 200 with its outcome (422 when invalid); a
/// batch answers 200 when no event was rejected, 207 when some were, listing every outcome.
#[utoipa::path(post, path = "/v1/webhooks/{source}", tag = "webhooks",
    params(("source" = String, Path, description = "configured source name"), ReceiveQuery,
        ("Dealscore-Signature" = String, Header,
            description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")> (several v1= during a secret rotation); t within DEALSCORE_WEBHOOK_TOLERANCE_SECS of now")),
    request_body(content = WebhookDelivery,
        description = "an event {id, type, occurred_at, data} or {\"events\": [...]}, signed as sent (docs/webhooks.md)"),
    responses(
        (status = 200, description = "event outcome (or batch without rejections)", body = ReceiveAnswer),
        (status = 207, description = "batch with at least one rejected event", body = BatchOutcome),
        ReceiveProblems))]
#[post("/webhooks/{source}")]
#[expect(clippy::too_many_arguments, reason = "actix extractors")]
pub async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReceiveQuery>,
    payload: web::Payload,
    db: web::Data<Db>,
    queue: web::Data<DeliveryQueue>,
    sources: web::Data<Sources>,
    metrics: web::Data<Arc<Metrics>>,
    settings: web::Data<Settings>,
    model: web::Data<crate::serving::ActiveModel>,
) -> ApiResult<HttpResponse> {
    let name = path.into_inner();
    let source = source_or_404(&sources, &name)?;
    let body = read_body(&req, payload, settings.max_body_bytes).await?;
    let header = req
        .headers()
        .get(signature::HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let now = chrono::Utc::now().timestamp();
    // The signature is checked on the raw bytes before anything reads them as JSON.
    if let Err(e) = signature::verify(header, &body, &source.secrets, now, sources.tolerance_secs) {
        let reason = e.to_string();
        let record = EventRecord {
            source: &source.name,
            status: EventStatus::Rejected.as_str(),
            reason: Some(&reason),
            ..EventRecord::default()
        };
        event_store::record(&db, &record).await?;
        metrics.webhook_event(&source.name, EventStatus::Rejected.as_str());
        return Err(ApiError::Unauthorized(e.localized().into()));
    }
    let delivery = parse_delivery(&body).map_err(delivery_error)?;
    let lang = Lang::of_request(&req);
    let scoring = query.score.unwrap_or(true).then(|| EventScoring {
        model: model.get(),
        config: settings.scoring.clone(),
        writeback_min_points: settings.writeback_min_points,
        lang,
    });
    let outcomes = webhook::process(&queue, source, &delivery.events, scoring.as_ref())
        .await
        .map_err(delivery_error)?;
    for outcome in &outcomes {
        metrics.webhook_event(&source.name, outcome.status.as_str());
    }
    if !delivery.batch {
        if let Some(outcome) = outcomes.into_iter().next() {
            if outcome.status == EventStatus::Rejected {
                return Err(ApiError::Validation(outcome.errors));
            }
            return Ok(HttpResponse::Ok()
                .insert_header((CONTENT_LANGUAGE, lang.code()))
                .json(answer(outcome, lang)));
        }
        return Err(ApiError::Internal(anyhow::anyhow!(
            "a single-event delivery produced no outcome"
        )));
    }
    let mut summary = BatchSummary::default();
    let mut events = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome.status {
            EventStatus::Applied => summary.applied += 1,
            EventStatus::Duplicate => summary.duplicate += 1,
            EventStatus::Ignored => summary.ignored += 1,
            EventStatus::Rejected => summary.rejected += 1,
        }
        events.push(answer(outcome, lang));
    }
    let mut response = if summary.rejected > 0 {
        HttpResponse::build(actix_web::http::StatusCode::MULTI_STATUS)
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((CONTENT_LANGUAGE, lang.code()))
        .json(BatchOutcome { events, summary }))
}

/// An event's answer: its outcome (the field errors of a rejected event in `lang`; the stored
/// event keeps them in English) plus, for opportunity events, the fresh score.
fn answer(outcome: EventOutcome, lang: Lang) -> EventAnswer {
    // Outcome bodies are always objects (`OutcomeBody`, or a stored answer replayed).
    let mut fields = match outcome.body {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if lang != Lang::En && !outcome.errors.is_empty() {
        if let Ok(errors) = serde_json::to_value(outcome.errors.in_lang(lang).0) {
            fields.insert("errors".into(), errors);
        }
        let reason = outcome.errors.localized_summary();
        fields.insert("reason".into(), Value::String(reason.get(lang).to_owned()));
    }
    EventAnswer {
        fields,
        score: outcome.score,
    }
}

/// One event's answer as sent: the outcome's fields, then the score's (`score`, `scoring`,
/// `scoring_reason`). Serialised straight from the score result: a batch of 1,000 scored events
/// used to build, copy and merge a `serde_json::Value` tree per score first.
#[derive(Debug, Serialize)]
pub struct EventAnswer {
    #[serde(flatten)]
    fields: Map<String, Value>,
    #[serde(flatten)]
    score: Option<ScoreAnswer>,
}

fn delivery_error(e: DeliveryError) -> ApiError {
    match e {
        DeliveryError::Malformed(m) => ApiError::MalformedBody(m.into()),
        DeliveryError::TooManyEvents(n) => ApiError::PayloadTooLarge(webhook::too_many_events(n).into()),
        DeliveryError::Write(e) => ApiError::from(e.map_work(ApiError::from)),
    }
}

/// Query of the admin listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status: applied, duplicate, ignored or rejected for events; pending, delivered
    /// or dead for the outbox (empty: every status).
    #[param(pattern = "^(applied|duplicate|ignored|rejected|pending|delivered|dead)?$")]
    pub status: Option<String>,
    /// Most rows, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

fn checked(query: &ListQuery, allowed: &[&str]) -> ApiResult<(Option<String>, usize)> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) if allowed.contains(&s) => Some(s.to_owned()),
        Some(s) => {
            let allowed = allowed.join(", ");
            return Err(ApiError::BadQuery(
                tr!(
                    "status `{s}` is not one of {allowed}",
                    "le statut `{s}` n'est pas l'un de {allowed}"
                )
                .into(),
            ));
        }
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::limit_out_of_range(1000));
    }
    Ok((status, limit))
}

/// Recent events of a source, newest first, with reasons (admin).
#[utoipa::path(get, path = "/v1/webhooks/{source}/events", tag = "webhooks",
    params(("source" = String, Path, description = "source name"), ListQuery),
    responses((status = 200, body = Vec<StoredEvent>), ListProblems),
    security(("api_key" = [])))]
#[get("/webhooks/{source}/events")]
pub async fn list_events(
    _caller: AdminAccess,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
    db: web::Data<Db>,
    sources: web::Data<Sources>,
) -> ApiResult<HttpResponse> {
    let source = source_or_404(&sources, &path)?;
    let (status, limit) = checked(&query, &["applied", "duplicate", "ignored", "rejected"])?;
    let events = event_store::list(&db, &source.name, status.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(events))
}

/// Score write-backs of a source, newest first (admin).
#[utoipa::path(get, path = "/v1/webhooks/{source}/outbox", tag = "webhooks",
    params(("source" = String, Path, description = "source name"), ListQuery),
    responses((status = 200, body = Vec<OutboxEntry>), ListProblems),
    security(("api_key" = [])))]
#[get("/webhooks/{source}/outbox")]
pub async fn list_outbox(
    _caller: AdminAccess,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
    db: web::Data<Db>,
    sources: web::Data<Sources>,
) -> ApiResult<HttpResponse> {
    let source = source_or_404(&sources, &path)?;
    let (status, limit) = checked(&query, &["pending", "delivered", "dead"])?;
    let entries = outbox::list(&db, &source.name, status.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(entries))
}

/// Makes a dead or pending write-back due now, with a fresh attempt budget (admin).
#[utoipa::path(post, path = "/v1/webhooks/{source}/outbox/{id}/retry", tag = "webhooks",
    params(("source" = String, Path, description = "source name"), ("id" = i64, Path, description = "outbox id")),
    responses((status = 200, body = OutboxEntry), RetryProblems),
    security(("api_key" = [])))]
#[post("/webhooks/{source}/outbox/{id}/retry")]
pub async fn retry(
    _caller: AdminAccess,
    path: web::Path<(String, i64)>,
    db: web::Data<Db>,
    sources: web::Data<Sources>,
) -> ApiResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let source = source_or_404(&sources, &name)?;
    match outbox::retry_now(&db, &source.name, id).await? {
        RetryResult::Scheduled(entry) => Ok(HttpResponse::Ok().json(entry)),
        RetryResult::NotFound => Err(ApiError::NotFound(
            tr!(
                "no write-back {id} for source `{name}`",
                "aucun renvoi {id} pour la source `{name}`"
            )
            .into(),
        )),
        RetryResult::AlreadyDelivered => Err(ApiError::Conflict(
            tr!(
                "write-back {id} was already delivered",
                "le renvoi {id} a déjà été livré"
            )
            .into(),
        )),
    }
}
