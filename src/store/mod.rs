//! All SQL lives here. One file per table; [`Db::connect`] picks SQLite or PostgreSQL from the
//! URL scheme, once, and the rest of the code never asks which.
//!
//! SQL is written once for both backends with `$N` placeholders (SQLite accepts them too) and the
//! types sqlx's `Any` driver can read on both (see `migrations/README.md`).

pub mod acquisition_costs;
pub mod activities;
pub mod api_keys;
pub mod group_commit;
pub mod history;
pub mod insights;
pub mod models;
pub mod opportunities;
pub mod outbox;
pub mod retention;
pub mod scope;
pub mod scores;
mod sql;
pub mod training_data;
pub mod training_runs;
pub mod upsert_queue;
pub mod web_sessions;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::config::Settings;

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// PostgreSQL migrations whose comments were reworded after they shipped, with the SHA-384 (hex)
/// of the text databases applied: 0007 named a work item instead of the benchmark it cites.
const REWORDED_COMMENTS: [(i64, &str); 1] = [(
    7,
    "963ceda5956388d41ab1f8ec89dee0422e22ac6024abd12084562bb78c00a615b1051371e250f52de4ccc80ca462d1e9",
)];

/// A connection pool plus the backend it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported DATABASE_URL `{0}`: use sqlite://path/to/file.db or postgres://user@host/db")]
    UnsupportedScheme(String),
    /// The SQLite folder could not be created.
    #[error("cannot create the folder for the SQLite database {path}: {source}")]
    CreateDir {
        /// Folder path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Pool sizing and timeouts (from [`Settings`]).
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Maximum connections.
    pub max_connections: u32,
    /// Minimum idle connections.
    pub min_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
    /// SQLite busy timeout.
    pub sqlite_busy_timeout: Duration,
}

impl From<&Settings> for PoolOptions {
    fn from(s: &Settings) -> Self {
        PoolOptions {
            max_connections: s.db_max_connections.max(1),
            min_connections: s.db_min_connections.min(s.db_max_connections.max(1)),
            acquire_timeout: Duration::from_secs(s.db_acquire_timeout_secs.max(1)),
            sqlite_busy_timeout: Duration::from_millis(s.sqlite_busy_timeout_ms),
        }
    }
}

/// The backend a URL names, if supported.
pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// Creates the parent folder of a SQLite file and makes sure the URL creates the file if missing.
fn prepare_sqlite_url(url: &str) -> Result<String, ConnectError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| ConnectError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => url.to_string(),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

