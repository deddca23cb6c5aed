//! Deal history: every write path records each real change of a deal's fields with when it took
//! effect and where it came from; a CRM's field history imports through the API and the CLI; the
//! "as of" builder reads it back.

use std::process::Command;

use chrono::{DateTime, Utc};
use dealscore::domain::{ChangeSource, FieldChange, Previous};
use dealscore::features::as_of::{as_of, AsOfRules};
use dealscore::store::history;
use serde_json::{json, Value};

use crate::helpers::{bin_path, open_deal, spawn_app, spawn_app_with, webhook_source, TestApp};

fn t(text: &str) -> DateTime<Utc> {
    dealscore::domain::parse_timestamp(text).unwrap()
}

async fn history_of(app: &TestApp, id: &str) -> Vec<FieldChange> {
    history::for_deal(&app.db, id, None)
        .await
        .expect("history")
        .expect("the deal exists")
}

/// The changes of `field`, oldest first: (value, previous, source).
fn changes_of(history: &[FieldChange], field: &str) -> Vec<(Option<Value>, Previous, ChangeSource)> {
    history
        .iter()
        .filter(|c| c.field == field)
        .map(|c| (c.value.clone(), c.previous.clone(), c.source))
        .collect()
}

async fn count_history(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM opportunity_history")
        .fetch_one(&app.db.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_put_records_its_first_values_then_only_real_changes() {
    let app = spawn_app().await;
    let mut deal = open_deal("H-1", "alice", "EMEA");
    deal["stage"] = json!("Discovery");
    deal["attributes"] = json!({"tier": "gold"});
    let before = Utc::now();
    assert_eq!(app.put_opportunity("H-1", &deal).await.status(), 201);
    let first = history_of(&app, "H-1").await;
    let fields: Vec<&str> = first.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "account",
            "amount",
            "attributes.tier",
            "created_at",
            "currency",
            "name",
            "owner",
            "region",
            "sector",
            "stage",
            "status"
        ]
    );
    assert!(first
        .iter()
        .all(|c| c.source == ChangeSource::Api && c.previous == Previous::Unknown));
    assert!(first
        .iter()
        .all(|c| c.changed_at >= before - chrono::Duration::seconds(1)));
    assert_eq!(count_history(&app).await, 1, "a first write is one row");

    // The same values again: nothing recorded.
    assert_eq!(app.put_opportunity("H-1", &deal).await.status(), 200);
    assert_eq!(history_of(&app, "H-1").await.len(), first.len());

    // Two fields changed, one cleared: three rows, each with what it replaced.
    deal["stage"] = json!("Proposal");
    deal["amount"] = json!(750.0);
    deal["attributes"] = json!({});
    assert_eq!(app.put_opportunity("H-1", &deal).await.status(), 200);
    let after = history_of(&app, "H-1").await;
    assert_eq!(after.len(), first.len() + 3);
    assert_eq!(count_history(&app).await, 4, "then one row per changed field");
    assert_eq!(
        changes_of(&after, "stage"),
        [
            (Some(json!("Discovery")), Previous::Unknown, ChangeSource::Api),
            (
                Some(json!("Proposal")),
                Previous::Was(Some(json!("Discovery"))),
                ChangeSource::Api
            ),
        ]
    );
    assert_eq!(
        changes_of(&after, "attributes.tier")[1],
        (None, Previous::Was(Some(json!("gold"))), ChangeSource::Api)
    );
    assert_eq!(changes_of(&after, "amount")[1].0, Some(json!(750.0)));

    // "Up to T": nothing before the first write.
    let none = history::for_deal(&app.db, "H-1", Some(before - chrono::Duration::days(1)))
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());
    assert!(history::for_deal(&app.db, "nope", None).await.unwrap().is_none());

    // Deleting the deal deletes its history.
    let deleted = app
        .client
        .delete(app.url("/v1/opportunities/H-1"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(count_history(&app).await, 0);
}

#[tokio::test]
async fn concurrent_puts_leave_a_history_that_ends_with_each_stored_deal() {
    let app = spawn_app().await;
    // 60 PUTs at once on 12 deals, coalesced into groups (and one transaction each on
    // PostgreSQL): each deal's history ends with the stage it holds.
    let handles: Vec<_> = (0..60)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url(&format!("/v1/opportunities/G-{:02}", i % 12));
            let key = app.analyst_key.clone();
            let mut body = open_deal(&format!("G-{:02}", i % 12), "alice", "EMEA");
            body["stage"] = json!(format!("stage-{i}"));
            tokio::spawn(async move { client.put(url).bearer_auth(key).json(&body).send().await })
        })
        .collect();
    for handle in handles {
        let response = handle.await.unwrap().unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    for d in 0..12 {
        let id = format!("G-{d:02}");
        let (_, stored) = app
            .get_json(&format!("/v1/opportunities/{id}"), &app.analyst_key)
            .await;
        let stages = changes_of(&history_of(&app, &id).await, "stage");
        assert_eq!(stages.len(), 5, "{id}: one row per write, each changed its stage");
        assert_eq!(stages.last().unwrap().0.as_ref(), Some(&stored["stage"]), "{id}");
        // Each change replaced the one before it.
        for pair in stages.windows(2) {
            assert_eq!(pair[1].1, Previous::Was(pair[0].0.clone()), "{id}");
        }
    }
}

