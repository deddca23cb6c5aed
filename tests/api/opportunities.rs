use serde_json::{json, Value};

use crate::helpers::{assert_problem, open_deal, spawn_app, spawn_app_with, won_deal};

#[tokio::test]
async fn put_creates_then_replaces_and_get_reads_back() {
    let app = spawn_app().await;
    let response = app.put_opportunity("D-1", &won_deal("D-1")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["contact_role"], "champion");
    assert_eq!(created["currency"], "EUR");

    let mut changed = won_deal("D-1");
    changed["amount"] = json!(2500.0);
    let response = app.put_opportunity("D-1", &changed).await;
    assert_eq!(response.status(), 200);

    let got: Value = app.get_opportunity("D-1").await.json().await.unwrap();
    assert_eq!(got["amount"], 2500.0);
    assert_eq!(got["closed_at"], "2025-02-01T00:00:00Z");

    // same content again: 200, nothing changes
    let response = app.put_opportunity("D-1", &changed).await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["updated_at"], got["updated_at"]);
}

#[tokio::test]
async fn delete_removes_and_then_404s() {
    let app = spawn_app().await;
    app.put_opportunity("D-1", &won_deal("D-1")).await;
    let url = app.url("/v1/opportunities/D-1");
    let response = app
        .client
        .delete(&url)
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_problem(app.get_opportunity("D-1").await, 404, None).await;
    let response = app
        .client
        .delete(&url)
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, None).await;
}

#[tokio::test]
async fn list_filters_and_paginates_with_a_stable_cursor() {
    let app = spawn_app().await;
    for i in 0..25 {
        let owner = if i % 2 == 0 { "alice" } else { "bob" };
        let region = if i % 3 == 0 { "EMEA" } else { "NA" };
        let id = format!("O-{i:02}");
        assert_eq!(
            app.put_opportunity(&id, &open_deal(&id, owner, region))
                .await
                .status(),
            201
        );
    }
    assert_eq!(app.put_opportunity("W-1", &won_deal("W-1")).await.status(), 201);

    let (status, body) = app
        .get_json("/v1/opportunities?status=open&owner=alice&limit=5", &app.rep_key)
        .await;
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    let mut page = body;
    loop {
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["owner"], "alice");
            assert_eq!(item["status"], "open");
            seen.push(item["external_id"].as_str().unwrap().to_owned());
        }
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        // a row inserted meanwhile does not disturb the walk
        app.put_opportunity("late", &open_deal("late", "carol", "EMEA"))
            .await;
        let (_, next) = app
            .get_json(
                &format!("/v1/opportunities?status=open&owner=alice&limit=5&cursor={cursor}"),
                &app.rep_key,
            )
            .await;
        page = next;
    }
    let expected: Vec<String> = (0..25).step_by(2).map(|i| format!("O-{i:02}")).collect();
    assert_eq!(seen, expected);

    let (_, body) = app
        .get_json(
            "/v1/opportunities?region=EMEA&sector=software&limit=100",
            &app.analyst_key,
        )
        .await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["external_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"O-00") && ids.contains(&"late") && !ids.contains(&"O-01"));

    let (_, body) = app.get_json("/v1/opportunities?status=won", &app.rep_key).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");

    for bad in [
        "?status=pending",
        "?limit=0",
        "?limit=5000",
        "?cursor=garbage",
        "?limit=abc",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/v1/opportunities{bad}")))
            .bearer_auth(&app.rep_key)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, None).await;
    }
}

#[tokio::test]
async fn activities_derive_interactions_and_response_time() {
    let app = spawn_app().await;
    let mut deal = open_deal("A-1", "alice", "EMEA");
    deal["interaction_count"] = json!(99);
    deal["response_hours"] = json!(50.0);
    app.put_opportunity("A-1", &deal).await;
    let activities = json!([
        {"id": "a1", "kind": "email", "direction": "inbound", "occurred_at": "2025-03-02T08:00:00Z"},
        {"id": "a2", "kind": "call", "direction": "outbound", "occurred_at": "2025-03-02T12:00:00Z"},
        {"id": "a3", "kind": "email", "direction": "inbound", "occurred_at": "2025-03-03T08:00:00Z"},
        {"id": "a4", "kind": "meeting", "direction": "outbound", "occurred_at": "2025-03-03T10:00:00Z"}
    ]);
    let url = app.url("/v1/opportunities/A-1/activities");
    let response = app
        .client
        .post(&url)
        .bearer_auth(&app.analyst_key)
        .json(&activities)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["added"], 4);
    assert_eq!(body["opportunity"]["interaction_count"], 4);
    assert_eq!(body["opportunity"]["response_hours"], 3.0);
    assert_eq!(body["opportunity"]["derived_from_activities"], true);
    assert_eq!(body["opportunity"]["last_activity_at"], "2025-03-03T10:00:00Z");

    // redelivery adds nothing; a single object is accepted too
    let response = app
        .client
        .post(&url)
        .bearer_auth(&app.analyst_key)
        .json(&activities[0])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["added"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    // replacing the opportunity keeps the derived measures
    deal["interaction_count"] = json!(1);
    app.put_opportunity("A-1", &deal).await;
    let got: Value = app.get_opportunity("A-1").await.json().await.unwrap();
    assert_eq!(got["interaction_count"], 4);

    let (status, listed) = app
        .get_json("/v1/opportunities/A-1/activities", &app.rep_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 4);

    // unknown opportunity, bad activity
    let response = app
        .client
        .post(app.url("/v1/opportunities/nope/activities"))
        .bearer_auth(&app.analyst_key)
        .json(&activities)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, None).await;
    let response = app
        .client
        .post(&url)
        .bearer_auth(&app.analyst_key)
        .json(&json!([{"kind": "fax", "direction": "inbound", "occurred_at": "2025-01-01"}]))
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, Some("[0].kind")).await;
}

