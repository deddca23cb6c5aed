//! Text, amounts, dates and currencies are bounded on every write path (PUT, CSV import,
//! webhooks) with the same field errors, and on both databases: a NUL that PostgreSQL cannot
//! store is a 422 like any other bad field, never a 500.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, webhook_source, TestApp};

const SECRET: &str = "whsec_bounds";

async fn app() -> TestApp {
    spawn_app_with(|s| s.webhook_sources = vec![webhook_source("crm", &[SECRET])]).await
}

fn deal(id: &str) -> Value {
    json!({"external_id": id, "name": "Deal", "account": "Acme", "owner": "alice", "amount": 1000.0,
           "currency": "EUR", "status": "won", "created_at": "2025-01-01", "closed_at": "2025-02-01"})
}

/// `(field, value)` pairs that every write path must refuse, naming `field`.
fn bad_values() -> Vec<(&'static str, Value)> {
    vec![
        ("name", json!("Acme\u{0}Corp")),
        ("account", json!("line\nbreak")),
        ("owner", json!("tab\there")),
        ("stage", json!("esc\u{1b}[31m")),
        ("amount", json!(1.5e308)),
        ("amount", json!(2e15)),
        ("created_at", json!("0001-01-01")),
        ("closed_at", json!("9999-12-31")),
        ("currency", json!("ZZZ")),
        ("response_hours", json!(100_000.5)),
    ]
}

#[tokio::test]
async fn put_refuses_control_characters_and_out_of_range_values_with_a_field_error() {
    let app = app().await;
    for (field, value) in bad_values() {
        let mut body = deal("D-1");
        body[field] = value.clone();
        let response = app.put_opportunity("D-1", &body).await;
        let problem = assert_problem(response, 422, Some(field)).await;
        assert_eq!(
            problem["errors"].as_array().map(Vec::len),
            Some(1),
            "{field}={value}: {problem}"
        );
    }
    assert_eq!(app.count_opportunities().await, 0);

    // The bounds themselves are accepted, and a custom field keeps its tabs and line breaks.
    let mut body = deal("D-1");
    body["amount"] = json!(1e15);
    body["created_at"] = json!("1900-01-01");
    body["closed_at"] = json!("2200-12-31");
    body["currency"] = json!("chf");
    body["attributes"] = json!({"notes": "first line\nsecond\tcolumn"});
    let response = app.put_opportunity("D-1", &body).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let stored: Value = app.get_opportunity("D-1").await.json().await.unwrap();
    assert_eq!(stored["amount"], 1e15);
    assert_eq!(stored["currency"], "CHF");
    assert_eq!(stored["attributes"]["notes"], "first line\nsecond\tcolumn");

    // A NUL in a custom field or in its name is refused too; the name is answered escaped.
    let mut body = deal("D-2");
    body["attributes"] = json!({"notes": "nul\u{0}", "a\u{0}b": 1});
    let problem = assert_problem(
        app.put_opportunity("D-2", &body).await,
        422,
        Some("attributes.notes"),
    )
    .await;
    assert!(problem.to_string().contains("attributes.a\\\\u{0}b"), "{problem}");
}

