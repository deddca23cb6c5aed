//! A write that cannot get its lock in time is "retry later" (503 `database-busy`), never a 500:
//! the error comes from a real lock held on a real database, on both backends.

use std::time::Duration;

use actix_web::ResponseError;
use dealscore::error::ApiError;
use dealscore::store::{is_contention, Backend, Db};
use serde_json::json;

use crate::helpers::{assert_problem, pool_options, spawn_app_with, TestDb};

/// Holds the write lock from one connection (SQLite: the database's; PostgreSQL: the
/// `training_runs` table's) and writes from another, which gives up after about 100 ms; returns
/// the second writer's error.
async fn locked_out_write(url: &str) -> sqlx::Error {
    let mut options = pool_options();
    options.sqlite_busy_timeout = Duration::from_millis(100);
    let db = Db::connect(url, &options).await.expect("connect");
    // On SQLite `begin_write` is `BEGIN IMMEDIATE`: it holds the write lock from the start.
    let mut holder = db.begin_write().await.expect("first writer");
    let mut waiter = db.pool.acquire().await.expect("second connection");
    if db.backend == Backend::Postgres {
        // PostgreSQL waits for row and table locks forever unless told otherwise.
        sqlx::query("SET lock_timeout = '100ms'")
            .execute(&mut *waiter)
            .await
            .expect("lock timeout");
        sqlx::query("LOCK TABLE training_runs IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *holder)
            .await
            .expect("table lock");
    }
    let refused = sqlx::query("DELETE FROM training_runs")
        .execute(&mut *waiter)
        .await
        .expect_err("the second writer cannot get the lock");
    holder.rollback().await.expect("rollback");
    refused
}

#[tokio::test]
async fn a_write_locked_out_by_another_writer_is_contention_and_answers_503() {
    let test_db = TestDb::new().await;
    let error = locked_out_write(&test_db.url).await;
    assert!(is_contention(&error), "{error:?}");
    let api = ApiError::from(error);
    assert_eq!(api.status_code(), 503, "{api:?}");
}

#[tokio::test]
async fn other_database_errors_are_not_contention() {
    let test_db = TestDb::new().await;
    let db = Db::connect(&test_db.url, &pool_options()).await.expect("connect");
    let error = sqlx::query("SELECT no_such_column FROM training_runs")
        .execute(&db.pool)
        .await
        .expect_err("unknown column");
    assert!(!is_contention(&error), "{error:?}");
    assert!(!is_contention(&sqlx::Error::RowNotFound));
    assert_eq!(ApiError::from(error).status_code(), 500);
}

/// Through HTTP on SQLite: a request that waits out the busy timeout behind another writer gets
/// the `database-busy` problem. (PostgreSQL has no server-side lock timeout by default, so there
/// the request would simply wait; the classification is checked above on both backends.)
#[tokio::test]
async fn an_upsert_behind_a_long_sqlite_writer_answers_database_busy() {
    let app = spawn_app_with(|s| s.sqlite_busy_timeout_ms = 100).await;
    if !app.db_url.starts_with("sqlite") {
        return;
    }
    // `BEGIN IMMEDIATE`: the write lock is held until the rollback below.
    let holder = app.db.begin_write().await.expect("first writer");
    let response = app
        .put_opportunity(
            "busy-1",
            &json!({"status": "open", "amount": 1000, "sector": "retail", "created_at": "2026-01-05T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body = assert_problem(response, 503, None).await;
    holder.rollback().await.expect("rollback");
    assert!(
        body["type"].as_str().unwrap_or("").ends_with("database-busy"),
        "{body}"
    );
}
