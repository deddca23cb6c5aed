//! The one error type at the HTTP boundary, rendered as RFC 9457 problem+json.
//!
//! Every failure a client can see has a stable machine-readable `type` (a URI under
//! `https://dealscore.dev/problems/`), a `title`, the HTTP `status` and a `detail`; validation
//! failures add an `errors` list of `{field, message}`. Internal failures become a 500 whose body
//! says nothing internal while the log keeps the whole cause chain.
//!
//! Problems are written in the request's language ([`Lang::of_request`]): `error_response` has no
//! request, so it renders English and the [`localize_problems`] middleware re-renders the body of
//! a problem in the request's language from the same error. `type` and field names never change.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::{FieldError, ValidationErrors};
use crate::i18n::format::{self, NBSP, NNBSP};
use crate::i18n::{Lang, Localized};
use crate::store::group_commit::GroupCommitError;

/// Prefix of every problem `type`.
pub const PROBLEM_BASE: &str = "https://dealscore.dev/problems/";

/// Declares [`Code`] and its table in one place, so a code cannot exist without its slug, status,
/// titles and retry hint, and [`Code::ALL`] cannot miss one.
macro_rules! error_codes {
    ($(
        $(#[$doc:meta])*
        $code:ident => $slug:literal, $status:ident, $en:literal, $fr:literal, $retry:expr;
    )*) => {
        /// Every kind of problem a client can be answered, like meilisearch's error codes: the
        /// slug (the end of the problem `type`, stable and safe to match on), the HTTP status, the
        /// title in each language and whether retrying as is can succeed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $code,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$code),*];

            /// The stable slug, last segment of the problem `type`.
            pub const fn slug(self) -> &'static str {
                match self {
                    $(Code::$code => $slug,)*
                }
            }

            /// The HTTP status answered with it.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Code::$code => StatusCode::$status,)*
                }
            }

            /// The problem's `title` in `lang`.
            pub const fn title(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Code::$code, Lang::En) => $en,
                        (Code::$code, Lang::Fr) => $fr,
                    )*
                }
            }

            /// Seconds after which the same request can succeed (`Retry-After`), for passing
            /// conditions only.
            pub const fn retry_after(self) -> Option<u32> {
                match self {
                    $(Code::$code => $retry,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON, or not the expected JSON shape.
    MalformedBody => "malformed-body", BAD_REQUEST,
        "Malformed request body", "Corps de requête mal formé", None;
    /// A query parameter is invalid.
    InvalidQuery => "invalid-query", BAD_REQUEST,
        "Invalid query parameter", "Paramètre de requête invalide", None;
    /// Well-formed input with invalid fields.
    Validation => "validation", UNPROCESSABLE_ENTITY,
        "Invalid input", "Données invalides", None;
    /// No or unknown credentials.
    Unauthorized => "unauthorized", UNAUTHORIZED,
        "Authentication required", "Authentification requise", None;
    /// Valid credentials whose role is too low.
    Forbidden => "forbidden", FORBIDDEN,
        "Insufficient role", "Rôle insuffisant", None;
    /// A rep or manager key tied to no owner and no region: refused rather than shown every deal
    /// until it is replaced by a key with an owner.
    KeyWithoutOwner => "key-without-owner", FORBIDDEN,
        "Key without owner", "Clé sans propriétaire", None;
    /// No such resource, or no such route.
    NotFound => "not-found", NOT_FOUND,
        "Not found", "Introuvable", None;
    /// The request conflicts with the current state.
    Conflict => "conflict", CONFLICT,
        "Conflict", "Conflit", None;
    /// The insight needs a setting that is not configured (the detail names it).
    NotConfigured => "not-configured", CONFLICT,
        "Not configured", "Non configuré", None;
    /// The body is over the byte limit.
    PayloadTooLarge => "payload-too-large", PAYLOAD_TOO_LARGE,
        "Payload too large", "Corps de requête trop volumineux", None;
    /// The body has a media type the endpoint does not read.
    UnsupportedMediaType => "unsupported-media-type", UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type", "Type de média non pris en charge", None;
    /// Scoring before any model was activated: lasts until someone trains or activates one, so
    /// no retry hint.
    NoActiveModel => "no-active-model", SERVICE_UNAVAILABLE,
        "Service unavailable", "Service indisponible", None;
    /// The registry's active version failed verification (its artifact does not match its
    /// checksums) and no model is serving: lasts until a valid version is activated.
    ActiveModelInvalid => "active-model-invalid", SERVICE_UNAVAILABLE,
        "Active model refused", "Modèle actif refusé", None;
    /// Other writers held the database too long; the same request soon succeeds.
    DatabaseBusy => "database-busy", SERVICE_UNAVAILABLE,
        "Service unavailable", "Service indisponible", Some(1);
    /// The writer stopped because the server is shutting down; another instance (or this one,
    /// restarted) takes the retry.
    ShuttingDown => "shutting-down", SERVICE_UNAVAILABLE,
        "Service unavailable", "Service indisponible", Some(1);
    /// The readiness probe found the database unreachable.
    DatabaseUnavailable => "database-unavailable", SERVICE_UNAVAILABLE,
        "Service unavailable", "Service indisponible", None;
    /// Anything unexpected; the cause is logged, never shown.
    Internal => "internal", INTERNAL_SERVER_ERROR,
        "Internal error", "Erreur interne", None;
}

impl Code {
    /// The full problem `type` URI.
    pub fn problem_type(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }
}

/// A problem's `detail`: one of the fixed messages, a one-off message written in every language,
/// or text a lower layer built (answered as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// A fixed message.
    Known(KnownDetail),
    /// A one-off message ([`crate::tr!`]).
    Localized(Localized),
    /// Text answered as written.
    Text(String),
}

/// The fixed problem details, with their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownDetail {
    /// No `Authorization` header.
    MissingCredentials,
    /// An `Authorization` header that is not `Bearer <key>`.
    NotBearer,
    /// A key that does not exist or was revoked.
    UnknownKey,
    /// A valid key whose role is below the action's.
    RoleTooLow {
        /// Role the action needs.
        needed: &'static str,
        /// Key name.
        key: String,
        /// The key's role.
        has: &'static str,
    },
    /// A rep or manager key tied to no owner and no region (created before keys had owners).
    KeyWithoutOwner {
        /// Key name.
        key: String,
        /// The key's role.
        role: &'static str,
    },
    /// Scoring before any model was activated.
    NoActiveModel,
    /// The connection pool timed out, or other writers held the lock too long.
    DatabaseBusy,
    /// The writer stopped because the server is shutting down.
    ShuttingDown,
    /// A body over the byte limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A JSON endpoint got another media type.
    NotJson,
}

