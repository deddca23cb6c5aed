//! Security headers on every answer — pages, assets, API, errors and redirects alike.
//!
//! - `Content-Security-Policy`: scripts, styles and images only from this origin, nothing
//!   inline (the templates carry no `<script>` body, `on…=` handler or `style` attribute: a test
//!   below reads them), forms post only here, and no other site may frame a page
//!   (`frame-ancestors 'none'`, with `X-Frame-Options: DENY` for browsers that predate it).
//!   The Swagger UI under `/docs/` gets its own policy: its stylesheet draws icons from `data:`
//!   images, and its scripts set styles on elements at run time.
//! - `X-Content-Type-Options: nosniff`: a CSV export or a JSON answer is never run as a script.
//! - `Referrer-Policy: no-referrer`: page addresses carry filters (owner, region) and deal ids,
//!   which other sites have no reason to learn.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

/// Policy of every answer but the Swagger UI's.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Policy of the Swagger UI (`/docs/`): still no inline or foreign script.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Where the Swagger UI is served (see `app.rs`).
const DOCS_PREFIX: &str = "/docs/";

/// Middleware adding the security headers to every response, including the answer to an error
/// that no inner layer turned into a response (so a failure is as well protected as a success).
pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let docs = req.path().starts_with(DOCS_PREFIX);
    match next.call(req).await {
        Ok(mut response) => {
            insert(response.headers_mut(), docs);
            Ok(response.map_into_boxed_body())
        }
        Err(error) => Err(Protected { error, docs }.into()),
    }
}

/// An error that reached the outermost layer: the server turns it into a response later, by
/// calling [`ResponseError::error_response`], which is where the headers are added.
#[derive(Debug)]
struct Protected {
    error: actix_web::Error,
    docs: bool,
}

impl std::fmt::Display for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for Protected {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        insert(response.headers_mut(), self.docs);
        response
    }
}

fn insert(headers: &mut HeaderMap, docs: bool) {
    let policy = if docs {
        DOCS_CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_policy_allows_inline_or_foreign_script() {
        for policy in [CONTENT_SECURITY_POLICY, DOCS_CONTENT_SECURITY_POLICY] {
            let script = policy
                .split(';')
                .map(str::trim)
                .find(|d| d.starts_with("script-src"))
                .expect("a script-src directive");
            assert_eq!(script, "script-src 'self'", "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
            assert!(policy.contains("default-src 'none'"), "{policy}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    /// The page policy forbids inline code and styles: the templates must not need them.
    #[test]
    fn templates_carry_no_inline_script_handler_or_style() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/web");
        let entries = std::fs::read_dir(&dir).expect("templates/web");
        let mut checked = 0;
        for entry in entries {
            let path = entry.expect("entry").path();
            let html = std::fs::read_to_string(&path)
                .expect("template")
                .to_ascii_lowercase();
            let name = path.display();
            for script in html.split("<script").skip(1) {
                let (tag, rest) = script.split_once('>').unwrap_or((script, ""));
                let body = rest.split("</script>").next().unwrap_or_default();
                assert!(tag.contains(" src="), "{name}: <script{tag}> without src");
                assert!(body.trim().is_empty(), "{name}: a <script> with a body");
            }
            assert!(!html.contains("<style"), "{name}: inline <style>");
            assert!(!html.contains(" style="), "{name}: style attribute");
            assert!(!html.contains("javascript:"), "{name}: javascript: URL");
            for handler in html.split(" on").skip(1) {
                let attribute: String = handler.chars().take_while(char::is_ascii_alphabetic).collect();
                assert!(
                    !handler[attribute.len()..].trim_start().starts_with('='),
                    "{name}: inline handler on{attribute}="
                );
            }
            checked += 1;
        }
        assert!(checked > 5, "read the templates in {}", dir.display());
    }
}
