//! Point-in-time training checked by its backtest: on a generated history with timestamped
//! activities, a model that learns from deals as they stood while open ranks the deals open at a
//! past date better than the final-state model, and no longer writes young deals off.

use std::collections::HashMap;

use serde_json::Value;

use crate::helpers::{bin_path, spawn_app, train_cli_on, TestDb};

/// The files of a generated history, kept while the test needs them.
struct GeneratedHistory {
    dir: tempfile::TempDir,
}

impl GeneratedHistory {
    fn deals(&self) -> std::path::PathBuf {
        self.dir.path().join("deals.csv")
    }
    fn truth(&self) -> std::path::PathBuf {
        self.dir.path().join("truth.csv")
    }
}

/// Runs `dealscore` with `args` on the database at `db_url`; panics with its error output if it
/// fails.
fn run_cli(db_url: &str, args: &[&str]) {
    let out = std::process::Command::new(bin_path())
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates `deals` deals (a share `open_fraction` of them open on 2026-06-01) with their
/// activities, stage history and truth (`dealscore generate`), and imports deals, activities and
/// history through the CLI into a fresh database (no server: only the command line works on it).
fn import_generated_history(db: &TestDb, deals: usize, seed: u64, open_fraction: f64) -> GeneratedHistory {
    let generated = GeneratedHistory {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let path = |name: &str| generated.dir.path().join(name).to_str().unwrap().to_owned();
    let (deals_csv, activities_csv, history_csv) =
        (path("deals.csv"), path("activities.csv"), path("history.csv"));
    let (deals_arg, seed_arg, open_arg) = (deals.to_string(), seed.to_string(), open_fraction.to_string());
    run_cli(
        &db.url,
        &[
            "generate",
            "--deals",
            &deals_arg,
            "--seed",
            &seed_arg,
            "--open-fraction",
            &open_arg,
            "--end-date",
            END_DATE,
            "--out",
            &deals_csv,
            "--activities-out",
            &activities_csv,
            "--history-out",
            &history_csv,
            "--truth-out",
            &path("truth.csv"),
        ],
    );
    run_cli(
        &db.url,
        &[
            "import",
            "--file",
            &deals_csv,
            "--activities",
            &activities_csv,
            "--history",
            &history_csv,
        ],
    );
    generated
}

/// The end of every generated history here: the instant its open deals are scored at.
const END_DATE: &str = "2026-06-01T00:00:00Z";

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
    let _history = import_generated_history(&db, 6000, 3, 0.2);
    // Both registered: the final-state model first, then the snapshot model through the gate.
    // The history has activities, so snapshots at the default ages are what a plain run does.
    let final_state = train_cli_on(&db.url, &["--final-state"]);
    let point_in_time = train_cli_on(&db.url, &[]);

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
    assert_eq!(
        training["snapshots"]["ages"],
        serde_json::json!([0, 7, 14, 21, 30, 45, 60, 75, 90, 105, 120, 135, 150, 180, 240, 365]),
        "{training}"
    );
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
        (&["--final-state", "--snapshots", "3"][..], "cannot be used with"),
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
    let response = app
        .client
        .post(app.url("/v1/models/train"))
        .bearer_auth(&app.analyst_key)
        .json(&serde_json::json!({"options": {"final_state": true, "snapshots": 3}}))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(response, 422, Some("options.final_state")).await;
}

/// Trains on the database without registering (`--no-register`), keeping the artifact in
/// `out`; returns the report and the artifact's path.
fn train_artifact(db_url: &str, out: &std::path::Path, extra: &[&str]) -> (Value, std::path::PathBuf) {
    let args: Vec<&str> = std::iter::once("--no-register")
        .chain(extra.iter().copied())
        .collect();
    let report = crate::helpers::train_cli_into(db_url, out, &args);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    (report, out.join(format!("{version}.json")))
}

/// Scores `open_csv` with `model` as of the history's end (`dealscore score --as-of`); returns
/// each deal's win probability by external id.
fn score_as_of_end(
    db_url: &str,
    open_csv: &std::path::Path,
    model: &std::path::Path,
) -> HashMap<String, f64> {
    let scored = open_csv.with_file_name(format!(
        "scored-{}",
        model
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".json", ".csv")
    ));
    run_cli(
        db_url,
        &[
            "score",
            "--file",
            open_csv.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--as-of",
            END_DATE,
            "--out",
            scored.to_str().unwrap(),
        ],
    );
    let mut reader = csv::Reader::from_path(&scored).expect("scored file");
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (id, probability, error) = (column("external_id"), column("probability"), column("error"));
    reader
        .records()
        .map(|row| {
            let row = row.expect("row");
            assert_eq!(&row[error], "", "{row:?}");
            (row[id].to_owned(), row[probability].parse().expect("probability"))
        })
        .collect()
}

