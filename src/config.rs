//! Settings: defaults in code, an optional TOML file, then `DATABASE_URL` / `DEALSCORE_*`
//! environment overrides (highest precedence).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Everything the service can be configured with. Every field has a default (see [`Default`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Database URL: `sqlite://path` (file and folder created if missing) or `postgres://…`.
    /// Default `sqlite://data/dealscore.db`. Env: `DATABASE_URL`.
    pub database_url: String,
    /// Address the API listens on. Default `127.0.0.1:8080`. Env: `DEALSCORE_BIND`.
    pub bind: String,
    /// Largest accepted request body in bytes (larger → 413). Default 1 MiB.
    /// Env: `DEALSCORE_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Largest accepted CSV body on `POST /v1/imports`, in bytes. Default 256 MiB.
    /// Env: `DEALSCORE_MAX_IMPORT_BYTES`.
    pub max_import_bytes: usize,
    /// Maximum database connections in the pool. Default 8 (SQLite) — PostgreSQL users may raise it.
    /// Env: `DEALSCORE_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// Minimum idle connections kept open. Default 1. Env: `DEALSCORE_DB_MIN_CONNECTIONS`.
    pub db_min_connections: u32,
    /// Seconds to wait for a free connection before failing. Default 10.
    /// Env: `DEALSCORE_DB_ACQUIRE_TIMEOUT_SECS`.
    pub db_acquire_timeout_secs: u64,
    /// SQLite busy timeout in milliseconds. Default 5000. Env: `DEALSCORE_SQLITE_BUSY_TIMEOUT_MS`.
    pub sqlite_busy_timeout_ms: u64,
    /// HTTP worker threads (0 = one per core). Default 0. Env: `DEALSCORE_WORKERS`.
    pub workers: usize,
    /// Seconds given to in-flight requests on shutdown. Default 30. Env: `DEALSCORE_SHUTDOWN_TIMEOUT_SECS`.
    pub shutdown_timeout_secs: u64,
    /// Seconds a verified API key is remembered before it is looked up again (revocations take
    /// effect within this delay). Default 5; 0 disables the cache. Env: `DEALSCORE_AUTH_CACHE_SECS`.
    pub auth_cache_secs: u64,
    /// Minutes a web UI sign-in lasts. Default 480 (a working day). Env:
    /// `DEALSCORE_SESSION_MINUTES`.
    pub session_minutes: u64,
    /// Mark the web UI's cookies `Secure` (browsers then send them over HTTPS only). Set it when
    /// a TLS proxy fronts the service; requests that arrive over TLS get `Secure` cookies anyway.
    /// Default false. Env: `DEALSCORE_SECURE_COOKIES`.
    pub secure_cookies: bool,
    /// Failed web sign-ins allowed per client address per minute before further attempts get a
    /// 429 for the rest of the minute; 0 disables the limit. Default 10. Env:
    /// `DEALSCORE_SIGNIN_FAILURES_PER_MINUTE`.
    pub signin_failures_per_minute: u32,
    /// Build the insights snapshot and the priority lists in the background at startup, so the
    /// first page views after a restart do not wait for them. Default true. Env:
    /// `DEALSCORE_WARM_CACHES`.
    pub warm_caches: bool,
    /// Log format: `human` or `json`. Default `human`. Env: `DEALSCORE_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Folder where model artifacts are written. Default `models`. Env: `DEALSCORE_MODELS_DIR`.
    pub models_dir: String,
    /// Largest body of `POST /v1/score` (batches of up to 10,000 deals). Default 16 MiB.
    /// Env: `DEALSCORE_MAX_BATCH_BODY_BYTES`.
    pub max_batch_body_bytes: usize,
    /// Seconds between checks of the registry for a newly activated model (replicas follow each
    /// other's activations within this delay). Default 2. Env: `DEALSCORE_MODEL_REFRESH_SECS`.
    pub model_refresh_secs: u64,
    /// Grade cut points, trend threshold and focus thresholds (`[scoring]` table in the TOML file).
    pub scoring: ScoringConfig,
    /// Which opportunity fields the insights read for customers and competitors (`[insights]`
    /// table). Default: none set.
    pub insights: InsightsConfig,
    /// CRM connections allowed to post to `POST /v1/webhooks/{name}`. Default none. TOML
    /// `[[webhook_sources]]`; one more can come from `DEALSCORE_WEBHOOK_SOURCE` +
    /// `DEALSCORE_WEBHOOK_SECRET` (+ `DEALSCORE_WEBHOOK_CALLBACK_URL`).
    pub webhook_sources: Vec<WebhookSource>,
    /// Largest accepted gap, in seconds, between a signature's timestamp and now (past or future).
    /// Default 300. Env: `DEALSCORE_WEBHOOK_TOLERANCE_SECS`.
    pub webhook_tolerance_secs: u64,
    /// Smallest score move (points on 0–100) written back to the CRM when the grade stays the
    /// same. Default 5. Env: `DEALSCORE_WRITEBACK_MIN_POINTS`.
    pub writeback_min_points: f64,
    /// Delivery attempts of one write-back before it is dead-lettered. Default 8.
    /// Env: `DEALSCORE_OUTBOX_MAX_ATTEMPTS`.
    pub outbox_max_attempts: u32,
    /// First retry delay of a failed write-back in milliseconds; doubles each attempt (with
    /// jitter). Default 1000. Env: `DEALSCORE_OUTBOX_BASE_DELAY_MS`.
    pub outbox_base_delay_ms: u64,
    /// Seconds between drift checks of the active model in the server (the
    /// `dealscore_feature_psi` gauges); 0 turns the timer off (the drift endpoint still
    /// refreshes them). Default 900. Env: `DEALSCORE_DRIFT_REFRESH_SECS`.
    pub drift_refresh_secs: u64,
    /// Retention: the newest N model versions are never pruned (nor the active one). Default 10.
    /// Env: `DEALSCORE_RETENTION_KEEP_VERSIONS`.
    pub retention_keep_versions: usize,
    /// Retention: days of score history kept; older rows are pruned except each opportunity's
    /// latest score. Default 365. Env: `DEALSCORE_RETENTION_SCORE_DAYS`.
    pub retention_score_days: u32,
    /// Hours between retention runs in the server; 0 = off (run `dealscore prune` instead), 24 =
    /// daily. Default 0. Env: `DEALSCORE_RETENTION_INTERVAL_HOURS`.
    pub retention_interval_hours: u64,
    /// Promotion gate: how much lower than the active model's holdout ROC AUC a new model's may
    /// be and still be activated. Default 0.01. Env: `DEALSCORE_GATE_AUC_TOLERANCE`.
    pub gate_auc_tolerance: f64,
    /// Promotion gate: an active model older than this many days is replaced by any new model.
    /// Default 90. Env: `DEALSCORE_GATE_MAX_AGE_DAYS`.
    pub gate_max_age_days: f64,
    /// Scheduled retraining period (`7d`, `12h`, `30m`, `90s`; empty = off). Default off.
    /// Env: `DEALSCORE_RETRAIN_EVERY`; `serve --retrain-every` overrides.
    pub retrain_every: String,
    /// Retrain once this many deals have closed since the active model was trained (0 = off).
    /// Default 0. Env: `DEALSCORE_RETRAIN_AFTER_CLOSED`.
    pub retrain_after_closed: u64,
}