impl KnownDetail {
    /// The message in `lang`.
    pub fn text(&self, lang: Lang) -> String {
        match (self, lang) {
            (KnownDetail::MissingCredentials, Lang::En) => "send `Authorization: Bearer <api key>`".into(),
            (KnownDetail::MissingCredentials, Lang::Fr) => {
                "envoyez `Authorization: Bearer <clé d'API>`".into()
            }
            (KnownDetail::NotBearer, Lang::En) => {
                "the Authorization header must be `Bearer <api key>`".into()
            }
            (KnownDetail::NotBearer, Lang::Fr) => {
                "l'en-tête Authorization doit être de la forme `Bearer <clé d'API>`".into()
            }
            (KnownDetail::UnknownKey, Lang::En) => "unknown or revoked API key".into(),
            (KnownDetail::UnknownKey, Lang::Fr) => "clé d'API inconnue ou révoquée".into(),
            (KnownDetail::RoleTooLow { needed, key, has }, Lang::En) => {
                format!("this action needs the `{needed}` role; key `{key}` has `{has}`")
            }
            (KnownDetail::RoleTooLow { needed, key, has }, Lang::Fr) => {
                format!("cette action demande le rôle `{needed}`{NNBSP}; la clé `{key}` a le rôle `{has}`")
            }
            (KnownDetail::KeyWithoutOwner { key, role }, Lang::En) => format!(
                "key `{key}` has the `{role}` role but no owner: {role} keys only see their own deals \
                 since keys have owners. Ask an admin to revoke it and create one with \
                 `dealscore keys create --role rep --owner NAME` (or `--role manager --owners a,b` / \
                 `--region NAME`); see the Security section of docs/operations.md"
            ),
            (KnownDetail::KeyWithoutOwner { key, role }, Lang::Fr) => format!(
                "la clé `{key}` a le rôle `{role}` mais aucun propriétaire{NNBSP}: une clé {role} ne voit \
                 que ses propres affaires depuis que les clés ont un propriétaire. Demandez à un \
                 administrateur de la révoquer et d'en créer une avec \
                 `dealscore keys create --role rep --owner NOM` (ou `--role manager --owners a,b` / \
                 `--region NOM`){NNBSP}; voir la section Sécurité de docs/operations.md"
            ),
            (KnownDetail::NoActiveModel, Lang::En) => {
                "no model is active yet: train one with `dealscore-train` (or `dealscore demo`), \
                 or activate a version with POST /v1/models/{version}/activate"
                    .into()
            }
            (KnownDetail::NoActiveModel, Lang::Fr) => format!(
                "aucun modèle n'est encore actif{NNBSP}: entraînez-en un avec `dealscore-train` (ou \
                 `dealscore demo`), ou activez une version avec POST /v1/models/{{version}}/activate"
            ),
            (KnownDetail::DatabaseBusy, Lang::En) => {
                "the database did not answer in time; retry shortly".into()
            }
            (KnownDetail::DatabaseBusy, Lang::Fr) => {
                format!("la base de données n'a pas répondu à temps{NNBSP}; réessayez dans un instant")
            }
            (KnownDetail::ShuttingDown, Lang::En) => "the server is shutting down; retry shortly".into(),
            (KnownDetail::ShuttingDown, Lang::Fr) => {
                format!("le serveur est en cours d'arrêt{NNBSP}; réessayez dans un instant")
            }
            (KnownDetail::BodyTooLarge { limit }, Lang::En) => {
                format!("the body is larger than the {limit}-byte limit")
            }
            (KnownDetail::BodyTooLarge { limit }, Lang::Fr) => format!(
                "le corps de la requête dépasse la limite de {}{NBSP}octets",
                format::number(*limit as f64, 0, Lang::Fr)
            ),
            (KnownDetail::NotJson, Lang::En) => {
                "send the body as JSON with `Content-Type: application/json`".into()
            }
            (KnownDetail::NotJson, Lang::Fr) => {
                "envoyez le corps en JSON avec `Content-Type: application/json`".into()
            }
        }
    }
}