#[tokio::test]
async fn bad_inputs_are_problems_and_write_nothing() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        ("s1", json!({"status": "pending"}), 422, Some("status")),
        ("s2", json!({"status": "open", "amount": -5}), 422, Some("amount")),
        (
            "s3",
            json!({"status": "open", "amount": "lots"}),
            422,
            Some("amount"),
        ),
        (
            "s4",
            json!({"status": "open", "amount": "NaN"}),
            422,
            Some("amount"),
        ),
        (
            "s5",
            json!({"status": "open", "interaction_count": -1}),
            422,
            Some("interaction_count"),
        ),
        (
            "s6",
            json!({"status": "open", "response_hours": -2.5}),
            422,
            Some("response_hours"),
        ),
        ("s7", json!({"status": "won"}), 422, Some("closed_at")),
        (
            "s8",
            json!({"status": "open", "closed_at": "2025-01-01"}),
            422,
            Some("closed_at"),
        ),
        (
            "s9",
            json!({"status": "lost", "created_at": "2025-05-01", "closed_at": "2025-01-01"}),
            422,
            Some("closed_at"),
        ),
        (
            "s10",
            json!({"status": "open", "external_id": "other"}),
            422,
            Some("external_id"),
        ),
        (
            "s11",
            json!({"status": "open", "attributes": {"x": [1]}}),
            422,
            Some("attributes.x"),
        ),
        (
            "s12",
            json!({"status": "open", "created_at": "31/12/2025"}),
            422,
            Some("created_at"),
        ),
        ("s13", json!(["not", "an", "object"]), 400, None),
    ];
    for (id, body, status, field) in cases {
        let response = app.put_opportunity(id, &body).await;
        assert_problem(response, status, field).await;
    }
    let long = "x".repeat(201);
    for id in [long.as_str(), "a%07b"] {
        let response = app.put_opportunity(id, &json!({"status": "open"})).await;
        assert_problem(response, 422, Some("external_id")).await;
    }
    let raw_bodies = [
        "{not json",
        r#"{"status": "open", "amount": NaN}"#,
        r#"{"status": "open", "amount": 1e999}"#,
    ];
    for raw in raw_bodies {
        let response = app
            .client
            .put(app.url("/v1/opportunities/raw"))
            .bearer_auth(&app.analyst_key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, None).await;
    }
    let huge = json!({"status": "open", "name": "y".repeat(5000)});
    assert_problem(app.put_opportunity("big", &huge).await, 413, None).await;
    let response = app
        .client
        .put(app.url("/v1/opportunities/ct"))
        .bearer_auth(&app.analyst_key)
        .header("content-type", "text/plain")
        .body(r#"{"status":"open"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, None).await;
    assert_eq!(app.count_opportunities().await, 0);
}

#[tokio::test]
async fn concurrent_writers_never_get_a_500() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..96 {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/v1/opportunities/c-{}", i % 24)),
            app.analyst_key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"status": "open", "amount": i, "created_at": "2025-01-01"});
            client
                .put(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        let status = task.await.unwrap().unwrap();
        assert!(status == 200 || status == 201, "status {status}");
    }
    assert_eq!(app.count_opportunities().await, 24);
}