#[tokio::test]
async fn a_write_whose_history_fails_is_not_written_at_all() {
    let app = spawn_app().await;
    sqlx::query("ALTER TABLE opportunity_history RENAME TO opportunity_history_away")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = app
        .put_opportunity("F-1", &open_deal("F-1", "alice", "EMEA"))
        .await;
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(app.count_opportunities().await, 0);
    let (status, _) = app
        .post_csv("", "external_id,status\nF-2,open\n".to_owned())
        .await;
    assert!(status >= 500, "{status}");
    assert_eq!(app.count_opportunities().await, 0);
    sqlx::query("ALTER TABLE opportunity_history_away RENAME TO opportunity_history")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        app.put_opportunity("F-1", &open_deal("F-1", "alice", "EMEA"))
            .await
            .status(),
        201
    );
    assert!(!history_of(&app, "F-1").await.is_empty());
}

#[tokio::test]
async fn a_csv_import_records_its_changes_at_the_changed_at_column() {
    let app = spawn_app().await;
    let csv = "external_id,status,stage,amount,created_at,changed_at\n\
               C-1,open,Discovery,100,2025-01-01,2025-01-10T08:00:00Z\n\
               C-2,open,Discovery,200,2025-01-01,\n";
    let (status, summary) = app.post_csv("", csv.to_owned()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 2);
    let (_, c1) = app.get_json("/v1/opportunities/C-1", &app.analyst_key).await;
    assert_eq!(
        c1["attributes"],
        json!({}),
        "changed_at is not a custom attribute"
    );
    let h1 = history_of(&app, "C-1").await;
    assert!(h1.iter().all(|c| c.changed_at == t("2025-01-10T08:00:00Z")));
    assert!(h1.iter().all(|c| c.source == ChangeSource::Import));
    // Without a time the change takes effect when it is written.
    let h2 = history_of(&app, "C-2").await;
    assert!(h2.iter().all(|c| c.changed_at > t("2026-01-01")));

    // A mapped changed_at column, a changed stage, an unchanged deal and a bad time.
    let mapping = "date_format = \"%d/%m/%Y\"\n[columns]\nchanged_at = \"Modified\"\n";
    let csv = "external_id,status,stage,amount,created_at,Modified\n\
               C-1,open,Proposal,100,2025-01-01,01/02/2025\n\
               C-2,open,Discovery,200,2025-01-01,01/02/2025\n\
               C-3,open,Discovery,300,2025-01-01,31/02/2025\n";
    let response = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"csv": csv, "mapping": mapping}))
        .send()
        .await
        .unwrap();
    let summary: Value = response.json().await.unwrap();
    assert_eq!(
        (&summary["updated"], &summary["unchanged"], &summary["rejected"]),
        (&json!(1), &json!(1), &json!(1)),
        "{summary}"
    );
    assert_eq!(summary["rejected_rows"][0]["line"], 4);
    assert!(summary["rejected_rows"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("changed_at"));
    let stages = history_of(&app, "C-1").await;
    let last = stages.last().unwrap();
    assert_eq!(
        (last.field.as_str(), &last.value, last.changed_at),
        ("stage", &Some(json!("Proposal")), t("2025-02-01"))
    );
    assert_eq!(history_of(&app, "C-2").await.len(), h2.len());
}

