use std::process::Command;

use serde_json::Value;

use dealscore::store::models;

use crate::helpers::{bin_path, import_generated, spawn_app, TestDb};

fn dealscore(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(bin_path())
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore")
}

#[tokio::test]
async fn keys_create_prints_only_the_key_and_list_revoke_work() {
    let db = TestDb::new().await;
    let out = dealscore(&db, &["keys", "create", "--name", "ci", "--role", "analyst"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.trim().starts_with("ds_") && stdout.trim().len() == 67);
    assert!(String::from_utf8_lossy(&out.stderr).contains("analyst"));

    let out = dealscore(&db, &["keys", "create", "--name", "ci", "--role", "analyst"]);
    assert!(!out.status.success());
    let out = dealscore(&db, &["keys", "create", "--name", "x", "--role", "root"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rep, analyst, admin"));

    let out = dealscore(&db, &["keys", "list"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("ci\tanalyst") && listed.contains("active"));
    assert!(!listed.contains(stdout.trim()));
    assert!(dealscore(&db, &["keys", "revoke", "ci"]).status.success());
    assert!(!dealscore(&db, &["keys", "revoke", "ci"]).status.success());
}

#[tokio::test]
async fn import_cli_with_mapping_is_idempotent_and_strict_writes_nothing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("deals.csv");
    std::fs::write(
        &csv,
        "Id|State|Since|Until\nA|W|2025-01-01|2025-02-01\nB|L|2025-01-01|2025-02-03\nC|?|2025-01-01|\n",
    )
    .unwrap();
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(
        &mapping,
        "delimiter = \"|\"\n[columns]\nexternal_id = \"Id\"\nstatus = \"State\"\ncreated_at = \"Since\"\nclosed_at = \"Until\"\n[status_values]\nW = \"won\"\nL = \"lost\"\n",
    )
    .unwrap();
    let (csv_s, mapping_s) = (csv.to_str().unwrap(), mapping.to_str().unwrap());

    let out = dealscore(
        &db,
        &["import", "--file", csv_s, "--mapping", mapping_s, "--strict"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 4"));

    // Rows were rejected: the good ones are in, and the exit code says the others were not.
    let out = dealscore(
        &db,
        &["import", "--file", csv_s, "--mapping", mapping_s, "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 row(s) rejected"));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["opportunities"]["inserted"], 2);
    assert_eq!(summary["opportunities"]["rejected_rows"][0]["line"], 4);

    let out = dealscore(&db, &["import", "--file", csv_s, "--mapping", mapping_s]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("0 inserted, 0 updated, 2 unchanged, 1 rejected"),
        "{text}"
    );
}

#[tokio::test]
async fn cli_errors_are_readable_and_non_zero() {
    let db = TestDb::new().await;
    let out = dealscore(&db, &["import", "--file", "/definitely/missing.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(&mapping, "[columns]\ncolour = \"x\"\n").unwrap();
    let csv = dir.path().join("d.csv");
    std::fs::write(&csv, "external_id,status\na,open\n").unwrap();
    let out = dealscore(
        &db,
        &[
            "import",
            "--file",
            csv.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    let out = Command::new(bin_path())
        .args(["migrate"])
        .env("DATABASE_URL", "mysql://x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported DATABASE_URL"));

    // A fit sample too small to stand for the data is refused before anything is read.
    let models = dir.path().join("models");
    let out = dealscore(
        &db,
        &["train", "--fit-sample", "5", "--out", models.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fit_sample must be 0 (every row) or at least 10000, got 5"),
        "{stderr}"
    );
    assert!(!models.exists(), "{stderr}");

    // The demo refuses a taken address before generating anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(bin_path())
        .args(["demo", "--deals", "500", "--bind", &address])
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(!dir.path().join("demo").exists(), "{stderr}");
}

#[tokio::test]
async fn migrate_applies_the_schema() {
    let db = TestDb::new().await;
    let out = dealscore(&db, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // running twice is harmless
    assert!(dealscore(&db, &["migrate"]).status.success());
}

/// SIGTERM while a request is in flight: the listener closes, the request that had started still
/// finishes and is committed whole, and the process exits cleanly. The request's body is sent in
/// two halves around the signal, so the signal is certain to arrive while it is in flight.
#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_cleanly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = TestDb::new().await;
    let out = dealscore(&db, &["keys", "create", "--name", "t", "--role", "analyst"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin_path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "error")
        .env("DEALSCORE_WARM_CACHES", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dealscore");
    // Wait until the server answers, not merely until the port accepts: the listener is bound
    // before start-up ends, and a signal that arrives before the server runs is not the case
    // under test (on a loaded machine it came first and ended the process unhandled).
    let health = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::new();
    let mut serving = false;
    for _ in 0..400 {
        if let Ok(r) = client.get(&health).send().await {
            if r.status().is_success() {
                serving = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(serving, "dealscore answers /healthz");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("dealscore listens");

    let body = r#"{"name":"Graceful","status":"open","amount":1200,"created_at":"2026-10-01"}"#;
    let head = format!(
        "PUT /v1/opportunities/G-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_string(&mut answer),
    )
    .await
    .expect("answered before the shutdown timeout")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let mut exited = None;
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Some(status) = exited else {
        child.kill().ok();
        child.wait().ok();
        panic!("dealscore did not exit after SIGTERM");
    };
    assert!(status.success(), "{status}");

    let store = dealscore::store::Db::connect(&db.url, &crate::helpers::pool_options())
        .await
        .unwrap();
    let name: String = sqlx::Row::get(
        &sqlx::query("SELECT name FROM opportunities WHERE external_id = $1")
            .bind("G-1")
            .fetch_one(&store.pool)
            .await
            .unwrap(),
        "name",
    );
    assert_eq!(name, "Graceful");
}

/// Kills the child process when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `dealscore demo --bind 127.0.0.1:0` on `deals` generated deals under `dir/demo`, stdout
/// piped; its log (at `log_level`) goes to the returned file, to read on failure.
fn spawn_demo(dir: &std::path::Path, deals: usize, log_level: &str) -> (KillOnDrop, std::path::PathBuf) {
    let stderr_path = dir.join("demo.stderr");
    let child = Command::new(bin_path())
        .args(["demo", "--deals", &deals.to_string(), "--bind", "127.0.0.1:0"])
        .arg("--dir")
        .arg(dir.join("demo"))
        .env("RUST_LOG", log_level)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start dealscore demo");
    (KillOnDrop(child), stderr_path)
}

/// `dealscore demo` (the README's run command, on the embedded SQLite by design): it generates a
/// history, imports it, trains and activates a model, prints an admin key with curl examples,
/// and serves — the printed examples answer with scores. Port 0: the demo listens before it
/// prints, so the examples carry the port it got.
#[tokio::test]
async fn demo_trains_on_its_history_and_serves_the_scores_its_examples_ask_for() {
    use std::io::BufRead;

    let dir = tempfile::tempdir().unwrap();
    let (mut child, stderr_path) = spawn_demo(dir.path(), 1000, "warn");
    let stdout = child.0.stdout.take().expect("piped stdout");
    // The examples are printed in one block once the model is trained and the port bound. The
    // reader drains stdout to the end, as a terminal would, and reports what it found on the way.
    let (found, printed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let (mut key, mut base, mut stored_score_url) = (None, None, None);
        let mut found = Some(found);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.trim().strip_prefix("export KEY=") {
                key = Some(k.to_owned());
            }
            if let Some(healthz) = line.trim().strip_prefix("curl -s ") {
                if let Some(b) = healthz.strip_suffix("/healthz") {
                    base = Some(b.to_owned());
                }
            }
            if let Some(url) = line.split('"').find(|part| part.ends_with("/score")) {
                stored_score_url = Some(url.to_owned());
            }
            if key.is_some() && base.is_some() && stored_score_url.is_some() {
                if let Some(found) = found.take() {
                    let _ = found.send((key.clone(), base.clone(), stored_score_url.clone()));
                }
            }
        }
        if let Some(found) = found {
            let _ = found.send((key, base, stored_score_url));
        }
    });
    let demo_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let (key, base, stored_score_url) = tokio::time::timeout(std::time::Duration::from_secs(180), printed)
        .await
        .unwrap_or_else(|_| panic!("the demo printed its examples in time; its log:\n{}", demo_log()))
        .unwrap();
    let key = key.unwrap_or_else(|| panic!("an admin key is printed; the demo's log:\n{}", demo_log()));
    let base = base.expect("a healthz example is printed");
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    let stored_score_url = stored_score_url.expect("a stored-score example is printed");
    assert!(stored_score_url.starts_with(&base), "{stored_score_url}");

    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let health = client.get(format!("{base}/healthz")).send().await;
    assert!(
        health.as_ref().is_ok_and(|r| r.status() == 200),
        "the demo serves on {base}: {health:?}; its log:\n{}",
        demo_log()
    );

    let stored: Value = client
        .get(&stored_score_url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let probability = stored["probability"].as_f64().expect("a score");
    assert!((0.0..=1.0).contains(&probability), "{stored}");
    // Scored once before serving; reading it adds nothing, the deal and model being unchanged.
    assert_eq!(stored["history"].as_array().map(Vec::len), Some(1), "{stored}");
    // Every open deal was scored before serving: the forecast has no unscored deal.
    let resources: Value = client
        .get(format!("{base}/v1/insights/resources"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let regions = resources["regions"].as_array().expect("regions");
    assert!(!regions.is_empty(), "{resources}");
    for region in regions {
        assert_eq!(region["unscored_open_deals"], 0, "{region}");
        assert!(region["scored_open_deals"].as_u64().unwrap_or(0) > 0, "{region}");
    }

    let response = client
        .post(format!("{base}/v1/score"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"sector": "software", "contact_role": "end_user", "amount": 40000,
            "cycle_days": 30, "interaction_count": 3, "response_hours": 40}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let scored: Value = response.json().await.unwrap();
    assert_eq!(scored["model_version"], stored["model_version"]);
    assert!(scored["next_intervention"]["action"].is_string(), "{scored}");
    assert!(dir.path().join("demo").join("dealscore.db").exists());
}

/// `dealscore demo | head -3`: the reader of the examples goes away; the demo says so in its log
/// and keeps serving rather than dying on the broken pipe.
#[tokio::test]
async fn the_demo_keeps_serving_when_nobody_reads_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, stderr_path) = spawn_demo(dir.path(), 500, "info");
    drop(child.0.stdout.take());
    let demo_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let mut port = None;
    for _ in 0..1200 {
        port = demo_log()
            .lines()
            .find(|line| line.contains("dealscore listening"))
            .and_then(|line| line.split("port=").nth(1))
            .and_then(|rest| rest.split_whitespace().next().map(str::to_owned));
        if port.is_some() || child.0.try_wait().ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let port = port.unwrap_or_else(|| panic!("the demo listens; its log:\n{}", demo_log()));
    assert!(
        demo_log().contains("cannot print the demo's key and examples"),
        "{}",
        demo_log()
    );
    let health = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await;
    assert!(
        health.as_ref().is_ok_and(|r| r.status() == 200),
        "{health:?}; the demo's log:\n{}",
        demo_log()
    );
}

/// Runs `program` (the `dealscore` binary with `prefix` = `["train"]`, or `dealscore-train`) on
/// the app's database with `args`.
fn train_with(program: &str, prefix: &[&str], db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(prefix)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the training command")
}

/// `--no-register` while the deals come from the database: the artifact file and the report are
/// written, and the registry is left alone — no version recorded, none activated — by
/// `dealscore-train` and by its alias `dealscore train` alike.
#[tokio::test]
async fn training_with_no_register_from_the_database_registers_and_activates_nothing() {
    let app = spawn_app().await;
    import_generated(&app, 1_000, 3).await;
    let dealscore = bin_path();
    let dealscore = dealscore.to_str().expect("utf-8 path");
    let runs: [(&str, &[&str]); 2] = [
        (env!("CARGO_BIN_EXE_dealscore-train"), &[]),
        (dealscore, &["train"]),
    ];
    for (program, prefix) in runs {
        let out = tempfile::tempdir().unwrap();
        let output = train_with(
            program,
            prefix,
            &app.db_url,
            &[
                "--no-register",
                "--cv",
                "3",
                "--json",
                "--out",
                out.path().to_str().unwrap(),
            ],
        );
        assert!(
            output.status.success(),
            "{program} {prefix:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(report["status"].is_null() && report["gate"].is_null(), "{report}");
        let artifact = std::path::Path::new(report["artifact_path"].as_str().expect("a path"));
        assert!(artifact.starts_with(out.path()) && artifact.exists(), "{report}");
        assert!(
            models::list(&app.db).await.unwrap().is_empty(),
            "{program} {prefix:?} registered"
        );
        assert!(
            models::active(&app.db).await.unwrap().is_none(),
            "{program} {prefix:?} activated"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let output = train_with(
        dealscore,
        &["train"],
        &app.db_url,
        &[
            "--no-register",
            "--activate",
            "--cv",
            "3",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Not registered (--no-register)"), "{text}");
    assert!(models::active(&app.db).await.unwrap().is_none());
}

/// Writes `deals.csv` (one open deal, `A`) and `activities.csv` (an email, then an activity of
/// kind `second_kind`, on line 3) into `dir`.
fn deal_with_two_activities(
    dir: &std::path::Path,
    second_kind: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let deals = dir.join("deals.csv");
    std::fs::write(&deals, "external_id,status,created_at\nA,open,2025-01-01\n").unwrap();
    let activities = dir.join("activities.csv");
    std::fs::write(
        &activities,
        format!(
            "opportunity_id,id,kind,direction,occurred_at\n\
             A,a1,email,inbound,2025-01-02T08:00:00Z\n\
             A,a2,{second_kind},outbound,2025-01-02T10:00:00Z\n"
        ),
    )
    .unwrap();
    (deals, activities)
}

#[tokio::test]
async fn import_cli_refuses_an_activities_file_with_a_bad_row_under_strict() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (deals, activities) = deal_with_two_activities(dir.path(), "fax");
    let (deals_s, activities_s) = (deals.to_str().unwrap(), activities.to_str().unwrap());
    let out = dealscore(
        &db,
        &[
            "import",
            "--file",
            deals_s,
            "--activities",
            activities_s,
            "--strict",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    let store = dealscore::store::Db::connect(&db.url, &crate::helpers::pool_options())
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activities")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "{stderr}");

    let out = dealscore(
        &db,
        &["import", "--activities", activities_s, "--max-errors", "1"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activities")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn an_import_ends_with_every_row_in_the_database_file_itself() {
    // SQLite's write-ahead log: rows still in it are lost by a copy of the database file alone.
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (deals, activities) = deal_with_two_activities(dir.path(), "call");
    let out = dealscore(
        &db,
        &[
            "import",
            "--file",
            deals.to_str().unwrap(),
            "--activities",
            activities.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = db.url.trim_start_matches("sqlite://");
    let copy = dir.path().join("copy.db");
    std::fs::copy(file, &copy).unwrap();
    let store = dealscore::store::Db::connect(
        &format!("sqlite://{}", copy.display()),
        &crate::helpers::pool_options(),
    )
    .await
    .unwrap();
    for (table, rows) in [("opportunities", 1), ("activities", 2)] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, rows, "{table}");
    }
}

#[tokio::test]
async fn keys_carry_an_owner_or_a_team_and_list_shows_keys_without_one() {
    let db = TestDb::new().await;
    let run = |args: &[&str]| {
        let out = dealscore(&db, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [
        &[
            "keys", "create", "--name", "ana", "--role", "rep", "--owner", "Ana Lima",
        ][..],
        &[
            "keys",
            "create",
            "--name",
            "lead",
            "--role",
            "manager",
            "--owners",
            "Bo Chen,Ana Lima",
        ],
        &[
            "keys", "create", "--name", "emea", "--role", "manager", "--region", "EMEA",
        ],
        &["keys", "create", "--name", "ops", "--role", "analyst"],
    ] {
        let (ok, stderr) = run(args);
        assert!(ok, "{args:?}: {stderr}");
    }
    for args in [
        &["keys", "create", "--name", "r1", "--role", "rep"][..],
        &[
            "keys", "create", "--name", "r2", "--role", "rep", "--region", "EMEA",
        ],
        &["keys", "create", "--name", "m1", "--role", "manager"],
        &[
            "keys", "create", "--name", "m2", "--role", "manager", "--owners", "a", "--region", "EMEA",
        ],
        &[
            "keys", "create", "--name", "a1", "--role", "analyst", "--owner", "Ana Lima",
        ],
        &["keys", "create", "--name", "r3", "--role", "rep", "--owner", " "],
    ] {
        let (ok, stderr) = run(args);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains("--"), "{args:?}: {stderr}");
    }
    // A rep key from before keys had owners.
    let store = dealscore::store::Db::connect(&db.url, &crate::helpers::pool_options())
        .await
        .expect("db");
    dealscore::store::api_keys::insert(&store, "old-rep", "rep", "some-hash")
        .await
        .expect("old key");

    let out = dealscore(&db, &["keys", "list"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    for line in [
        "ana\trep\towner Ana Lima\t",
        "lead\tmanager\towners Ana Lima,Bo Chen\t",
        "emea\tmanager\tregion EMEA\t",
        "ops\tanalyst\tno owner (all deals)\t",
        "old-rep\trep\tno owner (refused: recreate with --owner)\t",
    ] {
        assert!(listed.contains(line), "{line:?} not in\n{listed}");
    }
}

#[tokio::test]
async fn import_logs_progress_off_a_terminal_and_exits_3_on_rejected_rows_unless_allowed() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("deals.csv");
    let mut text = String::from("external_id,status,created_at,amount\n");
    for i in 0..2_500 {
        text.push_str(&format!(
            "D{i},open,2025-01-01,{}\n",
            if i == 7 { "-1" } else { "100" }
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let csv = csv.to_str().unwrap();

    // Standard error is a pipe here: progress comes as plain lines, one per batch with 0 s.
    let out = dealscore(&db, &["import", "--file", csv, "--progress-secs", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("opportunities: 2,500 rows read, 100% of"),
        "{stderr}"
    );
    assert!(stderr.contains("1 row(s) rejected"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2,500 rows read, 2,499 inserted, 0 updated, 0 unchanged, 1 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("line 9 (D7)"), "{stdout}");

    // The default period is longer than this import: no progress line, only the summary.
    let out = dealscore(&db, &["import", "--file", csv, "--allow-rejects"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("rows read"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2,499 unchanged, 1 rejected"));

    // A dry run with rejected rows says so too.
    let out = dealscore(&db, &["import", "--file", csv, "--dry-run"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the other rows were checked"));
}

#[tokio::test]
async fn reading_commands_name_the_database_they_looked_at_and_never_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nowhere").join("dealscore.db");
    let url = format!("sqlite://{}", file.display());
    let csv = dir.path().join("open.csv");
    std::fs::write(&csv, "external_id,status\nA,open\n").unwrap();
    let run = |args: &[&str], url: Option<&str>| {
        let mut command = Command::new(bin_path());
        command.args(args).env("RUST_LOG", "warn").current_dir(dir.path());
        match url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        command.output().unwrap()
    };
    let csv = csv.to_str().unwrap();
    for args in [
        &["score", "--file", csv][..],
        &["keys", "list"],
        &["keys", "revoke", "ci"],
        &["prune", "--dry-run"],
        &["train"],
    ] {
        let out = run(args, Some(&url));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no database at {}", file.display()))
                && stderr.contains(&format!("DATABASE_URL={url}")),
            "{args:?}: {stderr}"
        );
        assert!(!file.exists() && !file.parent().unwrap().exists(), "{args:?}");
    }
    // Without DATABASE_URL the message says the default was used, and the default stays absent.
    let out = run(&["score", "--file", csv], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_URL=sqlite://data/dealscore.db (the default: DATABASE_URL is not set)"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "{stderr}");
}

#[tokio::test]
async fn scoring_without_an_active_model_names_the_database() {
    let db = TestDb::new().await;
    assert!(dealscore(&db, &["migrate"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("open.csv");
    std::fs::write(&csv, "external_id,status\nA,open\n").unwrap();
    let out = dealscore(&db, &["score", "--file", csv.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no active model in the database at DATABASE_URL=")
            && stderr.contains("dealscore train"),
        "{stderr}"
    );
}

#[tokio::test]
async fn score_cli_writes_formula_cells_as_text_in_its_output_csv() {
    let app = crate::helpers::spawn_app().await;
    import_generated(&app, 600, 21).await;
    crate::helpers::train_cli(&app, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("open.csv");
    let output = dir.path().join("scored.csv");
    // Every trigger a spreadsheet evaluates: = + - @, and a leading TAB or CR.
    let names = [
        "=HYPERLINK(\"https://evil.example\",\"x\")",
        "+SUM(1+1)",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1)",
        "\t=1+1",
        "\r=1+1",
    ];
    let mut csv = String::from("external_id,name,sector,amount,status,created_at\n");
    for (i, name) in names.iter().enumerate() {
        csv.push_str(&format!(
            "F-{i},\"{}\",retail,1000,open,2025-01-01\n",
            name.replace('"', "\"\"")
        ));
    }
    std::fs::write(&input, csv).expect("write input");
    let out = std::process::Command::new(bin_path())
        .args([
            "score",
            "--file",
            input.to_str().unwrap(),
            "--out",
            output.to_str().unwrap(),
        ])
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dealscore score");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&output).expect("output csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let column = headers.iter().position(|h| h == "name").expect("name column");
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[column].to_owned())
        .collect();
    let expected: Vec<String> = names.iter().map(|n| format!("'{n}")).collect();
    assert_eq!(cells, expected, "{text}");
}

#[tokio::test]
async fn score_cli_as_of_gives_the_same_scores_whatever_day_it_runs() {
    let app = crate::helpers::spawn_app().await;
    import_generated(&app, 600, 23).await;
    crate::helpers::train_cli(&app, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("open.csv");
    let mut csv = String::from("external_id,sector,amount,status,created_at,interaction_count\n");
    for i in 0..20 {
        csv.push_str(&format!(
            "T-{i},retail,{},open,2026-0{}-1{}T08:00:00Z,{}\n",
            1000 + 250 * i,
            1 + i % 6,
            i % 10,
            i % 7
        ));
    }
    std::fs::write(&input, csv).expect("write input");
    let score = |extra: &[&str]| {
        let out = std::process::Command::new(bin_path())
            .args(["score", "--file", input.to_str().unwrap()])
            .args(extra)
            .env("DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dealscore score");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let probabilities = |text: &str| -> Vec<String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let column = reader
            .headers()
            .expect("header")
            .iter()
            .position(|h| h == "probability")
            .expect("probability column");
        reader
            .records()
            .map(|r| r.expect("record")[column].to_owned())
            .collect()
    };
    let (code, first, stderr) = score(&["--as-of", "2026-07-01T00:00:00Z"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("as of 2026-07-01T00:00:00Z"), "{stderr}");
    // Seconds apart, the instant is the same: the output is too, byte for byte.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, second, _) = score(&["--as-of", "2026-07-01"]);
    assert_eq!(first, second);
    // The instant matters: a year later every deal is older and some probabilities move.
    let (_, later, _) = score(&["--as-of", "2027-07-01"]);
    assert_eq!(probabilities(&first).len(), 20);
    assert_ne!(probabilities(&first), probabilities(&later));
    // A malformed instant is refused before anything is read, with the reason.
    let (code, stdout, stderr) = score(&["--as-of", "next tuesday"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("--as-of") && stderr.contains("is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        "{stderr}"
    );
}