impl Detail {
    /// The detail in `lang` (free text stays as written).
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Detail::Known(known) => known.text(lang),
            Detail::Localized(localized) => localized.get(lang).to_owned(),
            Detail::Text(text) => text.clone(),
        }
    }
}

/// English, as logged and as `to_string()` gives it.
impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Known(known) => f.write_str(&known.text(Lang::En)),
            Detail::Localized(localized) => f.write_str(localized.get(Lang::En)),
            Detail::Text(text) => f.write_str(text),
        }
    }
}

impl From<KnownDetail> for Detail {
    fn from(known: KnownDetail) -> Self {
        Detail::Known(known)
    }
}

impl From<Localized> for Detail {
    fn from(localized: Localized) -> Self {
        Detail::Localized(localized)
    }
}

impl From<String> for Detail {
    fn from(text: String) -> Self {
        Detail::Text(text)
    }
}

impl From<&str> for Detail {
    fn from(text: &str) -> Self {
        Detail::Text(text.to_owned())
    }
}

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the expected JSON shape (400).
    #[error("{0}")]
    MalformedBody(Detail),
    /// A query parameter is invalid (400).
    #[error("{0}")]
    BadQuery(Detail),
    /// Input is well-formed but invalid (422), with every field problem.
    #[error("invalid input: {0}")]
    Validation(ValidationErrors),
    /// No or unknown credentials (401).
    #[error("{0}")]
    Unauthorized(Detail),
    /// Credentials valid but the role is too low (403).
    #[error("{0}")]
    Forbidden(Detail),
    /// The resource does not exist (404).
    #[error("{0}")]
    NotFound(Detail),
    /// No route matches the request (404, `type` not-found like [`ApiError::NotFound`]).
    #[error("no route for {method} {path}")]
    NoRoute {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The request conflicts with current state (409).
    #[error("{0}")]
    Conflict(Detail),
    /// The request needs a setting the server does not have (409 `not-configured`); the detail
    /// says which and how to set it.
    #[error("{0}")]
    NotConfigured(Detail),
    /// The body is larger than allowed (413).
    #[error("{0}")]
    PayloadTooLarge(Detail),
    /// The body has a media type we do not read (415).
    #[error("{0}")]
    UnsupportedMediaType(Detail),
    /// A dependency (model, database) is not available right now (503).
    #[error("{detail}")]
    Unavailable {
        /// Which dependency, and whether retrying helps (a 503 code of the table).
        code: Code,
        /// What to do about it.
        detail: Detail,
    },
    /// Anything unexpected (500); the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_contention(&e) {
            return ApiError::database_busy();
        }
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<GroupCommitError<ApiError>> for ApiError {
    fn from(e: GroupCommitError<ApiError>) -> Self {
        match e {
            GroupCommitError::Work(e) => e,
            GroupCommitError::Db(e) if crate::store::is_contention(&e) => ApiError::database_busy(),
            GroupCommitError::Db(e) => ApiError::Internal(anyhow::anyhow!("{e}")),
            GroupCommitError::Stopped => ApiError::Unavailable {
                code: Code::ShuttingDown,
                detail: KnownDetail::ShuttingDown.into(),
            },
        }
    }
}