impl Db {
    /// Opens a pool on `url` (SQLite file created if missing, in WAL mode with a busy timeout) and
    /// applies pending migrations.
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Db, ConnectError> {
        let db = Self::connect_without_migrating(url, options).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Opens a pool without touching the schema.
    pub async fn connect_without_migrating(url: &str, options: &PoolOptions) -> Result<Db, ConnectError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url).ok_or_else(|| ConnectError::UnsupportedScheme(redact(url)))?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        // sqlx logs every statement slower than 1 s with its full text at WARN; batched inserts
        // carry thousands of placeholders, so that drowns the log. Latency is in /metrics instead.
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(ConnectError::Connect)?
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(10));
        let busy_ms = options.sqlite_busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings a pooled connection before handing it out. A SQLite connection lives in
            // this process and cannot drop, and the ping is a round trip to its worker thread on
            // every transaction (measured: a tenth of a small write's time under load); a
            // PostgreSQL connection can be cut by the network or a server restart, so it keeps it.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during writes; the busy timeout makes concurrent
                        // writers wait instead of failing; foreign keys enforce activity cascades.
                        // A 16 MiB page cache per connection (SQLite's default is 2 MiB) keeps the
                        // upper levels of the external-id index in memory during large imports
                        // instead of re-reading them from the OS on every lookup.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {busy_ms}; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                             PRAGMA cache_size = -16384;"
                        );
                        conn.execute(pragmas.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(ConnectError::Connect)?;
        Ok(Db { pool, backend })
    }

    /// Closes every connection. On SQLite the write-ahead log is first checkpointed into the
    /// database file and emptied: SQLite does that itself when the last connection closes, but
    /// a pool closes its connections at once and none of them may find itself the last, which
    /// left writes in the log (safe on reopen, lost by a copy of the database file alone).
    pub async fn close(&self) -> Result<(), sqlx::Error> {
        let checkpoint = match self.backend {
            Backend::Sqlite => sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
                .map(|_| ()),
            Backend::Postgres => Ok(()),
        };
        self.pool.close().await;
        checkpoint
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        let result = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await,
            Backend::Postgres => {
                let migrator = sqlx::migrate!("migrations/postgres");
                self.accept_reworded_comments(&migrator)
                    .await
                    .map_err(|e| ConnectError::Migrate(e.into()))?;
                migrator.run(&self.pool).await
            }
        };
        result.map_err(ConnectError::Migrate)
    }

    /// sqlx refuses to start when an applied migration's file no longer has the checksum recorded
    /// when it ran, comments included. For each migration in [`REWORDED_COMMENTS`] whose comment
    /// was reworded after it shipped (SQL unchanged), a database that applied the earlier text
    /// gets the current checksum recorded instead; any other difference is still refused.
    async fn accept_reworded_comments(&self, migrator: &sqlx::migrate::Migrator) -> Result<(), sqlx::Error> {
        let applied: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        if applied == 0 {
            return Ok(());
        }
        for (version, earlier) in REWORDED_COMMENTS {
            let Some(current) = migrator.iter().find(|m| m.version == version) else {
                continue;
            };
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = decode($1, 'hex') \
                 WHERE version = $2 AND checksum = decode($3, 'hex')",
            )
            .bind(hex::encode(&current.checksum))
            .bind(version)
            .bind(earlier)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Starts a transaction that will write.
    ///
    /// On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that
    /// reads first and writes later fails with `SQLITE_BUSY_SNAPSHOT` when another writer committed
    /// in between, and the busy timeout cannot help there. Waiting for the lock at `BEGIN` lets the
    /// busy timeout serialise concurrent writers instead.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// A connection of its own for one long bulk write (a CSV import), outside the pool: closed
    /// when dropped, never handed to another caller. On SQLite its statement journals — a
    /// multi-row upsert inside a transaction keeps one, to undo just that statement — stay in
    /// memory (`temp_store = MEMORY`) instead of spilling to a temporary file (a few per cent
    /// faster; docs/performance.md, "CSV import"). It is set on this connection only, so
    /// SQLite's sorter keeps using disk for the large `ORDER BY` of training loads on pooled
    /// connections.
    pub async fn bulk_connection(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = self.pool.acquire().await?.detach();
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA temp_store = MEMORY")
                .execute(&mut conn)
                .await?;
        }
        Ok(conn)
    }

    /// [`Db::begin_write`] on a connection from [`Db::bulk_connection`].
    pub async fn begin_write_on<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// True when the database refused a statement because of other writers, not because the statement
/// is wrong: the pool timed out, SQLite stayed busy or locked past its busy timeout, or PostgreSQL
/// aborted a transaction as a deadlock victim, a serialisation failure or a lock it could not
/// take. Retrying later succeeds, so the API answers 503 `database-busy` instead of 500.
pub fn is_contention(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_contention(&code)
            } else {
                matches!(&*code, "40001" | "40P01" | "55P03")
            }
        }
        _ => false,
    }
}

/// SQLite gives its extended result code as a number whose low byte is the primary code:
/// 5 `SQLITE_BUSY`, 6 `SQLITE_LOCKED` (PostgreSQL's SQLSTATEs above: 40001 serialisation
/// failure, 40P01 deadlock, 55P03 lock not available).
fn sqlite_contention(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
}

/// Splits a sequence of keys into consecutive runs in which no key repeats, breaking before a
/// repeated key. A multi-row upsert may touch a row only once, and a later write of the same key
/// must see the earlier one, so set-based writers apply one run after the other.
pub fn distinct_runs<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    let mut end = 0;
    for (i, key) in keys.into_iter().enumerate() {
        if !seen.insert(key) {
            runs.push(start..i);
            start = i;
            seen.clear();
            seen.insert(key);
        }
        end = i + 1;
    }
    if start < end {
        runs.push(start..end);
    }
    runs
}

/// Hides a password in a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_before_a_repeated_key() {
        assert_eq!(distinct_runs(["a", "b", "a", "c"]), vec![0..2, 2..4]);
        assert_eq!(distinct_runs(["a", "a", "a"]), vec![0..1, 1..2, 2..3]);
        assert_eq!(distinct_runs(["a", "b"]), vec![0..2]);
        assert!(distinct_runs([]).is_empty());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://bob:secret@db/x"), "postgres://bob:***@db/x");
        assert_eq!(redact("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/x.db", dir.path().display());
        let prepared = prepare_sqlite_url(&url).unwrap();
        assert!(prepared.ends_with("?mode=rwc"));
        assert!(dir.path().join("nested").is_dir());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert_eq!(backend_of("mysql://x"), None);
        assert_eq!(backend_of("postgresql://x"), Some(Backend::Postgres));
    }
}
