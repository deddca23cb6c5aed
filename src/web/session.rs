//! Web UI sign-in: an API key buys an HttpOnly, SameSite=Strict session cookie; every form that
//! changes state carries the session's CSRF token.
//!
//! The cookie holds a random token; the database keeps its SHA-256 (see
//! `store::web_sessions`), so sessions survive restarts, are shared by every instance on one
//! PostgreSQL database, and end when their key is revoked.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::{OrPage, PageError, PageErrorKind};
use crate::auth::{effective_scope, hash_key, Role};
use crate::config::Settings;
use crate::domain::to_epoch_ms;
use crate::i18n::Lang;
use crate::store::scope::Scope;
use crate::store::{api_keys, web_sessions, Db};

/// Cookie carrying the session token.
pub const SESSION_COOKIE: &str = "dealscore_session";
/// Cookie carrying the sign-in form's CSRF token (there is no session yet to hold it).
pub const LOGIN_CSRF_COOKIE: &str = "dealscore_login_csrf";

/// A random token of `bytes` bytes, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal strings, compared in time independent of where they differ (CSRF tokens).
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether cookies must be `Secure`: configured so, or the request came over TLS.
fn secure(req: &HttpRequest) -> bool {
    let configured = req
        .app_data::<web::Data<Settings>>()
        .is_some_and(|s| s.secure_cookies);
    configured || req.connection_info().scheme() == "https"
}

/// A cookie with the UI's attributes: HttpOnly, SameSite=Strict, path `/`, Secure when due.
pub fn cookie(
    req: &HttpRequest,
    name: &'static str,
    value: String,
    max_age: CookieDuration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .max_age(max_age)
        .finish()
}

/// A cookie that deletes `name` in the browser.
pub fn expired_cookie(req: &HttpRequest, name: &'static str) -> Cookie<'static> {
    cookie(req, name, String::new(), CookieDuration::ZERO)
}

/// Why a sign-in was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInRefused {
    /// The key is unknown or revoked.
    UnknownKey,
}

/// Checks `api_key` and opens a session; returns the cookie to set.
pub async fn sign_in(
    db: &Db,
    req: &HttpRequest,
    api_key: &str,
    minutes: u64,
    lang: Lang,
) -> Result<Result<Cookie<'static>, SignInRefused>, PageError> {
    let key_hash = hash_key(api_key.trim());
    if api_keys::find_active(db, &key_hash)
        .await
        .or_page(lang)?
        .is_none()
    {
        return Ok(Err(SignInRefused::UnknownKey));
    }
    let token = random_token(32);
    let now = Utc::now();
    let minutes = minutes.max(1);
    let expires = to_epoch_ms(now) + i64::try_from(minutes).unwrap_or(i64::MAX / 120_000) * 60_000;
    // Expired rows are swept at each sign-in: cheap (indexed) and needs no timer.
    web_sessions::delete_expired(db, to_epoch_ms(now))
        .await
        .or_page(lang)?;
    web_sessions::insert(
        db,
        &token_hash(&token),
        &key_hash,
        &random_token(16),
        to_epoch_ms(now),
        expires,
    )
    .await
    .or_page(lang)?;
    let max_age = CookieDuration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 120));
    Ok(Ok(cookie(req, SESSION_COOKIE, token, max_age)))
}

/// Ends the request's session, if any.
pub async fn sign_out(db: &Db, req: &HttpRequest, lang: Lang) -> Result<(), PageError> {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        web_sessions::delete(db, &token_hash(c.value()))
            .await
            .or_page(lang)?;
    }
    Ok(())
}

/// The signed-in reader of a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Name of the API key that signed in.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The deals it sees (a rep: their own; a manager: their team's).
    pub scope: Scope,
    /// Token that state-changing forms must carry.
    pub csrf: String,
    /// Language of the request.
    pub lang: Lang,
}

impl Viewer {
    /// `Ok` when the viewer's role is at least `role`, else the "not for your role" page.
    pub fn require(&self, role: Role) -> Result<(), PageError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(PageError::new(self.lang, PageErrorKind::Forbidden))
        }
    }

    /// `Ok` when a submitted form carries the session's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if same_token(submitted, &self.csrf) {
            Ok(())
        } else {
            Err(PageError::new(self.lang, PageErrorKind::BadCsrf))
        }
    }
}

async fn viewer_of(req: &HttpRequest) -> Result<Viewer, PageError> {
    let lang = Lang::of_request(req);
    let next = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    };
    let sign_in = || PageError::new(lang, PageErrorKind::SignIn { next: next.clone() });
    let token = req.cookie(SESSION_COOKIE).ok_or_else(sign_in)?;
    let db = req
        .app_data::<web::Data<Db>>()
        .ok_or_else(|| PageError::internal(lang, anyhow::anyhow!("no database")))?;
    let record = web_sessions::find_live(db, &token_hash(token.value()), to_epoch_ms(Utc::now()))
        .await
        .or_page(lang)?
        .ok_or_else(sign_in)?;
    let role = Role::parse(&record.role)
        .ok_or_else(|| PageError::internal(lang, anyhow::anyhow!("bad role {} in api_keys", record.role)))?;
    // A rep key without an owner is refused on every page, as on the API, rather than shown
    // every deal.
    let scope = effective_scope(&record.key_name, role, record.scope)
        .map_err(|d| PageError::new(lang, PageErrorKind::KeyWithoutOwner(d.text(lang))))?;
    Ok(Viewer {
        name: record.key_name,
        role,
        scope,
        csrf: record.csrf_token,
        lang,
    })
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { viewer_of(&req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compare_exactly() {
        let a = random_token(32);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_token(32));
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &random_token(32)));
        assert!(!same_token(&a, &a[..63]));
        assert!(!same_token("", "x"));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let c = cookie(&req, SESSION_COOKIE, "t".into(), CookieDuration::minutes(5));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.secure(), Some(false));
        let req = actix_web::test::TestRequest::default()
            .app_data(web::Data::new(Settings {
                secure_cookies: true,
                ..Settings::default()
            }))
            .to_http_request();
        assert_eq!(
            cookie(&req, SESSION_COOKIE, "t".into(), CookieDuration::minutes(5)).secure(),
            Some(true)
        );
    }
}