/// One CRM connection that may send webhooks. Its `Debug` output hides the secrets.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSource {
    /// Name used in the URL (`/v1/webhooks/{name}`): letters, digits, `-` and `_`.
    pub name: String,
    /// Shared HMAC secrets; a signature made with any of them is accepted (several during a
    /// rotation). At least one. Write-backs are signed with the first.
    pub secrets: Vec<String>,
    /// Path of an import mapping TOML (same format as the CSV import) applied to event `data`.
    #[serde(default)]
    pub mapping: Option<String>,
    /// URL that receives score write-backs; none means no write-back.
    #[serde(default)]
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for WebhookSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSource")
            .field("name", &self.name)
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("mapping", &self.mapping)
            .field("callback_url", &self.callback_url)
            .finish()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://data/dealscore.db".into(),
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 256 * 1024 * 1024,
            db_max_connections: 8,
            db_min_connections: 1,
            db_acquire_timeout_secs: 10,
            sqlite_busy_timeout_ms: 5000,
            workers: 0,
            shutdown_timeout_secs: 30,
            auth_cache_secs: 5,
            session_minutes: 480,
            secure_cookies: false,
            warm_caches: true,
            signin_failures_per_minute: 10,
            log_format: LogFormat::Human,
            models_dir: "models".into(),
            max_batch_body_bytes: 16 * 1024 * 1024,
            model_refresh_secs: 2,
            scoring: ScoringConfig::default(),
            webhook_sources: Vec::new(),
            webhook_tolerance_secs: 300,
            writeback_min_points: 5.0,
            outbox_max_attempts: 8,
            outbox_base_delay_ms: 1000,
            drift_refresh_secs: 900,
            retention_keep_versions: 10,
            retention_score_days: 365,
            retention_interval_hours: 0,
            gate_auc_tolerance: 0.01,
            gate_max_age_days: 90.0,
            retrain_every: String::new(),
            retrain_after_closed: 0,
            insights: InsightsConfig::default(),
        }
    }
}

