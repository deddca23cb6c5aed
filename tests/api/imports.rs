use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

const HEADER: &str = "external_id,name,account,sector,region,owner,contact_role,amount,currency,stage,status,created_at,closed_at,interaction_count,response_hours,last_activity_at,lead_source,seats\n";

fn csv_row(i: usize) -> String {
    let (status, closed) = match i % 3 {
        0 => ("won", "2025-03-01"),
        1 => ("lost", "2025-03-02"),
        _ => ("open", ""),
    };
    format!(
        "D-{i:06},Deal {i},Acct {},retail,EMEA,rep-{},Decision Maker,{}.5,EUR,proposal,{status},2025-01-01,{closed},{},{}.25,,web,{}\n",
        i % 97,
        i % 7,
        1000 + i,
        i % 11,
        i % 13,
        i % 50
    )
}

#[tokio::test]
async fn import_reports_rejected_rows_with_line_numbers_and_keeps_the_rest() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    csv.push_str(&csv_row(0));
    csv.push_str("bad-1,x,a,s,r,o,c,-5,EUR,s,open,2025-01-01,,1,1,,web,1\n"); // line 3: negative amount
    csv.push_str(&csv_row(1));
    csv.push_str("bad-2,x,a,s,r,o,c,5,EUR,s,won,2025-01-01,,1,1,,web,1\n"); // line 5: won without closed_at
    csv.push_str("short,row\n"); // line 6: wrong field count
    let (status, summary) = app.post_csv("", csv.clone()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 2);
    assert_eq!(summary["rejected"], 3);
    let lines: Vec<u64> = summary["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5, 6]);
    assert!(summary["rejected_rows"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("amount"));

    // attributes keep numbers as numbers
    let got: Value = app.get_opportunity("D-000000").await.json().await.unwrap();
    assert_eq!(got["attributes"], json!({"lead_source": "web", "seats": 0.0}));
    assert_eq!(got["contact_role"], "decision_maker");

    // the same file again changes nothing
    let (_, again) = app.post_csv("", csv).await;
    assert_eq!(
        (
            again["inserted"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(2))
    );
}

#[tokio::test]
async fn strict_and_max_errors_refuse_the_file_and_write_nothing() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    for i in 0..10 {
        csv.push_str(&csv_row(i));
    }
    csv.push_str("bad,x,a,s,r,o,c,-5,EUR,s,open,2025-01-01,,1,1,,web,1\n");
    let (status, body) = app.post_csv("?strict=true", csv.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "line 12");
    let (status, _) = app.post_csv("?max_errors=0", csv.clone()).await;
    assert_eq!(status, 422);
    assert_eq!(app.count_opportunities().await, 0);
    let (status, summary) = app.post_csv("?max_errors=1", csv).await;
    assert_eq!(status, 200);
    assert_eq!(summary["inserted"], 10);
}

#[tokio::test]
async fn dry_run_counts_without_writing() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    for i in 0..5 {
        csv.push_str(&csv_row(i));
    }
    let (status, summary) = app.post_csv("?dry_run=true", csv).await;
    assert_eq!(status, 200);
    assert_eq!(summary["inserted"], 5);
    assert_eq!(summary["dry_run"], true);
    assert_eq!(app.count_opportunities().await, 0);
}

#[tokio::test]
async fn a_mapping_renames_columns_maps_statuses_and_dates() {
    let app = spawn_app().await;
    let csv = "Deal;Outcome;Opened;Closed;Value;Tier\nX1;Closed Won;31/01/2025;15/02/2025;100;gold\nX2;Loss;01/02/2025;20/02/2025;200;silver\nX3;In progress;01/03/2025;;300;gold\n";
    let mapping = r#"
        delimiter = ";"
        date_format = "%d/%m/%Y"
        [columns]
        external_id = "Deal"
        status = "Outcome"
        created_at = "Opened"
        closed_at = "Closed"
        amount = "Value"
        [status_values]
        "Closed Won" = "won"
        Loss = "lost"
        "In progress" = "open"
        [defaults]
        currency = "USD"
    "#;
    let response = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"csv": csv, "mapping": mapping}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["inserted"], 3, "{summary}");
    let got: Value = app.get_opportunity("X1").await.json().await.unwrap();
    assert_eq!(got["status"], "won");
    assert_eq!(got["closed_at"], "2025-02-15T00:00:00Z");
    assert_eq!(got["currency"], "USD");
    assert_eq!(got["attributes"]["Tier"], "gold");

    let response = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"csv": csv, "mapping": "[columns]\ncolour = \"x\"\n"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, Some("mapping")).await;
}

