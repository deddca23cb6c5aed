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