/// Where grades and focus classes take their cut points from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CutSource {
    /// Quantiles of the deals the model was calibrated on (recorded in its artifact).
    #[default]
    Data,
    /// The configured fixed probabilities and score cuts.
    Fixed,
}

/// Tunable scoring rules (`[scoring]` table), used by [`crate::scoring`]. Every field has a
/// documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Where grades and focus classes cut: `data` (default) from the quantiles recorded in the
    /// model artifact (`cut_points`), so each grade holds about a quarter of the open deals and
    /// each focus class is a working list; `fixed` from `grade_cuts` and the probabilities below.
    /// An artifact without recorded quantiles always uses the fixed cuts.
    pub cut_points: CutSource,
    /// Largest share (0–1) of the deals that are `prioritize`: those whose best lever gains the
    /// most expected value. Default 0.25.
    pub prioritize_share: f64,
    /// Share (0–1) of the deals with the highest probability that are `secure` (unless they are
    /// `prioritize`). Default 0.3.
    pub secure_share: f64,
    /// Share (0–1) of the deals whose probability even after the best lever is lowest that are
    /// `deprioritize`. Default 0.3.
    pub deprioritize_share: f64,
    /// With `cut_points = "fixed"`: lowest score of grades A, B and C (below the last: D).
    /// Default `[60, 40, 20]`.
    pub grade_cuts: [u8; 3],
    /// Score change (points) that counts as improving/declining. Default 5.
    pub trend_threshold: u8,
    /// With fixed cuts: probability from which a deal is to be `secure`d. Default 0.6.
    pub secure_probability: f64,
    /// With fixed cuts: probability from which a deal is a `prioritize` one. Default 0.4.
    pub prioritize_probability: f64,
    /// Available uplift (probability points, 0–1) that also makes a deal a `prioritize` one.
    /// Default 0.10.
    pub prioritize_uplift: f64,
    /// With fixed cuts: below this probability, with no lever lifting it above, a deal is
    /// `deprioritize`d.
    /// Default 0.2.
    pub deprioritize_probability: f64,
    /// Won deals a sector needs before its own reference is used as a target. Default 20.
    pub min_sector_won: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            cut_points: CutSource::Data,
            prioritize_share: 0.25,
            secure_share: 0.3,
            deprioritize_share: 0.3,
            grade_cuts: [60, 40, 20],
            trend_threshold: 5,
            secure_probability: 0.6,
            prioritize_probability: 0.4,
            prioritize_uplift: 0.10,
            deprioritize_probability: 0.2,
            // The model's own threshold (`model::factors::MIN_WON_FOR_GROUP_TARGET`, kept equal
            // by a scoring test): settings sit below the model and cannot name it.
            min_sector_won: 20,
        }
    }
}

