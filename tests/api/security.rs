//! Security properties seen from outside: the sign-in redirect stays on this site, every answer
//! carries the security headers, CSV exports never hand a spreadsheet a formula, and requests
//! are read strictly (unknown query parameters, the bearer scheme, CSRF refusals).

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::web::{csrf_of, Browser};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn sign_in_returns_only_to_a_path_on_this_site() {
    let app = spawn_app().await;
    for (next, expected) in [
        // Browsers drop TAB, CR and LF inside a URL: each of these is `//evil.example`.
        ("/\t/evil.example", "/deals"),
        ("/\n/evil.example", "/deals"),
        ("/\r\n/evil.example", "/deals"),
        ("/\u{b}/evil.example", "/deals"),
        ("/deals\r\nSet-Cookie: stolen=1", "/deals"),
        ("//evil.example", "/deals"),
        ("/\\evil.example", "/deals"),
        ("https://evil.example/", "/deals"),
        ("javascript:alert(1)", "/deals"),
        ("/deals?grade=A&lang=fr", "/deals?grade=A&lang=fr"),
    ] {
        let mut browser = Browser::new(&app);
        // The form keeps only a safe `next`; a control character never makes it fail.
        let (status, _, form) = browser.get(&format!("/login?next={}", encode(next))).await;
        assert_eq!(status, 200, "GET /login?next={next:?}: {form}");
        assert!(
            form.contains(&format!(
                "name=\"next\" value=\"{}\"",
                expected.replace('&', "&#38;")
            )),
            "{next:?}: {form}"
        );
        // A form posted with a forged `next` (not the one served) is held to the same rule.
        let csrf = csrf_of(&form);
        let (status, location, body) = browser
            .post(
                "/login",
                &[("api_key", &app.rep_key), ("csrf", &csrf), ("next", next)],
            )
            .await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some(expected)),
            "POST next={next:?}: {body}"
        );
    }
}

/// Paths answering every kind of response: page, asset, redirect, API success and problem,
/// HTML error, plain 404, health, OpenAPI, Swagger UI.
const EVERY_KIND: [(&str, Option<&str>); 11] = [
    ("/login", None),
    ("/assets/app.js", None),
    ("/", None),
    ("/deals", None),
    ("/v1/opportunities", Some("rep")),
    ("/v1/opportunities", None),
    ("/v1/opportunities?owner=%ZZ", Some("rep")),
    ("/no/such/page", None),
    ("/healthz", None),
    ("/openapi.json", None),
    ("/docs/", None),
];

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let client = no_redirects();
    for (path, key) in EVERY_KIND {
        let mut request = client.get(app.url(path));
        if key.is_some() {
            request = request.bearer_auth(&app.rep_key);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path} ({status}) has no {name}: {headers:?}"))
                .to_string()
        };
        let policy = header("content-security-policy");
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self';"), "{path}: {policy}");
        assert!(!policy.contains("'unsafe-inline' 'self'; script"), "{path}: {policy}");
        let script = policy
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_default();
        assert_eq!(script, "script-src 'self'", "{path}: no inline script");
        if !path.starts_with("/docs/") {
            assert!(!policy.contains("unsafe"), "{path}: {policy}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
    // A POST the server refuses (bad JSON) is covered too.
    let refused = client
        .put(app.url("/v1/opportunities/x-1"))
        .bearer_auth(&app.analyst_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().contains_key("content-security-policy"));
}