/// ROC AUC of `scored` (probability, won) by ranks (Mann–Whitney, ties counted half).
fn roc_auc(scored: &[(f64, bool)]) -> f64 {
    let (mut pairs, mut favourable) = (0.0, 0.0);
    let won: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let lost: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    for w in &won {
        for l in &lost {
            pairs += 1.0;
            favourable += if w > l {
                1.0
            } else if w == l {
                0.5
            } else {
                0.0
            };
        }
    }
    favourable / pairs
}

/// How the open deals of a generated history end, and when each was created.
struct OpenDealTruth {
    /// external id → (won eventually, age in days at the history's end)
    deals: HashMap<String, (bool, f64)>,
}

impl OpenDealTruth {
    /// Reads the truth file and writes the open deals' rows of `deals_csv` to `open_csv`.
    fn read(history: &GeneratedHistory, open_csv: &std::path::Path) -> OpenDealTruth {
        let end = chrono::DateTime::parse_from_rfc3339(END_DATE).unwrap();
        let mut won = HashMap::new();
        let mut truth = csv::Reader::from_path(history.truth()).expect("truth file");
        assert_eq!(
            truth.headers().unwrap(),
            vec!["external_id", "status", "closed_at", "true_probability"]
        );
        for row in truth.records() {
            let row = row.unwrap();
            let closed = chrono::DateTime::parse_from_rfc3339(&row[2]).unwrap();
            assert!(closed > end, "{row:?} ends after the history");
            won.insert(row[0].to_owned(), &row[1] == "won");
        }
        let mut reader = csv::Reader::from_path(history.deals()).expect("deals file");
        let headers = reader.headers().unwrap().clone();
        let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (id, status, created) = (column("external_id"), column("status"), column("created_at"));
        let mut writer = csv::Writer::from_path(open_csv).expect("open deals file");
        writer.write_record(&headers).unwrap();
        let mut deals = HashMap::new();
        for row in reader.records() {
            let row = row.unwrap();
            if &row[status] != "open" {
                continue;
            }
            writer.write_record(&row).unwrap();
            let age = end - chrono::DateTime::parse_from_rfc3339(&row[created]).unwrap();
            let eventually_won = *won.get(&row[id]).expect("every open deal has its truth");
            deals.insert(
                row[id].to_owned(),
                (eventually_won, age.num_seconds() as f64 / 86_400.0),
            );
        }
        writer.flush().unwrap();
        assert_eq!(deals.len(), won.len(), "the truth names the open deals only");
        OpenDealTruth { deals }
    }

    /// (ROC AUC against the eventual outcomes, mean probability of the deals younger than 21
    /// days, their eventual win rate, how many they are).
    fn judge(&self, probabilities: &HashMap<String, f64>) -> (f64, f64, f64, usize) {
        assert_eq!(probabilities.len(), self.deals.len(), "every open deal scored");
        let scored: Vec<(f64, bool)> = self
            .deals
            .iter()
            .map(|(id, (won, _))| (probabilities[id], *won))
            .collect();
        let (predicted, rate, young) = self.band(probabilities, 0.0..21.0);
        (roc_auc(&scored), predicted, rate, young)
    }

    /// (mean probability, eventual win rate, how many) of the deals whose age is in `ages`.
    fn band(&self, probabilities: &HashMap<String, f64>, ages: std::ops::Range<f64>) -> (f64, f64, usize) {
        let deals: Vec<(f64, bool)> = self
            .deals
            .iter()
            .filter(|(_, (_, age))| ages.contains(age))
            .map(|(id, (won, _))| (probabilities[id], *won))
            .collect();
        let n = deals.len() as f64;
        let predicted = deals.iter().map(|d| d.0).sum::<f64>() / n;
        let rate = deals.iter().filter(|d| d.1).count() as f64 / n;
        (predicted, rate, deals.len())
    }
}