/// The opportunity fields behind the customers and competitors insights (`[insights]` table),
/// each written `attr.<name>` (a custom attribute, which the import mapping can fill; the
/// competitor and loss reason fields may also be a core field). All default unset; a figure
/// that needs an unset field answers null with the reason, and the competitors insight answers
/// 409 `not-configured` without its field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsConfig {
    /// Deal type: values `new`, `renewal` or `upsell` (any case). Unset: no churn, retention
    /// or upsell figures. Env: `DEALSCORE_INSIGHTS_DEAL_TYPE_FIELD`.
    pub deal_type_field: Option<String>,
    /// Contract start date (RFC 3339 or YYYY-MM-DD); unset or missing: the close date.
    /// Env: `DEALSCORE_INSIGHTS_CONTRACT_START_FIELD`.
    pub contract_start_field: Option<String>,
    /// Contract end date (RFC 3339 or YYYY-MM-DD); wins over the length when both are set.
    /// Env: `DEALSCORE_INSIGHTS_CONTRACT_END_FIELD`.
    pub contract_end_field: Option<String>,
    /// Contract length in months (a number). Env: `DEALSCORE_INSIGHTS_CONTRACT_MONTHS_FIELD`.
    pub contract_months_field: Option<String>,
    /// The field naming a deal's main competitor (e.g. `attr.competitor`). Unset:
    /// `GET /v1/insights/competitors` answers 409 `not-configured`. Env:
    /// `DEALSCORE_INSIGHTS_COMPETITOR_FIELD`.
    pub competitor_field: Option<String>,
    /// The field holding a lost deal's loss reason (e.g. `attr.loss_reason`). Unset: the
    /// competitors insight reports no loss reasons. Env: `DEALSCORE_INSIGHTS_LOSS_REASON_FIELD`.
    pub loss_reason_field: Option<String>,
    /// The loss reason that means "lost to a competitor" (compared ignoring case); unset:
    /// `competitor`. Env: `DEALSCORE_INSIGHTS_LOST_TO_COMPETITOR`.
    pub lost_to_competitor: Option<String>,
}

