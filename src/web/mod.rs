//! The web UI, served by `dealscore serve` at `/`: server-rendered HTML (askama templates,
//! checked at compile time), SVG charts drawn on the server, English and French, assets
//! embedded in the binary. Pages call the same library functions as the JSON API.
//!
//! Layout: `session` (sign-in, cookies, CSRF), `error` (HTML error pages), `security_headers`
//! (CSP and friends on every answer, API included), `text` (the EN/FR catalogue), `charts`
//! (SVG), `view` (formatting for templates), `pages/*` (one file per page).

pub mod charts;
pub mod error;
pub mod memo;
pub mod pages;
pub mod security_headers;
pub mod session;
pub mod text;
pub mod throttle;
pub mod view;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::Role;
use crate::i18n::{Lang, LANG_COOKIE};
use error::PageError;
use session::Viewer;
use text::Text;

/// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// My deals and the deal page.
    Deals,
    /// Pipeline dashboard.
    Pipeline,
    /// Sales process.
    Process,
    /// Resources.
    Resources,
    /// Customers.
    Customers,
    /// Competitors.
    Competitors,
    /// Models.
    Models,
    /// A manager's team.
    Team,
}

/// What every page template needs: the text catalogue, who reads, the CSRF token and the
/// language switch links.
pub struct Ui {
    /// Text in the reader's language.
    pub t: Text,
    /// Signed-in key name.
    pub viewer: String,
    /// Whether analyst pages are shown in the navigation.
    pub analyst: bool,
    /// Whether the team page is shown in the navigation (managers and above).
    pub manager: bool,
    /// Token for state-changing forms.
    pub csrf: String,
    /// Current navigation entry.
    pub nav: Nav,
    /// `(code, native name, href, current)` per language.
    pub languages: Vec<(&'static str, &'static str, String, bool)>,
    /// When a dashboard shows data older than the last write: the time it was loaded.
    pub stale_since: Option<String>,
}

impl Ui {
    /// The context of a page for `viewer` at `req`.
    pub fn new(viewer: &Viewer, req: &HttpRequest, nav: Nav) -> Ui {
        Ui {
            t: Text(viewer.lang),
            viewer: viewer.name.clone(),
            analyst: viewer.role >= Role::Analyst,
            manager: viewer.role >= Role::Manager,
            csrf: viewer.csrf.clone(),
            nav,
            languages: language_links(req, viewer.lang),
            stale_since: None,
        }
    }

    /// Marks the page as showing the snapshot of `answer` when it predates the last write.
    pub fn note_stale(&mut self, answer: &crate::insights::cache::MaybeStale) {
        self.stale_since = answer
            .stale
            .then_some(answer.snapshot.loaded_at)
            .flatten()
            .map(|at| crate::i18n::format::timestamp(at, self.t.0));
    }

    /// Whether `nav` is the current entry (for `aria-current`).
    pub fn is(&self, nav: Nav) -> bool {
        self.nav == nav
    }
}

/// Links to the same page in each language (`?lang=` replaced, the rest of the query kept).
pub fn language_links(req: &HttpRequest, current: Lang) -> Vec<(&'static str, &'static str, String, bool)> {
    let kept: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    Lang::ALL
        .iter()
        .map(|lang| {
            let mut query = kept.clone();
            let pair = format!("lang={}", lang.code());
            query.push(&pair);
            (
                lang.code(),
                lang.native_name(),
                format!("{}?{}", req.path(), query.join("&")),
                *lang == current,
            )
        })
        .collect()
}

/// Renders a template as a 200 HTML page. A `?lang=` choice is remembered in a cookie so the
/// following pages keep the language.
pub fn render(req: &HttpRequest, lang: Lang, page: &impl Template) -> Result<HttpResponse, PageError> {
    let html = page.render().map_err(|e| PageError::internal(lang, e))?;
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Content-Language", lang.code()));
    let chosen = req
        .query_string()
        .split('&')
        .find_map(|p| p.strip_prefix("lang="))
        .and_then(Lang::parse);
    if let Some(chosen) = chosen {
        response.cookie(session::cookie(
            req,
            LANG_COOKIE,
            chosen.code().to_string(),
            actix_web::cookie::time::Duration::days(365),
        ));
    }
    Ok(response.body(html))
}

/// Runs CPU-bound page work (dashboard passes over the insights snapshot) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    lang: Lang,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PageError> {
    web::block(work).await.map_err(|e| PageError::internal(lang, e))
}

/// A 303 redirect (after a form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Registers the UI's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(page("/").route(web::get().to(pages::auth::home)))
        .service(
            page("/login")
                .route(web::get().to(pages::auth::login_form))
                .route(web::post().to(pages::auth::login)),
        )
        .service(page("/logout").route(web::post().to(pages::auth::logout)))
        .service(page("/assets/app.css").route(web::get().to(pages::assets::css)))
        .service(page("/assets/app.js").route(web::get().to(pages::assets::js)))
        .service(page("/deals").route(web::get().to(pages::deals::list)))
        .service(page("/deals.csv").route(web::get().to(pages::deals::csv)))
        .service(page("/team").route(web::get().to(pages::team::show)))
        .service(page("/deals/{external_id}").route(web::get().to(pages::deal::show)))
        .service(page("/pipeline").route(web::get().to(pages::pipeline::show)))
        .service(page("/pipeline.csv").route(web::get().to(pages::pipeline::csv)))
        .service(page("/process").route(web::get().to(pages::process::show)))
        .service(page("/resources").route(web::get().to(pages::resources::show)))
        .service(page("/customers").route(web::get().to(pages::customers::show)))
        .service(page("/competitors").route(web::get().to(pages::competitors::show)))
        .service(page("/models").route(web::get().to(pages::models::list)))
        .service(page("/models/compare").route(web::get().to(pages::models::compare)))
        .service(page("/models/train").route(web::post().to(pages::models::train)))
        .service(page("/models/runs/{id}").route(web::get().to(pages::models::run)))
        .service(page("/models/{version}").route(web::get().to(pages::models::show)))
        .service(page("/models/{version}/activate").route(web::post().to(pages::models::activate)));
}

/// A UI resource: a malformed query on a page gets an HTML page in the reader's language instead
/// of the API's problem+json (page paths are plain text, so they cannot be malformed).
fn page(path: &str) -> actix_web::Resource {
    web::resource(path).app_data(web::QueryConfig::default().error_handler(error::bad_query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_unreserved_characters() {
        assert_eq!(
            url_encode("/deals?owner=Zoé Martin&x=1"),
            "%2Fdeals%3Fowner%3DZo%C3%A9%20Martin%26x%3D1"
        );
        assert_eq!(url_encode("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn language_links_replace_only_the_lang_parameter() {
        let req = actix_web::test::TestRequest::default()
            .uri("/deals?owner=ana&lang=en&page=2")
            .to_http_request();
        let links = language_links(&req, Lang::En);
        assert_eq!(
            links[0],
            (
                "en",
                "English",
                "/deals?owner=ana&page=2&lang=en".to_string(),
                true
            )
        );
        assert_eq!(links[1].2, "/deals?owner=ana&page=2&lang=fr");
        assert!(!links[1].3);
    }
}
