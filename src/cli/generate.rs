//! `dealscore generate`: write a synthetic CRM history whose outcomes follow known success
//! factors (docs/generator.md).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::generate::{GenerateSummary, GeneratorConfig, Shift};

/// Arguments of `dealscore generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of deals.
    #[arg(long)]
    pub deals: usize,
    /// Random seed (same seed and end date ⇒ same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of deals still open.
    #[arg(long, default_value_t = 0.2)]
    pub open_fraction: f64,
    /// Reference "now" of the history (RFC 3339 or YYYY-MM-DD); default: today, midnight UTC.
    #[arg(long, value_parser = crate::domain::parse_timestamp)]
    pub end_date: Option<chrono::DateTime<chrono::Utc>>,
    /// Opportunities CSV to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Activities CSV to write.
    #[arg(long, value_name = "FILE")]
    pub activities_out: Option<PathBuf>,
    /// Field history CSV to write (external_id,field,value,changed_at: each deal's stage
    /// changes), for `dealscore import --history`.
    #[arg(long, value_name = "FILE")]
    pub history_out: Option<PathBuf>,
    /// Truth CSV to write: how each open deal eventually ends
    /// (external_id,status,closed_at,true_probability), to judge scores against.
    #[arg(long, value_name = "FILE")]
    pub truth_out: Option<PathBuf>,
    /// Distribution shift, repeatable: `amount=3` multiplies amounts, `response_hours=4` answer
    /// delays (docs/generator.md). For drift checks against a model trained without it.
    #[arg(long, value_name = "NAME=FACTOR")]
    pub shift: Vec<String>,
    /// Prefix of the external ids (default `D-`), to import a second population beside the first.
    #[arg(long, default_value = "D-")]
    pub id_prefix: String,
}

/// Today at midnight UTC: the default end of a generated history, so a day's runs agree.
pub(super) fn today_midnight() -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    today.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Runs `dealscore generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.open_fraction) {
        anyhow::bail!(
            "--open-fraction must be between 0 and 1, got {}",
            args.open_fraction
        );
    }
    if args.deals == 0 {
        anyhow::bail!("--deals must be at least 1");
    }
    let mut shift = Shift::default();
    for spec in &args.shift {
        shift
            .apply_spec(spec)
            .map_err(|e| anyhow::anyhow!("--shift {e}"))?;
    }
    let config = GeneratorConfig {
        deals: args.deals,
        seed: args.seed,
        open_fraction: args.open_fraction,
        end: args.end_date.unwrap_or_else(today_midnight),
        with_activities: args.activities_out.is_some() || args.history_out.is_some(),
        shift,
        id_prefix: args.id_prefix.clone(),
    };
    let files = HistoryFiles {
        opportunities: args.out.clone(),
        activities: args.activities_out.clone(),
        history: args.history_out.clone(),
        truth: args.truth_out.clone(),
    };
    let summary = write_history(&config, &files)?;
    eprintln!(
        "wrote {} deals ({} open, {} won, {} lost) to {}",
        summary.deals,
        summary.open,
        summary.won,
        summary.lost,
        args.out.display(),
    );
    if let Some(p) = &args.activities_out {
        eprintln!("wrote {} activities to {}", summary.activities, p.display());
    }
    if let Some(p) = &args.history_out {
        eprintln!("wrote {} stage changes to {}", summary.stage_changes, p.display());
    }
    if let Some(p) = &args.truth_out {
        eprintln!("wrote how the {} open deals end to {}", summary.open, p.display());
    }
    Ok(())
}

/// The files a generated history is written to: the opportunities, and each other one when set.
#[derive(Debug, Clone)]
pub(super) struct HistoryFiles {
    pub opportunities: PathBuf,
    pub activities: Option<PathBuf>,
    pub history: Option<PathBuf>,
    pub truth: Option<PathBuf>,
}

/// Writes a generated history to files, through temporary names so a failure leaves nothing half
/// written.
pub(super) fn write_history(
    config: &GeneratorConfig,
    files: &HistoryFiles,
) -> anyhow::Result<GenerateSummary> {
    use std::io::BufWriter;
    let temp = |p: &Path| p.with_extension("csv.partial");
    let create = |p: &Path| -> anyhow::Result<BufWriter<std::fs::File>> {
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let file = std::fs::File::create(temp(p)).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    };
    let sinks = crate::generate::CsvSinks {
        opportunities: create(&files.opportunities)?,
        activities: files.activities.as_deref().map(create).transpose()?,
        history: files.history.as_deref().map(create).transpose()?,
        truth: files.truth.as_deref().map(create).transpose()?,
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(config.deals as u64)
    } else {
        ProgressBar::hidden()
    };
    let summary = crate::generate::generate_to_csv(config, sinks, |done| bar.set_position(done as u64))
        .context("cannot write the generated history")?;
    bar.finish_and_clear();
    let written = [&files.activities, &files.history, &files.truth];
    for path in std::iter::once(&files.opportunities).chain(written.into_iter().flatten()) {
        std::fs::rename(temp(path), path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(summary)
}