#[tokio::test]
async fn open_deals_scored_at_the_end_are_calibrated_and_ranked_against_how_they_really_end() {
    let db = TestDb::new().await;
    let history = import_generated_history(&db, 12_000, 5, 0.3);
    let open_csv = history.dir.path().join("open.csv");
    let truth = OpenDealTruth::read(&history, &open_csv);
    let models = history.dir.path().join("models");

    let (_, final_state) = train_artifact(&db.url, &models, &["--final-state"]);
    let (report, point_in_time) = train_artifact(
        &db.url,
        &models,
        &["--snapshot-ages", "0,7,14,30,60,90,120,180,365"],
    );
    assert!(
        report["artifact"]["training"]["snapshots"].is_object(),
        "{}",
        report["artifact"]["training"]
    );

    let (before, after) = (
        score_as_of_end(&db.url, &open_csv, &final_state),
        score_as_of_end(&db.url, &open_csv, &point_in_time),
    );
    let (auc_before, predicted_before, rate, young) = truth.judge(&before);
    let (auc_after, predicted_after, rate_after, _) = truth.judge(&after);
    // The oldest open deals are the long ones, which lose more often. Both models still
    // over-estimate them (BENCHMARKS.md): printed, not asserted.
    let (old_before, old_rate, old) = truth.band(&before, 120.0..f64::INFINITY);
    let (old_after, _, _) = truth.band(&after, 120.0..f64::INFINITY);
    eprintln!(
        "{old} open deals aged 120 days or more (eventual win rate {old_rate:.3}): predicted \
         {old_before:.3} by the final-state model, {old_after:.3} by the snapshot model"
    );
    assert_eq!(rate, rate_after);
    eprintln!(
        "{} open deals, {young} younger than 21 days (eventual win rate {rate:.3}): final state AUC \
         {auc_before:.3}, young predicted {predicted_before:.3}; snapshots AUC {auc_after:.3}, young \
         predicted {predicted_after:.3}",
        truth.deals.len()
    );
    assert!(young > 300, "{young}");
    assert!(
        (predicted_after - rate).abs() <= 0.05,
        "young deals: predicted {predicted_after:.3}, eventually won {rate:.3}"
    );
    assert!(
        auc_after > auc_before,
        "ranking against eventual outcomes: snapshots {auc_after:.3}, final state {auc_before:.3}"
    );
}

/// The snapshot expansion reads each deal's recorded changes and activities with one JSON value
/// per statement (`history::recorded`): exactly what the row-by-row timelines give, in the same
/// order (changes of one instant as recorded), on both backends — a first write of every field,
/// imported stage changes, and activities. Read for some fields only, it keeps exactly those
/// fields' changes, and the earliest time of the others.
#[tokio::test]
async fn recorded_changes_and_activities_read_as_json_match_the_timelines() {
    use dealscore::store::history;
    let db = TestDb::new().await;
    let _history = import_generated_history(&db, 600, 4, 0.2);
    let store = dealscore::store::Db::connect(&db.url, &crate::helpers::pool_options())
        .await
        .expect("connect");
    let stored: Vec<String> = sqlx::query_scalar("SELECT external_id FROM opportunities")
        .fetch_all(&store.pool)
        .await
        .expect("ids");
    let mut ids: Vec<&str> = stored.iter().map(String::as_str).collect();
    ids.push("no-such-deal");
    let timelines = history::timelines(&store, &ids).await.expect("timelines");
    let row_ids: Vec<i64> = timelines
        .values()
        .map(|t| t.stored.id)
        .chain([i64::MAX])
        .collect();
    let recorded = history::recorded(&store, &row_ids, None).await.expect("recorded");
    let some_fields: std::collections::BTreeSet<String> =
        ["stage", "amount", "sector"].map(String::from).into();
    let of_some = history::recorded(&store, &row_ids, Some(&some_fields))
        .await
        .expect("recorded, some fields");
    assert_eq!(timelines.len(), 600);
    let (mut changes, mut activities, mut same_instant, mut with_crm_ids) = (0, 0, 0, 0);
    let (mut some_kept, mut some_left) = (0, 0);
    for (id, timeline) in &timelines {
        let got = recorded.get(&timeline.stored.id).cloned().unwrap_or_default();
        assert_eq!(got.history, timeline.history, "{id}");
        assert_eq!(got.unread_since, None, "{id}");
        let some = of_some.get(&timeline.stored.id).cloned().unwrap_or_default();
        let (kept, left): (Vec<_>, Vec<_>) =
            (timeline.history.iter().cloned()).partition(|c| some_fields.contains(&c.field));
        assert_eq!(some.history, kept, "{id}");
        assert_eq!(some.unread_since, left.iter().map(|c| c.changed_at).min(), "{id}");
        assert_eq!(some.activities, got.activities, "{id}");
        some_kept += some.history.len();
        some_left += usize::from(some.unread_since.is_some());
        // The training read keeps the activities' directions and times: all the as-of rebuild
        // reads of them.
        let touches: Vec<dealscore::domain::Touch> = (timeline.activities.iter())
            .map(dealscore::domain::Touching::touch)
            .collect();
        assert_eq!(got.activities, touches, "{id}");
        with_crm_ids += timeline.activities.iter().filter(|a| a.id.is_some()).count();
        changes += got.history.len();
        activities += got.activities.len();
        same_instant += got
            .history
            .windows(2)
            .filter(|w| w[0].changed_at == w[1].changed_at)
            .count();
    }
    assert!(!recorded.contains_key(&i64::MAX));
    assert!(
        changes > 6_000 && activities > 3_000 && same_instant > 1_000 && with_crm_ids > 3_000,
        "{changes} {activities} {same_instant} {with_crm_ids}"
    );
    // Both sides of the filter were exercised: stage changes and first writes kept in part.
    assert!(some_kept > 2_000 && some_left > 500, "{some_kept} {some_left}");
}