#[tokio::test]
async fn csv_import_rejects_each_bad_row_with_its_line_and_keeps_the_rest() {
    let app = app().await;
    let mut csv = String::from("external_id,name,amount,currency,status,created_at,closed_at,notes\n");
    csv.push_str("ok-1,Deal,100,EUR,won,2025-01-01,2025-02-01,\"multi\nline note\"\n"); // lines 2-3
    csv.push_str("bad-1,Ac\u{0}me,100,EUR,open,2025-01-01,,\n"); // line 4
    csv.push_str("bad-2,Deal,1.5e308,EUR,open,2025-01-01,,\n"); // line 5
    csv.push_str("bad-3,Deal,100,EUR,open,0001-01-01,,\n"); // line 6
    csv.push_str("bad-4,Deal,100,ZZZ,open,2025-01-01,,\n"); // line 7
    csv.push_str("bad-5,Deal,100,EUR,won,2025-01-01,9999-12-31,\n"); // line 8
    csv.push_str("ok-2,Deal,1000000000000000,usd,open,2025-01-01,,\n"); // line 9
    let (status, summary) = app.post_csv("", csv).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 2, "{summary}");
    let rejected: Vec<(u64, String)> = summary["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lines: Vec<u64> = rejected.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8], "{summary}");
    for ((_, reason), field) in rejected
        .iter()
        .zip(["name", "amount", "created_at", "currency", "closed_at"])
    {
        assert!(reason.contains(field), "{reason} names {field}");
        assert!(!reason.contains('\u{0}'), "{reason:?}");
    }
    assert_eq!(app.count_opportunities().await, 2);

    // Activities: a NUL or a date out of range rejects the row, with its line.
    let activities = "opportunity_id,id,kind,direction,occurred_at\n\
        ok-1,a1,email,inbound,2025-01-02T08:00:00Z\n\
        ok-1,a2,call\u{0},outbound,2025-01-02T10:00:00Z\n\
        ok-1,a3,call,outbound,2201-01-02T10:00:00Z\n";
    let (status, summary) = app.post_csv("?kind=activities", activities.into()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 1, "{summary}");
    let lines: Vec<u64> = summary["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4], "{summary}");
}

fn upsert(id: &str, data: Value) -> Value {
    json!({"id": id, "type": "opportunity.upserted", "occurred_at": "2025-03-01T10:00:00Z", "data": data})
}

#[tokio::test]
async fn a_webhook_event_with_a_nul_is_rejected_and_recorded_and_the_rest_of_its_batch_applies() {
    let app = app().await;
    let mut with_nul = deal("D-2");
    with_nul["name"] = json!("A\u{0}B");
    let mut nul_id = deal("x");
    nul_id["external_id"] = json!("D-\u{0}3");
    let mut huge = deal("D-4");
    huge["amount"] = json!(1.5e308);
    let mut ancient = deal("D-5");
    ancient["created_at"] = json!("0001-01-01");
    let mut zzz = deal("D-6");
    zzz["currency"] = json!("ZZZ");
    let batch = json!({"events": [
        upsert("e1", deal("D-1")),
        upsert("e2", with_nul),
        upsert("e3", nul_id),
        upsert("e4", huge),
        upsert("e5", ancient),
        upsert("e6", zzz),
        {"id": "e7", "type": "activity.logged", "occurred_at": "2025-03-01T10:01:00Z",
         "data": {"opportunity_id": "D-1", "id": "a1", "kind": "call\u{0}", "direction": "outbound",
                  "occurred_at": "2025-03-01T10:01:00Z"}},
        upsert("e8", deal("D-8")),
    ]});
    let response = app.post_signed("crm", SECRET, &batch.to_string()).await;
    assert_eq!(response.status(), 207);
    let body: Value = response.json().await.unwrap();
    let outcomes: Vec<(&str, Option<&str>)> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["errors"][0]["field"].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("applied", None),
            ("rejected", Some("data.name")),
            ("rejected", Some("data.external_id")),
            ("rejected", Some("data.amount")),
            ("rejected", Some("data.created_at")),
            ("rejected", Some("data.currency")),
            ("rejected", Some("data.kind")),
            ("applied", None),
        ],
        "{body}"
    );
    assert_eq!(app.count_opportunities().await, 2);
    let (status, rejected) = app
        .get_json("/v1/webhooks/crm/events?status=rejected", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected.as_array().map(Vec::len), Some(6), "{rejected}");

    // A corrected redelivery of a rejected event is applied.
    let response = app
        .post_signed("crm", SECRET, &upsert("e2", deal("D-2")).to_string())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count_opportunities().await, 3);
}

