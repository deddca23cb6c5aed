//! Model lifecycle over HTTP: training runs, the promotion gate, activation and rollback,
//! comparison, crash recovery, the retraining schedule and replicas following activations.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, import_generated, spawn_app_with, test_settings, wait_for_model, won_deal, TestApp,
};

/// A server over a fresh database whose model artifacts go to a temporary folder (kept alive by
/// the returned guard) instead of the repository's `models/`.
async fn lifecycle_app_with(
    adjust: impl FnOnce(&mut dealscore::config::Settings),
) -> (TestApp, tempfile::TempDir) {
    let models = tempfile::tempdir().expect("tempdir");
    let dir = models.path().display().to_string();
    let app = spawn_app_with(move |s| {
        s.models_dir = dir;
        adjust(s);
    })
    .await;
    (app, models)
}

async fn lifecycle_app() -> (TestApp, tempfile::TempDir) {
    lifecycle_app_with(|_| {}).await
}

/// A spec with one weak feature: a model clearly worse than the default spec's.
const WEAK_SPEC: &str = "[[feature]]\nname = \"region\"\nkind = \"categorical\"\nmin_count = 20\n";

async fn post_train(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/models/train"))
        .bearer_auth(&app.analyst_key)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Starts a run and returns its id.
async fn start_run(app: &TestApp, body: &Value) -> String {
    let response = post_train(app, body).await;
    assert_eq!(response.status(), 202);
    let run: Value = response.json().await.expect("json");
    run["id"].as_str().expect("id").to_owned()
}

/// Polls a run until it ends; returns its final state and every (state, phase) seen.
async fn wait_for_run(app: &TestApp, id: &str) -> (Value, Vec<(String, String)>) {
    let mut seen: Vec<(String, String)> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let (status, run) = app
            .get_json(&format!("/v1/training-runs/{id}"), &app.analyst_key)
            .await;
        assert_eq!(status, 200, "{run}");
        let state = run["state"].as_str().unwrap_or("").to_owned();
        let phase = run["progress"]["phase"].as_str().unwrap_or("").to_owned();
        if seen.last() != Some(&(state.clone(), phase.clone())) {
            seen.push((state.clone(), phase));
        }
        if state == "succeeded" || state == "failed" || state == "unchanged" {
            return (run, seen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {id} never ended; seen {seen:?}");
}

async fn train_over_http(app: &TestApp, body: &Value) -> Value {
    let id = start_run(app, body).await;
    let (run, seen) = wait_for_run(app, &id).await;
    assert_eq!(run["state"], "succeeded", "{run} {seen:?}");
    run
}

#[tokio::test]
async fn a_training_run_goes_from_queued_through_running_to_succeeded_and_serves_the_model() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 7).await;
    let response = post_train(&app, &json!({"options": {"cv": 3}})).await;
    assert_eq!(response.status(), 202);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["state"], "queued", "{run}");
    assert_eq!(run["requested_by"], "test-analyst");
    let id = run["id"].as_str().unwrap().to_owned();
    let (run, seen) = wait_for_run(&app, &id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert!(
        seen.iter()
            .any(|(state, phase)| state == "running" && phase == "cross_validation"),
        "progress never showed cross-validation: {seen:?}"
    );
    assert_eq!(run["progress"]["done"], run["progress"]["total"]);
    assert_eq!(run["gate"]["outcome"], "first_model", "{run}");
    let version = run["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &version).await;

    let (status, list) = app.get_json("/v1/training-runs", &app.analyst_key).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id.as_str());
    let (status, versions) = app.get_json("/v1/models", &app.analyst_key).await;
    assert_eq!(status, 200);
    assert_eq!(versions[0]["version"], version.as_str());
    assert_eq!(versions[0]["status"], "active");
    assert!(
        versions[0]["headline"]["roc_auc"].as_f64().unwrap() > 0.6,
        "{versions}"
    );
    let (status, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    assert_eq!(status, 200);
    assert_eq!(active["version"], version.as_str());
    assert!(active["holdout_metrics"]["calibration"].as_array().unwrap().len() == 10);
    assert!(!active["success_factors"].as_array().unwrap().is_empty());
    assert_eq!(active["activations"][0]["reason"], "first model");
    // Reps cannot start training.
    let response = app
        .client
        .post(app.url("/v1/models/train"))
        .bearer_auth(&app.rep_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, None).await;
}

#[tokio::test]
async fn a_second_run_while_one_is_in_progress_is_refused_with_the_running_id() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 8).await;
    let first = start_run(&app, &json!({"options": {"cv": 3}})).await;
    let response = post_train(&app, &json!({})).await;
    let body = assert_problem(response, 409, None).await;
    assert!(body["detail"].as_str().unwrap().contains(&first), "{body}");
    let (run, _) = wait_for_run(&app, &first).await;
    assert_eq!(run["state"], "succeeded");
    // The slot is free again.
    let again = start_run(&app, &json!({"options": {"cv": 3, "seed": 3}})).await;
    let (run, _) = wait_for_run(&app, &again).await;
    assert_eq!(run["state"], "succeeded", "{run}");
}

