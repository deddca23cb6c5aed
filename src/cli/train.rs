//! `dealscore train` and its alias, the `dealscore-train` binary: train on closed deals from the
//! database or a CSV. Both run [`run`] with the same options, so their output and exit codes
//! cannot differ.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use indicatif::ProgressBar;

use crate::config::{LogFormat, Settings};
use crate::features::FeatureSpec;
use crate::ingest::read_opportunities;
use crate::lifecycle::default_plan::{self, SnapshotRequest};
use crate::lifecycle::train_job::{self, TrainInput, TrainJob};
use crate::training::{render_report, SplitKind, TrainOptions, TrainProgress};

/// Train a win-probability model on won and lost deals.
#[derive(Debug, Parser)]
#[command(name = "dealscore-train", version, about)]
pub struct TrainCommand {
    /// TOML configuration file (same as `dealscore --config`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The training options, the same as `dealscore train`'s.
    #[command(flatten)]
    pub args: TrainArgs,
}

/// The options of `dealscore train` and `dealscore-train` (whose `--config` is `dealscore`'s
/// global one).
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Only deals closed on or after this date (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub since: Option<DateTime<Utc>>,
    /// Only deals closed on or before this date.
    #[arg(long, value_parser = parse_date)]
    pub until: Option<DateTime<Utc>>,
    /// Train from this CSV instead of the database (same format as `dealscore import`).
    #[arg(long, value_name = "FILE")]
    pub from_csv: Option<PathBuf>,
    /// Column mapping for `--from-csv`.
    #[arg(long, value_name = "FILE", requires = "from_csv")]
    pub mapping: Option<PathBuf>,
    /// Feature spec (default: training/features.toml, built in).
    #[arg(long, value_name = "FILE")]
    pub features: Option<PathBuf>,
    /// Holdout: the newest closed deals (time) or a stratified random sample.
    #[arg(long, value_enum, default_value = "time")]
    pub split: SplitArg,
    /// Share of closed deals held out.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seed for the random split and the folds.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Cross-validation folds for choosing the L2 strength.
    #[arg(long, default_value_t = 5)]
    pub cv: usize,
    /// Choose the L2 strength on a stratified sample of this many training rows when the
    /// training part is larger (0: always on all of it).
    #[arg(long, value_name = "ROWS", default_value_t = crate::training::CV_SAMPLE_ROWS)]
    pub cv_sample: usize,
    /// Fit on a stratified sample of this many rows when a fit (holdout, refit, backtest) has
    /// more, as snapshots of a large history do (0: always on every row; else at least 10000).
    #[arg(long, value_name = "ROWS", default_value_t = crate::training::FIT_SAMPLE_ROWS)]
    pub fit_sample: usize,
    /// Fewest won deals accepted.
    #[arg(long, default_value_t = 40)]
    pub min_won: usize,
    /// Fewest lost deals accepted.
    #[arg(long, default_value_t = 40)]
    pub min_lost: usize,
    /// Make the new model active whatever the promotion gate says (recorded as forced). Without
    /// it the model becomes active only if it passes the gate (docs/operations.md).
    #[arg(long)]
    pub activate: bool,
    /// Do not register the model in the database (artifact file only).
    #[arg(long)]
    pub no_register: bool,
    /// Folder for the artifact.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON document instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Learn from each closed deal as it stood at N instants of its open life (1–12; needs the
    /// time split and the database), instead of from its final state. Default: snapshots at the
    /// 16 ages from 0 to 365 days when the closed deals have activities, else final states.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=12))]
    pub snapshots: Option<u8>,
    /// Learn from each closed deal as it stood at each of these ages (days, increasing, e.g.
    /// `7,30,90,180`) it reached while open: a deal weighs as much as it stayed open.
    #[arg(
        long,
        value_name = "DAYS",
        value_delimiter = ',',
        conflicts_with = "snapshots"
    )]
    pub snapshot_ages: Option<Vec<u32>>,
    /// Learn from each closed deal's final state, even when its history could give snapshots.
    #[arg(long, conflicts_with_all = ["snapshots", "snapshot_ages"])]
    pub final_state: bool,
}

/// `--split`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    /// Newest closed deals as holdout.
    Time,
    /// Stratified random holdout.
    Random,
}

fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    crate::domain::parse_timestamp(text)
}

