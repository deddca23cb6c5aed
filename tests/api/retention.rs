//! `dealscore prune`: old model versions (registry rows and artifact files) and old score
//! history go; the active model, the newest versions and each deal's latest score stay.

use std::path::Path;

use chrono::{Duration, Utc};
use dealscore::model::ModelArtifact;
use dealscore::store::models::{self, ModelStatus, NewModelVersion};
use dealscore::store::scores::{self, NewScore, StoredScore};
use dealscore::store::{opportunities, Db};
use serde_json::Value;

use crate::helpers::{bin_path, import_generated, spawn_app, train_cli, wait_for_model, TestApp};

/// Runs `dealscore prune` with `args` against the app's database and `models_dir`.
fn prune(app: &TestApp, models_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(bin_path())
        .arg("prune")
        .args(args)
        .env("DATABASE_URL", &app.db_url)
        .env("DEALSCORE_MODELS_DIR", models_dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore prune")
}

/// Registers a copy of `artifact` as `version`, created `minutes` after it, and writes its file.
async fn register_copy(db: &Db, artifact: &ModelArtifact, version: &str, minutes: i64, dir: &Path) {
    let mut copy = artifact.clone();
    copy.version = version.to_owned();
    copy.created_at = artifact.created_at + Duration::minutes(minutes);
    copy.seal();
    copy.save_atomic(dir).expect("artifact file");
    let json = copy.to_json_pretty().expect("json");
    models::register(
        db,
        &NewModelVersion {
            version,
            created_at: copy.created_at,
            sha256: &copy.sha256,
            artifact_json: &json,
            train_rows: 1,
            holdout_auc: None,
        },
        false,
        "test",
        "retention test",
    )
    .await
    .expect("register");
}

fn stored(model_version: &str, scored_at: chrono::DateTime<Utc>) -> StoredScore {
    StoredScore {
        model_version: model_version.to_owned(),
        probability: 0.5,
        score: 50,
        grade: "B".into(),
        expected_value: None,
        focus: "nurture".into(),
        scored_at,
    }
}

async fn history_len(db: &Db, external_id: &str) -> (usize, Option<StoredScore>) {
    let id = opportunities::get(db, external_id)
        .await
        .expect("get")
        .expect("deal")
        .id;
    let history = scores::history(db, id, 1000).await.expect("history");
    (history.len(), history.first().cloned())
}

#[tokio::test]
async fn prune_keeps_the_active_model_the_newest_versions_and_each_latest_score() {
    let app = spawn_app().await;
    import_generated(&app, 1_200, 5).await;
    let report = train_cli(&app, &["--cv", "3"]);
    let active = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    wait_for_model(&app, &active).await;
    let models_dir = tempfile::tempdir().expect("tempdir");
    let dir = models_dir.path();
    let (_, json) = models::active(&app.db).await.expect("registry").expect("active");
    let artifact = ModelArtifact::from_json_verified(&json).expect("artifact");
    artifact.save_atomic(dir).expect("active file");

    // Five newer versions: v1 served once (so it is retired now), v2–v5 are candidates. The
    // active model is the oldest of all, so only the "never the active one" rule keeps it.
    for (i, name) in ["v1", "v2", "v3", "v4", "v5"].iter().enumerate() {
        register_copy(&app.db, &artifact, name, 10 * (i as i64 + 1), dir).await;
    }
    assert!(models::activate(&app.db, "v1", "test", "try")
        .await
        .expect("activate"));
    assert!(models::activate(&app.db, &active, "test", "roll back")
        .await
        .expect("activate"));

    // Score history: deal 1 has two old scores; deal 2 an old one and a fresh one (recorded over
    // HTTP); deal 3 a fresh one only.
    let now = Utc::now();
    let id = |n: usize| format!("D-{n:07}");
    let internal = |ext: String| {
        let db = app.db.clone();
        async move {
            opportunities::get(&db, &ext)
                .await
                .expect("get")
                .expect("deal")
                .id
        }
    };
    let (d1, d2) = (internal(id(1)).await, internal(id(2)).await);
    scores::insert_batch(
        &app.db,
        &[
            NewScore {
                opportunity_id: d1,
                score: stored("v0", now - Duration::days(400)),
                deal_hash: None,
            },
            NewScore {
                opportunity_id: d1,
                score: stored("v0", now - Duration::days(399)),
                deal_hash: None,
            },
            NewScore {
                opportunity_id: d2,
                score: stored("v0", now - Duration::days(500)),
                deal_hash: None,
            },
        ],
    )
    .await
    .expect("old scores");
    for n in [2, 3] {
        let (status, body) = app
            .get_json(&format!("/v1/opportunities/{}/score", id(n)), &app.analyst_key)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // Dry run (policy from the environment): reports, removes nothing.
    let output = prune(
        &app,
        dir,
        &["--dry-run"],
        &[
            ("DEALSCORE_RETENTION_KEEP_VERSIONS", "2"),
            ("DEALSCORE_RETENTION_SCORE_DAYS", "365"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for v in ["v1", "v2", "v3"] {
        assert!(text.contains(&format!("would remove model {v} ")), "{text}");
    }
    assert!(
        !text.contains("v4") && !text.contains("v5") && !text.contains(&active),
        "{text}"
    );
    assert!(text.contains("2 score row(s)"), "{text}");
    assert_eq!(models::list(&app.db).await.expect("list").len(), 6);
    assert!(dir.join("v1.json").is_file());
    assert_eq!(history_len(&app.db, &id(1)).await.0, 2);

    // The real run, policy from flags.
    let output = prune(
        &app,
        dir,
        &["--keep-versions", "2", "--score-days", "365", "--json"],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("json report");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["score_rows"], 2);
    let pruned: Vec<&str> = report["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(pruned, ["v3", "v2", "v1"]);
    assert_eq!(report["versions"][2]["status"], "retired");
    assert_eq!(report["files"].as_array().map(Vec::len), Some(3));

    let left: Vec<(String, ModelStatus)> = models::list(&app.db)
        .await
        .expect("list")
        .into_iter()
        .map(|r| (r.version, r.status))
        .collect();
    assert_eq!(
        left,
        [
            ("v5".to_owned(), ModelStatus::Candidate),
            ("v4".to_owned(), ModelStatus::Candidate),
            (active.clone(), ModelStatus::Active),
        ]
    );
    for v in ["v1", "v2", "v3"] {
        assert!(!dir.join(format!("{v}.json")).exists(), "{v} file left");
    }
    for v in ["v4", "v5", active.as_str()] {
        assert!(dir.join(format!("{v}.json")).is_file(), "{v} file removed");
    }
    // Each deal keeps its latest score: deal 1 its newer old score, deal 2 its fresh one.
    let (n1, latest1) = history_len(&app.db, &id(1)).await;
    assert_eq!(n1, 1);
    let age = now - latest1.expect("latest").scored_at;
    assert!(age > Duration::days(398) && age < Duration::days(400), "{age}");
    let (n2, latest2) = history_len(&app.db, &id(2)).await;
    assert_eq!(n2, 1);
    assert_eq!(latest2.expect("latest").model_version, active);
    assert_eq!(history_len(&app.db, &id(3)).await.0, 1);

    // The server keeps serving the active model; a second run has nothing left to do.
    wait_for_model(&app, &active).await;
    let output = prune(&app, dir, &["--keep-versions", "2", "--score-days", "365"], &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("removed 0 model version(s), 0 artifact file(s) and 0 score row(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn prune_explains_a_bad_setting_and_exits_non_zero() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = prune(
        &app,
        dir.path(),
        &["--dry-run"],
        &[("DEALSCORE_RETENTION_SCORE_DAYS", "a year")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DEALSCORE_RETENTION_SCORE_DAYS"), "{stderr}");
    let output = prune(&app, dir.path(), &["--keep-versions", "-1"], &[]);
    assert!(!output.status.success());
}
