//! Retention: old model versions (registry rows and artifact files) and old score history are
//! pruned by a policy, from `dealscore prune` or a timer in the server.
//!
//! Never pruned: the active model, the newest `keep_versions` versions, and each opportunity's
//! latest score. Queries: `store::retention`. Operations guide: docs/operations.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::store::retention::{self, KeepRules, PruneSet};
use crate::store::Db;

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Newest model versions kept whatever their status (the active one is kept in any case).
    pub keep_versions: usize,
    /// Days of score history kept (older rows go, except each opportunity's latest score).
    pub score_days: u32,
}

impl RetentionPolicy {
    /// The policy configured in `settings`.
    pub fn from_settings(settings: &Settings) -> RetentionPolicy {
        RetentionPolicy {
            keep_versions: settings.retention_keep_versions,
            score_days: settings.retention_score_days,
        }
    }

    fn rules(&self, now: DateTime<Utc>) -> KeepRules {
        KeepRules {
            keep_versions: self.keep_versions,
            scores_before: now - chrono::Duration::days(i64::from(self.score_days)),
        }
    }
}

/// What a prune removed, or would remove on a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Score rows older than this were selected.
    pub scores_before: DateTime<Utc>,
    /// Versions and score rows.
    #[serde(flatten)]
    pub removed: PruneSet,
    /// Artifact files removed (or that would be).
    pub files: Vec<PathBuf>,
}

/// `dir/<version>.json` for a version id usable as a file name.
fn artifact_path(dir: &Path, version: &str) -> Option<PathBuf> {
    let usable = !version.is_empty() && !version.contains(['/', '\\']) && !version.starts_with('.');
    usable.then(|| dir.join(format!("{version}.json")))
}

/// Applies `policy` at `now`: the registry rows and score rows in one transaction, then the
/// artifact files of the removed versions in `models_dir` (a file that cannot be removed is
/// logged; its registry row is already gone, and the file is harmless). With `dry_run`, only
/// reports what would go.
pub async fn run(
    db: &Db,
    policy: &RetentionPolicy,
    models_dir: &Path,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<PruneReport, sqlx::Error> {
    let rules = policy.rules(now);
    let removed = if dry_run {
        retention::plan(db, &rules).await?
    } else {
        retention::prune(db, &rules).await?
    };
    let mut files = Vec::new();
    for v in &removed.versions {
        let Some(path) = artifact_path(models_dir, &v.version) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        if dry_run {
            files.push(path);
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => files.push(path),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove pruned artifact file")
            }
        }
    }
    Ok(PruneReport {
        dry_run,
        scores_before: rules.scores_before,
        removed,
        files,
    })
}

/// The report as lines for a terminal.
pub fn render(report: &PruneReport) -> String {
    let verb = if report.dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    for v in &report.removed.versions {
        out.push_str(&format!(
            "{verb} model {} ({}, trained {})\n",
            v.version,
            v.status,
            v.created_at.to_rfc3339()
        ));
    }
    for f in &report.files {
        out.push_str(&format!("{verb} file {}\n", f.display()));
    }
    out.push_str(&format!(
        "{verb} {} model version(s), {} artifact file(s) and {} score row(s) scored before {} \
         (each opportunity's latest score is kept){}\n",
        report.removed.versions.len(),
        report.files.len(),
        report.removed.score_rows,
        report.scores_before.to_rfc3339(),
        if report.dry_run {
            "; dry run, nothing changed"
        } else {
            ""
        }
    ));
    out
}

/// Runs the policy every `every` in the background (first run after one period).
pub fn spawn_timer(
    db: Db,
    policy: RetentionPolicy,
    models_dir: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut ticker = tokio::time::interval_at(start, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run(&db, &policy, &models_dir, false, Utc::now()).await {
                Ok(report) => tracing::info!(
                    versions = report.removed.versions.len(),
                    files = report.files.len(),
                    score_rows = report.removed.score_rows,
                    "retention: pruned"
                ),
                Err(e) => tracing::warn!(error = %e, "retention run failed; retrying at the next period"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_refuse_names_that_leave_the_folder() {
        let dir = Path::new("models");
        assert_eq!(
            artifact_path(dir, "m-20260101-000000-abcdef"),
            Some(dir.join("m-20260101-000000-abcdef.json"))
        );
        assert_eq!(artifact_path(dir, "../etc/passwd"), None);
        assert_eq!(artifact_path(dir, ".hidden"), None);
        assert_eq!(artifact_path(dir, ""), None);
    }

    #[test]
    fn the_score_cutoff_is_score_days_before_now() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let policy = RetentionPolicy {
            keep_versions: 3,
            score_days: 30,
        };
        let rules = policy.rules(now);
        assert_eq!(rules.keep_versions, 3);
        assert_eq!(now - rules.scores_before, chrono::Duration::days(30));
    }
}
