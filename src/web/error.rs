//! Errors of the web UI: an HTML page in the reader's language, or a redirect to sign in.

use actix_web::error::{QueryPayloadError, UrlencodedError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::text::Text;
use crate::error::ApiError;
use crate::i18n::format::NNBSP;
use crate::i18n::Lang;
use crate::tr;

/// What went wrong while building a page.
#[derive(Debug)]
pub enum PageErrorKind {
    /// No live session: go to the sign-in page, then come back to `next`.
    SignIn {
        /// Path (and query) to return to.
        next: String,
    },
    /// The session's role is too low for this page.
    Forbidden,
    /// The key signed in is a rep or manager key tied to no owner (what to do about it).
    KeyWithoutOwner(String),
    /// Nothing at this address.
    NotFound(String),
    /// The query or form is invalid (what to fix).
    BadInput(String),
    /// A form came without the session's CSRF token.
    BadCsrf,
    /// Something the service depends on is not ready (no model yet, database busy).
    Unavailable(String),
    /// Anything unexpected; logged, never shown.
    Internal(anyhow::Error),
}

/// A page error with the language to explain it in.
#[derive(Debug)]
pub struct PageError {
    /// Language of the error page.
    pub lang: Lang,
    /// What happened.
    pub kind: PageErrorKind,
}

impl PageError {
    /// An error in `lang`.
    pub fn new(lang: Lang, kind: PageErrorKind) -> Self {
        PageError { lang, kind }
    }

    /// An unexpected failure: logged with its cause, shown as "something went wrong".
    pub fn internal(lang: Lang, cause: impl Into<anyhow::Error>) -> Self {
        PageError::new(lang, PageErrorKind::Internal(cause.into()))
    }

    /// A library or store failure, shown the way the API would classify it.
    pub fn from_api(lang: Lang, error: ApiError) -> Self {
        // The same words the API would answer in this language.
        let problem = error.problem_in(lang);
        let detail = || {
            if problem.errors.is_empty() {
                problem.detail.clone()
            } else {
                problem
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let kind = match error {
            ApiError::NotFound(_) | ApiError::NoRoute { .. } => PageErrorKind::NotFound(detail()),
            ApiError::Unavailable { .. } => PageErrorKind::Unavailable(detail()),
            ApiError::Forbidden(_) => PageErrorKind::Forbidden,
            ApiError::Internal(e) => PageErrorKind::Internal(e),
            _ => PageErrorKind::BadInput(detail()),
        };
        PageError { lang, kind }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            PageErrorKind::SignIn { .. } => write!(f, "sign-in required"),
            PageErrorKind::Forbidden => write!(f, "role too low"),
            PageErrorKind::NotFound(d)
            | PageErrorKind::BadInput(d)
            | PageErrorKind::Unavailable(d)
            | PageErrorKind::KeyWithoutOwner(d) => {
                write!(f, "{d}")
            }
            PageErrorKind::BadCsrf => write!(f, "missing or stale CSRF token"),
            PageErrorKind::Internal(e) => write!(f, "{e}"),
        }
    }
}

/// `QueryConfig` error handler of the pages: a 400 page saying what is wrong with the query.
pub fn bad_query(err: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let lang = Lang::of_request(req);
    let detail = tr!(
        "invalid query string: {err}",
        "paramètres de requête invalides{NNBSP}: {err}"
    );
    PageError::new(lang, PageErrorKind::BadInput(detail.get(lang).to_owned())).into()
}

/// `FormConfig` error handler (only the pages read forms). Every form of the UI changes state and
/// carries a CSRF token, so a POST that sends no form at all (no body, or not
/// `application/x-www-form-urlencoded`) carries no token: it is the CSRF refusal, a 403, like a
/// form whose token is missing or wrong. A form that is sent but cannot be read is a 400.
pub fn bad_form(err: UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    let lang = Lang::of_request(req);
    if matches!(err, UrlencodedError::ContentType) {
        return PageError::new(lang, PageErrorKind::BadCsrf).into();
    }
    let detail = tr!(
        "the form cannot be read: {err}",
        "le formulaire est illisible{NNBSP}: {err}"
    );
    PageError::new(lang, PageErrorKind::BadInput(detail.get(lang).to_owned())).into()
}

/// Converts library results into page results in one call.
pub trait OrPage<T> {
    /// The error as a page error in `lang`.
    fn or_page(self, lang: Lang) -> Result<T, PageError>;
}

impl<T, E: Into<ApiError>> OrPage<T> for Result<T, E> {
    fn or_page(self, lang: Lang) -> Result<T, PageError> {
        self.map_err(|e| PageError::from_api(lang, e.into()))
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    t: Text,
    title: &'a str,
    detail: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            PageErrorKind::SignIn { .. } => StatusCode::SEE_OTHER,
            PageErrorKind::Forbidden | PageErrorKind::BadCsrf | PageErrorKind::KeyWithoutOwner(_) => {
                StatusCode::FORBIDDEN
            }
            PageErrorKind::NotFound(_) => StatusCode::NOT_FOUND,
            PageErrorKind::BadInput(_) => StatusCode::BAD_REQUEST,
            PageErrorKind::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let t = Text(self.lang);
        if let PageErrorKind::SignIn { next } = &self.kind {
            let target = format!("/login?next={}", super::url_encode(next));
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, target))
                .finish();
        }
        let (title, detail) = match &self.kind {
            PageErrorKind::Forbidden => (
                t.get("error.forbidden"),
                t.get("error.forbidden_detail").to_string(),
            ),
            PageErrorKind::BadCsrf => (t.get("error.csrf"), t.get("error.csrf_detail").to_string()),
            PageErrorKind::KeyWithoutOwner(d) => (t.get("error.forbidden"), d.clone()),
            PageErrorKind::NotFound(d) => (t.get("error.not_found"), d.clone()),
            PageErrorKind::BadInput(d) => (t.get("error.bad_input"), d.clone()),
            PageErrorKind::Unavailable(d) => (t.get("error.unavailable"), d.clone()),
            PageErrorKind::Internal(e) => {
                tracing::error!(error = ?e, "web page failed");
                (
                    t.get("error.internal"),
                    t.get("error.internal_detail").to_string(),
                )
            }
            PageErrorKind::SignIn { .. } => ("", String::new()),
        };
        let page = ErrorPage {
            t,
            title,
            detail: &detail,
        };
        match page.render() {
            Ok(html) => HttpResponse::build(self.status_code())
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                HttpResponse::build(self.status_code()).body(detail)
            }
        }
    }
}