#[tokio::test]
async fn missing_required_columns_and_wrong_media_types_are_refused() {
    let app = spawn_app().await;
    let (status, body) = app.post_csv("", "name,status\nx,open\n".into()).await;
    assert_eq!(status, 422);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("external_id"));
    let response = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.analyst_key)
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, None).await;
    let (status, _) = app.post_csv("?kind=invoices", "a\n".into()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn activities_import_derives_measures_and_is_idempotent() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    csv.push_str(&csv_row(2));
    app.post_csv("", csv).await;
    let activities = "opportunity_id,id,kind,direction,occurred_at\n\
        D-000002,a1,email,inbound,2025-01-02T08:00:00Z\n\
        D-000002,a2,call,outbound,2025-01-02T10:00:00Z\n\
        unknown,a3,call,outbound,2025-01-02T10:00:00Z\n\
        D-000002,a4,fax,outbound,2025-01-02T10:00:00Z\n";
    let (status, summary) = app.post_csv("?kind=activities", activities.into()).await;
    assert_eq!(status, 200);
    assert_eq!(summary["inserted"], 2);
    let lines: Vec<u64> = summary["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5]);
    let got: Value = app.get_opportunity("D-000002").await.json().await.unwrap();
    assert_eq!(got["interaction_count"], 2);
    assert_eq!(got["response_hours"], 2.0);
    let (_, again) = app.post_csv("?kind=activities", activities.into()).await;
    assert_eq!(
        (again["inserted"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn a_hundred_thousand_rows_import_and_reimport_unchanged() {
    let app = spawn_app().await;
    let mut csv = String::with_capacity(100_000 * 140);
    csv.push_str(HEADER);
    for i in 0..100_000 {
        csv.push_str(&csv_row(i));
    }
    let started = std::time::Instant::now();
    let (status, summary) = app.post_csv("", csv.clone()).await;
    eprintln!("100k rows imported in {:?}", started.elapsed());
    assert_eq!(status, 200);
    assert_eq!(summary["inserted"], 100_000);
    assert_eq!(summary["rejected"], 0);
    assert_eq!(app.count_opportunities().await, 100_000);
    let (_, again) = app.post_csv("", csv).await;
    assert_eq!(again["unchanged"], 100_000);
}

/// Number of stored activities, straight from the database.
async fn count_activities(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM activities")
        .fetch_one(&app.db.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn activities_import_honours_strict_and_max_errors_like_opportunities() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    csv.push_str(&csv_row(2));
    app.post_csv("", csv).await;
    let activities = "opportunity_id,id,kind,direction,occurred_at\n\
        D-000002,a1,email,inbound,2025-01-02T08:00:00Z\n\
        D-000002,a2,call,outbound,2025-01-02T10:00:00Z\n\
        D-000002,a3,fax,outbound,2025-01-02T10:00:00Z\n\
        D-000002,a4,meeting,outbound,2025-01-03T10:00:00Z\n";
    let (status, body) = app
        .post_csv("?kind=activities&strict=true", activities.into())
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "line 4", "{body}");
    let (status, body) = app
        .post_csv("?kind=activities&max_errors=0", activities.into())
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(count_activities(&app).await, 0);

    // A row naming an unknown opportunity is a bad row too, found before anything is written.
    let unknown = "opportunity_id,id,kind,direction,occurred_at\n\
        D-000002,a1,email,inbound,2025-01-02T08:00:00Z\n\
        nobody,a2,call,outbound,2025-01-02T10:00:00Z\n";
    let (status, body) = app.post_csv("?kind=activities&strict=true", unknown.into()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "line 3", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("nobody"),
        "{body}"
    );
    assert_eq!(count_activities(&app).await, 0);

    let (status, summary) = app
        .post_csv("?kind=activities&max_errors=1", activities.into())
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 3);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(count_activities(&app).await, 3);
}

#[tokio::test]
async fn a_record_repeated_in_one_file_is_rejected_with_both_line_numbers() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    csv.push_str(&csv_row(0)); // line 2
    csv.push_str(&csv_row(1)); // line 3
    csv.push_str(&csv_row(0).replace("Deal 0,", "Deal zero,")); // line 4: D-000000 again
    let (status, body) = app.post_csv("?strict=true", csv.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "line 4", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("line 2"),
        "{body}"
    );
    assert_eq!(app.count_opportunities().await, 0);

    let (status, summary) = app.post_csv("", csv).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (
            summary["inserted"].as_u64(),
            summary["updated"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some(2), Some(0), Some(1)),
        "{summary}"
    );
    let rejected = &summary["rejected_rows"][0];
    assert_eq!(
        (rejected["line"].as_u64(), rejected["duplicate_of"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(rejected["external_id"], "D-000000");
    assert!(
        rejected["reason"].as_str().unwrap().contains("line 2"),
        "{summary}"
    );
    // The first occurrence is the one kept.
    let got: Value = app.get_opportunity("D-000000").await.json().await.unwrap();
    assert_eq!(got["name"], "Deal 0");

    // Activities: the same CRM id twice on one opportunity, or the same unnamed activity twice.
    let activities = "opportunity_id,id,kind,direction,occurred_at\n\
        D-000000,a1,email,inbound,2025-01-02T08:00:00Z\n\
        D-000000,,call,outbound,2025-01-02T10:00:00Z\n\
        D-000000,a1,email,inbound,2025-01-02T09:00:00Z\n\
        D-000000,,call,outbound,2025-01-02T10:00:00Z\n\
        D-000001,a1,email,inbound,2025-01-02T08:00:00Z\n";
    let (status, body) = app
        .post_csv("?kind=activities&strict=true", activities.into())
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["line 4", "line 5"], "{body}");
    assert_eq!(count_activities(&app).await, 0);
    let (status, summary) = app.post_csv("?kind=activities", activities.into()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["inserted"].as_u64(), summary["rejected"].as_u64()),
        (Some(3), Some(2)),
        "{summary}"
    );
    let pairs: Vec<(u64, u64)> = summary["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["duplicate_of"].as_u64().unwrap()))
        .collect();
    assert_eq!(pairs, vec![(4, 2), (5, 3)]);
}

#[tokio::test]
async fn a_csv_with_cr_only_line_endings_is_read_like_any_other() {
    let app = spawn_app().await;
    let mut csv = String::from(HEADER);
    csv.push_str(&csv_row(0));
    csv.push_str("bad-1,x,a,s,r,o,c,-5,EUR,s,open,2025-01-01,,1,1,,web,1\n"); // line 3
    csv.push_str(&csv_row(1));
    let (status, summary) = app.post_csv("", csv.replace('\n', "\r")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["rows"].as_u64(), summary["inserted"].as_u64()),
        (Some(3), Some(2)),
        "{summary}"
    );
    assert_eq!(summary["rejected_rows"][0]["line"], 3, "{summary}");
    let got: Value = app.get_opportunity("D-000001").await.json().await.unwrap();
    assert_eq!(got["attributes"]["seats"], 1.0, "the last cell holds no stray CR");

    let activities = "opportunity_id,id,kind,direction,occurred_at\r\
        D-000000,a1,email,inbound,2025-01-02T08:00:00Z\r\
        D-000001,a2,call,outbound,2025-01-02T10:00:00Z\r";
    let (status, summary) = app.post_csv("?kind=activities", activities.into()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["inserted"], 2, "{summary}");
    assert_eq!(count_activities(&app).await, 2);
}