impl ApiError {
    /// 503 `database-busy`: other writers held the database too long; retrying succeeds.
    fn database_busy() -> ApiError {
        ApiError::Unavailable {
            code: Code::DatabaseBusy,
            detail: KnownDetail::DatabaseBusy.into(),
        }
    }

    /// 503 `active-model-invalid`: the registry's active `version` failed verification.
    pub fn active_model_invalid(version: &str) -> ApiError {
        ApiError::Unavailable {
            code: Code::ActiveModelInvalid,
            detail: crate::tr!(
                "the active model `{version}` is refused: its artifact does not match the checksum recorded in the registry, so it may have been altered; activate a valid version with POST /v1/models/{{version}}/activate",
                "le modèle actif `{version}` est refusé{NNBSP}: son artefact ne correspond pas à la somme de contrôle enregistrée dans le registre et a pu être modifié{NNBSP}; activez une version valide avec POST /v1/models/{{version}}/activate"
            )
            .into(),
        }
    }

    /// 404 for an opportunity id that is not stored.
    pub fn no_opportunity(external_id: &str) -> ApiError {
        ApiError::NotFound(
            crate::tr!(
                "no opportunity `{external_id}`",
                "aucune opportunité `{external_id}`"
            )
            .into(),
        )
    }

    /// 404 for a model version that is not stored.
    pub fn no_model_version(version: &str) -> ApiError {
        ApiError::NotFound(
            crate::tr!(
                "no model version `{version}`",
                "aucune version de modèle `{version}`"
            )
            .into(),
        )
    }

    /// 400 for a `limit` query parameter outside `1..=max`.
    pub fn limit_out_of_range(max: usize) -> ApiError {
        ApiError::BadQuery(
            crate::tr!(
                "limit must be between 1 and {max}",
                "limit doit être compris entre 1 et {max}"
            )
            .into(),
        )
    }
}