const SECRET: &str = "whsec_history";

fn event(id: &str, kind: &str, at: &str, data: Value) -> String {
    json!({"id": id, "type": kind, "occurred_at": at, "data": data}).to_string()
}

#[tokio::test]
async fn webhook_events_record_their_changes_at_their_time() {
    let app = spawn_app_with(|s| s.webhook_sources = vec![webhook_source("crm", &[SECRET])]).await;
    let deal = |stage: &str, amount: f64| {
        json!({"external_id": "W-1", "owner": "alice", "status": "open", "stage": stage,
               "amount": amount, "created_at": "2025-01-01"})
    };
    let single = event(
        "e1",
        "opportunity.upserted",
        "2025-01-05T10:00:00Z",
        deal("Discovery", 10.0),
    );
    assert_eq!(app.post_signed("crm", SECRET, &single).await.status(), 200);
    // A batch: a changed amount (the set-based path), then the close.
    let batch = json!({"events": [
        {"id": "e2", "type": "opportunity.upserted", "occurred_at": "2025-02-01T10:00:00Z",
         "data": deal("Discovery", 25.0)},
        {"id": "e3", "type": "opportunity.closed", "occurred_at": "2025-03-01T10:00:00Z",
         "data": {"external_id": "W-1", "status": "won", "stage": "Closed Won",
                  "closed_at": "2025-03-01T10:00:00Z"}}
    ]})
    .to_string();
    let response = app.post_signed("crm", SECRET, &batch).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    // A redelivery changes nothing.
    assert_eq!(app.post_signed("crm", SECRET, &single).await.status(), 200);

    let h = history_of(&app, "W-1").await;
    assert!(h.iter().all(|c| c.source == ChangeSource::Webhook));
    let at = |field: &str| -> Vec<(Option<Value>, DateTime<Utc>)> {
        h.iter()
            .filter(|c| c.field == field)
            .map(|c| (c.value.clone(), c.changed_at))
            .collect()
    };
    assert_eq!(
        at("amount"),
        [
            (Some(json!(10.0)), t("2025-01-05T10:00:00Z")),
            (Some(json!(25.0)), t("2025-02-01T10:00:00Z"))
        ]
    );
    assert_eq!(
        at("stage"),
        [
            (Some(json!("Discovery")), t("2025-01-05T10:00:00Z")),
            (Some(json!("Closed Won")), t("2025-03-01T10:00:00Z"))
        ]
    );
    assert_eq!(
        at("status").last().cloned(),
        Some((Some(json!("won")), t("2025-03-01T10:00:00Z")))
    );

    // The deal as it stood mid-February, from what the store loads for the builder.
    let timelines = history::timelines(&app.db, &["W-1", "unknown"]).await.unwrap();
    assert_eq!(timelines.len(), 1);
    let w1 = &timelines["W-1"];
    let mid = as_of(
        &w1.stored.opportunity.deal,
        &w1.history,
        &w1.activities,
        t("2025-02-15"),
        &AsOfRules::default(),
    );
    assert_eq!(mid.deal.stage.as_deref(), Some("Discovery"));
    assert_eq!(mid.deal.amount, Some(25.0));
    assert_eq!(mid.deal.status, dealscore::domain::Status::Open);
    assert_eq!(mid.deal.closed_at, None);
    assert_eq!(mid.age_days, Some(45.0));
}