impl InsightsConfig {
    /// `DEALSCORE_INSIGHTS_*` overrides; an empty value unsets the field.
    fn apply_env(&mut self, lookup: &impl Fn(&str) -> Option<String>) {
        let fields = [
            ("DEALSCORE_INSIGHTS_DEAL_TYPE_FIELD", &mut self.deal_type_field),
            (
                "DEALSCORE_INSIGHTS_CONTRACT_START_FIELD",
                &mut self.contract_start_field,
            ),
            (
                "DEALSCORE_INSIGHTS_CONTRACT_END_FIELD",
                &mut self.contract_end_field,
            ),
            (
                "DEALSCORE_INSIGHTS_CONTRACT_MONTHS_FIELD",
                &mut self.contract_months_field,
            ),
            ("DEALSCORE_INSIGHTS_COMPETITOR_FIELD", &mut self.competitor_field),
            (
                "DEALSCORE_INSIGHTS_LOSS_REASON_FIELD",
                &mut self.loss_reason_field,
            ),
            (
                "DEALSCORE_INSIGHTS_LOST_TO_COMPETITOR",
                &mut self.lost_to_competitor,
            ),
        ];
        for (name, field) in fields {
            if let Some(v) = lookup(name) {
                let v = v.trim();
                *field = (!v.is_empty()).then(|| v.to_owned());
            }
        }
    }
}

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Settings`].
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File path.
        path: String,
        /// Parser message (names the key and line).
        message: String,
    },
    /// An environment variable holds a value of the wrong type.
    #[error("environment variable {name}={value:?} is invalid: {message}")]
    Env {
        /// Variable name.
        name: String,
        /// Its value.
        value: String,
        /// What was expected.
        message: String,
    },
}

impl Settings {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut settings = match file {
            Some(path) => Self::from_file(path)?,
            None => Settings::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Applies overrides from `lookup` (the environment in production, a map in tests).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse::<T>().map_err(|e| ConfigError::Env {
                name: name.into(),
                value: value.clone(),
                message: e.to_string(),
            })
        }
        if let Some(v) = lookup("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = lookup("DEALSCORE_BIND") {
            self.bind = v;
        }
        if let Some(v) = lookup("DEALSCORE_MODELS_DIR") {
            self.models_dir = v;
        }
        if let Some(v) = lookup("DEALSCORE_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("DEALSCORE_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_MAX_IMPORT_BYTES") {
            self.max_import_bytes = parse("DEALSCORE_MAX_IMPORT_BYTES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_DB_MAX_CONNECTIONS") {
            self.db_max_connections = parse("DEALSCORE_DB_MAX_CONNECTIONS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_DB_MIN_CONNECTIONS") {
            self.db_min_connections = parse("DEALSCORE_DB_MIN_CONNECTIONS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_DB_ACQUIRE_TIMEOUT_SECS") {
            self.db_acquire_timeout_secs = parse("DEALSCORE_DB_ACQUIRE_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_SQLITE_BUSY_TIMEOUT_MS") {
            self.sqlite_busy_timeout_ms = parse("DEALSCORE_SQLITE_BUSY_TIMEOUT_MS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_WORKERS") {
            self.workers = parse("DEALSCORE_WORKERS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_SHUTDOWN_TIMEOUT_SECS") {
            self.shutdown_timeout_secs = parse("DEALSCORE_SHUTDOWN_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_AUTH_CACHE_SECS") {
            self.auth_cache_secs = parse("DEALSCORE_AUTH_CACHE_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_SESSION_MINUTES") {
            self.session_minutes = parse("DEALSCORE_SESSION_MINUTES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_SECURE_COOKIES") {
            self.secure_cookies = parse("DEALSCORE_SECURE_COOKIES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_SIGNIN_FAILURES_PER_MINUTE") {
            self.signin_failures_per_minute = parse("DEALSCORE_SIGNIN_FAILURES_PER_MINUTE", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_WARM_CACHES") {
            self.warm_caches = parse("DEALSCORE_WARM_CACHES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_MAX_BATCH_BODY_BYTES") {
            self.max_batch_body_bytes = parse("DEALSCORE_MAX_BATCH_BODY_BYTES", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_MODEL_REFRESH_SECS") {
            self.model_refresh_secs = parse("DEALSCORE_MODEL_REFRESH_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_WEBHOOK_TOLERANCE_SECS") {
            self.webhook_tolerance_secs = parse("DEALSCORE_WEBHOOK_TOLERANCE_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_WRITEBACK_MIN_POINTS") {
            self.writeback_min_points = parse("DEALSCORE_WRITEBACK_MIN_POINTS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_OUTBOX_MAX_ATTEMPTS") {
            self.outbox_max_attempts = parse("DEALSCORE_OUTBOX_MAX_ATTEMPTS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_OUTBOX_BASE_DELAY_MS") {
            self.outbox_base_delay_ms = parse("DEALSCORE_OUTBOX_BASE_DELAY_MS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_DRIFT_REFRESH_SECS") {
            self.drift_refresh_secs = parse("DEALSCORE_DRIFT_REFRESH_SECS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_RETENTION_KEEP_VERSIONS") {
            self.retention_keep_versions = parse("DEALSCORE_RETENTION_KEEP_VERSIONS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_RETENTION_SCORE_DAYS") {
            self.retention_score_days = parse("DEALSCORE_RETENTION_SCORE_DAYS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_RETENTION_INTERVAL_HOURS") {
            self.retention_interval_hours = parse("DEALSCORE_RETENTION_INTERVAL_HOURS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_GATE_AUC_TOLERANCE") {
            self.gate_auc_tolerance = parse("DEALSCORE_GATE_AUC_TOLERANCE", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_GATE_MAX_AGE_DAYS") {
            self.gate_max_age_days = parse("DEALSCORE_GATE_MAX_AGE_DAYS", v)?;
        }
        if let Some(v) = lookup("DEALSCORE_RETRAIN_EVERY") {
            self.retrain_every = v.trim().to_owned();
        }
        if let Some(v) = lookup("DEALSCORE_RETRAIN_AFTER_CLOSED") {
            self.retrain_after_closed = parse("DEALSCORE_RETRAIN_AFTER_CLOSED", v)?;
        }
        self.apply_env_webhook_source(&lookup)?;
        self.insights.apply_env(&lookup);
        if let Some(v) = lookup("DEALSCORE_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "DEALSCORE_LOG_FORMAT".into(),
                        value: v,
                        message: "expected `human` or `json`".into(),
                    })
                }
            };
        }
        Ok(())
    }

    /// One webhook source from `DEALSCORE_WEBHOOK_SOURCE` / `_SECRET` / `_CALLBACK_URL`, for setups
    /// without a config file. It replaces a file source of the same name.
    fn apply_env_webhook_source(
        &mut self,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let name = match lookup("DEALSCORE_WEBHOOK_SOURCE") {
            Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
            _ => return Ok(()),
        };
        let secrets: Vec<String> = lookup("DEALSCORE_WEBHOOK_SECRET")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if secrets.is_empty() {
            return Err(ConfigError::Env {
                name: "DEALSCORE_WEBHOOK_SECRET".into(),
                value: String::new(),
                message: format!("DEALSCORE_WEBHOOK_SOURCE={name} needs at least one secret (s1,s2,…)"),
            });
        }
        let callback_url = lookup("DEALSCORE_WEBHOOK_CALLBACK_URL").filter(|u| !u.trim().is_empty());
        self.webhook_sources.retain(|s| s.name != name);
        self.webhook_sources.push(WebhookSource {
            name,
            secrets,
            mapping: None,
            callback_url,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_documented_values() {
        let s = Settings::default();
        assert_eq!(s.database_url, "sqlite://data/dealscore.db");
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.max_body_bytes, 1 << 20);
    }

    #[test]
    fn file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dealscore.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:9000\"\nmax_body_bytes = 2048\n").unwrap();
        let mut s = Settings::from_file(&path).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        let env: HashMap<&str, &str> = [
            ("DEALSCORE_MAX_BODY_BYTES", "4096"),
            ("DATABASE_URL", "postgres://x/y"),
        ]
        .into();
        s.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.max_body_bytes, 4096);
        assert_eq!(s.database_url, "postgres://x/y");
        assert_eq!(s.bind, "0.0.0.0:9000");
    }

    #[test]
    fn webhook_sources_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dealscore.toml");
        std::fs::write(
            &path,
            "webhook_tolerance_secs = 60\n[[webhook_sources]]\nname = \"crm\"\nsecrets = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let mut s = Settings::from_file(&path).unwrap();
        assert_eq!(s.webhook_tolerance_secs, 60);
        assert_eq!(s.webhook_sources[0].secrets, ["a", "b"]);
        let env: HashMap<&str, &str> = [
            ("DEALSCORE_WEBHOOK_SOURCE", "hubspot"),
            ("DEALSCORE_WEBHOOK_SECRET", "s1, s2"),
            ("DEALSCORE_WEBHOOK_CALLBACK_URL", "http://crm.local/score"),
        ]
        .into();
        s.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.webhook_sources.len(), 2);
        assert_eq!(s.webhook_sources[1].secrets, ["s1", "s2"]);
        assert_eq!(
            s.webhook_sources[1].callback_url.as_deref(),
            Some("http://crm.local/score")
        );
        let err = Settings::default()
            .apply_env(|k| (k == "DEALSCORE_WEBHOOK_SOURCE").then(|| "x".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEALSCORE_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn drift_and_retention_settings_have_defaults_and_env_overrides() {
        let s = Settings::default();
        assert_eq!(
            (
                s.drift_refresh_secs,
                s.retention_keep_versions,
                s.retention_score_days,
                s.retention_interval_hours
            ),
            (900, 10, 365, 0)
        );
        let env: HashMap<&str, &str> = [
            ("DEALSCORE_DRIFT_REFRESH_SECS", "0"),
            ("DEALSCORE_RETENTION_KEEP_VERSIONS", "3"),
            ("DEALSCORE_RETENTION_SCORE_DAYS", "90"),
            ("DEALSCORE_RETENTION_INTERVAL_HOURS", "24"),
        ]
        .into();
        let mut s = Settings::default();
        s.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(
            (
                s.drift_refresh_secs,
                s.retention_keep_versions,
                s.retention_score_days,
                s.retention_interval_hours
            ),
            (0, 3, 90, 24)
        );
    }

    #[test]
    fn insights_fields_come_from_the_file_and_the_environment() {
        assert_eq!(Settings::default().insights, InsightsConfig::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dealscore.toml");
        std::fs::write(
            &path,
            "[insights]\ncompetitor_field = \"attr.competitor\"\nloss_reason_field = \"attr.why\"\n",
        )
        .unwrap();
        let mut s = Settings::from_file(&path).unwrap();
        assert_eq!(s.insights.competitor_field.as_deref(), Some("attr.competitor"));
        let env: HashMap<&str, &str> = [
            ("DEALSCORE_INSIGHTS_COMPETITOR_FIELD", " attr.rival "),
            ("DEALSCORE_INSIGHTS_LOSS_REASON_FIELD", ""),
        ]
        .into();
        s.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.insights.competitor_field.as_deref(), Some("attr.rival"));
        assert_eq!(s.insights.loss_reason_field, None, "an empty value unsets");
    }

    #[test]
    fn bad_file_and_bad_env_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bnd = 1\n").unwrap();
        let err = Settings::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("bnd"), "{err}");
        let mut s = Settings::default();
        let err = s
            .apply_env(|k| (k == "DEALSCORE_WORKERS").then(|| "many".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEALSCORE_WORKERS"), "{err}");
    }
}
