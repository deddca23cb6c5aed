use std::process::Command;

use serde_json::Value;

use crate::helpers::{bin_path, TestDb};

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

    let out = dealscore(
        &db,
        &["import", "--file", csv_s, "--mapping", mapping_s, "--json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
}

#[tokio::test]
async fn migrate_applies_the_schema() {
    let db = TestDb::new().await;
    let out = dealscore(&db, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // running twice is harmless
    assert!(dealscore(&db, &["migrate"]).status.success());
}
