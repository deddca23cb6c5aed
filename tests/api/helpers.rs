//! Test harness: a real server on port 0 over a fresh database — a temp-file SQLite by default,
//! or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set (dropped after the test).

use std::path::PathBuf;

use dealscore::app::Application;
use dealscore::auth::{generate_key, hash_key};
use dealscore::config::Settings;
use dealscore::store::scope::Scope;
use dealscore::store::{api_keys, Db, PoolOptions};
use serde_json::Value;

/// A fresh database; dropped (PostgreSQL) or deleted (SQLite) when the value is dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("dealscore_test_{}", &generate_key()[3..19]);
                let admin = Db::connect_without_migrating(&admin_url, &pool_options())
                    .await
                    .expect("admin connect");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin.pool)
                    .await
                    .expect("create test database");
                admin.pool.close().await;
                let url = replace_db_name(&admin_url, &name);
                TestDb {
                    url,
                    _dir: None,
                    pg_drop: Some((admin_url, name)),
                }
            }
            _ => TestDb::sqlite(),
        }
    }

    /// A fresh temp-file SQLite database, whatever `TEST_DATABASE_URL` says: for tests of
    /// behaviour only SQLite has.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg_drop: None,
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base.rfind('/').expect("database url has a path");
    let mut out = format!("{}/{}", &base[..cut], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_drop.take() {
            // Async work in Drop: run it on a throwaway runtime in its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = Db::connect_without_migrating(&admin_url, &pool_options())
                        .await
                        .ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&admin.pool)
                        .await
                        .ok()?;
                    Some(())
                })
            })
            .join();
        }
    }
}

pub fn pool_options() -> PoolOptions {
    PoolOptions::from(&Settings::default())
}

/// Owner of the test app's rep key.
pub const TEST_REP_OWNER: &str = "alice";

/// A running app with one key per role.
pub struct TestApp {
    pub address: String,
    /// URL of the app's database (for the CLI binaries).
    pub db_url: String,
    pub db: Db,
    pub client: reqwest::Client,
    pub admin_key: String,
    pub analyst_key: String,
    pub rep_key: String,
    /// Kept so the database lives as long as the app (dropped after the test).
    pub _test_db: TestDb,
    /// Where training runs started through the server write their artifacts (never the
    /// repository's `models/`), unless the test chose another folder.
    pub _models_dir: tempfile::TempDir,
}

pub fn test_settings(url: &str) -> Settings {
    Settings {
        database_url: url.to_owned(),
        bind: "127.0.0.1:0".into(),
        auth_cache_secs: 0,
        model_refresh_secs: 1,
        workers: 2,
        shutdown_timeout_secs: 1,
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::new().await, adjust).await
}

/// [`spawn_app_with`] on SQLite even when `TEST_DATABASE_URL` names PostgreSQL.
pub async fn spawn_sqlite_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::sqlite(), adjust).await
}

/// A second server on `app`'s database, as when several instances share one PostgreSQL: it
/// accepts `app`'s keys. The database belongs to `app` and is dropped with it, so keep `app`
/// alive while this one runs.
pub async fn spawn_app_beside(app: &TestApp) -> TestApp {
    let shared = TestDb {
        url: app.db_url.clone(),
        _dir: None,
        pg_drop: None,
    };
    let (address, db, models_dir) = start_server(&shared.url, |_| {}).await;
    TestApp {
        db_url: shared.url.clone(),
        address,
        db,
        client: http_client(),
        admin_key: app.admin_key.clone(),
        analyst_key: app.analyst_key.clone(),
        rep_key: app.rep_key.clone(),
        _test_db: shared,
        _models_dir: models_dir,
    }
}

async fn spawn_app_on(test_db: TestDb, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (address, db, models_dir) = start_server(&test_db.url, adjust).await;
    let mut keys = Vec::new();
    for role in ["admin", "analyst", "rep"] {
        let key = generate_key();
        // A rep key sees its owner's deals only; the test rep is `alice`, the owner of
        // `won_deal` and of most hand-written deals.
        let scope = match role {
            "rep" => Scope::Owners(vec![TEST_REP_OWNER.to_owned()]),
            _ => Scope::All,
        };
        api_keys::insert_scoped(&db, &format!("test-{role}"), role, &hash_key(&key), &scope)
            .await
            .expect("key");
        keys.push(key);
    }
    TestApp {
        db_url: test_db.url.clone(),
        address,
        db,
        client: http_client(),
        admin_key: keys[0].clone(),
        analyst_key: keys[1].clone(),
        rep_key: keys[2].clone(),
        _test_db: test_db,
        _models_dir: models_dir,
    }
}

fn http_client() -> reqwest::Client {
    // Idle connections are dropped before the server's 5 s keep-alive closes them, so a reused
    // connection is never one the server is closing (a client-side race, not a server error).
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .build()
        .expect("http client")
}

/// Starts a server on the database at `url`; returns its address, its database handle and the
/// folder its training runs write to.
async fn start_server(url: &str, adjust: impl FnOnce(&mut Settings)) -> (String, Db, tempfile::TempDir) {
    // With TEST_LOG, every log line goes to stderr as the server would write it. Otherwise
    // warnings and errors go through the test harness's capture, which shows them only for a
    // failing test: a 500 in CI then comes with its cause.
    if std::env::var_os("TEST_LOG").is_some() {
        dealscore::telemetry::init_logging(dealscore::config::LogFormat::Human);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    }
    let models_dir = tempfile::tempdir().expect("models tempdir");
    let mut settings = test_settings(url);
    settings.models_dir = models_dir.path().display().to_string();
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());
    (address, db, models_dir)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn put_opportunity(&self, id: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/opportunities/{id}")))
            .bearer_auth(&self.analyst_key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST /v1/score` with a JSON body, as a rep.
    pub async fn post_score(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/score"))
            .bearer_auth(&self.rep_key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `GET /v1/opportunities/{id}` with a key that sees every deal.
    pub async fn get_opportunity(&self, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/opportunities/{id}")))
            .bearer_auth(&self.analyst_key)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` with `key`.
    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self.get(path, key).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_csv(&self, query: &str, csv: String) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(&format!("/v1/imports{query}")))
            .bearer_auth(&self.analyst_key)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Number of stored opportunities, straight from the database.
    pub async fn count_opportunities(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM opportunities")
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }
}

