use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use dealscore::ingest::signature;
use dealscore::store::Db;
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{
    assert_problem, bin_path, pool_options, signature_now, spawn_app_with, webhook_source, TestApp, TestDb,
};

const SECRET: &str = "whsec_first";

async fn crm_app() -> TestApp {
    spawn_app_with(|s| s.webhook_sources = vec![webhook_source("crm", &[SECRET, "whsec_second"])]).await
}

fn upsert(id: &str, opp: &str, at: &str, amount: f64) -> Value {
    json!({"id": id, "type": "opportunity.upserted", "occurred_at": at, "data": {
        "external_id": opp, "name": "Deal", "owner": "alice", "amount": amount, "status": "open",
        "created_at": "2025-01-01"}})
}

async fn stored_amount(app: &TestApp, id: &str) -> Value {
    let (_, body) = app
        .get_json(&format!("/v1/opportunities/{id}"), &app.rep_key)
        .await;
    body["amount"].clone()
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!("/v1/webhooks/crm/events{query}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_bad_signature_is_refused_with_401_and_only_a_rejection_record() {
    let app = crm_app().await;
    let body = upsert("e1", "D-1", "2025-03-01T10:00:00Z", 10.0).to_string();
    let now = chrono::Utc::now().timestamp();
    let mut altered = body.clone().into_bytes();
    altered[body.len() - 3] ^= 1;
    let altered = String::from_utf8(altered).unwrap();
    // A minute beyond the 300 s tolerance: a loaded machine takes seconds between `now` and the
    // request, which must not turn a "future" signature into an accepted one.
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("missing header", None, body.clone()),
        ("malformed header", Some("sha256=abc".into()), body.clone()),
        ("non-hex v1", Some(format!("t={now},v1=xyz")), body.clone()),
        (
            "wrong secret",
            Some(signature::header_value("nope", now, body.as_bytes())),
            body.clone(),
        ),
        (
            "stale",
            Some(signature::header_value(SECRET, now - 360, body.as_bytes())),
            body.clone(),
        ),
        (
            "future",
            Some(signature::header_value(SECRET, now + 360, body.as_bytes())),
            body.clone(),
        ),
        (
            "body altered by one byte",
            Some(signature::header_value(SECRET, now, body.as_bytes())),
            altered,
        ),
    ];
    for (case, header, sent) in &cases {
        let response = app.post_webhook("crm", sent, header.clone()).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_problem(response, 401, None).await;
    }
    assert_eq!(app.count_opportunities().await, 0);
    let rejected = events(&app, "?status=rejected").await;
    assert_eq!(rejected.len(), cases.len());
    assert!(rejected
        .iter()
        .all(|e| e["event_id"].is_null() && e["reason"].is_string()));

    // The rotated (second) secret is accepted, and so is a header carrying several v1 values.
    let response = app.post_signed("crm", "whsec_second", &body).await;
    assert_eq!(response.status(), 200);
    let two = format!(
        "t={now},v1={},v1={}",
        signature::sign("old", now, body.as_bytes()),
        signature::sign(SECRET, now, body.as_bytes())
    );
    let response = app.post_webhook("crm", &body, Some(two)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count_opportunities().await, 1);
}

#[tokio::test]
async fn a_source_mapping_renames_fields_and_a_bad_one_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("hubspot.toml");
    std::fs::write(
        &mapping,
        "ignore = [\"hs_internal\"]\n[columns]\nexternal_id = \"dealId\"\nstatus = \"dealstage\"\n\
         [status_values]\nclosedwon = \"won\"\nappointmentscheduled = \"open\"\n[defaults]\ncurrency = \"USD\"\n",
    )
    .unwrap();
    let path = mapping.display().to_string();
    let app = spawn_app_with(|s| {
        let mut source = webhook_source("crm", &[SECRET]);
        source.mapping = Some(path);
        s.webhook_sources = vec![source];
    })
    .await;
    let event = json!({"id": "h1", "type": "opportunity.upserted", "occurred_at": "2025-03-01T10:00:00Z",
                       "data": {"dealId": "HS-1", "dealstage": "appointmentscheduled", "hs_internal": 1,
                                "amount": 10}});
    let response = app.post_signed("crm", SECRET, &event.to_string()).await;
    assert_eq!(response.status(), 200);
    let (_, stored) = app.get_json("/v1/opportunities/HS-1", &app.analyst_key).await;
    assert_eq!(stored["status"], "open");
    assert_eq!(stored["currency"], "USD");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[columns]\ncolour = \"c\"\n").unwrap();
    let test_db = TestDb::new().await;
    let mut settings = crate::helpers::test_settings(&test_db.url);
    let mut source = webhook_source("crm", &[SECRET]);
    source.mapping = Some(bad.display().to_string());
    settings.webhook_sources = vec![source];
    let err = dealscore::app::Application::build(settings)
        .await
        .err()
        .expect("startup error");
    assert!(err.to_string().contains("bad.toml"), "{err}");
}