const HISTORY_MAPPING: &str = r#"
date_format = "%d/%m/%Y %H:%M"
[columns]
external_id = "OpportunityId"
field = "Field"
value = "NewValue"
changed_at = "CreatedDate"
[field_names]
StageName = "stage"
Amount = "amount"
[status_values]
"Closed Won" = "won"
"#;

async fn post_history(app: &TestApp, query: &str, csv: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/imports?kind=history{query}")))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"csv": csv, "mapping": HISTORY_MAPPING}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_field_history_imports_through_the_api_with_every_bad_row_named() {
    let app = spawn_app().await;
    for id in ["S-1", "S-2"] {
        app.put_opportunity(id, &open_deal(id, "alice", "EMEA")).await;
    }
    let written = count_history(&app).await;
    let csv = "OpportunityId,Field,NewValue,CreatedDate\n\
               S-1,StageName,Discovery,05/03/2025 09:00\n\
               S-1,StageName,Proposal,20/03/2025 09:00\n\
               S-1,Amount,-4,21/03/2025 09:00\n\
               S-2,Colour,red,21/03/2025 09:00\n\
               S-9,StageName,Discovery,05/03/2025 09:00\n\
               S-1,StageName,Proposal again,20/03/2025 09:00\n\
               S-2,status,Closed Won,22/03/2025 10:30\n\
               S-2,Amount,,soon\n";

    // Strict: every problem listed by line, nothing written.
    let (status, body) = post_history(&app, "&strict=true", csv).await;
    assert_eq!(status, 422, "{body}");
    let lines: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["line 4", "line 5", "line 6", "line 7", "line 9"],
        "{body}"
    );
    assert_eq!(count_history(&app).await, written);

    // Not strict: the good rows are recorded, the bad ones named.
    let (status, summary) = post_history(&app, "", csv).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (&summary["inserted"], &summary["rejected"]),
        (&json!(3), &json!(5)),
        "{summary}"
    );
    let rows = summary["rejected_rows"].as_array().unwrap();
    let reason = |line: u64| {
        rows.iter()
            .find(|r| r["line"] == line)
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(reason(4).contains("amount"), "{}", reason(4));
    assert!(
        reason(5).contains("`Colour` is not a field with a history"),
        "{}",
        reason(5)
    );
    assert!(reason(6).contains("`S-9` does not exist"), "{}", reason(6));
    assert!(reason(7).contains("already on line 3"), "{}", reason(7));
    assert_eq!(rows.iter().find(|r| r["line"] == 7).unwrap()["duplicate_of"], 3);
    assert!(reason(9).contains("changed_at"), "{}", reason(9));

    let s1 = history_of(&app, "S-1").await;
    let imported: Vec<(&str, Option<Value>, DateTime<Utc>)> = s1
        .iter()
        .filter(|c| c.source == ChangeSource::HistoryImport)
        .map(|c| (c.field.as_str(), c.value.clone(), c.changed_at))
        .collect();
    assert_eq!(
        imported,
        [
            ("stage", Some(json!("Discovery")), t("2025-03-05T09:00:00Z")),
            ("stage", Some(json!("Proposal")), t("2025-03-20T09:00:00Z")),
        ]
    );
    let s2 = history_of(&app, "S-2").await;
    assert!(s2
        .iter()
        .any(|c| c.field == "status" && c.value == Some(json!("won"))));
    // The deals themselves keep what their last write said.
    let (_, stored) = app.get_json("/v1/opportunities/S-2", &app.analyst_key).await;
    assert_eq!(stored["status"], "open");

    // Importing it again adds nothing.
    let (_, again) = post_history(&app, "", csv).await;
    assert_eq!(
        (&again["inserted"], &again["unchanged"]),
        (&json!(0), &json!(3)),
        "{again}"
    );

    // A file without the columns is refused as a whole.
    let (status, body) = post_history(&app, "", "OpportunityId,Field\nS-1,StageName\n").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "header");
}