#[tokio::test]
async fn a_retrain_on_unchanged_data_says_so_and_registers_nothing() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 8).await;
    let first = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let version = first["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &version).await;
    let versions = |list: &Value| list.as_array().map_or(0, Vec::len);
    let (_, before) = app.get_json("/v1/models", &app.analyst_key).await;

    // Same deals, spec and options: the run ends `unchanged`, naming the active version.
    let again = start_run(&app, &json!({"options": {"cv": 3}})).await;
    let (run, _) = wait_for_run(&app, &again).await;
    assert_eq!(run["state"], "unchanged", "{run}");
    assert_eq!(run["version"], version.as_str(), "{run}");
    assert_eq!(run["error"], Value::Null, "{run}");
    assert_eq!(run["progress"]["phase"], "done", "{run}");
    let (_, after) = app.get_json("/v1/models", &app.analyst_key).await;
    assert_eq!(versions(&after), versions(&before), "{after}");
    let (_, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    assert_eq!(active["version"], version.as_str());
    // The run page says so too, in both languages.
    let mut analyst = crate::web::Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, page) = analyst.get(&format!("/models/runs/{again}?lang=en")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("unchanged data"), "{page}");
    assert!(
        page.contains(&format!("href=\"/models/{version}\"")),
        "links the active version: {page}"
    );
    let (_, _, page) = analyst.get(&format!("/models/runs/{again}?lang=fr")).await;
    assert!(page.contains("données inchangées"), "{page}");

    // Other options are another model: trained.
    let other = train_over_http(&app, &json!({"options": {"cv": 3, "seed": 9}})).await;
    assert_ne!(other["version"], version.as_str());

    // A new closed deal is new data: trained again with the first options.
    let response = app.put_opportunity("LATE-WIN-1", &won_deal("LATE-WIN-1")).await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let changed = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    assert_ne!(changed["version"], version.as_str());

    // And `force` trains whatever the data.
    let forced = train_over_http(&app, &json!({"options": {"cv": 3}, "force": true})).await;
    assert_eq!(forced["gate"]["outcome"], "forced", "{forced}");
}

