//! `dealscore prune`: remove old model versions and old score history by the retention policy.

use anyhow::Context;

use crate::config::Settings;

/// Arguments of `dealscore prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Print what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Newest model versions to keep (overrides DEALSCORE_RETENTION_KEEP_VERSIONS).
    #[arg(long, value_name = "N")]
    pub keep_versions: Option<usize>,
    /// Days of score history to keep (overrides DEALSCORE_RETENTION_SCORE_DAYS).
    #[arg(long, value_name = "DAYS")]
    pub score_days: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `dealscore prune` and prints what it removed (or would remove).
pub async fn run(settings: &Settings, args: PruneArgs) -> anyhow::Result<()> {
    let mut policy = crate::retention::RetentionPolicy::from_settings(settings);
    if let Some(n) = args.keep_versions {
        policy.keep_versions = n;
    }
    if let Some(days) = args.score_days {
        policy.score_days = days;
    }
    let db = super::open_existing_db(settings).await?;
    let report = crate::retention::run(
        &db,
        &policy,
        std::path::Path::new(&settings.models_dir),
        args.dry_run,
        chrono::Utc::now(),
    )
    .await
    .context("pruning failed; nothing was removed from the database")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::retention::render(&report));
    }
    Ok(())
}