#[tokio::test]
async fn an_unknown_source_is_404_and_needs_no_key() {
    let app = crm_app().await;
    let body = upsert("e1", "D-1", "2025-03-01T10:00:00Z", 10.0).to_string();
    assert_problem(app.post_signed("hubspot", SECRET, &body).await, 404, None).await;
    let response = app.post_signed("crm", SECRET, &body).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_duplicate_delivery_answers_the_original_outcome_and_changes_nothing() {
    let app = crm_app().await;
    let body = upsert("e1", "D-1", "2025-03-01T10:00:00Z", 10.0).to_string();
    let first: Value = app.post_signed("crm", SECRET, &body).await.json().await.unwrap();
    assert_eq!(first["status"], "applied");
    assert_eq!(first["result"], "inserted");
    assert_eq!(first["external_id"], "D-1");
    assert!(first["score"].is_null());
    assert_eq!(first["scoring"], "unavailable");
    let before: Value = app.get_opportunity("D-1").await.json().await.unwrap();

    // Same id, even with other content: the original outcome, nothing applied.
    let changed = upsert("e1", "D-1", "2025-03-02T10:00:00Z", 99.0).to_string();
    let response = app.post_signed("crm", SECRET, &changed).await;
    assert_eq!(response.status(), 200);
    let mut again: Value = response.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    again.as_object_mut().unwrap().remove("duplicate");
    assert_eq!(again, first);
    let after: Value = app.get_opportunity("D-1").await.json().await.unwrap();
    assert_eq!(after, before);
    assert_eq!(events(&app, "?status=duplicate").await.len(), 1);
    assert_eq!(events(&app, "?status=applied").await.len(), 1);

    // ?score=false leaves the score out.
    let response = app.post_signed("crm?score=false", SECRET, &body).await;
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("score").is_none() && body.get("scoring").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let app = crm_app().await;
    let body = upsert("e1", "D-1", "2025-03-01T10:00:00Z", 10.0).to_string();
    let sends = (0..8).map(|_| app.post_signed("crm", SECRET, &body));
    let mut duplicates = 0;
    for response in futures_util::future::join_all(sends).await {
        assert_eq!(response.status(), 200);
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["status"], "applied");
        duplicates += usize::from(outcome["duplicate"] == true);
    }
    assert_eq!(duplicates, 7);
    assert_eq!(events(&app, "?status=applied").await.len(), 1);
}

/// Deliveries arriving together on different deals are applied together (one set-based pass,
/// one commit); each sender still gets exactly its own outcome, and redelivering them all at once
/// changes nothing.
#[tokio::test]
async fn concurrent_deliveries_on_different_deals_each_get_their_own_outcome() {
    let app = crm_app().await;
    let bodies: Vec<String> = (0..24)
        .map(|i| {
            upsert(
                &format!("c{i}"),
                &format!("C-{i}"),
                "2025-03-01T10:00:00Z",
                f64::from(i),
            )
            .to_string()
        })
        .collect();
    for round in ["first", "redelivered"] {
        let answers =
            futures_util::future::join_all(bodies.iter().map(|b| app.post_signed("crm", SECRET, b))).await;
        for (i, response) in answers.into_iter().enumerate() {
            assert_eq!(response.status(), 200, "{round} {i}");
            let outcome: Value = response.json().await.unwrap();
            assert_eq!(outcome["id"], format!("c{i}"), "{round}: {outcome}");
            assert_eq!(outcome["external_id"], format!("C-{i}"), "{round}: {outcome}");
            assert_eq!(outcome["status"], "applied", "{round}: {outcome}");
            assert_eq!(outcome["result"], "inserted", "{round}: {outcome}");
            assert_eq!(
                outcome.get("duplicate").is_some(),
                round == "redelivered",
                "{outcome}"
            );
        }
    }
    for i in [0, 13, 23] {
        assert_eq!(stored_amount(&app, &format!("C-{i}")).await, f64::from(i));
    }
    assert_eq!(events(&app, "?status=applied&limit=100").await.len(), 24);
    assert_eq!(events(&app, "?status=duplicate&limit=100").await.len(), 24);
}

