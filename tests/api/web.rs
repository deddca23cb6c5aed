//! The web UI over real HTTP: sign-in, sessions and CSRF, roles, pages, languages, activation.
//! Cookies are handled by hand so each assertion sees exactly what the server set.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::helpers::{import_generated, spawn_app, spawn_app_with, train_cli, wait_for_model, TestApp};

/// A cookie jar over a client that does not follow redirects.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// Raw `Set-Cookie` headers of the last response.
    pub last_set_cookie: Vec<String>,
}

/// The value of `<input name="csrf" value="…">` in a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().expect("csrf value").to_string()
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: app.address.clone(),
            cookies: BTreeMap::new(),
            last_set_cookie: Vec::new(),
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        self.last_set_cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for header in &self.last_set_cookie {
            let pair = header.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || header.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// GET: status, `Location` (if any), body.
    pub async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.finish(response).await
    }

    /// POST a form.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.finish(response).await
    }

    async fn finish(&mut self, response: reqwest::Response) -> (u16, Option<String>, String) {
        self.remember(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, location, response.text().await.expect("body"))
    }

    /// Signs in with `key`; panics unless the server redirects to `/deals`.
    pub async fn sign_in(&mut self, key: &str) {
        let (status, _, form) = self.get("/login").await;
        assert_eq!(status, 200);
        let csrf = csrf_of(&form);
        let (status, location, body) = self
            .post("/login", &[("api_key", key), ("csrf", &csrf), ("next", "/deals")])
            .await;
        assert_eq!((status, location.as_deref()), (303, Some("/deals")), "{body}");
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    // No session: every page sends to the sign-in page, remembering where to come back.
    let (status, location, _) = browser.get("/deals?grade=A").await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/login?next=%2Fdeals%3Fgrade%3DA"));

    let (_, _, form) = browser.get("/login").await;
    let csrf = csrf_of(&form);
    // A wrong key is refused on the page, with no session.
    let (status, _, body) = browser
        .post("/login", &[("api_key", "ds_nope"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("unknown or revoked"), "{body}");
    assert!(!browser.has_cookie("dealscore_session"));
    // A form without the token it was served with is refused too, even with a good key.
    let (status, _, body) = browser
        .post("/login", &[("api_key", &app.rep_key), ("csrf", "forged")])
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");
    assert!(!browser.has_cookie("dealscore_session"));

    browser.sign_in(&app.rep_key).await;
    let session = browser
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("dealscore_session="))
        .expect("session cookie")
        .clone();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    assert!(
        !session.contains("Secure"),
        "plain HTTP without secure_cookies: {session}"
    );

    let (status, _, deals) = browser.get("/deals").await;
    assert_eq!(status, 503, "no model yet: a clear page, not a crash");
    assert!(deals.contains("no model is active"), "{deals}");

    // Sign-out needs the session's CSRF token.
    let (status, _, _) = browser.post("/logout", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let (status, _, missing) = browser.get("/deals/none").await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing.contains("Not found") && missing.contains("none"),
        "{missing}"
    );
}

/// A server with 800 generated deals and a trained model, reading the generated competitors.
pub async fn trained_app() -> TestApp {
    let app = spawn_app_with(|s| {
        s.insights.competitor_field = Some("attr.competitor".into());
        s.insights.loss_reason_field = Some("attr.loss_reason".into());
        s.insights.deal_type_field = Some("attr.deal_type".into());
        s.insights.contract_months_field = Some("attr.contract_months".into());
    })
    .await;
    import_generated(&app, 800, 11).await;
    train_and_serve(&app, &[]).await;
    app
}

/// Trains a model with `dealscore-train --cv 3 <extra>` and waits until it serves; its version.
async fn train_and_serve(app: &TestApp, extra: &[&str]) -> String {
    let args: Vec<&str> = ["--cv", "3"].iter().chain(extra).copied().collect();
    let version = train_cli(app, &args)["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    wait_for_model(app, &version).await;
    version
}

/// A trained server with two model versions, the newer one active: `(app, older, newer)`.
pub async fn app_with_two_versions() -> (TestApp, String, String) {
    let app = trained_app().await;
    let (_, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    let older = active["version"].as_str().expect("version").to_string();
    let newer = train_and_serve(&app, &["--activate"]).await;
    (app, older, newer)
}

#[tokio::test]
async fn reps_see_their_deals_ranked_and_a_deal_explained_but_not_the_analyst_pages() {
    let app = trained_app().await;
    // The test rep's own deals: a rep's list holds no other.
    for id in ["MINE-1", "MINE-2", "MINE-3"] {
        let deal = crate::helpers::open_deal(id, crate::helpers::TEST_REP_OWNER, "EMEA");
        assert_eq!(app.put_opportunity(id, &deal).await.status(), 201);
    }
    let mut rep = Browser::new(&app);
    rep.sign_in(&app.rep_key).await;
    let (status, _, page) = rep.get("/deals").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>My deals</h1>"));
    assert!(page.contains("class=\"grade grade-"), "grade badges");
    assert!(
        !page.contains("href=\"/models\""),
        "a rep's navigation has no models entry"
    );
    let first = page
        .split("href=\"/deals/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a deal link")
        .to_string();

    // Filters narrow the list: grade D only shows D badges.
    let (status, _, filtered) = rep.get("/deals?grade=D&sort=score").await;
    assert_eq!(status, 200);
    assert!(!filtered.contains("grade grade-a") && !filtered.contains("grade grade-b"));
    let (status, _, bad) = rep.get("/deals?grade=Z").await;
    assert_eq!(status, 400);
    assert!(bad.contains("grade `Z`"), "{bad}");

    let (status, _, deal) = rep.get(&format!("/deals/{first}")).await;
    assert_eq!(status, 200, "{deal}");
    assert!(
        deal.contains("id=\"factors\"") && deal.contains("<svg class=\"chart\""),
        "factors chart"
    );
    assert!(deal.contains("rect class=\"raises\"") || deal.contains("rect class=\"lowers\""));
    assert!(deal.contains("Next intervention"));
    assert!(deal.contains("Won (median)"));

    for page in ["/models", "/pipeline", "/process", "/resources", "/pipeline.csv"] {
        let (status, _, body) = rep.get(page).await;
        assert_eq!(status, 403, "{page}");
        if page != "/pipeline.csv" {
            assert!(body.contains("Not available for your role"), "{body}");
        }
    }

    // French: chosen with ?lang=fr, remembered by a cookie, amounts written the French way.
    let (status, _, fr) = rep.get("/deals?lang=fr").await;
    assert_eq!(status, 200);
    assert!(
        fr.contains("<html lang=\"fr\">") && fr.contains("Mes affaires"),
        "{fr}"
    );
    assert!(rep.has_cookie("dealscore_lang"));
    let (_, _, again) = rep.get(&format!("/deals/{first}")).await;
    assert!(
        again.contains("Prochaine action recommandée"),
        "the language sticks"
    );
    assert!(
        again.contains("\u{a0}€"),
        "French amounts end with a non-breaking space and €"
    );
}

#[tokio::test]
async fn analysts_read_the_dashboards_and_activate_an_older_model() {
    let (app, older, newer) = app_with_two_versions().await;

    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    for page in [
        "/pipeline",
        "/process",
        "/process?by=contact_role",
        "/resources",
        "/models",
    ] {
        let (status, _, body) = analyst.get(page).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert!(
            body.contains("<svg class=\"chart\"") || page == "/models",
            "{page} has a chart"
        );
    }
    let (status, _, pipeline) = analyst.get("/pipeline?lang=fr").await;
    assert_eq!(status, 200);
    assert!(pipeline.contains("Taux de gain") && pipeline.contains("affaires gagné"));
    let (status, _, bad) = analyst.get("/pipeline?from=2026-13-01").await;
    assert_eq!(status, 400, "{bad}");

    let (status, _, csv) = analyst.get("/pipeline.csv?table=region").await;
    assert_eq!(status, 200);
    assert!(csv.lines().count() > 2 && csv.starts_with("group"), "{csv}");

    let (status, _, model) = analyst.get(&format!("/models/{older}")).await;
    assert_eq!(status, 200);
    assert!(model.contains("Courbe ROC") || model.contains("ROC curve"));
    let (status, _, compare) = analyst.get(&format!("/models/compare?a={older}&b={newer}")).await;
    assert_eq!(status, 200, "{compare}");
    // Metric and feature names as a reader writes them, and the factors beside the metrics.
    assert!(
        (compare.contains("AUC ROC") || compare.contains("ROC AUC")) && !compare.contains("roc_auc"),
        "{compare}"
    );
    let factors = compare
        .split("id=\"compare-factors\"")
        .nth(1)
        .expect("a factor table");
    assert!(
        (factors.contains("Âge de l&#39;affaire") || factors.contains("Deal age"))
            && !factors.contains("cycle_days"),
        "{factors}"
    );

    // Activation is a form with the session's token; without it nothing changes.
    let (_, _, list) = analyst.get("/models").await;
    let csrf = csrf_of(&list);
    let (status, _, _) = analyst
        .post(&format!("/models/{older}/activate"), &[("csrf", "forged")])
        .await;
    assert_eq!(status, 403);
    let (_, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    assert_eq!(active["version"], newer.as_str());
    let (status, location, _) = analyst
        .post(&format!("/models/{older}/activate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/models?notice=activated"))
    );
    let (_, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    assert_eq!(active["version"], older.as_str());
    let (_, _, list) = analyst.get("/models?notice=activated").await;
    let row = list
        .split(&format!("data-version=\"{older}\""))
        .nth(1)
        .and_then(|s| s.split("</tr>").next())
        .expect("row of the older version");
    assert!(row.contains("badge active"), "{row}");
    // The drift check now describes the version just activated, not the previous one.
    let drift_version = list
        .split("id=\"drift-version\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("a drift check of the active version");
    assert_eq!(drift_version, older.as_str());
    assert!(list.contains("class=\"notice\" role=\"status\" id=\"notice\""));
}

#[tokio::test]
async fn revoking_the_key_or_signing_out_ends_the_session() {
    let app = spawn_app().await;
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, page) = analyst.get("/models").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&page);
    let (status, location, _) = analyst.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, _, _) = analyst.get("/models").await;
    assert_eq!(status, 303, "signed out");

    let mut rep = Browser::new(&app);
    rep.sign_in(&app.rep_key).await;
    assert!(dealscore::store::api_keys::revoke(&app.db, "test-rep")
        .await
        .expect("revoke"));
    let (status, location, _) = rep.get("/deals").await;
    assert_eq!(status, 303);
    assert!(location.expect("location").starts_with("/login"));
}

#[tokio::test]
async fn sessions_expire() {
    use dealscore::store::web_sessions;
    let app = spawn_app().await;
    let key_hash = dealscore::auth::hash_key(&app.rep_key);
    web_sessions::insert(&app.db, "token-hash", &key_hash, "csrf", 1_000, 2_000)
        .await
        .expect("insert");
    let live = web_sessions::find_live(&app.db, "token-hash", 1_500)
        .await
        .expect("find");
    assert_eq!(live.map(|s| s.key_name), Some("test-rep".to_string()));
    assert!(web_sessions::find_live(&app.db, "token-hash", 2_000)
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        web_sessions::delete_expired(&app.db, 2_000).await.expect("sweep"),
        1
    );
}

/// The number in "Open deals: N" (`#deal-count`).
fn deal_count(page: &str) -> usize {
    page.split("id=\"deal-count\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.split(' ').next_back())
        // Grouped as the language writes counts: `4,000` / `4 000`.
        .map(|n| n.replace([',', '\u{202F}'], ""))
        .and_then(|n| n.parse().ok())
        .expect("deal count")
}

#[tokio::test]
async fn after_a_write_the_list_shows_the_previous_order_then_the_new_one() {
    let app = trained_app().await;
    let mut rep = Browser::new(&app);
    rep.sign_in(&app.analyst_key).await;
    let (_, _, before) = rep.get("/deals").await;
    assert!(!before.contains("id=\"stale\""), "a fresh list");
    let open = deal_count(&before);

    let response = app
        .put_opportunity("NEW-1", &crate::helpers::open_deal("NEW-1", "zoe", "EMEA"))
        .await;
    assert_eq!(response.status(), 201);
    // At once: the previous list, saying it is behind, while the new one is scored.
    let (status, _, during) = rep.get("/deals").await;
    assert_eq!(status, 200);
    assert!(during.contains("id=\"stale\""), "{during}");
    assert_eq!(deal_count(&during), open);
    // Then the new list, with the new deal.
    until_current(&mut rep, "/deals").await;
    let (_, _, after) = rep.get("/deals").await;
    assert_eq!(deal_count(&after), open + 1);
    // The API answers lists as of the last write only (no stale mode there).
    let (status, list) = app
        .get_json("/v1/opportunities/priority?owner=zoe", &app.analyst_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

/// Requests `path` until it no longer shows the "figures are behind" notice (30 s at most).
async fn until_current(browser: &mut Browser, path: &str) {
    let started = std::time::Instant::now();
    loop {
        let (status, _, page) = browser.get(path).await;
        assert_eq!(status, 200, "{page}");
        if !page.contains("id=\"stale\"") {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{path} never showed current figures"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn after_a_write_dashboards_show_the_previous_figures_then_the_new_ones() {
    let app = trained_app().await;
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    // Warming at startup loaded a snapshot before the test data was imported, so the first views
    // may show it while the current one loads: wait for the current one.
    until_current(&mut analyst, "/pipeline").await;
    let response = app
        .put_opportunity("NEW-2", &crate::helpers::open_deal("NEW-2", "zoe", "EMEA"))
        .await;
    assert_eq!(response.status(), 201);
    let (status, _, during) = analyst.get("/pipeline").await;
    assert_eq!(status, 200);
    assert!(during.contains("id=\"stale\""), "the previous figures, saying so");
    // A CSV download carries no such notice, so it waits for figures that include the write.
    let (status, _, csv) = analyst.get("/pipeline.csv?table=owner&from=2025-01-01").await;
    assert_eq!(status, 200);
    assert!(csv.lines().any(|line| line.starts_with("owner,zoe,")), "{csv}");
    until_current(&mut analyst, "/resources").await;
    let (_, _, after) = analyst.get("/pipeline").await;
    assert!(!after.contains("id=\"stale\""));
    assert!(
        after.contains(">zoe</option>"),
        "the new rep is a filter choice now"
    );
}

#[tokio::test]
async fn warming_builds_the_snapshot_its_competitor_columns_and_both_priority_lists_before_anyone_asks() {
    use dealscore::i18n::Lang;
    let app = trained_app().await;
    let model = dealscore::serving::ActiveModel::new();
    model.refresh(&app.db).await.expect("load the active model");
    let insights = dealscore::insights::InsightsCache::new();
    let priority = dealscore::ranking::PriorityCache::new();
    assert!(insights.kept().is_none() && priority.kept(Lang::En).is_none());

    let scoring = dealscore::scoring::ScoringConfig::default();
    let attributes = ["competitor".to_owned(), "loss_reason".to_owned()];
    dealscore::warmup::warm(&app.db, &model, &scoring, &insights, &priority, &attributes).await;

    let (_, open) = app
        .get_json("/v1/opportunities?status=open&limit=1000", &app.analyst_key)
        .await;
    let open = open["items"].as_array().expect("items").len();
    assert!(open > 0, "the generated data has open deals");
    let snapshot = insights.kept().expect("snapshot");
    assert_eq!(snapshot.deals.len(), 800);
    // The competitors insight's columns are read already; others are not.
    assert!(snapshot.holds_attribute("competitor") && snapshot.holds_attribute("loss_reason"));
    assert!(!snapshot.holds_attribute("lead_source"));
    let english = priority.kept(Lang::En).expect("English list");
    let french = priority.kept(Lang::Fr).expect("French list");
    assert_eq!(english.items.len(), open);
    assert_eq!(french.items.len(), open);
    // The lists hold sentences in their own language.
    let sentence = |list: &dealscore::ranking::ScoredOpenDeals| {
        list.items
            .iter()
            .find_map(|i| i.next_intervention.as_ref().map(|n| n.message.clone()))
            .expect("an intervention")
    };
    assert_ne!(sentence(&english), sentence(&french));
}

#[tokio::test]
async fn malformed_page_addresses_get_an_html_page_in_the_readers_language() {
    let app = spawn_app().await;
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, page) = analyst.get("/deals?page=abc&lang=fr").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("paramètres de requête invalides"), "{page}");
    let (status, _, page) = analyst.get("/pipeline?from=2026-01-01&from=2026-02-01").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("invalid query string"), "{page}");
    // The API keeps problem+json for the same mistake.
    let response = app
        .client
        .get(app.url("/v1/opportunities?limit=abc"))
        .bearer_auth(&app.analyst_key)
        .header("Accept-Language", "fr")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("paramètres de requête invalides")),
        "{problem}"
    );
}

#[tokio::test]
async fn repeated_failed_sign_ins_from_one_address_are_refused_for_a_while() {
    let app = spawn_app_with(|s| s.signin_failures_per_minute = 2).await;
    let mut browser = Browser::new(&app);
    let (_, _, mut page) = browser.get("/login").await;
    for _ in 0..2 {
        let csrf = csrf_of(&page);
        let (status, _, body) = browser
            .post("/login", &[("api_key", "ds_guess"), ("csrf", &csrf)])
            .await;
        assert_eq!(status, 401, "{body}");
        page = body;
    }
    // The limit is reached: even the right key waits, with a Retry-After and a readable page.
    let csrf = csrf_of(&page);
    let response = browser
        .client
        .post(format!("{}/login?lang=fr", browser.base))
        .header(COOKIE, browser.cookie_header())
        .form(&[("api_key", app.rep_key.as_str()), ("csrf", &csrf)])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    let body = response.text().await.expect("body");
    assert!(body.contains("Trop d&#39;échecs de connexion"), "{body}");
    assert!(!browser.has_cookie("dealscore_session"));
    // The API's bearer keys are not affected.
    let (status, _) = app.get_json("/v1/opportunities", &app.rep_key).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn analysts_start_a_training_run_and_watch_it_finish() {
    let app = trained_app().await;
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, list) = analyst.get("/models").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("id=\"drift-h\""),
        "the models page has its drift section"
    );
    let csrf = csrf_of(&list);
    // Without the session's token nothing starts.
    let (status, _, _) = analyst.post("/models/train", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let (_, runs) = app.get_json("/v1/training-runs", &app.analyst_key).await;
    let before = runs.as_array().map_or(0, Vec::len);

    let (status, location, body) = analyst.post("/models/train", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303, "{body}");
    let run_page = location.expect("redirect to the run");
    assert!(run_page.starts_with("/models/runs/"), "{run_page}");
    let (_, runs) = app.get_json("/v1/training-runs", &app.analyst_key).await;
    assert_eq!(runs.as_array().map_or(0, Vec::len), before + 1, "{runs}");

    // The page refreshes itself while the run works, and stops once it has finished.
    let started = std::time::Instant::now();
    loop {
        let (status, _, page) = analyst.get(&run_page).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<progress"), "{page}");
        if !page.contains("data-refresh-seconds") {
            assert!(page.contains(">succeeded</strong>"), "{page}");
            assert!(
                page.contains("href=\"/models/m-"),
                "links the new version: {page}"
            );
            // And what the promotion gate decided, with its figures.
            let gate = page
                .split("id=\"gate-outcome\"")
                .nth(1)
                .expect("the gate's decision");
            assert!(
                [
                    "Passed the gate",
                    "Held by the gate",
                    "First model",
                    "Activated by override"
                ]
                .iter()
                .any(|o| gate.contains(o)),
                "{gate}"
            );
            assert!(gate.contains("ROC AUC on its holdout"), "{gate}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the run never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The text of every chart on `page`: tick and legend labels, titles and the accessible label.
fn chart_texts(page: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for chart in page.split("<svg class=\"chart\"").skip(1) {
        let chart = chart.split("</svg>").next().unwrap_or("");
        if let Some(label) = chart.split("aria-label=\"").nth(1) {
            texts.push(label.split('"').next().unwrap_or("").to_owned());
        }
        for tag in ["<text", "<title"] {
            for piece in chart.split(tag).skip(1) {
                let text = piece.split('>').nth(1).unwrap_or("");
                texts.push(text.split('<').next().unwrap_or("").to_owned());
            }
        }
    }
    texts
}

/// English words of the interface (not of the data: sector, region and rep names are the
/// CRM's and stay as they are in both languages).
const ENGLISH_UI_WORDS: [&str; 20] = [
    "days",
    "cycle",
    "won",
    "lost",
    "open",
    "deals",
    "rate",
    "sector",
    "region",
    "amount",
    "response",
    "hours",
    "predicted",
    "actual",
    "probability",
    "role",
    "lowers",
    "raises",
    "value",
    "forecast",
];

#[tokio::test]
async fn every_chart_label_is_in_the_pages_language() {
    let (app, older, newer) = app_with_two_versions().await;
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (_, _, deals) = analyst.get("/deals").await;
    let deal = deals
        .split("href=\"/deals/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a deal on the list")
        .to_owned();
    let pages = [
        format!("/deals/{deal}"),
        "/pipeline".to_owned(),
        "/process".to_owned(),
        "/process?by=contact_role".to_owned(),
        "/resources".to_owned(),
        format!("/models/{newer}"),
        format!("/models/compare?a={older}&b={newer}"),
        "/team".to_owned(),
        // The generated history ends on 2026-01-01: a period with competitors to chart.
        "/competitors?from=2025-01-01&to=2025-12-31".to_owned(),
        "/customers?from=2025-01-01&to=2025-12-31".to_owned(),
    ];
    // The data's own names (sectors such as "public sector", regions, reps, roles) are the
    // CRM's words, the same in both languages: taken out before looking for English.
    let mut data_names: Vec<String> = Vec::new();
    for field in ["sector", "region", "owner", "contact_role"] {
        let (status, breakdown) = app
            .get_json(&format!("/v1/insights/breakdown?by={field}"), &app.analyst_key)
            .await;
        assert_eq!(status, 200, "{breakdown}");
        for row in breakdown["rows"].as_array().expect("rows") {
            if let Some(name) = row["value"].as_str() {
                // Pages write a level's underscores as spaces.
                data_names.push(name.to_lowercase());
                data_names.push(name.to_lowercase().replace('_', " "));
            }
        }
    }
    data_names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    assert!(data_names.iter().any(|n| n.contains("sector")), "{data_names:?}");
    let mut charts = 0;
    for page in &pages {
        let sep = if page.contains('?') { '&' } else { '?' };
        until_current(&mut analyst, page).await;
        let (status, _, english) = analyst.get(&format!("{page}{sep}lang=en")).await;
        assert_eq!(status, 200, "{page}");
        let (status, _, french) = analyst.get(&format!("{page}{sep}lang=fr")).await;
        assert_eq!(status, 200, "{page}");
        let (english, french) = (chart_texts(&english), chart_texts(&french));
        assert_eq!(
            english.len(),
            french.len(),
            "{page}: the same charts in both languages"
        );
        charts += french.len();
        for text in &french {
            let mut lower = text.to_lowercase();
            for name in &data_names {
                lower = lower.replace(name.as_str(), " ");
            }
            let words: Vec<&str> = lower
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
                .collect();
            for english_word in ENGLISH_UI_WORDS {
                assert!(
                    !words.contains(&english_word),
                    "{page}: French chart text `{text}` has the English word `{english_word}`"
                );
            }
        }
    }
    assert!(charts > 20, "only {charts} chart texts seen");
}