/// RFC 9457 problem details body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI identifying the kind of problem (stable; safe to match on).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// Field-level problems (validation only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// This error's entry in the code table.
    pub fn code(&self) -> Code {
        match self {
            ApiError::MalformedBody(_) => Code::MalformedBody,
            ApiError::BadQuery(_) => Code::InvalidQuery,
            ApiError::Validation(_) => Code::Validation,
            ApiError::Unauthorized(_) => Code::Unauthorized,
            ApiError::Forbidden(Detail::Known(KnownDetail::KeyWithoutOwner { .. })) => Code::KeyWithoutOwner,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::NotFound(_) | ApiError::NoRoute { .. } => Code::NotFound,
            ApiError::Conflict(_) => Code::Conflict,
            ApiError::NotConfigured(_) => Code::NotConfigured,
            ApiError::PayloadTooLarge(_) => Code::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            ApiError::Unavailable { code, .. } => *code,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    fn detail(&self, lang: Lang) -> String {
        match (self, lang) {
            (ApiError::Internal(_), Lang::En) => "an unexpected error occurred; the request id in the \
                                                  X-Request-Id header identifies it in the server log"
                .to_string(),
            (ApiError::Internal(_), Lang::Fr) => format!(
                "une erreur inattendue s'est produite{NNBSP}; l'identifiant de requête de l'en-tête \
                 X-Request-Id permet de la retrouver dans le journal du serveur"
            ),
            (ApiError::Validation(errors), Lang::En) => format!("{} field(s) are invalid", errors.0.len()),
            (ApiError::Validation(errors), Lang::Fr) => match errors.0.len() {
                1 => "1 champ est invalide".to_string(),
                n => format!("{n} champs sont invalides"),
            },
            (ApiError::NoRoute { method, path }, Lang::Fr) => format!("aucune route pour {method} {path}"),
            (
                ApiError::MalformedBody(detail)
                | ApiError::BadQuery(detail)
                | ApiError::NotFound(detail)
                | ApiError::Conflict(detail)
                | ApiError::NotConfigured(detail)
                | ApiError::Unauthorized(detail)
                | ApiError::Forbidden(detail)
                | ApiError::PayloadTooLarge(detail)
                | ApiError::UnsupportedMediaType(detail)
                | ApiError::Unavailable { detail, .. },
                lang,
            ) => detail.text(lang),
            (ApiError::NoRoute { .. }, Lang::En) => self.to_string(),
        }
    }

    /// The problem body this error renders to, in English.
    pub fn problem(&self) -> Problem {
        self.problem_in(Lang::En)
    }

    /// The problem body this error renders to, in `lang`: `title`, `detail` and the field
    /// messages that have a translation; `type`, `status` and field names are the same in every
    /// language.
    pub fn problem_in(&self, lang: Lang) -> Problem {
        Problem {
            kind: self.code().problem_type(),
            title: self.code().title(lang).into(),
            status: self.status_code().as_u16(),
            detail: self.detail(lang),
            errors: match self {
                ApiError::Validation(errors) => errors.in_lang(lang).0,
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        // Passing conditions: a client that honours Retry-After comes back when it can succeed.
        if let Some(seconds) = self.code().retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.json(self.problem())
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The problem+json media type.
const PROBLEM_JSON: &str = "application/problem+json";

/// Middleware that writes problems in the request's language: every problem+json answer gets a
/// `Content-Language`, and when the language is not English its body is rendered again from the
/// [`ApiError`] the response carries. Status, headers and the error itself are kept, so logging
/// and metrics see the same response either way.
pub async fn localize_problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let lang = Lang::of_request(req.request());
    let mut response = next.call(req).await?.map_into_boxed_body();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !is_problem {
        return Ok(response);
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    if lang == Lang::En {
        return Ok(response);
    }
    let localized = response
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .and_then(|e| serde_json::to_vec(&e.problem_in(lang)).ok());
    Ok(match localized {
        Some(body) => response.map_body(|_, _| BoxBody::new(body)),
        None => response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[test]
    fn the_code_table_has_unique_slugs_and_every_title_in_both_languages() {
        let mut slugs = std::collections::HashSet::new();
        for &code in Code::ALL {
            let slug = code.slug();
            assert!(slugs.insert(slug), "slug `{slug}` is used twice");
            assert!(
                !slug.is_empty() && slug.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "slug `{slug}` is not lowercase words joined by dashes"
            );
            for lang in [Lang::En, Lang::Fr] {
                assert!(
                    !code.title(lang).trim().is_empty(),
                    "{code:?} has no {lang:?} title"
                );
            }
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code:?} answers a non-error status"
            );
            // Only an unavailable service has something to wait for.
            if code.retry_after().is_some() {
                assert_eq!(code.status(), StatusCode::SERVICE_UNAVAILABLE, "{code:?}");
            }
        }
    }

    #[actix_web::test]
    async fn passing_conditions_say_when_to_retry_and_lasting_ones_do_not() {
        let busy = ApiError::database_busy().error_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers().get("retry-after").unwrap(), "1");
        let no_model = ApiError::Unavailable {
            code: Code::NoActiveModel,
            detail: KnownDetail::NoActiveModel.into(),
        };
        let response = no_model.error_response();
        assert_eq!(response.status(), 503);
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(
            no_model.problem().kind,
            "https://dealscore.dev/problems/no-active-model"
        );
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string"));
        let response = err.error_response();
        assert_eq!(response.status(), 500);
        let body = to_bytes(response.into_body()).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("https://dealscore.dev/problems/internal"));
    }

    #[test]
    fn french_problems_translate_title_and_fixed_details_but_not_the_type() {
        let err = ApiError::Unauthorized(KnownDetail::UnknownKey.into());
        let (en, fr) = (err.problem_in(Lang::En), err.problem_in(Lang::Fr));
        assert_eq!(en.kind, fr.kind);
        assert_eq!(en.title, "Authentication required");
        assert_eq!(en.detail, "unknown or revoked API key");
        assert_eq!(fr.title, "Authentification requise");
        assert_eq!(fr.detail, "clé d'API inconnue ou révoquée");
        let too_large = ApiError::PayloadTooLarge(KnownDetail::BodyTooLarge { limit: 1_048_576 }.into());
        assert_eq!(
            too_large.problem_in(Lang::Fr).detail,
            "le corps de la requête dépasse la limite de 1\u{202F}048\u{202F}576\u{A0}octets"
        );
        assert_eq!(
            too_large.problem().detail,
            "the body is larger than the 1048576-byte limit"
        );
        let mut errors = ValidationErrors::default();
        errors.push_known("amount", crate::domain::FieldMessage::Negative);
        let fr = ApiError::from(errors).problem_in(Lang::Fr);
        assert_eq!(fr.detail, "1 champ est invalide");
        assert_eq!(fr.errors[0].field, "amount");
        assert_eq!(fr.errors[0].message, "doit être positif ou nul");
        // One-off messages carry their translation; text from a lower layer is answered as
        // written.
        let job = 3;
        let conflict =
            ApiError::Conflict(crate::tr!("job {job} is running", "la tâche {job} est en cours").into());
        assert_eq!(conflict.problem_in(Lang::Fr).detail, "la tâche 3 est en cours");
        assert_eq!(conflict.problem_in(Lang::En).detail, "job 3 is running");
        let raw = ApiError::MalformedBody("expected value at line 1 column 1".into()).problem_in(Lang::Fr);
        assert_eq!(
            (raw.title.as_str(), raw.detail.as_str()),
            ("Corps de requête mal formé", "expected value at line 1 column 1")
        );
    }

    #[actix_web::test]
    async fn the_middleware_rewords_problems_for_french_requests_only() {
        use actix_web::{test, web, App};
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(localize_problems))
                .route(
                    "/",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::Unauthorized(KnownDetail::NotBearer.into()))
                    }),
                ),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/?lang=fr")
            .insert_header(("Accept-Language", "en"))
            .to_request();
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers().get("content-language").unwrap(), "fr");
        assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["title"], "Authentification requise");
        assert_eq!(body["type"], "https://dealscore.dev/problems/unauthorized");
        let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.headers().get("content-language").unwrap(), "en");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["title"], "Authentication required");
    }

    #[actix_web::test]
    async fn validation_lists_fields() {
        let mut errors = ValidationErrors::default();
        errors.push("amount", "must be zero or more");
        let response = ApiError::from(errors).error_response();
        assert_eq!(response.status(), 422);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["errors"][0]["field"], "amount");
        assert_eq!(body["status"], 422);
    }
}
