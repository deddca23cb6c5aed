//! Focus classes, grades and at-risk flags split the open deals into working lists, on a
//! generated history (SQLite and PostgreSQL) and on the demo's data.

use std::collections::BTreeMap;

use dealscore::store::Db;

use crate::helpers::{bin_path, pool_options, rescore_and_wait};
use crate::web::Browser;

/// Open deals per focus class and per grade of their latest stored scores, and how many.
async fn stored_shares(db: &Db) -> (i64, BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let counts = dealscore::store::insights::open_focus_grade_counts(db)
        .await
        .expect("counts");
    let (mut focus, mut grades) = (BTreeMap::new(), BTreeMap::new());
    for (f, g, n) in &counts {
        *focus.entry(f.clone()).or_insert(0) += n;
        *grades.entry(g.clone()).or_insert(0) += n;
    }
    (counts.iter().map(|c| c.2).sum(), focus, grades)
}

/// No focus class and no grade holds more than half of the open deals, at most a quarter are
/// `prioritize`, and every class and grade is used.
fn assert_working_lists(total: i64, focus: &BTreeMap<String, i64>, grades: &BTreeMap<String, i64>) {
    assert!(total > 0);
    let share = |n: i64| n as f64 / total as f64;
    for class in ["prioritize", "secure", "nurture", "deprioritize"] {
        let n = focus.get(class).copied().unwrap_or(0);
        assert!(n > 0 && share(n) <= 0.5, "{class}: {n} of {total}; {focus:?}");
    }
    // The quantiles come from the open deals themselves; a few ties may tip a class over.
    let prioritize = focus.get("prioritize").copied().unwrap_or(0);
    assert!(share(prioritize) <= 0.26, "prioritize: {prioritize} of {total}");
    for grade in ["A", "B", "C", "D"] {
        let n = grades.get(grade).copied().unwrap_or(0);
        assert!(
            n > 0 && share(n) <= 0.5,
            "grade {grade}: {n} of {total}; {grades:?}"
        );
    }
}

#[tokio::test]
async fn on_a_generated_history_focus_grades_and_at_risk_are_working_lists() {
    let (app, version) = crate::scoring::trained_app().await;
    let (status, model) = app
        .get_json(&format!("/v1/models/{version}"), &app.analyst_key)
        .await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["grade_cuts"]["basis"], "open", "{model}");
    let cuts: Vec<f64> = (model["grade_cuts"]["probabilities"].as_array())
        .expect("three cuts")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert!(
        cuts.len() == 3 && cuts[0] >= cuts[1] && cuts[1] >= cuts[2],
        "{cuts:?}"
    );

    let job = rescore_and_wait(&app).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (total, focus, grades) = stored_shares(&app.db).await;
    assert_eq!(total, 600);
    assert_working_lists(total, &focus, &grades);

    let (status, risk) = app.get_json("/v1/insights/at-risk", &app.analyst_key).await;
    assert_eq!(status, 200, "{risk}");
    let open = risk["open_deals"].as_u64().unwrap_or(0);
    let at_risk = risk["at_risk_deals"].as_u64().unwrap_or(u64::MAX);
    assert!(open == 600 && at_risk * 3 <= open + 2, "{at_risk} of {open}");

    // The pipeline page shows the shares, in both languages.
    let mut analyst = Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, html) = analyst.get("/pipeline").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Open deals by focus and grade") && html.contains("Prioritize"),
        "{html}"
    );
    let (status, _, html) = analyst.get("/pipeline?lang=fr").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("par priorité et par note") && html.contains("Prioriser"),
        "{html}"
    );
}

/// `dealscore demo` on its default 20,000 deals (4,000 open), on SQLite by design.
#[tokio::test]
async fn on_the_demo_no_focus_class_or_grade_holds_half_of_the_open_deals() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(bin_path())
        .args(["demo", "--no-serve", "--dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore demo");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let url = format!("sqlite://{}", dir.path().join("dealscore.db").display());
    let db = Db::connect(&url, &pool_options()).await.expect("demo database");
    let (total, focus, grades) = stored_shares(&db).await;
    assert_eq!(total, 4000);
    assert_working_lists(total, &focus, &grades);

    // At risk: some open deals, at most a third, each on a signal where lost deals outnumber.
    use dealscore::insights::{at_risk, filter, snapshot::Snapshot};
    let mut rows = Vec::new();
    dealscore::store::insights::for_each_deal(&db, |row| rows.push(row))
        .await
        .expect("deals");
    let probabilities = dealscore::store::insights::latest_open_probabilities(&db)
        .await
        .expect("scores");
    let snapshot = Snapshot::from_rows(1, rows, &probabilities);
    let everyone = filter::DealFilter::new(&snapshot, &filter::FilterNames::default());
    let now = chrono::Utc::now().timestamp_millis();
    let risk = at_risk::at_risk(&snapshot, &everyone, now, 10_000);
    assert_eq!(risk.open_deals, 4000);
    assert!(
        risk.at_risk_deals > 0 && risk.at_risk_deals * 3 <= risk.open_deals + 2,
        "{} of {}",
        risk.at_risk_deals,
        risk.open_deals
    );
    for deal in &risk.deals {
        for signal in &deal.signals {
            assert!(signal.win_rate_beyond < signal.win_rate_within, "{signal:?}");
        }
    }
}