/// Concurrent PUTs are coalesced into multi-row upserts sharing one commit: every one is
/// acknowledged with the right status and answers the row as its own write left it, and every
/// acknowledged write is there afterwards, including several writes to one id at once.
#[tokio::test]
async fn concurrent_puts_are_all_committed() {
    let app = spawn_app().await;
    let mut requests = Vec::new();
    for i in 0..40 {
        let id = format!("C-{i:02}");
        let mut body = won_deal(&id);
        if i % 4 == 0 {
            body["activities"] = json!([
                {"id": "e1", "kind": "email", "direction": "inbound", "occurred_at": "2025-01-10T09:00:00Z"},
                {"id": "c1", "kind": "call", "direction": "outbound", "occurred_at": "2025-01-10T12:00:00Z"}
            ]);
        }
        requests.push((id, body));
    }
    for n in 0..8 {
        let mut body = won_deal("SAME");
        body["amount"] = json!(1000.0 + f64::from(n));
        requests.push(("SAME".to_string(), body));
    }
    let responses =
        futures_util::future::join_all(requests.iter().map(|(id, body)| app.put_opportunity(id, body))).await;
    let mut created_same = 0;
    for ((id, sent), response) in requests.iter().zip(responses) {
        let status = response.status().as_u16();
        let answered: Value = response.json().await.unwrap();
        assert_eq!(answered["external_id"], id.as_str());
        assert_eq!(
            answered["amount"], sent["amount"],
            "{id}: the answer shows this write"
        );
        if id == "SAME" {
            assert!(status == 200 || status == 201, "{id}: {status}");
            created_same += usize::from(status == 201);
        } else {
            assert_eq!(status, 201, "{id}");
            if sent.get("activities").is_some() {
                // answered with the measures its two activities give
                assert_eq!(answered["interaction_count"], 2, "{answered}");
            }
        }
    }
    assert_eq!(created_same, 1, "exactly one of the writes to one id creates it");
    assert_eq!(app.count_opportunities().await, 41);
    let with_activities: Value = app.get_opportunity("C-00").await.json().await.unwrap();
    assert_eq!(with_activities["interaction_count"], 2, "{with_activities}");
    assert_eq!(with_activities["response_hours"], 3.0, "{with_activities}");
    let same: Value = app.get_opportunity("SAME").await.json().await.unwrap();
    let amount = same["amount"].as_f64().unwrap();
    assert!((1000.0..1008.0).contains(&amount), "{same}");
}

/// Statements are prepared once per connection and keep the parameter types of their first
/// execution. Deals without an amount or response time first, then deals with them, all on one
/// connection, must all be stored: sqlx 0.8.6's `Any` driver types a NULL `f64` as a float4 on
/// PostgreSQL, which `store::sql::OptionalF64` works around (this fails if an upgrade changes that).
#[tokio::test]
async fn missing_amounts_then_real_ones_are_stored() {
    let app = spawn_app_with(|s| s.db_max_connections = 1).await;
    let bare = (0..3).map(|i| (format!("N-{i}"), None));
    let full = (0..3).map(|i| (format!("R-{i}"), Some(1234.5 + f64::from(i))));
    for (id, amount) in bare.chain(full) {
        let mut deal = open_deal(&id, "rep-1", "EMEA");
        match amount {
            Some(amount) => {
                deal["amount"] = json!(amount);
                deal["response_hours"] = json!(7.25);
            }
            None => {
                let fields = deal.as_object_mut().unwrap();
                fields.remove("amount");
                fields.remove("response_hours");
            }
        }
        let response = app.put_opportunity(&id, &deal).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        if let Some(amount) = amount {
            let got: Value = app.get_opportunity(&id).await.json().await.unwrap();
            assert_eq!(got["amount"], amount);
            assert_eq!(got["response_hours"], 7.25);
        }
    }
    let got: Value = app.get_opportunity("N-0").await.json().await.unwrap();
    assert!(
        got["amount"].is_null() && got["response_hours"].is_null(),
        "{got}"
    );
}

/// The examples the demo prints: the first open deal stored, and the owner of the first open deal
/// stored that has one; closed deals are never examples.
#[tokio::test]
async fn the_first_open_deal_and_owner_are_those_stored_first() {
    use dealscore::store::opportunities::{first_open, first_open_owner};

    let app = spawn_app().await;
    assert_eq!(first_open(&app.db).await.unwrap(), None);
    assert_eq!(first_open_owner(&app.db).await.unwrap(), None);
    let mut ownerless = open_deal("O-1", "nobody", "EMEA");
    ownerless["owner"] = Value::Null;
    for (id, deal) in [
        ("W-1", won_deal("W-1")),
        ("O-1", ownerless),
        ("O-2", open_deal("O-2", "bob", "EMEA")),
        ("O-3", open_deal("O-3", "alice", "EMEA")),
    ] {
        assert_eq!(app.put_opportunity(id, &deal).await.status(), 201, "{id}");
    }
    assert_eq!(first_open(&app.db).await.unwrap().as_deref(), Some("O-1"));
    assert_eq!(first_open_owner(&app.db).await.unwrap().as_deref(), Some("bob"));
}
