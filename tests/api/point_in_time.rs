//! Point-in-time training checked by its backtest: on a generated history with timestamped
//! activities, a model that learns from deals as they stood while open ranks the deals open at a
//! past date better than the final-state model, and no longer writes young deals off.

use serde_json::Value;

use crate::helpers::{bin_path, spawn_app, train_cli_on, TestDb};

/// Generates `deals` deals with their activities (`dealscore generate`) and imports both through
/// the CLI into a fresh database (no server: only the command line works on it).
fn import_history_with_activities(db: &TestDb, deals: usize, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (deals_csv, activities_csv) = (dir.path().join("deals.csv"), dir.path().join("activities.csv"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin_path())
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dealscore");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (deals_arg, seed_arg) = (deals.to_string(), seed.to_string());
    run(&[
        "generate",
        "--deals",
        &deals_arg,
        "--seed",
        &seed_arg,
        "--end-date",
        "2026-06-01",
        "--out",
        deals_csv.to_str().unwrap(),
        "--activities-out",
        activities_csv.to_str().unwrap(),
    ]);
    run(&[
        "import",
        "--file",
        deals_csv.to_str().unwrap(),
        "--activities",
        activities_csv.to_str().unwrap(),
    ]);
}

fn backtest(report: &Value) -> &Value {
    let backtests = report["artifact"]["backtests"].as_array().expect("backtests");
    assert_eq!(backtests.len(), 1, "{}", report["artifact"]["training"]);
    &backtests[0]
}

fn young_band(backtest: &Value) -> (f64, f64, u64) {
    let band = &backtest["by_age"][0];
    assert_eq!(
        (band["from_days"].as_u64(), band["to_days"].as_u64()),
        (Some(0), Some(21))
    );
    (
        band["mean_probability"].as_f64().expect("predicted"),
        band["win_rate"].as_f64().expect("won"),
        band["deals"].as_u64().expect("deals"),
    )
}

#[tokio::test]
async fn snapshots_rank_open_deals_better_and_keep_young_deals_calibrated() {
    let db = TestDb::new().await;
    import_history_with_activities(&db, 6000, 3);
    // Both registered: the final-state model first, then the snapshot model through the gate.
    let final_state = train_cli_on(&db.url, &[]);
    let point_in_time = train_cli_on(&db.url, &["--snapshot-ages", "0,7,14,30,60,90,120,180,365"]);

    let (before, after) = (backtest(&final_state), backtest(&point_in_time));
    // The same deals are judged: those open at the same instant, against how they ended.
    assert_eq!(before["open_deals"], after["open_deals"], "{before}\n{after}");
    assert!(before["open_deals"].as_u64().unwrap() > 200, "{before}");
    let auc = |b: &Value| b["roc_auc"].as_f64().expect("roc_auc");
    assert!(
        auc(after) > auc(before) + 0.02,
        "ranking: {} vs final-state {}",
        auc(after),
        auc(before)
    );

    // Both backtests judge the same deals, so the gate decides on them, not on the holdouts
    // (where the final-state model's closing-time measures flatter it).
    let gate = &point_in_time["gate"];
    assert_eq!(gate["basis"], "backtest", "{gate}");
    assert_eq!(gate["outcome"], "activated", "{gate}");
    assert_eq!(
        gate["backtest"]["candidate_auc"].as_f64(),
        Some(auc(after)),
        "{gate}"
    );
    assert_eq!(
        gate["backtest"]["active_auc"].as_f64(),
        Some(auc(before)),
        "{gate}"
    );
    assert_eq!(gate["backtest"]["open_deals"], after["open_deals"], "{gate}");

    let (predicted, won, deals) = young_band(after);
    assert!(deals > 50, "{after}");
    assert!(
        (predicted - won).abs() <= 0.05,
        "young deals: predicted {predicted}, won {won}"
    );
    // The final-state model writes them off: the gap it leaves is what snapshots remove.
    let (predicted_before, _, _) = young_band(before);
    assert!(
        won - predicted_before > 0.15,
        "final-state young deals: {predicted_before} vs {won}"
    );

    let training = &point_in_time["artifact"]["training"];
    assert_eq!(training["snapshots"]["ages"][0], 0, "{training}");
    assert!(
        training["deals_with_history"].as_u64().unwrap() > 4000,
        "{training}"
    );
    assert!(final_state["artifact"]["training"].get("snapshots").is_none());
}

#[tokio::test]
async fn snapshots_are_refused_with_the_reason_where_they_cannot_work() {
    let app = spawn_app().await;
    let train = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dealscore-train"))
            .args(args)
            .env("DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dealscore-train")
    };
    for (args, reason) in [
        (
            &["--snapshots", "3", "--split", "random"][..],
            "snapshots need the time split",
        ),
        (&["--snapshot-ages", "30,7"][..], "increasing order"),
        (&["--snapshots", "13"][..], "13"),
        (
            &["--snapshots", "3", "--snapshot-ages", "7"][..],
            "cannot be used with",
        ),
    ] {
        let out = train(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    // Through the API: field-level problems, nothing started.
    let response = app
        .client
        .post(app.url("/v1/models/train"))
        .bearer_auth(&app.analyst_key)
        .json(&serde_json::json!({"options": {"split": "random", "snapshots": 3}}))
        .send()
        .await
        .unwrap();
    let problem = crate::helpers::assert_problem(response, 422, Some("options.snapshots")).await;
    assert!(problem.to_string().contains("time split"), "{problem}");
    let response = app
        .client
        .post(app.url("/v1/models/train"))
        .bearer_auth(&app.analyst_key)
        .json(&serde_json::json!({"options": {"snapshot_ages": [30, 7]}}))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(response, 422, Some("options.snapshot_ages")).await;
}