/// Inside a batch, events on one deal keep their order and the event clock, whatever other
/// deals sit between them.
#[tokio::test]
async fn a_batch_orders_events_on_one_deal_between_events_on_others() {
    let app = crm_app().await;
    let batch = json!({"events": [
        upsert("o1", "D-9", "2025-03-01T10:00:00Z", 1.0),
        upsert("o2", "D-10", "2025-03-01T10:00:00Z", 10.0),
        upsert("o3", "D-9", "2025-03-01T09:00:00Z", 2.0),
        upsert("o4", "D-11", "2025-03-01T10:00:00Z", 11.0),
        upsert("o5", "D-9", "2025-03-01T11:00:00Z", 4.0),
        upsert("o6", "D-10", "2025-03-01T10:00:00Z", 10.0),
    ]});
    let response = app.post_signed("crm", SECRET, &batch.to_string()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let answered: Vec<(&str, &str)> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["result"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(
        answered,
        [
            ("applied", "inserted"),
            ("applied", "inserted"),
            ("ignored", "-"),
            ("applied", "inserted"),
            ("applied", "updated"),
            ("applied", "unchanged"),
        ]
    );
    let reason = body["events"][2]["reason"].as_str().unwrap();
    assert!(reason.contains("2025-03-01T10:00:00"), "{reason}");
    assert_eq!(stored_amount(&app, "D-9").await, 4.0);
    assert_eq!(events(&app, "?status=ignored").await.len(), 1);
}

#[tokio::test]
async fn an_older_event_is_recorded_and_ignored_even_after_a_delete() {
    let app = crm_app().await;
    let newer = upsert("e2", "D-1", "2025-03-01T12:00:00Z", 200.0).to_string();
    let older = upsert("e1", "D-1", "2025-03-01T11:00:00Z", 100.0).to_string();
    assert_eq!(app.post_signed("crm", SECRET, &newer).await.status(), 200);
    let response = app.post_signed("crm", SECRET, &older).await;
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["status"], "ignored");
    assert!(outcome["reason"].as_str().unwrap().contains("older"));
    assert_eq!(stored_amount(&app, "D-1").await, 200.0);

    let delete = json!({"id": "e3", "type": "opportunity.deleted", "occurred_at": "2025-03-01T13:00:00Z",
                        "data": {"external_id": "D-1"}});
    let outcome: Value = app
        .post_signed("crm", SECRET, &delete.to_string())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome["result"], "deleted");
    assert!(outcome.get("score").is_none());
    let late = upsert("e4", "D-1", "2025-03-01T12:30:00Z", 300.0).to_string();
    let outcome: Value = app.post_signed("crm", SECRET, &late).await.json().await.unwrap();
    assert_eq!(outcome["status"], "ignored");
    assert_eq!(app.count_opportunities().await, 0);
    assert_eq!(events(&app, "?status=ignored").await.len(), 2);
}