/// A snapshot job whose spec reads a custom attribute gets it: the lean pages carry the
/// attributes when a source is one (the default spec reads none, and its pages leave them out).
#[tokio::test]
async fn a_snapshot_job_reads_the_custom_attributes_its_spec_names() {
    let db = TestDb::new().await;
    let _history = import_generated_history(&db, 1500, 6, 0.2);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "[[feature]]\nname = \"attr.lead_source\"\nkind = \"categorical\"\nmin_count = 5\n\n\
         [[feature]]\nname = \"amount\"\n",
    )
    .expect("spec");
    let report = train_cli_on(
        &db.url,
        &[
            "--snapshots",
            "3",
            "--no-register",
            "--features",
            spec.to_str().unwrap(),
        ],
    );
    let features: Vec<&str> = report["artifact"]["features"]["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["def"]["name"].as_str())
        .collect();
    assert_eq!(features, ["attr.lead_source", "amount"], "{}", report["warnings"]);
    assert_eq!(report["artifact"]["training"]["snapshots"]["per_deal"], 3);
}

/// A snapshot job read from the database walks the deals in row-id order, where their history and
/// activities lie on neighbouring pages, and puts the rows in closing order: across pages (4,000
/// deals a page) and within a closing window, it trains on exactly the rows of the deals read
/// whole in closing order and expanded in memory, level codes included, on both backends.
#[tokio::test]
async fn snapshots_read_in_row_order_are_the_rows_of_the_deals_in_closing_order() {
    use dealscore::lifecycle::point_in_time::{prepare, prepare_from_database, ClosedDealCount, PointInTime};
    use dealscore::training::compact::sources_for;
    use dealscore::training::snapshots::SnapshotPlan;
    use dealscore::training::{CompactDeals, SplitKind};

    let db = TestDb::new().await;
    let _history = import_generated_history(&db, 5_000, 8, 0.1);
    let store = dealscore::store::Db::connect(&db.url, &crate::helpers::pool_options())
        .await
        .expect("connect");
    let spec = dealscore::features::FeatureSpec::default_spec();
    let sources = sources_for(&[&spec]);
    let now: chrono::DateTime<chrono::Utc> = END_DATE.parse().expect("end date");
    let plan = PointInTime {
        source: Some(store.clone()),
        snapshots: Some(SnapshotPlan::PerDeal(3)),
    };
    let all = dealscore::store::opportunities::closed_deals(&store, None, None)
        .await
        .expect("closed deals");
    assert!(all.len() > 4_000, "{} closed deals: one page only", all.len());
    let (since, until) = (
        all[all.len() / 5].deal.closed_at,
        all[all.len() * 4 / 5].deal.closed_at,
    );
    // The whole history with its count of closed deals told (the columns reserved after the
    // first page), and a window with a count too small (columns growing as rows come).
    for (window, told) in [((None, None), all.len()), ((since, until), 1)] {
        let deals = dealscore::store::opportunities::closed_deals(&store, window.0, window.1)
            .await
            .expect("closed deals");
        let closed_deals = ClosedDealCount::default();
        closed_deals.set(told);
        let (rows, expected) = prepare(&plan, deals, SplitKind::Time, 0.2)
            .await
            .expect("prepare");
        let expected_rows = CompactDeals::from_deals(&rows, &sources, now);
        let (read, prepared) = prepare_from_database(
            &plan,
            &store,
            window,
            (SplitKind::Time, 0.2),
            (CompactDeals::new(&sources, now), false),
            closed_deals,
        )
        .await
        .expect("prepare from the database");
        assert!(read.len() > 2 * expected.deals, "{} rows", read.len());
        // Every column alike, NaN for NaN: their debug forms are equal.
        assert_eq!(format!("{read:?}"), format!("{expected_rows:?}"), "{window:?}");
        assert_eq!(
            (prepared.deals, prepared.with_history, prepared.backtest_at),
            (expected.deals, expected.with_history, expected.backtest_at),
            "{window:?}"
        );
    }
}
