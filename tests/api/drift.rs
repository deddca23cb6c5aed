//! `GET /v1/models/active/drift` and the `dealscore_feature_psi` gauges, on generated pipelines
//! with and without a distribution shift.

use chrono::{DateTime, Duration, Utc};
use dealscore::domain::Opportunity;
use dealscore::generate::{generate, write_opportunities_csv, GeneratorConfig, Shift};
use dealscore::model::ModelArtifact;
use dealscore::store::models::{self, NewModelVersion};
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, train_cli, wait_for_model, TestApp};

fn history(config: &GeneratorConfig) -> Vec<Opportunity> {
    generate(&GeneratorConfig {
        with_activities: false,
        ..config.clone()
    })
    .opportunities
}

async fn import(app: &TestApp, deals: &[Opportunity]) {
    let mut csv = Vec::new();
    write_opportunities_csv(deals, &mut csv).expect("csv");
    let (status, summary) = app.post_csv("", String::from_utf8(csv).expect("utf8")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");
}

async fn drift(app: &TestApp) -> Value {
    let (status, body) = app.get_json("/v1/models/active/drift", &app.analyst_key).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn feature<'a>(report: &'a Value, population: &str, name: &str) -> &'a Value {
    report["populations"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["population"] == population))
        .and_then(|p| p["features"].as_array())
        .and_then(|fs| fs.iter().find(|f| f["feature"] == name))
        .unwrap_or_else(|| panic!("{population}/{name} missing in {report}"))
}

fn population<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["populations"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["population"] == name))
        .unwrap_or_else(|| panic!("{name} missing in {report}"))
}

