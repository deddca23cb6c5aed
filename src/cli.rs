//! The `dealscore` command line.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::Application;
use crate::auth::{generate_key, hash_key, Role};
use crate::config::{LogFormat, Settings};
use crate::ingest::csv_import::{ImportError, ImportProgress};
use crate::ingest::{import_activities, import_opportunities, ImportMapping, ImportOptions, ImportSummary};
use crate::store::{api_keys, redact, Db, PoolOptions};

/// dealscore: opportunity scoring for Sales Ops.
#[derive(Debug, Parser)]
#[command(name = "dealscore", version, about)]
pub struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve {
        /// Listen address (overrides DEALSCORE_BIND).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import opportunities (and activities) from CSV.
    Import(ImportArgs),
    /// Manage API keys.
    Keys {
        /// Key action.
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// Arguments of `dealscore import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Opportunities CSV.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Activities CSV (opportunity_id,id,kind,direction,occurred_at), imported after `--file`.
    #[arg(long, value_name = "FILE")]
    pub activities: Option<PathBuf>,
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

/// `dealscore keys …`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints only the key on stdout (details on stderr).
    Create {
        /// Unique name (e.g. the person or integration).
        #[arg(long)]
        name: String,
        /// rep, analyst or admin.
        #[arg(long)]
        role: String,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke the active key with this name.
    Revoke {
        /// Key name.
        name: String,
    },
}

/// Loads settings with the CLI's overrides.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(format) = cli.log_format {
        settings.log_format = format;
    }
    Ok(settings)
}

/// Opens the configured database (migrations applied).
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Db::connect(&settings.database_url, &PoolOptions::from(settings))
        .await
        .with_context(|| format!("database {}", redact(&settings.database_url)))
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = settings(&cli)?;
    crate::telemetry::init_logging(settings.log_format);
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            serve(settings).await
        }
        Command::Migrate => {
            open_db(&settings).await?;
            eprintln!("migrations applied to {}", redact(&settings.database_url));
            Ok(())
        }
        Command::Import(args) => import(&settings, args).await,
        Command::Keys { action } => keys(&settings, action).await,
    }
}

/// Starts the API and serves until stopped.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind.clone();
    let url = redact(&settings.database_url);
    let app = Application::build(settings).await?;
    tracing::info!(%bind, port = app.port(), database = %url, "dealscore listening");
    app.run_until_stopped().await?;
    tracing::info!("dealscore stopped");
    Ok(())
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

fn open_file(path: PathBuf) -> impl Fn() -> std::io::Result<std::io::BufReader<std::fs::File>> + Send + Sync {
    move || std::fs::File::open(&path).map(|f| std::io::BufReader::with_capacity(1 << 20, f))
}

async fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    if args.file.is_none() && args.activities.is_none() {
        anyhow::bail!("nothing to import: give --file and/or --activities");
    }
    let mapping = match &args.mapping {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            ImportMapping::from_toml(&text).with_context(|| format!("mapping {}", path.display()))?
        }
        None => ImportMapping::default(),
    };
    for path in args.file.iter().chain(args.activities.iter()) {
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let db = open_db(settings).await?;
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

fn import_result(
    result: Result<ImportSummary, ImportError>,
    path: &std::path::Path,
) -> anyhow::Result<ImportSummary> {
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

async fn keys(settings: &Settings, action: KeysAction) -> anyhow::Result<()> {
    let db = open_db(settings).await?;
    match action {
        KeysAction::Create { name, role } => {
            let role = Role::parse(&role)
                .with_context(|| format!("role `{role}` is not one of rep, analyst, admin"))?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("the key name must be 1–100 printable characters");
            }
            let key = generate_key();
            api_keys::insert(&db, &name, role.as_str(), &hash_key(&key)).await?;
            eprintln!(
                "created {} key `{name}` — store it now, it is not shown again",
                role.as_str()
            );
            println!("{key}");
        }
        KeysAction::List => {
            for k in api_keys::list(&db).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.name,
                    k.role,
                    k.created_at.to_rfc3339(),
                    k.revoked_at
                        .map(|t| format!("revoked {}", t.to_rfc3339()))
                        .unwrap_or_else(|| "active".into())
                );
            }
        }
        KeysAction::Revoke { name } => {
            if !api_keys::revoke(&db, &name).await? {
                anyhow::bail!("no active key named `{name}`");
            }
            eprintln!("revoked `{name}`");
        }
    }
    Ok(())
}
