//! `dealscore import`: stream opportunities, activities and field history from CSV files into the
//! database.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

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
}

fn progress_bar(total: u64, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta}) {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}

/// A reader factory for `path`: an import opens the file a second time when it checks first.
pub(super) fn open_file(
    path: PathBuf,
) -> impl Fn() -> std::io::Result<std::io::BufReader<std::fs::File>> + Send + Sync {
    move || std::fs::File::open(&path).map(|f| std::io::BufReader::with_capacity(1 << 20, f))
}

/// Runs `dealscore import`: opportunities first, then activities, each with its summary.
pub async fn run(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    if args.file.is_none() && args.activities.is_none() && args.history.is_none() {
        anyhow::bail!("nothing to import: give --file, --activities and/or --history");
    }
    let mapping = super::read_mapping(args.mapping.as_deref())?;
    for path in args
        .file
        .iter()
        .chain(args.activities.iter())
        .chain(args.history.iter())
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
    let mut summaries: Vec<(&str, ImportSummary)> = Vec::new();
    if let Some(path) = args.file.clone() {
        let size = std::fs::metadata(&path)?.len();
        let bar = progress_bar(size, "opportunities");
        let report = |p: ImportProgress| {
            bar.set_position(p.bytes);
            bar.set_prefix(format!("{} rows", p.rows));
        };
        let result = import_opportunities(&db, open_file(path.clone()), &options, &report).await;
        bar.finish_and_clear();
        summaries.push(("opportunities", import_result(result, &path)?));
    }
    if let Some(path) = args.activities.clone() {
        let size = std::fs::metadata(&path)?.len();
        let bar = progress_bar(size, "activities");
        let report = |p: ImportProgress| bar.set_position(p.bytes);
        let result = import_activities(&db, open_file(path.clone()), &options, &report).await;
        bar.finish_and_clear();
        summaries.push(("activities", import_result(result, &path)?));
    }
    if let Some(path) = args.history.clone() {
        let size = std::fs::metadata(&path)?.len();
        let bar = progress_bar(size, "field history");
        let report = |p: ImportProgress| bar.set_position(p.bytes);
        let result = import_history(&db, open_file(path.clone()), &options, &report).await;
        bar.finish_and_clear();
        summaries.push(("history", import_result(result, &path)?));
    }
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

/// Human-readable import summary.
pub fn render_summary(kind: &str, s: &ImportSummary) -> String {
    let mut out = format!(
        "{kind}{}: {} rows read, {} inserted, {} updated, {} unchanged, {} rejected\n",
        if s.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        s.rows,
        s.inserted,
        s.updated,
        s.unchanged,
        s.rejected
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
