//! `dealscore import`: stream opportunities, activities and field history from CSV files into the
//! database.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::ingest::csv_import::{ImportError, ImportProgress};
use crate::ingest::{import_activities, import_history, import_opportunities, ImportOptions, ImportSummary};

/// Arguments of `dealscore import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Opportunities CSV.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Activities CSV (opportunity_id,id,kind,direction,occurred_at), imported after `--file`.
    #[arg(long, value_name = "FILE")]
    pub activities: Option<PathBuf>,
    /// Field history CSV (external_id,field,value,changed_at: past changes of stored deals),
    /// imported after `--file` and `--activities`.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Acquisition spend CSV (period,region,channel,currency,amount; region and channel
    /// optional): replaces the spend of every period it names. All or nothing, whatever
    /// `--strict` says.
    #[arg(long, value_name = "FILE")]
    pub acquisition_costs: Option<PathBuf>,
    /// TOML column mapping.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Check and count everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse the whole file if any row is invalid (nothing written).
    #[arg(long)]
    pub strict: bool,
    /// Refuse the whole file if more than N rows are invalid (nothing written).
    #[arg(long, value_name = "N")]
    pub max_errors: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 even when rows were rejected (by default the exit code is 3 then).
    #[arg(long)]
    pub allow_rejects: bool,
    /// When standard error is not a terminal (a log, a scheduler), write a progress line at most
    /// every SECS seconds; 0 writes one after every batch of rows.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub progress_secs: u64,
}

/// Import progress on standard error: a bar on a terminal, otherwise a plain line now and then,
/// so a long import run by a scheduler shows in its log that it advances.
enum Progress {
    Bar(ProgressBar),
    Lines {
        label: &'static str,
        total_bytes: u64,
        every: Duration,
        started: Instant,
        last: Mutex<Option<Instant>>,
    },
}

impl Progress {
    fn new(total_bytes: u64, label: &'static str, every: Duration) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                label,
                total_bytes,
                every,
                started: Instant::now(),
                last: Mutex::new(None),
            };
        }
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta}) {prefix}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label);
        Progress::Bar(bar)
    }

    fn report(&self, p: ImportProgress) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(p.bytes);
                bar.set_prefix(format!("{} rows", p.rows));
            }
            Progress::Lines {
                label,
                total_bytes,
                every,
                started,
                last,
            } => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // The first line waits a period too: a short import prints only its summary.
                let due = last.unwrap_or(*started) + *every;
                if now < due {
                    return;
                }
                *last = Some(now);
                eprintln!("{}", progress_line(label, p, *total_bytes, now - *started));
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// One progress line: `opportunities: 120,000 rows read, 41% of 52.4 MB, 12 s`.
fn progress_line(label: &str, p: ImportProgress, total_bytes: u64, elapsed: Duration) -> String {
    use crate::i18n::{format, Lang};
    let share = if total_bytes == 0 {
        1.0
    } else {
        (p.bytes as f64 / total_bytes as f64).min(1.0)
    };
    format!(
        "{label}: {} rows read, {} of {:.1} MB, {} s",
        format::count(p.rows, Lang::En),
        format::percent(share, 0, Lang::En),
        total_bytes as f64 / 1e6,
        elapsed.as_secs()
    )
}

/// A reader factory for `path`: an import opens the file a second time when it checks first.
pub(super) fn open_file(
    path: PathBuf,
) -> impl Fn() -> std::io::Result<std::io::BufReader<std::fs::File>> + Send + Sync {
    move || std::fs::File::open(&path).map(|f| std::io::BufReader::with_capacity(1 << 20, f))
}