impl TrainArgs {
    /// What the flags ask for: a snapshot plan, final states, or the default.
    fn snapshot_request(&self) -> SnapshotRequest {
        use crate::training::snapshots::SnapshotPlan;
        match (&self.snapshots, &self.snapshot_ages) {
            _ if self.final_state => SnapshotRequest::FinalState,
            (Some(n), _) => SnapshotRequest::Plan(SnapshotPlan::PerDeal(usize::from(*n))),
            (None, Some(ages)) => SnapshotRequest::Plan(SnapshotPlan::Ages(ages.clone())),
            (None, None) => SnapshotRequest::Default,
        }
    }
}

/// Runs the training command with the settings of `config`, logging in `log_format` (human for
/// `dealscore-train`).
pub async fn run(config: Option<&Path>, log_format: LogFormat, args: TrainArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    crate::telemetry::init_logging(log_format);
    let spec = match &args.features {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            FeatureSpec::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("feature spec {}: {e}", path.display()))?
        }
        None => FeatureSpec::default_spec(),
    };
    let options = TrainOptions {
        split: match args.split {
            SplitArg::Time => SplitKind::Time,
            SplitArg::Random => SplitKind::Random,
        },
        test_fraction: args.test_fraction,
        seed: args.seed,
        cv_folds: args.cv,
        cv_sample: args.cv_sample,
        fit_sample: args.fit_sample,
        min_won: args.min_won,
        min_lost: args.min_lost,
        window_since: args.since,
        window_until: args.until,
        ..TrainOptions::default()
    };
    // Options out of range are refused before any database is opened or file read.
    if let Err(e) = options.clone().check() {
        anyhow::bail!("invalid training options: {e}");
    }
    // Training from the database reads deals that must already be there; registering a model
    // trained from a file may create the database.
    let db = match (&args.from_csv, args.no_register) {
        (Some(_), true) => None,
        (Some(_), false) => Some(super::open_db(&settings).await?),
        (None, _) => Some(super::open_existing_db(&settings).await?),
    };
    let input = match &args.from_csv {
        Some(path) => {
            let mapping = super::read_mapping(args.mapping.as_deref())?;
            let file =
                std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (deals, summary) = read_opportunities(std::io::BufReader::new(file), &mapping)
                .with_context(|| format!("{}", path.display()))?;
            if summary.rejected > 0 {
                eprintln!(
                    "warning: {} row(s) of {} were rejected and not used (first: line {}: {})",
                    summary.rejected,
                    path.display(),
                    summary.rejected_rows.first().map_or(0, |r| r.line),
                    summary.rejected_rows.first().map_or("", |r| r.reason.as_str())
                );
            }
            TrainInput::Deals(
                deals
                    .into_iter()
                    .filter(|d| {
                        let closed = d.closed_at;
                        args.since.is_none_or(|s| closed.is_some_and(|c| c >= s))
                            && args.until.is_none_or(|u| closed.is_some_and(|c| c <= u))
                    })
                    .collect(),
            )
        }
        None => TrainInput::Database {
            since: args.since,
            until: args.until,
        },
    };
    // Deals read from a file have no recorded history here.
    let history = if args.from_csv.is_some() { None } else { db.clone() };
    let snapshots = default_plan::resolve(&args.snapshot_request(), history.as_ref(), options.split)
        .await
        .context("cannot check the deals' activities")?;
    // The database may be open only to read the deals: with --no-register the job gets no
    // registry, so nothing is registered or activated there.
    let registry = if args.no_register { None } else { db.as_ref() };
    let terminal = std::io::stderr().is_terminal() && !args.json;
    let bar = if terminal {
        let bar = ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let status = Arc::new(Mutex::new(JobStatus::new()));
    let progress_bar = bar.clone();
    let progress_status = Arc::clone(&status);
    let job = TrainJob {
        spec,
        options,
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(&settings.models_dir)),
        activate: args.activate,
        gate: crate::lifecycle::gate::GatePolicy::from_settings(&settings),
        who: "dealscore-train".into(),
        point_in_time: crate::lifecycle::point_in_time::PointInTime {
            source: history,
            snapshots,
        },
        low_priority: false,
    };
    let training = train_job::run(job, input, db.as_ref(), registry, move |p| {
        let mut status = progress_status.lock().unwrap_or_else(PoisonError::into_inner);
        status.update(&p, !terminal);
        progress_bar.set_message(status.line());
    });
    tokio::pin!(training);
    // Without a terminal, a log line per phase and one every LOG_EVERY within a long phase.
    let mut ticker = tokio::time::interval(LOG_EVERY);
    ticker.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut training => break outcome,
            _ = ticker.tick(), if !terminal => {
                let status = status.lock().unwrap_or_else(PoisonError::into_inner);
                tracing::info!(phase = %status.phase, "training: {}", status.line());
            }
        }
    };
    bar.finish_and_clear();
    let outcome = match outcome {
        // Not a failure: the active model already is what this run would train.
        Err(train_job::TrainJobError::Unchanged { version }) => {
            if args.json {
                let answer = serde_json::json!({ "status": "unchanged", "active_version": version });
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                println!(
                    "Unchanged: the active model {version} was trained on the same closed deals, features \
                     and options. No new version was trained (--activate trains and activates anyway)."
                );
            }
            return Ok(());
        }
        outcome => outcome?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", render_report(&outcome.trained));
        println!("\nArtifact: {}", outcome.artifact_path.display());
        match outcome.status {
            Some(status) => {
                println!("Registered as {}", status.as_str());
                if let Some(gate) = &outcome.gate {
                    println!("Promotion gate: {:?} — {}", gate.outcome, gate.reason);
                }
            }
            None => println!("Not registered (--no-register)"),
        }
    }
    Ok(())
}

