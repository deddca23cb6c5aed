//! Sign-in with an API key, sign-out, and the home redirect.

use std::time::Instant;

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::CsrfForm;
use crate::config::Settings;
use crate::i18n::Lang;
use crate::store::Db;
use crate::web::error::PageError;
use crate::web::session::{self, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::web::text::Text;
use crate::web::throttle::SignInThrottle;
use crate::web::{language_links, render, see_other};

/// Where sign-in goes when `next` is absent or refused.
const DEFAULT_NEXT: &str = "/deals";

/// Only same-origin paths are followed after sign-in (no open redirect to another site).
///
/// Browsers resolve a `Location` leniently: they drop TAB, CR and LF anywhere in it, read `\`
/// as `/`, and take `//host` as another site, so `/<TAB>/evil.example` leads off-site. A path is
/// followed only when it starts with exactly one `/` and every character is visible ASCII: no
/// control character, space or backslash can be reinterpreted, and the `Location` header can
/// always be built (a CR or LF cannot be in a header, and failing to build it is a 500). Paths
/// the server itself sends here are percent-encoded already, so nothing legitimate is refused.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_string(),
        _ => DEFAULT_NEXT.to_string(),
    }
}

fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage {
    t: Text,
    csrf: String,
    next: String,
    error: Option<&'static str>,
    languages: Vec<(&'static str, &'static str, String, bool)>,
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_page(
    req: &HttpRequest,
    next: String,
    error: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of_request(req);
    let csrf = session::random_token(16);
    let page = LoginPage {
        t: Text(lang),
        csrf: csrf.clone(),
        next,
        error: error.map(|key| Text(lang).get(key)),
        languages: language_links(req, lang),
    };
    let mut response = render(req, lang, &page)?;
    response
        .add_cookie(&session::cookie(
            req,
            LOGIN_CSRF_COOKIE,
            csrf,
            CookieDuration::hours(1),
        ))
        .map_err(|e| PageError::internal(lang, e))?;
    if error.is_some() {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

/// `GET /`: the deals page, or sign-in.
pub async fn home(req: HttpRequest) -> HttpResponse {
    match req.cookie(SESSION_COOKIE) {
        Some(_) => see_other("/deals"),
        None => see_other("/login"),
    }
}

/// `GET /login`.
pub async fn login_form(req: HttpRequest, query: web::Query<LoginQuery>) -> Result<HttpResponse, PageError> {
    login_page(&req, safe_next(query.next.as_deref()), None)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: a valid key opens a session and goes on to `next`.
pub async fn login(
    req: HttpRequest,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    throttle: web::Data<SignInThrottle>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of_request(&req);
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let expected = req.cookie(LOGIN_CSRF_COOKIE);
    if !expected.is_some_and(|c| session::same_token(c.value(), &form.csrf)) {
        return login_page(&req, next, Some("login.expired"));
    }
    if form.api_key.trim().is_empty() {
        return login_page(&req, next, Some("login.missing"));
    }
    let address = req.peer_addr().map(|a| a.ip());
    let now = Instant::now();
    if let Some(wait) = address.and_then(|a| throttle.refused(a, now)) {
        let mut response = login_page(&req, next, Some("login.throttled"))?;
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return Ok(response);
    }
    match session::sign_in(&db, &req, &form.api_key, settings.session_minutes, lang).await? {
        Ok(cookie) => {
            if let Some(address) = address {
                throttle.succeeded(address);
            }
            let mut response = see_other(&next);
            let gone = session::expired_cookie(&req, LOGIN_CSRF_COOKIE);
            for c in [cookie, gone] {
                response
                    .add_cookie(&c)
                    .map_err(|e| PageError::internal(lang, e))?;
            }
            Ok(response)
        }
        Err(session::SignInRefused::UnknownKey) => {
            if let Some(address) = address {
                tracing::warn!(%address, "web sign-in with an unknown or revoked key");
                throttle.failed(address, now);
            }
            login_page(&req, next, Some("login.unknown"))
        }
    }
}

/// `POST /logout`: ends the session (CSRF-checked so another site cannot sign you out).
pub async fn logout(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(&form.csrf)?;
    session::sign_out(&db, &req, viewer.lang).await?;
    let mut response = see_other("/login");
    response
        .add_cookie(&session::expired_cookie(&req, SESSION_COOKIE))
        .map_err(|e| PageError::internal(viewer.lang, e))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/deals/42?lang=fr")), "/deals/42?lang=fr");
        assert_eq!(safe_next(Some("//evil.example/")), "/deals");
        assert_eq!(safe_next(Some("https://evil.example/")), "/deals");
        assert_eq!(safe_next(Some("/\\evil.example")), "/deals");
        assert_eq!(safe_next(None), "/deals");
    }

    #[test]
    fn paths_a_browser_would_read_as_another_site_fall_back_to_the_deals() {
        for next in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\u{b}/evil.example",
            "/deals\r\nSet-Cookie: x=1",
            "/\u{7f}/evil.example",
            "/\u{85}/evil.example",
            "/ /evil.example",
            "\t//evil.example",
            "/\\/evil.example",
            "/deals\\..\\",
            "/ü",
            "",
            "deals",
            "javascript:alert(1)",
            "https://evil.example/",
        ] {
            assert_eq!(safe_next(Some(next)), "/deals", "{next:?}");
        }
        assert_eq!(safe_next(Some("/")), "/");
        assert_eq!(
            safe_next(Some("/deals?owner=Zo%C3%A9&grade=A")),
            "/deals?owner=Zo%C3%A9&grade=A"
        );
        assert_eq!(
            safe_next(Some("/models/compare?a=v1&b=v2")),
            "/models/compare?a=v1&b=v2"
        );
    }
}