fn psi(report: &Value, population: &str, name: &str) -> f64 {
    feature(report, population, name)["psi"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// The gauge value `dealscore_feature_psi{feature=…,population=…}` from `/metrics`.
async fn gauge(app: &TestApp, name: &str, population: &str) -> Option<f64> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = format!("dealscore_feature_psi{{feature=\"{name}\",population=\"{population}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn drift_rises_past_alert_when_open_deals_come_from_a_shifted_distribution() {
    let app = spawn_app().await;
    let (status, _) = app.get_json("/v1/models/active/drift", &app.analyst_key).await;
    assert_eq!(status, 503, "no model yet");

    // 3,000 deals, 20 % of them open, drawn like the closed ones they are compared with.
    let base = GeneratorConfig {
        deals: 3_000,
        seed: 11,
        ..GeneratorConfig::default()
    };
    let deals = history(&base);
    import(&app, &deals).await;
    let report = train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    wait_for_model(&app, &version).await;

    let response = app
        .client
        .get(app.url("/v1/models/active/drift"))
        .bearer_auth(&app.rep_key)
        .send()
        .await
        .expect("request");
    assert_problem(response, 403, None).await;

    let unshifted = drift(&app).await;
    assert_eq!(unshifted["model_version"], version.as_str());
    let open_count = deals.iter().filter(|d| !d.status.is_closed()).count();
    assert_eq!(population(&unshifted, "open")["rows"], open_count as u64);
    // Features whose distribution does not depend on a deal being open stay ok. (Cycle days,
    // interactions and response times of open deals are partial by nature and may differ.)
    for name in ["amount", "sector", "contact_role", "region"] {
        let f = feature(&unshifted, "open", name);
        assert_eq!(f["level"], "ok", "{name}: {f}");
    }
    assert!(gauge(&app, "amount", "open").await.is_some_and(|g| g < 0.1));

    // The same open deals again, with amounts tripled: the import updates them in place.
    let shifted: Vec<Opportunity> = history(&GeneratorConfig {
        shift: Shift {
            amount_factor: 3.0,
            ..Shift::default()
        },
        ..base.clone()
    })
    .into_iter()
    .filter(|d| !d.status.is_closed())
    .collect();
    assert_eq!(shifted.len(), open_count);
    import(&app, &shifted).await;

    let report = drift(&app).await;
    let amount = feature(&report, "open", "amount");
    assert_eq!(amount["level"], "alert", "{amount}");
    assert!(psi(&report, "open", "amount") >= 0.2, "{amount}");
    // The most shifted bin is the top amount bin, which holds far more deals than in training.
    let top = &amount["top_bins"][0];
    assert!(top["bin"].as_str().is_some_and(|b| b.ends_with(",inf)")), "{top}");
    assert!(
        top["current_share"].as_f64() > top["training_share"].as_f64(),
        "{top}"
    );
    for name in ["sector", "contact_role", "region"] {
        assert!(
            (psi(&report, "open", name) - psi(&unshifted, "open", name)).abs() < 1e-12,
            "{name} must not move"
        );
    }
    assert_eq!(population(&report, "open")["level"], "alert");
    // The endpoint refreshed the gauge.
    let value = gauge(&app, "amount", "open").await.expect("gauge");
    assert!((value - psi(&report, "open", "amount")).abs() < 1e-9, "{value}");
}

#[tokio::test]
async fn deals_closed_after_the_training_data_form_the_closed_since_population() {
    let app = spawn_app().await;
    let base = GeneratorConfig {
        deals: 2_500,
        seed: 21,
        open_fraction: 0.0,
        ..GeneratorConfig::default()
    };
    let deals = history(&base);
    import(&app, &deals).await;
    let report = train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    wait_for_model(&app, &version).await;
    let empty = drift(&app).await;
    assert_eq!(population(&empty, "closed_since")["rows"], 0);
    assert!(feature(&empty, "closed_since", "amount")["psi"].is_null());
    assert!(population(&empty, "closed_since")["level"].is_null());

    // A later history of the same organisation: its deals closing after the training data's
    // newest closing date are "closed since".
    let last_training_close: DateTime<Utc> = deals.iter().filter_map(|d| d.closed_at).max().expect("closed");
    let later = history(&GeneratorConfig {
        deals: 1_500,
        seed: 22,
        open_fraction: 0.0,
        end: base.end + Duration::days(365),
        id_prefix: "L-".into(),
        ..GeneratorConfig::default()
    });
    let expected = later
        .iter()
        .filter(|d| d.closed_at.is_some_and(|c| c > last_training_close))
        .count();
    assert!(expected > 300, "{expected}");
    import(&app, &later).await;

    let report = drift(&app).await;
    let closed = population(&report, "closed_since");
    assert_eq!(closed["rows"], expected as u64, "{closed}");
    assert_eq!(
        closed["since"].as_str().map(|s| s.parse::<DateTime<Utc>>().ok()),
        Some(Some(last_training_close))
    );
    for name in ["amount", "sector", "contact_role"] {
        let f = feature(&report, "closed_since", name);
        assert_eq!(f["level"], "ok", "{name}: {f}");
    }
    assert!(gauge(&app, "sector", "closed_since").await.is_some());
}

#[tokio::test]
async fn a_model_without_a_training_profile_gets_a_conflict_that_says_to_retrain() {
    let app = spawn_app().await;
    let deals = history(&GeneratorConfig {
        deals: 1_500,
        seed: 31,
        ..GeneratorConfig::default()
    });
    import(&app, &deals).await;
    let report = train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    wait_for_model(&app, &version).await;
    assert!(
        gauge(&app, "amount", "open").await.is_none(),
        "the timer first runs 15 minutes after start"
    );
    drift(&app).await;
    assert!(gauge(&app, "amount", "open").await.is_some());

    // The same model as an older build would have written it: no profile.
    let (_, json) = models::active(&app.db).await.expect("registry").expect("active");
    let mut old = ModelArtifact::from_json_verified(&json).expect("verified");
    assert!(old.profile.is_some());
    old.profile = None;
    old.version = format!("{version}-old");
    old.seal();
    let text = old.to_json_pretty().expect("json");
    assert!(!text.contains("\"profile\""), "an absent profile is not written");
    ModelArtifact::from_json_verified(&text).expect("an artifact without profile still verifies");
    models::register(
        &app.db,
        &NewModelVersion {
            version: &old.version,
            created_at: old.created_at,
            sha256: &old.sha256,
            artifact_json: &text,
            train_rows: 1,
            holdout_auc: None,
        },
        true,
        "test",
        "older artifact",
    )
    .await
    .expect("register");
    // It loads and scores.
    wait_for_model(&app, &old.version).await;
    let response = app
        .client
        .get(app.url("/v1/models/active/drift"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 409, None).await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("retrain") && detail.contains(&old.version),
        "{detail}"
    );
    // Gauges of the previous model are not left behind.
    assert!(gauge(&app, "amount", "open").await.is_none());
}

/// Timing of the drift endpoint over a large open pipeline (BENCHMARKS.md):
/// `cargo test --release --test api drift_over_a_large_pipeline -- --ignored --nocapture`
/// (`DRIFT_BENCH_OPEN` sets the number of open deals, default 100,000).
#[tokio::test]
#[ignore = "benchmark; run explicitly"]
async fn drift_over_a_large_pipeline() {
    let open: usize = std::env::var("DRIFT_BENCH_OPEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let app = spawn_app().await;
    import(
        &app,
        &history(&GeneratorConfig {
            deals: 5_000,
            seed: 41,
            open_fraction: 0.0,
            ..GeneratorConfig::default()
        }),
    )
    .await;
    let report = train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    wait_for_model(&app, &version).await;
    let pipeline = history(&GeneratorConfig {
        deals: open,
        seed: 42,
        open_fraction: 1.0,
        id_prefix: "B-".into(),
        ..GeneratorConfig::default()
    });
    let loading = std::time::Instant::now();
    for chunk in pipeline.chunks(2_000) {
        dealscore::store::opportunities::upsert_batch(&app.db, chunk)
            .await
            .expect("upsert");
    }
    eprintln!(
        "loaded {open} open deals in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    for run in 1..=3 {
        let started = std::time::Instant::now();
        let report = drift(&app).await;
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(population(&report, "open")["rows"], open as u64);
        eprintln!("drift over {open} open deals, run {run}: {elapsed:.2} s");
    }
}