#[tokio::test]
async fn a_batch_applies_the_valid_events_in_order_and_lists_every_outcome() {
    let app = crm_app().await;
    let batch = json!({"events": [
        upsert("b1", "D-1", "2025-03-01T10:00:00Z", 10.0),
        {"id": "b2", "type": "opportunity.upserted", "occurred_at": "2025-03-01T10:00:00Z",
         "data": {"external_id": "D-2", "status": "open", "amount": -5}},
        {"id": "b3", "type": "activity.logged", "occurred_at": "2025-03-01T10:01:00Z",
         "data": {"opportunity_id": "D-1", "id": "a1", "kind": "call", "direction": "outbound",
                  "occurred_at": "2025-03-01T10:01:00Z"}},
        {"id": "b4", "type": "opportunity.renamed", "occurred_at": "2025-03-01T10:00:00Z", "data": {}},
        {"id": "b5", "type": "opportunity.closed", "occurred_at": "2025-03-02T10:00:00Z",
         "data": {"external_id": "D-1", "status": "won", "closed_at": "2025-03-02"}},
        upsert("b1", "D-1", "2025-03-03T10:00:00Z", 50.0),
    ]});
    let response = app.post_signed("crm", SECRET, &batch.to_string()).await;
    assert_eq!(response.status(), 207);
    let body: Value = response.json().await.unwrap();
    let statuses: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["applied", "rejected", "applied", "rejected", "applied", "applied"]
    );
    assert_eq!(body["events"][5]["duplicate"], true);
    assert_eq!(body["events"][1]["errors"][0]["field"], "data.amount");
    assert_eq!(body["events"][3]["errors"][0]["field"], "type");
    assert_eq!(
        body["summary"],
        json!({"applied": 3, "duplicate": 1, "ignored": 0, "rejected": 2})
    );
    let (_, closed) = app.get_json("/v1/opportunities/D-1", &app.rep_key).await;
    assert_eq!(closed["status"], "won");
    assert_eq!(closed["name"], "Deal"); // merged onto the stored opportunity
    assert_eq!(closed["interaction_count"], 1);
    assert_eq!(app.count_opportunities().await, 1);

    // A batch without rejections answers 200.
    let ok = json!({"events": [upsert("c1", "D-3", "2025-03-01T10:00:00Z", 1.0)]});
    assert_eq!(
        app.post_signed("crm", SECRET, &ok.to_string()).await.status(),
        200
    );
}

#[tokio::test]
async fn bad_bodies_get_400_422_and_413() {
    let app = crm_app().await;
    assert_problem(app.post_signed("crm", SECRET, "{not json").await, 400, None).await;
    let unknown =
        json!({"id": "x1", "type": "deal.exploded", "occurred_at": "2025-03-01T10:00:00Z", "data": {}});
    assert_problem(
        app.post_signed("crm", SECRET, &unknown.to_string()).await,
        422,
        Some("type"),
    )
    .await;
    let invalid = json!({"id": "x2", "type": "opportunity.upserted", "occurred_at": "2025-03-01T10:00:00Z",
                         "data": {"external_id": "D-1", "status": "maybe"}});
    assert_problem(
        app.post_signed("crm", SECRET, &invalid.to_string()).await,
        422,
        Some("data.status"),
    )
    .await;
    let rejected = events(&app, "?status=rejected").await;
    assert_eq!(rejected.len(), 2);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("data.status"));
    // A rejected event's id is not reserved: the corrected event is applied.
    let fixed = upsert("x2", "D-1", "2025-03-01T10:00:00Z", 1.0).to_string();
    let outcome: Value = app.post_signed("crm", SECRET, &fixed).await.json().await.unwrap();
    assert_eq!(outcome["status"], "applied");

    let many: Vec<Value> = (0..1001)
        .map(|i| upsert(&format!("m{i}"), &format!("M-{i}"), "2025-03-01T10:00:00Z", 1.0))
        .collect();
    let body = json!({ "events": many }).to_string();
    assert_problem(app.post_signed("crm", SECRET, &body).await, 413, None).await;
    let small = spawn_app_with(|s| {
        s.webhook_sources = vec![webhook_source("crm", &[SECRET])];
        s.max_body_bytes = 100;
    })
    .await;
    let body = upsert("e1", "D-1", "2025-03-01T10:00:00Z", 1.0).to_string();
    assert_problem(small.post_signed("crm", SECRET, &body).await, 413, None).await;
    assert_eq!(app.count_opportunities().await, 1);
}

#[tokio::test]
async fn admins_list_events_and_others_may_not() {
    let app = crm_app().await;
    for i in 0..3 {
        let body = upsert(
            &format!("e{i}"),
            "D-1",
            &format!("2025-03-0{}T10:00:00Z", i + 1),
            i as f64,
        );
        app.post_signed("crm", SECRET, &body.to_string()).await;
    }
    app.post_webhook("crm", "{}", None).await;
    let all = events(&app, "?limit=2").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["status"], "rejected"); // newest first
    assert_eq!(all[1]["event_id"], "e2");
    assert_eq!(all[1]["outcome"]["result"], "updated");
    assert_eq!(events(&app, "?status=applied").await.len(), 3);
    let (status, _) = app.get_json("/v1/webhooks/crm/events", &app.analyst_key).await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get_json("/v1/webhooks/crm/events?status=odd", &app.admin_key)
        .await;
    assert_eq!(status, 400);
    let (status, _) = app.get_json("/v1/webhooks/other/events", &app.admin_key).await;
    assert_eq!(status, 404);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"dealscore_webhook_events_total{source="crm",status="applied"} 3"#),
        "{metrics}"
    );
}