/// Runs `dealscore import`: opportunities first, then activities, each with its summary.
pub async fn run(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    if args.file.is_none()
        && args.activities.is_none()
        && args.history.is_none()
        && args.acquisition_costs.is_none()
    {
        anyhow::bail!("nothing to import: give --file, --activities, --history and/or --acquisition-costs");
    }
    let mapping = super::read_mapping(args.mapping.as_deref())?;
    for path in args
        .file
        .iter()
        .chain(args.activities.iter())
        .chain(args.history.iter())
        .chain(args.acquisition_costs.iter())
    {
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let db = super::open_db(settings).await?;
    let options = ImportOptions {
        mapping,
        dry_run: args.dry_run,
        strict: args.strict,
        max_errors: args.max_errors,
        ..ImportOptions::default()
    };
    let imported = import_files(&db, &args, &options).await;
    // Every row imported is then in the database file itself, even when a step failed after
    // others (SQLite's write-ahead log checkpointed).
    let closed = db.close().await.context("closing the database");
    let summaries = imported?;
    closed?;
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = summaries
            .iter()
            .map(|(k, s)| (k.to_string(), serde_json::to_value(s).unwrap_or_default()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        for (kind, summary) in &summaries {
            print!("{}", render_summary(kind, summary));
        }
    }
    let rejected: u64 = summaries.iter().map(|(_, s)| s.rejected).sum();
    if rejected > 0 && !args.allow_rejects {
        // The good rows are in (unless --dry-run); a script still has to notice the others.
        return Err(super::Exit {
            code: super::EXIT_ROWS_REJECTED,
            message: format!(
                "{rejected} row(s) rejected{}; the other rows were {} (--allow-rejects exits 0)",
                if summaries.len() > 1 { " in all" } else { "" },
                if args.dry_run { "checked" } else { "imported" }
            ),
        }
        .into());
    }
    Ok(())
}

/// Imports each file given, in order (opportunities, activities, field history, acquisition
/// costs), with progress; the summaries of the CSV imports.
async fn import_files(
    db: &crate::store::Db,
    args: &ImportArgs,
    options: &ImportOptions,
) -> anyhow::Result<Vec<(&'static str, ImportSummary)>> {
    /// Which importer reads a file.
    enum Csv {
        Opportunities,
        Activities,
        History,
    }
    let every = Duration::from_secs(args.progress_secs);
    let mut summaries: Vec<(&'static str, ImportSummary)> = Vec::new();
    let files = [
        (Csv::Opportunities, "opportunities", "opportunities", &args.file),
        (Csv::Activities, "activities", "activities", &args.activities),
        (Csv::History, "history", "field history", &args.history),
    ];
    for (csv, kind, label, path) in files {
        let Some(path) = path else { continue };
        let size = std::fs::metadata(path)?.len();
        let progress = Progress::new(size, label, every);
        let report = |p: ImportProgress| progress.report(p);
        let source = open_file(path.clone());
        let result = match csv {
            Csv::Opportunities => import_opportunities(db, source, options, &report).await,
            Csv::Activities => import_activities(db, source, options, &report).await,
            Csv::History => import_history(db, source, options, &report).await,
        };
        progress.finish();
        summaries.push((kind, import_result(result, path)?));
    }
    if let Some(path) = &args.acquisition_costs {
        import_costs(db, path, args.dry_run).await?;
    }
    Ok(summaries)
}

/// Reads, checks and stores an acquisition spend file; any problem refuses the whole file.
async fn import_costs(db: &crate::store::Db, path: &Path, dry_run: bool) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let costs = crate::insights::acquisition::parse_csv(std::io::BufReader::new(file)).map_err(|errors| {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("  {}: {}", e.field, e.message))
            .collect();
        anyhow::anyhow!(
            "{}: the acquisition costs were refused; nothing was written:\n{}",
            path.display(),
            lines.join("\n")
        )
    })?;
    let periods: std::collections::BTreeSet<&str> = costs.iter().map(|c| c.period.as_str()).collect();
    if dry_run {
        eprintln!(
            "acquisition costs (dry run, nothing written): {} rows for {} periods",
            costs.len(),
            periods.len()
        );
        return Ok(());
    }
    let replaced = crate::store::acquisition_costs::replace_periods(db, &costs).await?;
    eprintln!(
        "acquisition costs: {} rows written for {} periods, {replaced} earlier rows of those periods replaced",
        costs.len(),
        periods.len()
    );
    Ok(())
}

fn import_result(result: Result<ImportSummary, ImportError>, path: &Path) -> anyhow::Result<ImportSummary> {
    match result {
        Ok(summary) => Ok(summary),
        Err(ImportError::TooManyRejected { summary, .. }) => {
            eprint!("{}", render_summary("rejected rows", &summary));
            anyhow::bail!(
                "{}: {} row(s) rejected; nothing was written",
                path.display(),
                summary.rejected
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("{}", path.display()))),
    }
}

fn count(n: u64) -> String {
    crate::i18n::format::count(n, crate::i18n::Lang::En)
}

/// Human-readable import summary.
pub fn render_summary(kind: &str, s: &ImportSummary) -> String {
    let mut out = format!(
        "{kind}{}: {} rows read, {} inserted, {} updated, {} unchanged, {} rejected\n",
        if s.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        count(s.rows),
        count(s.inserted),
        count(s.updated),
        count(s.unchanged),
        count(s.rejected)
    );
    for r in &s.rejected_rows {
        out.push_str(&format!(
            "  line {}{}: {}\n",
            r.line,
            r.external_id
                .as_deref()
                .map(|id| format!(" ({id})"))
                .unwrap_or_default(),
            r.reason
        ));
    }
    if s.rejected as usize > s.rejected_rows.len() {
        out.push_str(&format!(
            "  … and {} more\n",
            s.rejected as usize - s.rejected_rows.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_how_far_the_import_is() {
        let p = ImportProgress {
            bytes: 21_000_000,
            rows: 120_000,
        };
        assert_eq!(
            progress_line("opportunities", p, 52_400_000, Duration::from_secs(12)),
            "opportunities: 120,000 rows read, 40% of 52.4 MB, 12 s"
        );
        let empty = ImportProgress { bytes: 0, rows: 0 };
        assert_eq!(
            progress_line("activities", empty, 0, Duration::ZERO),
            "activities: 0 rows read, 100% of 0.0 MB, 0 s"
        );
    }
}