/// Asserts a problem+json body with `status` that names `field` in its errors (when given).
pub async fn assert_problem(response: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("json problem");
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap_or("")
        .starts_with("https://dealscore.dev/problems/"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    if let Some(field) = field {
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "{field} not in {body}");
    }
    body
}

pub fn won_deal(id: &str) -> Value {
    serde_json::json!({
        "external_id": id, "name": "Deal", "account": "Acme", "sector": "retail", "region": "EMEA",
        "owner": "alice", "contact_role": "champion", "amount": 1000.0, "status": "won",
        "created_at": "2025-01-01", "closed_at": "2025-02-01", "interaction_count": 4, "response_hours": 5.0
    })
}

pub fn open_deal(id: &str, owner: &str, region: &str) -> Value {
    serde_json::json!({
        "name": "Deal", "account": "Acme", "sector": "software", "region": region,
        "owner": owner, "amount": 500.0, "status": "open", "created_at": "2025-03-01"
    })
    .as_object()
    .map(|o| {
        let mut o = o.clone();
        o.insert("external_id".into(), Value::String(id.into()));
        Value::Object(o)
    })
    .unwrap_or_default()
}

pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dealscore"))
}

/// Imports a generated history (`deals` deals, fixed seed and end date) through `POST /v1/imports`;
/// the deals imported, for tests that recompute figures from them.
pub async fn import_generated(app: &TestApp, deals: usize, seed: u64) -> Vec<dealscore::domain::Opportunity> {
    let config = dealscore::generate::GeneratorConfig {
        deals,
        seed,
        with_activities: false,
        ..dealscore::generate::GeneratorConfig::default()
    };
    let history = dealscore::generate::generate(&config);
    let mut csv = Vec::new();
    dealscore::generate::write_opportunities_csv(&history.opportunities, &mut csv).expect("csv");
    let (status, summary) = app.post_csv("", String::from_utf8(csv).expect("utf8")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"].as_u64(), Some(deals as u64), "{summary}");
    history.opportunities
}

/// GET `path` with the analyst key; the JSON body of a 200 (anything else fails the test).
pub async fn get_as_analyst(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get_json(path, &app.analyst_key).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Runs `dealscore-train` on the app's database; returns the parsed `--json` report.
pub fn train_cli(app: &TestApp, extra: &[&str]) -> Value {
    train_cli_on(&app.db_url, extra)
}

/// Runs `dealscore-train` on the database at `db_url`; returns the parsed `--json` report.
pub fn train_cli_on(db_url: &str, extra: &[&str]) -> Value {
    let out_dir = tempfile::tempdir().expect("tempdir");
    train_cli_into(db_url, out_dir.path(), extra)
}

/// [`train_cli_on`] writing the artifact into `out_dir`, which the caller keeps.
pub fn train_cli_into(db_url: &str, out_dir: &std::path::Path, extra: &[&str]) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dealscore-train"))
        .args(["--json", "--out", out_dir.to_str().expect("path")])
        .args(extra)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore-train");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json report")
}

/// Starts rescoring every open deal as an analyst and waits for the job to end; returns its
/// last status.
pub async fn rescore_and_wait(app: &TestApp) -> Value {
    let response = app
        .client
        .post(app.url("/v1/opportunities/rescore"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.expect("json");
    let url = started["status_url"].as_str().expect("status url").to_owned();
    let mut job = Value::Null;
    for _ in 0..600 {
        let (_, j) = app.get_json(&url, &app.analyst_key).await;
        job = j;
        if job["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    job
}

/// Waits until the server serves `version` (the registry is polled every second in tests).
pub async fn wait_for_model(app: &TestApp, version: &str) {
    for _ in 0..600 {
        let response = app
            .client
            .post(app.url("/v1/score"))
            .bearer_auth(&app.rep_key)
            .json(&serde_json::json!({"cycle_days": 30}))
            .send()
            .await
            .expect("request");
        if response.status() == 200 {
            let body: Value = response.json().await.expect("json");
            if body["model_version"] == version {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("model {version} never served");
}

/// A webhook source named `name` accepting `secrets`.
pub fn webhook_source(name: &str, secrets: &[&str]) -> dealscore::config::WebhookSource {
    dealscore::config::WebhookSource {
        name: name.to_owned(),
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
        mapping: None,
        callback_url: None,
    }
}

/// `Dealscore-Signature` value for `body` signed now with `secret`.
pub fn signature_now(secret: &str, body: &str) -> String {
    dealscore::ingest::signature::header_value(secret, chrono::Utc::now().timestamp(), body.as_bytes())
}

impl TestApp {
    /// POSTs `body` to `/v1/webhooks/{source}{query}` with the given signature header (if any).
    pub async fn post_webhook(&self, path: &str, body: &str, signature: Option<String>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(&format!("/v1/webhooks/{path}")))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Dealscore-Signature", signature);
        }
        request.send().await.expect("request")
    }

    /// POSTs `body` signed with `secret`.
    pub async fn post_signed(&self, path: &str, secret: &str, body: &str) -> reqwest::Response {
        self.post_webhook(path, body, Some(signature_now(secret, body)))
            .await
    }
}