/// How often a job without a terminal logs the phase it is in.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The job's current phase and latest event, for the spinner and the periodic log lines.
struct JobStatus {
    started: Instant,
    phase: String,
    phase_started: Instant,
    detail: String,
}

impl JobStatus {
    fn new() -> JobStatus {
        let now = Instant::now();
        JobStatus {
            started: now,
            phase: "start".into(),
            phase_started: now,
            detail: String::new(),
        }
    }

    /// Records an event; a new phase is logged at once when `log` (no terminal).
    fn update(&mut self, p: &TrainProgress, log: bool) {
        if let TrainProgress::Phase { name } = p {
            if log && self.phase != "start" {
                tracing::info!(
                    phase = %self.phase,
                    seconds = self.phase_started.elapsed().as_secs_f64(),
                    "training phase done"
                );
            }
            self.phase.clone_from(name);
            self.phase_started = Instant::now();
            self.detail.clear();
            if log {
                tracing::info!(phase = %name, "training phase started");
            }
        } else {
            self.detail = describe(p);
        }
    }

    /// `[12s] cross_validation (4s): cross-validation 3/25 (alpha 100)`.
    fn line(&self) -> String {
        let mut line = format!(
            "[{:.0}s] {} ({:.0}s)",
            self.started.elapsed().as_secs_f64(),
            self.phase,
            self.phase_started.elapsed().as_secs_f64()
        );
        if !self.detail.is_empty() {
            line.push_str(": ");
            line.push_str(&self.detail);
        }
        line
    }
}

fn describe(p: &TrainProgress) -> String {
    match p {
        TrainProgress::Phase { name } => name.clone(),
        TrainProgress::Prepared {
            won,
            lost,
            train_rows,
            holdout_rows,
        } => {
            format!("{won} won / {lost} lost; {train_rows} training rows, {holdout_rows} holdout")
        }
        TrainProgress::CrossValidation {
            done, total, alpha, ..
        } => {
            format!("cross-validation {done}/{total} (alpha {alpha})")
        }
        TrainProgress::HoldoutFit { alpha } => format!("holdout fit (alpha {alpha})"),
        TrainProgress::FinalFit { rows } => format!("final fit on {rows} deals"),
        TrainProgress::Finished { version } => format!("done: {version}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory;

    use super::TrainCommand;
    use crate::cli::Cli;

    fn long_options(command: &clap::Command) -> BTreeSet<String> {
        command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(str::to_owned)
            .collect()
    }

    /// `dealscore train` takes exactly `dealscore-train`'s options: `--config` is the global
    /// one, and the other global flag (`--log-format`) is the only addition.
    #[test]
    fn dealscore_train_takes_the_options_of_the_alias() {
        let mut cli = Cli::command();
        cli.build();
        let Some(train) = cli.find_subcommand("train") else {
            panic!("`dealscore train` exists");
        };
        let mut subcommand = long_options(train);
        assert!(subcommand.remove("log-format"));
        let mut alias = TrainCommand::command();
        alias.build();
        let mut alias = long_options(&alias);
        assert!(alias.remove("version"));
        assert_eq!(subcommand, alias);
        assert!(alias.contains("no-register") && alias.contains("config"));
    }
}
