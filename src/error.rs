//! The one error type at the HTTP boundary, rendered as RFC 9457 problem+json.
//!
//! Every failure a client can see has a stable machine-readable `type` (a URI under
//! `https://dealscore.dev/problems/`), a `title`, the HTTP `status` and a `detail`; validation
//! failures add an `errors` list of `{field, message}`. Internal failures become a 500 whose body
//! says nothing internal while the log keeps the whole cause chain.

use crate::store::group_commit::GroupCommitError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::{FieldError, ValidationErrors};

/// Prefix of every problem `type`.
pub const PROBLEM_BASE: &str = "https://dealscore.dev/problems/";

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the expected JSON shape (400).
    #[error("{0}")]
    MalformedBody(String),
    /// A query parameter is invalid (400).
    #[error("{0}")]
    BadQuery(String),
    /// Input is well-formed but invalid (422), with every field problem.
    #[error("invalid input: {0}")]
    Validation(ValidationErrors),
    /// No or unknown credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials valid but the role is too low (403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body has a media type we do not read (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A dependency (model, database) is not available right now (503).
    #[error("{detail}")]
    Unavailable {
        /// Stable problem code.
        code: &'static str,
        /// What to do about it.
        detail: String,
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
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return ApiError::Unavailable {
                code: "database-busy",
                detail: "the database did not answer in time; retry shortly".into(),
            };
        }
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<GroupCommitError<ApiError>> for ApiError {
    fn from(e: GroupCommitError<ApiError>) -> Self {
        match e {
            GroupCommitError::Work(e) => e,
            GroupCommitError::Db(e) if matches!(*e, sqlx::Error::PoolTimedOut) => ApiError::Unavailable {
                code: "database-busy",
                detail: "the database did not answer in time; retry shortly".into(),
            },
            GroupCommitError::Db(e) => ApiError::Internal(anyhow::anyhow!("{e}")),
            GroupCommitError::Stopped => ApiError::Unavailable {
                code: "shutting-down",
                detail: "the server is shutting down; retry shortly".into(),
            },
        }
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
    fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedBody(_) => ("malformed-body", "Malformed request body"),
            ApiError::BadQuery(_) => ("invalid-query", "Invalid query parameter"),
            ApiError::Validation(_) => ("validation", "Invalid input"),
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::Forbidden(_) => ("forbidden", "Insufficient role"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Unavailable { code, .. } => (code, "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem body this error renders to.
    pub fn problem(&self) -> Problem {
        let (code, title) = self.code_and_title();
        let detail = match self {
            ApiError::Internal(_) => {
                "an unexpected error occurred; the request id in the X-Request-Id header \
                                      identifies it in the server log"
                    .to_string()
            }
            ApiError::Validation(errors) => format!("{} field(s) are invalid", errors.0.len()),
            other => other.to_string(),
        };
        Problem {
            kind: format!("{PROBLEM_BASE}{code}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => errors.0.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedBody(_) | ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
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
        response.json(self.problem())
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

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
