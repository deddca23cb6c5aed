use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, import_generated, rescore_and_wait, spawn_app, train_cli, wait_for_model, TestApp,
};

/// A server with a model trained on 3,000 generated deals, and the model's version.
pub async fn trained_app() -> (TestApp, String) {
    let app = spawn_app().await;
    import_generated(&app, 3000, 7).await;
    let report = train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    assert_eq!(report["status"], "active");
    wait_for_model(&app, &version).await;
    (app, version)
}

#[tokio::test]
async fn without_a_model_scoring_is_503_and_the_rest_works() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/score"))
        .bearer_auth(&app.rep_key)
        .json(&json!({"cycle_days": 10}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 503, None).await;
    assert!(body["detail"].as_str().unwrap().contains("dealscore-train"));
    let (status, _) = app.get_json("/v1/opportunities", &app.rep_key).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn stateless_scoring_returns_the_documented_shape() {
    let (app, version) = trained_app().await;
    let deal = json!({"sector": "software", "contact_role": "end_user", "amount": 40000, "cycle_days": 30,
                      "interaction_count": 3, "response_hours": 40, "region": "Atlantis"});
    let response = app
        .client
        .post(app.url("/v1/score"))
        .bearer_auth(&app.rep_key)
        .json(&deal)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let r: Value = response.json().await.unwrap();
    assert_eq!(r["model_version"], version.as_str());
    let p = r["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(r["score"].as_u64().unwrap(), (p * 100.0).round() as u64);
    // Grades cut on the quartiles recorded in the model (the deals open at training).
    let grade = r["grade"].as_str().unwrap();
    let (_, model) = app
        .get_json(&format!("/v1/models/{version}"), &app.analyst_key)
        .await;
    let cuts: Vec<f64> = (model["grade_cuts"]["probabilities"].as_array())
        .expect("recorded cut points")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let expected_grade = ["A", "B", "C"]
        .into_iter()
        .zip(&cuts)
        .find(|(_, cut)| p >= **cut)
        .map_or("D", |(g, _)| g);
    assert_eq!(grade, expected_grade, "{cuts:?}");
    assert_eq!(r["trend"], "new");
    assert!((r["expected_value"].as_f64().unwrap() - 40000.0 * p).abs() < 1e-6);
    let factors = r["factors"].as_array().unwrap();
    assert!(!factors.is_empty() && factors.len() <= 10);
    assert!(factors
        .iter()
        .all(|f| f["message"].as_str().is_some_and(|m| !m.is_empty())));
    // slow answers and an end user: the model must offer a lever, never a non-actionable one
    let next = &r["next_intervention"];
    assert!(
        ["response_hours", "interaction_count", "contact_role"].contains(&next["feature"].as_str().unwrap()),
        "{next}"
    );
    assert!(next["probability_after"].as_f64().unwrap() > p);
    for alt in r["alternatives"].as_array().unwrap() {
        assert!(!["sector", "region", "cycle_days"].contains(&alt["feature"].as_str().unwrap()));
    }
    assert!(["prioritize", "secure", "deprioritize", "nurture"].contains(&r["focus"].as_str().unwrap()));
    // an unseen region is reported
    assert!(
        r["imputed"]
            .to_string()
            .contains("`Atlantis` was not seen in training"),
        "{}",
        r["imputed"]
    );
}

#[tokio::test]
async fn batches_score_valid_items_and_report_invalid_ones_by_index() {
    let (app, _) = trained_app().await;
    let batch = json!({"opportunities": [
        {"cycle_days": 20, "sector": "finance"},
        {"cycle_days": -3},
        {"response_hours": "NaN"},
        {"status": "open", "closed_at": "2025-01-01"},
        {"interaction_count": 4}
    ]});
    let response = app.post_score(&batch).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["scored"].as_u64(), body["invalid"].as_u64()),
        (Some(2), Some(3))
    );
    let results = body["results"].as_array().unwrap();
    assert!(results[0]["result"]["score"].is_u64());
    assert_eq!(results[1]["errors"][0]["field"], "opportunities[1].cycle_days");
    assert_eq!(
        results[2]["errors"][0]["field"],
        "opportunities[2].response_hours"
    );
    assert_eq!(results[3]["errors"][0]["field"], "opportunities[3].closed_at");

    let too_many = json!({"opportunities": vec![json!({"cycle_days": 1}); 10_001]});
    let response = app.post_score(&too_many).await;
    assert_problem(response, 422, Some("opportunities")).await;
    let response = app.post_score(&json!({"interaction_count": -1})).await;
    assert_problem(response, 422, Some("interaction_count")).await;

    // Above the inline size, items are parsed on the scoring threads: the same outcomes.
    let mut items = vec![json!({"cycle_days": 20, "sector": "finance"}); 150];
    items[70] = json!("not an opportunity");
    items[149] = json!({"cycle_days": -3});
    let response = app.post_score(&json!({"opportunities": items})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["scored"].as_u64(), body["invalid"].as_u64()),
        (Some(148), Some(2))
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[70]["errors"][0]["field"], "opportunities[70]");
    assert_eq!(
        results[149]["errors"][0]["field"],
        "opportunities[149].cycle_days"
    );
    assert_eq!(results[71]["result"], results[0]["result"]);

    for (body, status, field) in [
        (r#"{"opportunities": "all of them"}"#, 422, Some("opportunities")),
        (r#"[{"cycle_days": 20}]"#, 422, None),
        (r#"{"opportunities": [{"cycle_days": 20},]}"#, 400, None),
    ] {
        let response = app
            .client
            .post(app.url("/v1/score"))
            .bearer_auth(&app.rep_key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, status, field).await;
    }
}

#[tokio::test]
async fn stored_scores_build_a_history_with_trend_and_rescoring_covers_every_open_deal() {
    let (app, _) = trained_app().await;
    let (_, page) = app
        .get_json("/v1/opportunities?status=open&limit=1", &app.analyst_key)
        .await;
    let id = page["items"][0]["external_id"].as_str().unwrap().to_owned();
    let (status, first) = app
        .get_json(&format!("/v1/opportunities/{id}/score"), &app.analyst_key)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["trend"], "new");
    let (_, second) = app
        .get_json(&format!("/v1/opportunities/{id}/score"), &app.analyst_key)
        .await;
    assert_eq!(second["trend"], "steady");
    assert_eq!(second["previous_score"], first["score"]);
    // the same deal under the same model: reading it again adds no history row
    assert_eq!(second["history"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .get_json("/v1/opportunities/unknown/score", &app.analyst_key)
        .await;
    assert_eq!(status, 404);

    // rep cannot rescore; analyst can, and the job finishes with every open deal scored
    let response = app
        .client
        .post(app.url("/v1/opportunities/rescore"))
        .bearer_auth(&app.rep_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, None).await;
    let job = rescore_and_wait(&app).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["done"], 600);
    assert_eq!(job["total"], 600);
}

#[tokio::test]
async fn the_priority_list_ranks_open_deals_and_filters() {
    let (app, _) = trained_app().await;
    let (status, items) = app
        .get_json("/v1/opportunities/priority?limit=20", &app.analyst_key)
        .await;
    assert_eq!(status, 200, "{items}");
    let items = items.as_array().unwrap().clone();
    assert_eq!(items.len(), 20);
    let values: Vec<f64> = items
        .iter()
        .map(|i| i["expected_value"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    let owner = items[0]["owner"].as_str().unwrap().to_owned();
    let (_, mine) = app
        .get_json(
            &format!("/v1/opportunities/priority?owner={owner}&sort=score"),
            &app.analyst_key,
        )
        .await;
    let mine = mine.as_array().unwrap();
    assert!(mine.iter().all(|i| i["owner"] == owner.as_str()));
    let scores: Vec<u64> = mine.iter().map(|i| i["score"].as_u64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    let (_, graded) = app
        .get_json("/v1/opportunities/priority?grade=D&limit=500", &app.analyst_key)
        .await;
    assert!(graded.as_array().unwrap().iter().all(|i| i["grade"] == "D"));
    let (status, _) = app
        .get_json("/v1/opportunities/priority?grade=E", &app.analyst_key)
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn activating_another_model_swaps_it_under_load_without_failed_requests() {
    let (app, first) = trained_app().await;
    let client = app.client.clone();
    let url = app.url("/v1/score");
    let key = app.rep_key.clone();
    let load = tokio::spawn(async move {
        let mut failures = 0;
        let mut versions = std::collections::BTreeSet::new();
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(8) {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (client, url, key) = (client.clone(), url.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    client
                        .post(url)
                        .bearer_auth(key)
                        .json(&json!({"cycle_days": 40, "interaction_count": 5}))
                        .send()
                        .await
                }));
            }
            for t in tasks {
                match t.await {
                    Ok(Ok(r)) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        versions.insert(body["model_version"].as_str().unwrap_or("").to_owned());
                    }
                    _ => failures += 1,
                }
            }
        }
        (failures, versions)
    });
    let report = train_cli(&app, &["--cv", "3", "--activate", "--seed", "9"]);
    let second = report["artifact"]["version"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    wait_for_model(&app, &second).await;
    let (failures, versions) = load.await.unwrap();
    assert_eq!(failures, 0);
    assert!(versions.contains(&second), "{versions:?}");
}

#[tokio::test]
async fn a_model_that_fails_its_checksum_is_refused_and_the_previous_one_keeps_serving() {
    let (app, first) = trained_app().await;
    let (_, artifact) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();
    // Valid JSON, but the version id was edited after sealing: the checksum no longer matches.
    let tampered = artifact.replacen(
        &format!("\"version\": \"{first}\""),
        "\"version\": \"m-tampered\"",
        1,
    );
    assert_ne!(tampered, artifact);
    assert!(matches!(
        dealscore::model::ModelArtifact::from_json_verified(&tampered),
        Err(dealscore::model::ArtifactError::ChecksumMismatch { .. })
    ));
    let new = dealscore::store::models::NewModelVersion {
        version: "m-tampered",
        created_at: chrono::Utc::now(),
        sha256: "0",
        artifact_json: &tampered,
        train_rows: 1,
        holdout_auc: None,
    };
    dealscore::store::models::register(&app.db, &new, true, "test", "tampered")
        .await
        .unwrap();
    // Several refresh periods later the original model still answers, and never an error.
    for _ in 0..30 {
        let response = app
            .client
            .post(app.url("/v1/score"))
            .bearer_auth(&app.rep_key)
            .json(&json!({"cycle_days": 30}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model_version"], first.as_str());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_score_command_writes_every_row_back_with_its_result() {
    let (app, version) = trained_app().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("open.csv");
    std::fs::write(
        &input,
        "external_id,status,sector,amount,created_at,response_hours,tier\n\
         A,open,software,1000,2026-10-01,30,gold\n\
         B,open,retail,-5,2026-10-01,2,silver\n\
         C,open,finance,,2026-11-01,,\n",
    )
    .unwrap();
    let output = dir.path().join("scored.csv");
    let run = |extra: &[&str]| {
        std::process::Command::new(crate::helpers::bin_path())
            .args([
                "score",
                "--file",
                input.to_str().unwrap(),
                "--out",
                output.to_str().unwrap(),
            ])
            .args(extra)
            .env("DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut reader = csv::Reader::from_path(&output).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "external_id");
    assert!(headers.iter().any(|h| h == "tier") && headers.iter().any(|h| h == "grade"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("model_version")], version.as_str());
    assert!(["A", "B", "C", "D"].contains(&&rows[0][col("grade")]));
    assert!(rows[1][col("error")].contains("amount"));
    assert!(rows[2][col("score")].parse::<u8>().is_ok());
    // The lever's feature and the strongest factors, as sentences, beside the recommendation.
    for row in [&rows[0], &rows[2]] {
        let factors = &row[col("top_factors")];
        assert!(
            !factors.is_empty() && factors.split(" | ").count() <= 3,
            "{factors}"
        );
        if !row[col("next_intervention")].is_empty() {
            assert!(
                ["response_hours", "interaction_count", "contact_role"].contains(&&row[col("lever")]),
                "{:?}",
                &row[col("lever")]
            );
        }
    }
    assert!(rows[1][col("lever")].is_empty() && rows[1][col("top_factors")].is_empty());
    let plain = std::fs::read(&output).unwrap();
    assert!(plain.starts_with(b"external_id,"));

    // --bom starts the file with a UTF-8 byte order mark, for spreadsheet programs; the CSV is
    // otherwise the same.
    let out = run(&["--bom"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let with_bom = std::fs::read(&output).unwrap();
    assert!(with_bom.starts_with("\u{FEFF}external_id,".as_bytes()));
    assert_eq!(with_bom.len(), plain.len() + 3);

    // with an artifact file instead of the registry
    let (_, json) = dealscore::store::models::active(&app.db).await.unwrap().unwrap();
    let model = dir.path().join("model.json");
    std::fs::write(&model, json).unwrap();
    let out = run(&["--model", model.to_str().unwrap()]);
    assert!(out.status.success());
    std::fs::write(&model, "{}").unwrap();
    let out = run(&["--model", model.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// A model artifact written by an earlier build, with every encoding and lever the stored feature
/// spec can hold (spec: `tests/data/model-artifact-v1.features.toml`).
const EARLIER_ARTIFACT: &str = include_str!("../data/model-artifact-v1.json");

#[tokio::test]
async fn an_artifact_saved_by_an_earlier_build_loads_from_its_file_and_the_registry_and_serves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-artifact-v1.json");
    let artifact = dealscore::model::ModelArtifact::load_verified(&path).unwrap();
    // The feature definitions are written back exactly as they were stored.
    let stored: Value = serde_json::from_str(EARLIER_ARTIFACT).unwrap();
    let stored_defs: Vec<&Value> = stored["features"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["def"])
        .collect();
    assert_eq!(stored_defs.len(), 9);
    let rewritten: Value = serde_json::from_str(&artifact.to_json_pretty().unwrap()).unwrap();
    let rewritten_defs: Vec<&Value> = rewritten["features"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["def"])
        .collect();
    assert_eq!(rewritten_defs, stored_defs);

    let app = spawn_app().await;
    let new = dealscore::store::models::NewModelVersion {
        version: &artifact.version,
        created_at: artifact.created_at,
        sha256: &artifact.sha256,
        artifact_json: EARLIER_ARTIFACT,
        train_rows: 1,
        holdout_auc: None,
    };
    dealscore::store::models::register(&app.db, &new, true, "test", "saved by an earlier build")
        .await
        .unwrap();
    wait_for_model(&app, &artifact.version).await;
    let (status, report) = app
        .get_json(&format!("/v1/models/{}", artifact.version), &app.analyst_key)
        .await;
    assert_eq!(status, 200, "{report}");
    let served: Vec<&Value> = report["spec"]["feature"].as_array().unwrap().iter().collect();
    assert_eq!(served, stored_defs);
    let response = app
        .post_score(&json!({
            "cycle_days": 40, "interaction_count": 2, "response_hours": 30, "amount": 20000,
            "sector": "logistics", "contact_role": "end_user", "region": "DACH",
            "attributes": {"lead_source": "referral", "competitors": 2}
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model_version"], artifact.version.as_str());
}