#[tokio::test]
async fn the_gate_activates_a_better_model_and_holds_back_a_worse_one() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 9).await;
    let weak = train_over_http(&app, &json!({"spec": WEAK_SPEC, "options": {"cv": 3}})).await;
    assert_eq!(weak["gate"]["outcome"], "first_model");
    let weak_version = weak["version"].as_str().unwrap().to_owned();

    // Better: the full default spec beats the region-only model on its own holdout.
    let better = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let gate = &better["gate"];
    assert_eq!(gate["outcome"], "activated", "{gate}");
    assert_eq!(gate["active_version"], weak_version.as_str());
    assert!(
        gate["candidate_auc"].as_f64().unwrap() > gate["active_auc"].as_f64().unwrap() + 0.05,
        "{gate}"
    );
    let better_version = better["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &better_version).await;

    // Worse: region only again; it stays a candidate and the better model keeps serving.
    let worse = train_over_http(&app, &json!({"spec": WEAK_SPEC, "options": {"cv": 3, "seed": 5}})).await;
    let gate = &worse["gate"];
    assert_eq!(gate["outcome"], "held", "{gate}");
    assert!(
        gate["reason"]
            .as_str()
            .unwrap()
            .contains("below the active model"),
        "{gate}"
    );
    let worse_version = worse["version"].as_str().unwrap();
    let (_, versions) = app.get_json("/v1/models", &app.analyst_key).await;
    let status_of = |v: &str| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == v)
            .map(|r| (r["status"].clone(), r["gate"]["outcome"].clone()))
            .unwrap()
    };
    assert_eq!(status_of(worse_version), (json!("candidate"), json!("held")));
    assert_eq!(status_of(&better_version), (json!("active"), json!("activated")));
    assert_eq!(status_of(&weak_version).0, json!("retired"));

    // `force` overrides the gate and is recorded as such.
    let forced = train_over_http(
        &app,
        &json!({"spec": WEAK_SPEC, "options": {"cv": 3}, "force": true}),
    )
    .await;
    assert_eq!(forced["gate"]["outcome"], "forced", "{forced}");
    let forced_version = forced["version"].as_str().unwrap();
    let (_, report) = app
        .get_json(&format!("/v1/models/{forced_version}"), &app.analyst_key)
        .await;
    assert_eq!(report["status"], "active");
    assert_eq!(report["activations"][0]["reason"], "force");

    // Compare: both models on the newer one's holdout.
    let (status, comparison) = app
        .get_json(
            &format!("/v1/models/compare?a={weak_version}&b={better_version}"),
            &app.analyst_key,
        )
        .await;
    assert_eq!(status, 200, "{comparison}");
    assert_eq!(comparison["holdout_of"], better_version.as_str());
    assert_eq!(comparison["holdout"]["rebuilt_exactly"], true);
    let auc = comparison["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "roc_auc")
        .unwrap()
        .clone();
    assert!(auc["difference"].as_f64().unwrap() > 0.05, "{auc}");
    assert!(comparison["factors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["feature"] == "interaction_count" && f["a"].is_null()));
    let (status, _) = app
        .get_json(
            &format!("/v1/models/compare?a={weak_version}&b=m-nope"),
            &app.analyst_key,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rollback_activates_an_older_version_at_once_and_records_who_did_it() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 10).await;
    let first = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let first_version = first["version"].as_str().unwrap().to_owned();
    let second = train_over_http(&app, &json!({"options": {"cv": 3, "seed": 3}, "force": true})).await;
    let second_version = second["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &second_version).await;

    let response = app
        .client
        .post(app.url(&format!("/v1/models/{first_version}/activate")))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let record: Value = response.json().await.unwrap();
    assert_eq!(record["status"], "active");
    assert_eq!(record["activated_by"], "test-analyst");
    // The activating server serves it immediately, without waiting for its registry poll.
    let body: Value = app
        .client
        .post(app.url("/v1/score"))
        .bearer_auth(&app.rep_key)
        .json(&json!({"cycle_days": 30}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["model_version"], first_version.as_str());
    let (_, report) = app
        .get_json(&format!("/v1/models/{first_version}"), &app.analyst_key)
        .await;
    assert_eq!(report["activations"][0]["reason"], "rollback");
    assert_eq!(report["activations"][0]["activated_by"], "test-analyst");
    let (_, report) = app
        .get_json(&format!("/v1/models/{second_version}"), &app.analyst_key)
        .await;
    assert_eq!(report["status"], "retired");

    let response = app
        .client
        .post(app.url("/v1/models/m-unknown/activate"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, None).await;
    let (status, _) = app.get_json("/v1/models/m-unknown", &app.analyst_key).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn activating_a_version_whose_artifact_fails_its_checksum_is_refused_and_nothing_changes() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 11).await;
    let run = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let good = run["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &good).await;
    let (_, artifact) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();
    // Valid JSON whose content no longer matches its checksum.
    let tampered = artifact.replacen(
        &format!("\"version\": \"{good}\""),
        "\"version\": \"m-tampered\"",
        1,
    );
    assert_ne!(tampered, artifact);
    let new = dealscore::store::models::NewModelVersion {
        version: "m-tampered",
        created_at: chrono::Utc::now(),
        sha256: "0",
        artifact_json: &tampered,
        train_rows: 1,
        holdout_auc: None,
    };
    dealscore::store::models::register(&app.db, &new, false, "test", "tampered")
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/v1/models/m-tampered/activate"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, Some("version")).await;
    assert!(body.to_string().contains("checksum"), "{body}");
    let (record, _) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();
    assert_eq!(record.version, good);
    let (tampered_record, _) = dealscore::store::models::get(&app.db, "m-tampered")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tampered_record.status,
        dealscore::store::models::ModelStatus::Candidate
    );
    wait_for_model(&app, &good).await;
}

#[tokio::test]
async fn an_invalid_request_is_refused_with_every_problem_and_starts_nothing() {
    let (app, _models) = lifecycle_app().await;
    let response = post_train(
        &app,
        &json!({
            "spec": "[[feature]]\nname = \"colour\"\n[[feature]]\nname = \"amount\"\ntransform = \"cubic\"\n",
            "since": "2025-13-40",
            "options": {"test_fraction": 0, "cv": 1, "split": "sideways"}
        }),
    )
    .await;
    let body = assert_problem(response, 422, Some("since")).await;
    let text = body.to_string();
    for needle in [
        "colour",
        "cubic",
        "options.test_fraction",
        "options.cv",
        "options.split",
    ] {
        assert!(text.contains(needle), "{needle} missing: {body}");
    }
    let response = post_train(&app, &json!({"unknown": 1})).await;
    assert_problem(response, 400, None).await;
    let (_, runs) = app.get_json("/v1/training-runs", &app.analyst_key).await;
    assert_eq!(runs, json!([]));
    // The lifecycle routes are in the OpenAPI document.
    let (_, openapi) = app.get_json("/openapi.json", &app.analyst_key).await;
    for path in [
        "/v1/models/train",
        "/v1/training-runs",
        "/v1/training-runs/{id}",
        "/v1/models",
        "/v1/models/active",
        "/v1/models/compare",
        "/v1/models/{version}",
        "/v1/models/{version}/activate",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
}

#[tokio::test]
async fn a_window_with_too_few_deals_fails_the_run_with_that_reason_and_changes_nothing() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 60, 1).await;
    let id = start_run(&app, &json!({})).await;
    let (run, _) = wait_for_run(&app, &id).await;
    assert_eq!(run["state"], "failed");
    assert!(
        run["error"].as_str().unwrap().contains("too few closed deals"),
        "{run}"
    );
    assert!(run["version"].is_null());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM model_versions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

async fn insert_run(app: &TestApp, id: &str, heartbeat_ms_ago: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO training_runs (id, state, active_slot, trigger, requested_by, request, phase, done, total, \
         created_at, started_at, heartbeat_at, owner) VALUES ($1, 'running', 1, 'api', 'x', '{}', 'final_fit', 3, 9, $2, $2, $3, 'srv-other')",
    )
    .bind(id)
    .bind(now - heartbeat_ms_ago - 1000)
    .bind(now - heartbeat_ms_ago)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_run_interrupted_by_a_crash_is_marked_failed_at_the_next_start_but_a_live_one_is_not() {
    let (app, _models) = lifecycle_app().await;
    // A run whose server died ten minutes ago.
    insert_run(&app, "run-crashed", 600_000).await;
    let restarted = dealscore::app::Application::build(test_settings(&app.db_url))
        .await
        .unwrap();
    let run = dealscore::store::training_runs::get(restarted.db(), "run-crashed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.state, dealscore::store::training_runs::RunState::Failed);
    assert!(
        run.error.as_deref().unwrap().starts_with("interrupted"),
        "{run:?}"
    );
    drop(restarted);

    // A run another live server is running (fresh heartbeat) survives a restart, and holds the slot.
    insert_run(&app, "run-live", 0).await;
    let restarted = dealscore::app::Application::build(test_settings(&app.db_url))
        .await
        .unwrap();
    let run = dealscore::store::training_runs::get(restarted.db(), "run-live")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.state, dealscore::store::training_runs::RunState::Running);
    drop(restarted);
    let response = post_train(&app, &json!({})).await;
    let body = assert_problem(response, 409, None).await;
    assert!(body["detail"].as_str().unwrap().contains("run-live"), "{body}");
}

#[tokio::test]
async fn the_schedule_lease_is_held_by_one_server_at_a_time() {
    let (app, _models) = lifecycle_app().await;
    use dealscore::store::training_runs::acquire_lease;
    let ttl = Duration::from_millis(600);
    assert!(acquire_lease(&app.db, "test-lease", "a", ttl).await.unwrap());
    assert!(!acquire_lease(&app.db, "test-lease", "b", ttl).await.unwrap());
    assert!(
        acquire_lease(&app.db, "test-lease", "a", ttl).await.unwrap(),
        "the holder renews"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        acquire_lease(&app.db, "test-lease", "b", ttl).await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(!acquire_lease(&app.db, "test-lease", "a", ttl).await.unwrap());
}

#[tokio::test]
async fn serve_with_retrain_every_trains_on_its_own() {
    let (app, _models) = lifecycle_app_with(|s| s.retrain_every = "2s".into()).await;
    import_generated(&app, 3000, 12).await;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no scheduled run succeeded"
        );
        let (_, runs) = app.get_json("/v1/training-runs", &app.analyst_key).await;
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["trigger"] == "schedule" && r["state"] == "succeeded")
            .cloned();
        if let Some(run) = done {
            assert_eq!(run["requested_by"], "schedule");
            assert_eq!(run["gate"]["outcome"], "first_model", "{run}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `dealscore serve` child process, killed when dropped.
struct ServerProcess {
    child: std::process::Child,
    address: String,
    _models: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server_process(db_url: &str) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let models = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(crate::helpers::bin_path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db_url)
        .env("DEALSCORE_MODEL_REFRESH_SECS", "1")
        .env("DEALSCORE_MODELS_DIR", models.path())
        .env("DEALSCORE_WORKERS", "2")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start dealscore serve");
    let server = ServerProcess {
        child,
        address: format!("http://127.0.0.1:{port}"),
        _models: models,
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{}/readyz", server.address)).send().await {
            if r.status() == 200 {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dealscore serve never became ready");
}

#[tokio::test]
async fn two_servers_on_one_database_follow_an_activation_within_five_seconds_without_failed_requests() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 13).await;
    let first = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let first_version = first["version"].as_str().unwrap().to_owned();
    let second = train_over_http(&app, &json!({"options": {"cv": 3, "seed": 4}, "force": true})).await;
    let second_version = second["version"].as_str().unwrap().to_owned();

    let one = start_server_process(&app.db_url).await;
    let two = start_server_process(&app.db_url).await;
    let score_on = |address: String, key: String| async move {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{address}/v1/score"))
            .bearer_auth(key)
            .json(&json!({"cycle_days": 30, "interaction_count": 4}))
            .send()
            .await;
        match response {
            Ok(r) if r.status() == 200 => r.json::<Value>().await.ok().map(|b| b["model_version"].clone()),
            _ => None,
        }
    };
    // Both serve the current active model first.
    for server in [&one, &two] {
        let started = Instant::now();
        while score_on(server.address.clone(), app.rep_key.clone()).await != Some(json!(second_version)) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} never served {second_version}",
                server.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A client hammers server two throughout; the rollback is made on server one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        let address = two.address.clone();
        let key = app.rep_key.clone();
        let target = first_version.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut switched_at: Option<Instant> = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client
                    .post(format!("{address}/v1/score"))
                    .bearer_auth(&key)
                    .json(&json!({"cycle_days": 30, "interaction_count": 4}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        ok += 1;
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        if switched_at.is_none() && body["model_version"] == target.as_str() {
                            switched_at = Some(Instant::now());
                        }
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, switched_at)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let activated_at = Instant::now();
    let response = app
        .client
        .post(format!("{}/v1/models/{first_version}/activate", one.address))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, switched_at) = hammer.await.unwrap();
    assert_eq!(failed, 0, "{failed} failed requests of {}", ok + failed);
    assert!(ok > 50, "only {ok} requests");
    let switched_at = switched_at.expect("server two never served the activated model");
    let delay = switched_at.saturating_duration_since(activated_at);
    eprintln!("server two followed the activation after {delay:?} ({ok} requests, 0 failed)");
    assert!(delay < Duration::from_secs(5), "took {delay:?}");
}

/// `artifact` with its intercept shifted and its embedded checksum recomputed: it passes its own
/// check, so only the checksum the registry recorded can tell it was altered.
fn forge(artifact: &str, version: &str) -> String {
    let mut forged = dealscore::model::ModelArtifact::from_json_verified(artifact).unwrap();
    forged.version = version.to_owned();
    forged.intercept += 3.0;
    forged.seal();
    let text = forged.to_json_pretty().unwrap();
    assert!(dealscore::model::ModelArtifact::from_json_verified(&text).is_ok());
    text
}

#[tokio::test]
async fn an_artifact_resealed_after_registration_is_refused_on_activation_and_when_active() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 3000, 11).await;
    let run = train_over_http(&app, &json!({"options": {"cv": 3}})).await;
    let good = run["version"].as_str().unwrap().to_owned();
    wait_for_model(&app, &good).await;
    let (record, artifact) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();

    // A version registered with one checksum whose artifact is later replaced, sealed anew.
    let forged = forge(&artifact, "m-forged");
    let new = dealscore::store::models::NewModelVersion {
        version: "m-forged",
        created_at: chrono::Utc::now(),
        sha256: &record.sha256,
        artifact_json: &forged,
        train_rows: 1,
        holdout_auc: None,
    };
    dealscore::store::models::register(&app.db, &new, false, "test", "forged")
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/v1/models/m-forged/activate"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, Some("version")).await;
    assert!(body.to_string().contains("registry"), "{body}");
    let (active, _) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();
    assert_eq!(active.version, good);

    // The active version's artifact replaced the same way: a server starting on it serves
    // nothing and says why.
    sqlx::query("UPDATE model_versions SET artifact = $1 WHERE version = $2")
        .bind(forge(&artifact, &good))
        .bind(good.clone())
        .execute(&app.db.pool)
        .await
        .unwrap();
    let restarted = dealscore::app::Application::build(test_settings(&app.db_url))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", restarted.port());
    tokio::spawn(restarted.run_until_stopped());
    let response = app
        .client
        .post(format!("{address}/v1/score"))
        .bearer_auth(&app.rep_key)
        .json(&json!({"cycle_days": 30}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 503, None).await;
    assert_eq!(
        body["type"], "https://dealscore.dev/problems/active-model-invalid",
        "{body}"
    );
    let response = app
        .client
        .get(format!("{address}/v1/models/active"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 503, None).await;
    assert_eq!(
        body["type"], "https://dealscore.dev/problems/active-model-invalid",
        "{body}"
    );
    let response = app.client.get(format!("{address}/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"], "https://dealscore.dev/problems/active-model-invalid",
        "{body}"
    );
}

/// While a run reads the closed deals and trains, writes keep being answered: the run's reads and
/// its progress records never hold the database (on SQLite, a write stuck behind the run would
/// answer 503 `database-busy`).
#[tokio::test]
async fn writes_keep_succeeding_while_a_training_run_loads_and_fits() {
    let (app, _models) = lifecycle_app().await;
    import_generated(&app, 30_000, 21).await;
    let id = start_run(&app, &json!({})).await;
    let app = std::sync::Arc::new(app);
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let app = std::sync::Arc::clone(&app);
            let id = id.clone();
            tokio::spawn(async move {
                let mut written = 0;
                for i in 0.. {
                    let deal = format!("during-{w}-{}", i % 20);
                    let response = app
                        .put_opportunity(&deal, &crate::helpers::open_deal(&deal, "alice", "EMEA"))
                        .await;
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    assert!(
                        status == 200 || status == 201,
                        "write {i} of writer {w} answered {status}: {body}"
                    );
                    written += 1;
                    let (_, run) = app
                        .get_json(&format!("/v1/training-runs/{id}"), &app.analyst_key)
                        .await;
                    if run["state"] == "succeeded" || run["state"] == "failed" {
                        break;
                    }
                }
                written
            })
        })
        .collect();
    let mut written = 0;
    for writer in writers {
        written += writer.await.expect("writer");
    }
    let (run, seen) = wait_for_run(&app, &id).await;
    assert_eq!(run["state"], "succeeded", "{run} {seen:?}");
    assert!(written > 6, "only {written} writes during the run");
}