#[tokio::test]
async fn the_cli_imports_a_field_history_and_refuses_a_bad_one_under_strict() {
    let app = spawn_app().await;
    app.put_opportunity("K-1", &open_deal("K-1", "alice", "EMEA"))
        .await;
    let written = count_history(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "external_id,field,value,changed_at\nK-1,stage,Discovery,2025-03-02\nK-1,amount,lots,2025-03-03\n",
    )
    .unwrap();
    let run = |file: &std::path::Path, strict: bool| {
        let mut args = vec!["import", "--history", file.to_str().unwrap()];
        if strict {
            args.push("--strict");
        }
        Command::new(bin_path())
            .args(&args)
            .env("DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&bad, true);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3") && stderr.contains("amount"), "{stderr}");
    assert_eq!(count_history(&app).await, written);

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "external_id,field,value,changed_at\nK-1,stage,Discovery,2025-03-02\n",
    )
    .unwrap();
    let out = run(&good, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("history: 1 rows read, 1 inserted"), "{stdout}");
    assert_eq!(count_history(&app).await, written + 1);
}

#[tokio::test]
async fn a_stored_deal_scored_as_of_an_instant_is_scored_as_it_stood_then() {
    let (app, _) = crate::scoring::trained_app().await;
    // The deal's life, imported with the times its changes took effect.
    let header = "external_id,owner,sector,contact_role,amount,stage,status,created_at,closed_at,interaction_count,response_hours,changed_at\n";
    for row in [
        "A-1,alice,software,end_user,40000,Discovery,open,2025-01-01,,3,30,2025-01-02\n",
        "A-1,alice,software,decision_maker,55000,Negotiation,open,2025-01-01,,9,4,2025-05-01\n",
        "A-1,alice,software,decision_maker,55000,Closed Won,won,2025-01-01,2025-06-01,12,4,2025-06-01\n",
    ] {
        let (status, summary) = app.post_csv("", format!("{header}{row}")).await;
        assert_eq!(status, 200, "{summary}");
    }
    let at = |instant: &str| format!("/v1/opportunities/A-1/score?as_of={instant}");
    let (status, first) = app.get_json(&at("2025-03-01"), &app.rep_key).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["as_of"]["at"], "2025-03-01T00:00:00.000Z");
    assert_eq!(first["as_of"]["hidden"], json!(["last_activity_at"]));
    assert!(first["history"].as_array().unwrap().is_empty(), "not recorded");

    // The deal as it stood on 1 March, sent to be scored at that instant: the same score.
    let then = json!({"owner": "alice", "sector": "software", "contact_role": "end_user",
                      "amount": 40000, "stage": "Discovery", "created_at": "2025-01-01",
                      "interaction_count": 3, "response_hours": 30});
    let response = app
        .client
        .post(app.url("/v1/score?as_of=2025-03-01"))
        .bearer_auth(&app.rep_key)
        .json(&then)
        .send()
        .await
        .unwrap();
    let stateless: Value = response.json().await.unwrap();
    assert_eq!(stateless["probability"], first["probability"], "{stateless}");

    // Later the same day, or any other day: the same answer. Scoring now records a row; scoring
    // as of an instant never does.
    let (_, now) = app.get_json("/v1/opportunities/A-1/score", &app.rep_key).await;
    assert!(now.get("as_of").is_none());
    assert_eq!(now["history"].as_array().unwrap().len(), 1);
    let (_, again) = app.get_json(&at("2025-03-01"), &app.rep_key).await;
    assert_eq!(again["probability"], first["probability"]);
    assert_eq!(again["factors"], first["factors"]);
    assert_eq!(again["history"].as_array().unwrap().len(), 1);

    // Mid-May it had moved on: the values of the second import.
    let (_, may) = app.get_json(&at("2025-05-15"), &app.rep_key).await;
    let then = json!({"owner": "alice", "sector": "software", "contact_role": "decision_maker",
                      "amount": 55000, "stage": "Negotiation", "created_at": "2025-01-01",
                      "interaction_count": 9, "response_hours": 4});
    let response = app
        .client
        .post(app.url("/v1/score?as_of=2025-05-15"))
        .bearer_auth(&app.rep_key)
        .json(&then)
        .send()
        .await
        .unwrap();
    let stateless: Value = response.json().await.unwrap();
    assert_eq!(stateless["probability"], may["probability"], "{stateless}");

    // A bad instant is a field error, on both routes.
    let (status, body) = app.get_json(&at("soon"), &app.rep_key).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "as_of");
    let response = app
        .client
        .post(app.url("/v1/score?as_of=2025-13-01"))
        .bearer_auth(&app.rep_key)
        .json(&then)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn each_score_history_entry_says_what_moved_it() {
    let (app, first_model) = crate::scoring::trained_app().await;
    let mut deal = open_deal("M-1", "alice", "EMEA");
    deal["stage"] = json!("Discovery");
    assert_eq!(app.put_opportunity("M-1", &deal).await.status(), 201);
    let score_now = || async { app.get_json("/v1/opportunities/M-1/score", &app.rep_key).await.1 };
    let first = score_now().await;
    assert_eq!(first["history"].as_array().unwrap().len(), 1, "{first}");
    assert!(
        first["history"][0].get("since_previous").is_none(),
        "the first score: {first}"
    );

    // Two fields change: the new entry names both, and nothing else.
    deal["stage"] = json!("Negotiation");
    deal["amount"] = json!(99000);
    assert_eq!(app.put_opportunity("M-1", &deal).await.status(), 200);
    let second = score_now().await;
    let moved = &second["history"][0]["since_previous"];
    let mut fields: Vec<&str> = moved["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["amount", "stage"], "{second}");
    assert_eq!(moved["activities"], 0);
    assert!(moved.get("previous_model_version").is_none(), "{second}");
    // The older entry keeps saying it was the first.
    assert!(second["history"][1].get("since_previous").is_none(), "{second}");

    // Two activities happen: counted on the next entry.
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let activities = json!([
        {"id": "m1", "kind": "email", "direction": "inbound", "occurred_at": now},
        {"id": "m2", "kind": "call", "direction": "outbound", "occurred_at": now}
    ]);
    let response = app
        .client
        .post(app.url("/v1/opportunities/M-1/activities"))
        .bearer_auth(&app.analyst_key)
        .json(&activities)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let third = score_now().await;
    assert_eq!(third["history"].as_array().unwrap().len(), 3, "{third}");
    assert_eq!(third["history"][0]["since_previous"]["activities"], 2, "{third}");

    // A new model, nothing else: the entry names the version before it.
    let report = crate::helpers::train_cli(&app, &["--cv", "3", "--activate"]);
    let second_model = report["artifact"]["version"].as_str().unwrap().to_owned();
    assert_ne!(second_model, first_model);
    crate::helpers::wait_for_model(&app, &second_model).await;
    let fourth = score_now().await;
    let moved = &fourth["history"][0]["since_previous"];
    assert_eq!(moved["previous_model_version"], first_model.as_str(), "{fourth}");
    assert_eq!(moved["fields"], json!([]));
    assert_eq!(moved["activities"], 0);

    // The deal page lists the same moves, newest first, in the reader's language.
    let mut browser = crate::web::Browser::new(&app);
    browser.sign_in(&app.rep_key).await;
    let (status, _, page) = browser.get("/deals/M-1").await;
    assert_eq!(status, 200, "{page}");
    let list = page
        .split("id=\"score-moves\"")
        .nth(1)
        .expect("the moves list")
        .split("</ul>")
        .next()
        .unwrap();
    let items: Vec<&str> = list.split("<li>").skip(1).collect();
    assert_eq!(items.len(), 3, "{list}");
    assert!(items[0].contains(&format!("new model: {second_model}")), "{list}");
    assert!(items[1].contains("new activities: 2"), "{list}");
    assert!(
        items[2].contains("changed: ") && items[2].contains("Amount"),
        "{list}"
    );
}