/// A local CRM endpoint answering `statuses` in turn (the last one forever), recording the
/// signature check of every request.
async fn callback_server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<bool>>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let verified = Arc::new(Mutex::new(Vec::new()));
    let (c, v) = (calls.clone(), verified.clone());
    let server = HttpServer::new(move || {
        let (c, v, statuses) = (c.clone(), v.clone(), statuses.clone());
        App::new().route(
            "/score",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (c, v, statuses) = (c.clone(), v.clone(), statuses.clone());
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    let header = req
                        .headers()
                        .get("Dealscore-Signature")
                        .and_then(|h| h.to_str().ok());
                    let ok = signature::verify(
                        header,
                        &body,
                        &[SECRET.to_string()],
                        chrono::Utc::now().timestamp(),
                        300,
                    )
                    .is_ok();
                    v.lock().unwrap().push(ok);
                    let status = statuses[n.min(statuses.len() - 1)];
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}/score"), calls, verified)
}

async fn app_with_callback(url: &str, max_attempts: u32) -> TestApp {
    let url = url.to_owned();
    spawn_app_with(move |s| {
        let mut source = webhook_source("crm", &[SECRET]);
        source.callback_url = Some(url);
        s.webhook_sources = vec![source];
        s.outbox_base_delay_ms = 20;
        s.outbox_max_attempts = max_attempts;
    })
    .await
}

async fn enqueue(app: &TestApp) -> i64 {
    let mut tx = app.db.pool.begin().await.unwrap();
    let payload = json!({"external_id": "D-1", "score": 71, "grade": "B"});
    let id = dealscore::ingest::webhook::writeback::enqueue_score_change(&mut tx, "crm", "D-1", payload)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn wait_for_outbox(app: &TestApp, status: &str) -> Vec<Value> {
    for _ in 0..200 {
        let (_, body) = app
            .get_json(
                &format!("/v1/webhooks/crm/outbox?status={status}"),
                &app.admin_key,
            )
            .await;
        if body.as_array().is_some_and(|a| !a.is_empty()) {
            return body.as_array().cloned().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {status} outbox row in time");
}

#[tokio::test]
async fn the_outbox_retries_a_failing_callback_until_it_succeeds() {
    let (url, calls, verified) = callback_server(vec![500, 503, 200]).await;
    let app = app_with_callback(&url, 8).await;
    enqueue(&app).await;
    let delivered = wait_for_outbox(&app, "delivered").await;
    assert_eq!(delivered[0]["attempts"], 3);
    assert_eq!(delivered[0]["payload"]["score"], 71);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(verified.lock().unwrap().iter().all(|ok| *ok));
}

#[tokio::test]
async fn the_outbox_dead_letters_after_the_last_attempt_and_an_admin_can_retry() {
    let (url, calls, _) = callback_server(vec![500]).await;
    let app = app_with_callback(&url, 3).await;
    let id = enqueue(&app).await;
    let dead = wait_for_outbox(&app, "dead").await;
    assert_eq!(dead[0]["attempts"], 3);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("500"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let retry = app
        .client
        .post(app.url(&format!("/v1/webhooks/crm/outbox/{id}/retry")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    wait_for_outbox(&app, "dead").await;
    assert!(calls.load(Ordering::SeqCst) >= 4);
    let missing = app
        .client
        .post(app.url("/v1/webhooks/crm/outbox/999/retry"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_problem(missing, 404, None).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"dealscore_webhook_outbox_deliveries_total{result="dead",source="crm"}"#));
}

struct Server {
    child: std::process::Child,
    address: String,
}

impl Drop for Server {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn start_binary(db_url: &str, config: &std::path::Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(bin_path())
        .args([
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dealscore");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{address}/healthz")).send().await.is_ok() {
            return Server { child, address };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("dealscore did not start");
}

/// The event a durability sender sends as its `n`-th: an upsert of a fresh opportunity (even n)
/// or an activity on the previous one (odd n).
fn durable_event(task: usize, n: usize) -> (String, Value) {
    let id = format!("t{task}-{n}");
    let opp = format!("K-{task}-{}", n / 2);
    let event = if n % 2 == 0 {
        upsert(&id, &opp, "2025-03-01T10:00:00Z", n as f64)
    } else {
        json!({"id": id, "type": "activity.logged", "occurred_at": "2025-03-01T10:00:00Z",
               "data": {"opportunity_id": opp, "id": id, "kind": "email", "direction": "inbound",
                        "occurred_at": "2025-03-01T09:00:00Z"}})
    };
    (id, event)
}

#[tokio::test]
async fn acknowledged_events_survive_a_sigkill_exactly_once() {
    let test_db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dealscore.toml");
    std::fs::write(
        &config,
        format!("[[webhook_sources]]\nname = \"crm\"\nsecrets = [\"{SECRET}\"]\n"),
    )
    .unwrap();
    let mut server = start_binary(&test_db.url, &config).await;
    let acked: Arc<Mutex<Vec<(String, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for task in 0..6 {
        let (client, address, acked) = (client.clone(), server.address.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                let (id, event) = durable_event(task, n);
                let body = event.to_string();
                let sent = client
                    .post(format!("{address}/v1/webhooks/crm"))
                    .header("Dealscore-Signature", signature_now(SECRET, &body))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acked.lock().unwrap().push((id, event)),
                    // The odd event whose upsert was lost in the kill is refused (422): fine.
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = start_binary(&test_db.url, &config).await;
    let db = Db::connect(&test_db.url, &pool_options()).await.unwrap();
    let count = |sql: &'static str, bind: String| {
        let db = db.clone();
        async move {
            sqlx::query(sql)
                .bind(bind)
                .fetch_one(&db.pool)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    for (id, event) in &acked {
        let applied = count(
            "SELECT COUNT(*) FROM webhook_events WHERE source = 'crm' AND event_id = $1 AND status = 'applied'",
            id.clone(),
        )
        .await;
        assert_eq!(applied, 1, "{id} acknowledged but not recorded once");
        let effect = if event["type"] == "opportunity.upserted" {
            count(
                "SELECT COUNT(*) FROM opportunities WHERE external_id = $1",
                event["data"]["external_id"].as_str().unwrap().to_owned(),
            )
            .await
        } else {
            count(
                "SELECT COUNT(*) FROM activities WHERE activity_id = $1",
                id.clone(),
            )
            .await
        };
        assert_eq!(effect, 1, "{id} acknowledged but its effect is missing");
    }
    // Nothing half-applied: every effect in the database has its event record and vice versa.
    let orphans = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&db.pool)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    assert_eq!(
        orphans(
            "SELECT COUNT(*) FROM opportunities o WHERE NOT EXISTS (SELECT 1 FROM webhook_events e \
             WHERE e.external_id = o.external_id AND e.status = 'applied' AND e.event_type = 'opportunity.upserted')"
        )
        .await,
        0
    );
    assert_eq!(
        orphans(
            "SELECT COUNT(*) FROM activities a WHERE NOT EXISTS (SELECT 1 FROM webhook_events e \
             WHERE e.event_id = a.activity_id AND e.status = 'applied')"
        )
        .await,
        0
    );
    assert_eq!(
        orphans(
            "SELECT COUNT(*) FROM webhook_events e WHERE e.status = 'applied' AND e.event_type = 'activity.logged' \
             AND NOT EXISTS (SELECT 1 FROM activities a WHERE a.activity_id = e.event_id)"
        )
        .await,
        0
    );

    // Redelivering every acknowledged event after the restart changes nothing.
    let opportunities_before = orphans("SELECT COUNT(*) FROM opportunities").await;
    for (_, event) in acked.iter().take(40) {
        let body = event.to_string();
        let response = client
            .post(format!("{}/v1/webhooks/crm", server.address))
            .header("Dealscore-Signature", signature_now(SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["duplicate"], true, "{outcome}");
    }
    assert_eq!(
        orphans("SELECT COUNT(*) FROM opportunities").await,
        opportunities_before
    );
    drop(server);
    db.pool.close().await;
}

#[tokio::test]
async fn with_a_model_an_event_answers_its_fresh_score_and_queues_a_write_back() {
    let (url, calls, verified) = callback_server(vec![200]).await;
    let app = app_with_callback(&url, 8).await;
    crate::helpers::import_generated(&app, 3000, 7).await;
    let report = crate::helpers::train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"].as_str().unwrap().to_owned();
    crate::helpers::wait_for_model(&app, &version).await;

    let body =
        json!({"id": "evt-score-1", "type": "opportunity.upserted", "occurred_at": "2026-11-01T10:00:00Z",
        "data": {"external_id": "W-1", "status": "open", "sector": "software", "amount": 25000,
                 "created_at": "2026-10-01", "contact_role": "end_user", "response_hours": 30}})
        .to_string();
    let response = app.post_signed("crm", SECRET, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["scoring"], "ok", "{answer}");
    assert_eq!(answer["score"]["model_version"], version.as_str());
    assert!(answer["score"]["grade"].is_string() && answer["score"]["next_intervention"].is_object());

    // the first score is always worth writing back; it reaches the CRM signed
    let delivered = wait_for_outbox(&app, "delivered").await;
    assert_eq!(delivered[0]["payload"]["external_id"], "W-1");
    assert_eq!(
        delivered[0]["payload"]["result"]["score"],
        answer["score"]["score"]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(verified.lock().unwrap().iter().all(|ok| *ok));

    // the score is in the history, and reading it again adds no row (same deal, same model);
    // ?score=false leaves it out of the answer
    let (_, stored) = app
        .get_json("/v1/opportunities/W-1/score", &app.analyst_key)
        .await;
    assert_eq!(stored["history"].as_array().unwrap().len(), 1);
    let body =
        json!({"id": "evt-score-2", "type": "opportunity.upserted", "occurred_at": "2026-11-02T10:00:00Z",
        "data": {"external_id": "W-1", "status": "open", "sector": "software", "amount": 25000,
                 "created_at": "2026-10-01", "contact_role": "end_user", "response_hours": 30}})
        .to_string();
    let answer: Value = app
        .post_signed("crm?score=false", SECRET, &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(answer.get("score").is_none(), "{answer}");

    // A batch scores each deal after its events, a deal sent twice against its first new score.
    let deal = |id: &str, event: &str, at: &str, hours: f64| {
        json!({"id": event, "type": "opportunity.upserted", "occurred_at": at,
        "data": {"external_id": id, "status": "open", "sector": "software", "amount": 25000,
                 "created_at": "2026-10-01", "contact_role": "end_user", "response_hours": hours}})
    };
    let batch = json!({"events": [
        deal("W-2", "evt-b1", "2026-11-03T10:00:00Z", 30.0),
        deal("W-3", "evt-b2", "2026-11-03T10:00:00Z", 2.0),
        deal("W-2", "evt-b3", "2026-11-03T11:00:00Z", 30.0),
    ]});
    let answer: Value = app
        .post_signed("crm", SECRET, &batch.to_string())
        .await
        .json()
        .await
        .unwrap();
    let scored: Vec<&Value> = answer["events"].as_array().unwrap().iter().collect();
    assert!(scored.iter().all(|e| e["scoring"] == "ok"), "{answer}");
    assert_eq!(scored[0]["score"]["trend"], "new", "{answer}");
    assert_eq!(scored[2]["score"]["trend"], "steady", "{answer}");
    assert_eq!(scored[0]["score"]["score"], scored[2]["score"]["score"]);
    let (_, w2) = app
        .get_json("/v1/opportunities/W-2/score", &app.analyst_key)
        .await;
    assert_eq!(w2["history"].as_array().unwrap().len(), 2, "{w2}");
}

/// Rows in the score history of `external_id`, counted in the database.
async fn score_rows(app: &TestApp, external_id: &str) -> i64 {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM scores s JOIN opportunities o ON o.id = s.opportunity_id \
         WHERE o.external_id = $1",
    )
    .bind(external_id.to_owned())
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap()
}

#[tokio::test]
async fn duplicates_ignored_events_and_rereads_add_no_score_history() {
    let app = crm_app().await;
    crate::helpers::import_generated(&app, 3000, 7).await;
    let report = crate::helpers::train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"].as_str().unwrap().to_owned();
    crate::helpers::wait_for_model(&app, &version).await;
    let deal = |event: &str, at: &str, amount: f64| {
        json!({"id": event, "type": "opportunity.upserted", "occurred_at": at,
        "data": {"external_id": "H-1", "status": "open", "sector": "software", "amount": amount,
                 "created_at": "2026-10-01", "contact_role": "end_user", "response_hours": 30}})
        .to_string()
    };
    let post = |body: String| {
        let app = &app;
        async move {
            let answer: Value = app.post_signed("crm", SECRET, &body).await.json().await.unwrap();
            assert_eq!(answer["scoring"], "ok", "{answer}");
            answer
        }
    };

    let first = post(deal("h1", "2026-11-02T10:00:00Z", 25000.0)).await;
    assert_eq!(first["status"], "applied");
    assert_eq!(score_rows(&app, "H-1").await, 1);

    // A redelivery answers the score again and changes nothing, history included.
    let again = post(deal("h1", "2026-11-02T10:00:00Z", 25000.0)).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["score"]["score"], first["score"]["score"]);
    // An older event is recorded as ignored; the deal did not change, nor does its history.
    let older = post(deal("h0", "2026-11-01T10:00:00Z", 90000.0)).await;
    assert_eq!(older["status"], "ignored", "{older}");
    // In a batch too (the set-based path), and the duplicate of an ignored event.
    let batch = format!(
        "{{\"events\": [{}, {}]}}",
        deal("h1", "2026-11-02T10:00:00Z", 25000.0),
        deal("h0", "2026-11-01T10:00:00Z", 90000.0)
    );
    let answer: Value = app.post_signed("crm", SECRET, &batch).await.json().await.unwrap();
    assert_eq!(answer["summary"]["duplicate"], 2, "{answer}");
    assert_eq!(score_rows(&app, "H-1").await, 1);

    // Reading the stored score, again and again, adds no row while deal and model stay the same.
    for _ in 0..3 {
        let (status, read) = app
            .get_json("/v1/opportunities/H-1/score", &app.analyst_key)
            .await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["history"].as_array().unwrap().len(), 1, "{read}");
    }
    assert_eq!(score_rows(&app, "H-1").await, 1);

    // A change of the deal is news: one row for the event, none for the reads after it.
    let changed = post(deal("h2", "2026-11-03T10:00:00Z", 40000.0)).await;
    assert_eq!(changed["result"], "updated", "{changed}");
    assert_eq!(score_rows(&app, "H-1").await, 2);
    app.get_json("/v1/opportunities/H-1/score", &app.analyst_key)
        .await;
    assert_eq!(score_rows(&app, "H-1").await, 2);
    // A change made elsewhere (PUT) is news for the next read, once.
    let put = app
        .put_opportunity(
            "H-1",
            &json!({"external_id": "H-1", "status": "open", "sector": "software", "amount": 41000,
                    "created_at": "2026-10-01", "contact_role": "end_user", "response_hours": 30}),
        )
        .await;
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    for _ in 0..2 {
        app.get_json("/v1/opportunities/H-1/score", &app.analyst_key)
            .await;
    }
    assert_eq!(score_rows(&app, "H-1").await, 3);
}

/// A local CRM endpoint answering `statuses` in turn (the last one forever), recording each
/// request's delivery id header and body.
async fn recording_callback_server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<(Option<String>, Value)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let server = HttpServer::new(move || {
        let (seen, statuses) = (seen.clone(), statuses.clone());
        App::new().route(
            "/score",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (seen, statuses) = (seen.clone(), statuses.clone());
                async move {
                    let header = req
                        .headers()
                        .get("Dealscore-Delivery-Id")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned);
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let mut seen = seen.lock().unwrap();
                    seen.push((header, body));
                    let status = statuses[(seen.len() - 1).min(statuses.len() - 1)];
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}/score"), recorded)
}

#[tokio::test]
async fn every_write_back_carries_a_delivery_id_that_its_retries_repeat() {
    let (url, seen) = recording_callback_server(vec![500, 503, 200]).await;
    let app = app_with_callback(&url, 8).await;
    enqueue(&app).await;
    let delivered = wait_for_outbox(&app, "delivered").await;
    assert_eq!(delivered[0]["attempts"], 3);
    let stored_id = delivered[0]["payload"]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!stored_id.is_empty());
    let first: Vec<(Option<String>, Value)> = seen.lock().unwrap().clone();
    assert_eq!(first.len(), 3);
    for (header, body) in &first {
        assert_eq!(header.as_deref(), Some(stored_id.as_str()), "{body}");
        assert_eq!(body["delivery_id"], stored_id.as_str());
        assert_eq!(body["score"], 71);
    }

    // Another write-back is another delivery.
    enqueue(&app).await;
    for _ in 0..200 {
        if seen.lock().unwrap().len() > 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (header, body) = seen.lock().unwrap()[3].clone();
    let other = header.expect("delivery id header");
    assert_ne!(other, stored_id);
    assert_eq!(body["delivery_id"], other.as_str());
}