#[tokio::test]
async fn numeric_custom_attributes_and_cycle_days_are_bounded_with_a_field_error() {
    let app = app().await;
    for value in [json!(2e15), json!(-1e300), json!(1.7e308)] {
        let mut body = deal("D-1");
        body["attributes"] = json!({"seats": value});
        let response = app.put_opportunity("D-1", &body).await;
        assert_problem(response, 422, Some("attributes.seats")).await;
    }
    assert_eq!(app.count_opportunities().await, 0);
    // The bounds themselves are accepted, negative numbers included.
    let mut body = deal("D-1");
    body["response_hours"] = json!(100_000.0);
    body["attributes"] = json!({"seats": 1e15, "gap": -1e15});
    let response = app.put_opportunity("D-1", &body).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn a_deal_sent_to_be_scored_gets_the_same_numeric_bounds_as_a_stored_one() {
    // With a model active, so that a refusal can only come from the bounds, not from a 503.
    let (app, _version) = crate::scoring::trained_app().await;
    for (field, body) in [
        (
            "attributes.seats",
            json!({"amount": 10, "attributes": {"seats": -2e15}}),
        ),
        ("response_hours", json!({"amount": 10, "response_hours": 1e9})),
        ("cycle_days", json!({"amount": 10, "cycle_days": 1e9})),
    ] {
        let response = app.post_score(&body).await;
        assert_problem(response, 422, Some(field)).await;
    }
    // The bounds themselves score.
    let response = app
        .post_score(&json!({"amount": 10, "response_hours": 100_000.0, "attributes": {"seats": 1e15}}))
        .await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn a_webhook_envelope_with_control_characters_is_a_recorded_rejection_never_a_500() {
    let app = app().await;
    let envelopes = [
        (
            "id",
            json!({"id": "e\u{0}1", "type": "opportunity.deleted", "occurred_at": "2025-03-01T10:00:00Z",
                      "data": {"external_id": "D-1"}}),
        ),
        (
            "type",
            json!({"id": "e2", "type": "opportunity.deleted\u{0}", "occurred_at": "2025-03-01T10:00:00Z",
                        "data": {"external_id": "D-1"}}),
        ),
        (
            "type",
            json!({"id": "e3", "type": "opportunity\nupserted", "occurred_at": "2025-03-01T10:00:00Z",
                        "data": {"external_id": "D-1"}}),
        ),
        (
            "occurred_at",
            json!({"id": "e4", "type": "opportunity.deleted", "occurred_at": "2025\u{0}",
                               "data": {"external_id": "D-1"}}),
        ),
    ];
    for (field, event) in &envelopes {
        let response = app.post_signed("crm", SECRET, &event.to_string()).await;
        let problem = assert_problem(response, 422, Some(field)).await;
        assert!(!problem.to_string().contains("\\u0000"), "{problem}");
    }
    // In a batch, the same events are rejected one by one and the good one applies.
    let mut events: Vec<Value> = envelopes.iter().map(|(_, e)| e.clone()).collect();
    events.push(upsert("e5", deal("D-5")));
    let response = app
        .post_signed("crm", SECRET, &json!({ "events": events }).to_string())
        .await;
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
        ["rejected", "rejected", "rejected", "rejected", "applied"],
        "{body}"
    );
    assert_eq!(app.count_opportunities().await, 1);
    // Every rejection is recorded, without the control characters it was refused for.
    let (status, rejected) = app
        .get_json("/v1/webhooks/crm/events?status=rejected", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{rejected}");
    let rows = rejected.as_array().unwrap();
    assert_eq!(rows.len(), 8, "{rejected}");
    for row in rows {
        assert!(row["event_id"].is_null() || !row["event_id"].as_str().unwrap().contains('\u{0}'));
        assert!(row["type"].is_null() || !row["type"].as_str().unwrap().chars().any(char::is_control));
        assert!(!row["reason"].as_str().unwrap().contains('\u{0}'), "{row}");
    }
}

#[tokio::test]
async fn ids_no_record_can_have_answer_404_on_every_database() {
    let app = app().await;
    for path in [
        "/v1/opportunities/D%001",
        "/v1/opportunities/D%001/activities",
        "/v1/opportunities/D%0A1/score",
        "/v1/models/m%00",
        "/v1/training-runs/r%00",
    ] {
        let (status, body) = app.get_json(path, &app.admin_key).await;
        // Scoring answers 503 while no model is active; with one it is the 404 of the others.
        assert!(
            status == 404 || (status == 503 && path.ends_with("/score")),
            "{path}: {status} {body}"
        );
    }
    let response = app
        .client
        .delete(app.url("/v1/opportunities/D%001"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, None).await;
    let response = app
        .client
        .post(app.url("/v1/models/m%00/activate"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, None).await;
    let (status, body) = app
        .get_json("/v1/models/compare?a=m%00&b=m", &app.admin_key)
        .await;
    assert_eq!(status, 404, "{body}");
    // A filter no stored deal can match is a 400 naming it, not a database error.
    let (status, body) = app
        .get_json("/v1/opportunities?owner=al%00ice", &app.admin_key)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("owner"), "{body}");
}
