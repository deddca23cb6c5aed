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
        /// Retrain on a schedule, e.g. `7d`, `12h` (overrides DEALSCORE_RETRAIN_EVERY; off by
        /// default). With several servers on one database only one runs it.
        #[arg(long, value_name = "DURATION", value_parser = parse_retrain_every)]
        retrain_every: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import opportunities (and activities) from CSV.
    Import(ImportArgs),
    /// Write a synthetic CRM history (CSV) whose outcomes follow known success factors.
    Generate(GenerateArgs),
    /// Fresh demo: generated history imported into a new SQLite database, a trained model, an
    /// admin key printed with curl examples, then the API.
    Demo(DemoArgs),
    /// Score the opportunities of a CSV with the active model (or `--model FILE`): every input
    /// row is written back with result columns.
    Score(ScoreArgs),
    /// Prune old model versions (registry rows and artifact files) and old score history by the
    /// retention policy; the active model, the newest versions and each deal's latest score stay.
    Prune(PruneArgs),
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
    /// Distribution shift, repeatable: `amount=3` multiplies amounts, `response_hours=4` answer
    /// delays (docs/generator.md). For drift checks against a model trained without it.
    #[arg(long, value_name = "NAME=FACTOR")]
    pub shift: Vec<String>,
    /// Prefix of the external ids (default `D-`), to import a second population beside the first.
    #[arg(long, default_value = "D-")]
    pub id_prefix: String,
}

/// Arguments of `dealscore score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Opportunities CSV (same format as `import`).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Column mapping.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Output CSV (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Score with this artifact instead of the database's active model.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

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

/// Arguments of `dealscore demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder of the demo database and files (recreated).
    #[arg(long, default_value = "data/demo")]
    pub dir: PathBuf,
    /// Deals to generate.
    #[arg(long, default_value_t = 20_000)]
    pub deals: usize,
    /// Listen address; port 0 picks a free port (the printed examples show the one chosen).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Prepare everything, print the key, and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
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

fn parse_retrain_every(text: &str) -> Result<String, String> {
    crate::lifecycle::schedule::parse_duration(text).map(|_| text.trim().to_owned())
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
        Command::Serve { bind, retrain_every } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            if let Some(every) = retrain_every {
                settings.retrain_every = every;
            }
            serve(settings).await
        }
        Command::Migrate => {
            open_db(&settings).await?;
            eprintln!("migrations applied to {}", redact(&settings.database_url));
            Ok(())
        }
        Command::Import(args) => import(&settings, args).await,
        Command::Generate(args) => generate(args),
        Command::Demo(args) => demo(settings, args).await,
        Command::Score(args) => score_file(&settings, args).await,
        Command::Prune(args) => prune(&settings, args).await,
        Command::Keys { action } => keys(&settings, action).await,
    }
}

/// Starts the API and serves until stopped.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone()).await?;
    run_until_stopped(app, &settings).await
}

/// Serves with `app` until a shutdown signal, logging where it listens and when it stops.
async fn run_until_stopped(app: Application, settings: &Settings) -> anyhow::Result<()> {
    let (bind, url) = (&settings.bind, redact(&settings.database_url));
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

async fn prune(settings: &Settings, args: PruneArgs) -> anyhow::Result<()> {
    let mut policy = crate::retention::RetentionPolicy::from_settings(settings);
    if let Some(n) = args.keep_versions {
        policy.keep_versions = n;
    }
    if let Some(days) = args.score_days {
        policy.score_days = days;
    }
    let db = open_db(settings).await?;
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

fn today_midnight() -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    today.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.open_fraction) {
        anyhow::bail!(
            "--open-fraction must be between 0 and 1, got {}",
            args.open_fraction
        );
    }
    if args.deals == 0 {
        anyhow::bail!("--deals must be at least 1");
    }
    let mut shift = crate::generate::Shift::default();
    for spec in &args.shift {
        shift
            .apply_spec(spec)
            .map_err(|e| anyhow::anyhow!("--shift {e}"))?;
    }
    let config = crate::generate::GeneratorConfig {
        deals: args.deals,
        seed: args.seed,
        open_fraction: args.open_fraction,
        end: args.end_date.unwrap_or_else(today_midnight),
        with_activities: args.activities_out.is_some(),
        shift,
        id_prefix: args.id_prefix.clone(),
    };
    let summary = write_history(&config, &args.out, args.activities_out.as_deref())?;
    eprintln!(
        "wrote {} deals ({} open, {} won, {} lost) to {}{}",
        summary.deals,
        summary.open,
        summary.won,
        summary.lost,
        args.out.display(),
        args.activities_out
            .as_ref()
            .map(|p| format!(" and {} activities to {}", summary.activities, p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Writes a generated history to files, through temporary names so a failure leaves nothing half
/// written.
fn write_history(
    config: &crate::generate::GeneratorConfig,
    out: &std::path::Path,
    activities_out: Option<&std::path::Path>,
) -> anyhow::Result<crate::generate::GenerateSummary> {
    use std::io::BufWriter;
    let temp = |p: &std::path::Path| p.with_extension("csv.partial");
    let create = |p: &std::path::Path| -> anyhow::Result<BufWriter<std::fs::File>> {
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let file = std::fs::File::create(temp(p)).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    };
    let opps = create(out)?;
    let acts = activities_out.map(create).transpose()?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(config.deals as u64)
    } else {
        ProgressBar::hidden()
    };
    let summary = crate::generate::generate_to_csv(config, opps, acts, |done| bar.set_position(done as u64))
        .context("cannot write the generated history")?;
    bar.finish_and_clear();
    std::fs::rename(temp(out), out).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(p) = activities_out {
        std::fs::rename(temp(p), p).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(summary)
}

async fn demo(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    if !args.no_serve {
        // A taken address fails now, before the folder is reset and a minute goes into
        // generating and training; the serving listener is bound (and checked) again later.
        std::net::TcpListener::bind(&args.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
    }
    let dir = args.dir.clone();
    for name in ["dealscore.db", "dealscore.db-wal", "dealscore.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot reset {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    settings.database_url = format!("sqlite://{}", dir.join("dealscore.db").display());
    settings.bind = args.bind.clone();
    settings.models_dir = dir.join("models").display().to_string();
    let db = open_db(&settings).await?;

    eprintln!("1/4 generating {} deals…", args.deals);
    let config = crate::generate::GeneratorConfig {
        deals: args.deals,
        end: today_midnight(),
        with_activities: true,
        ..crate::generate::GeneratorConfig::default()
    };
    let (deals_csv, activities_csv) = (dir.join("deals.csv"), dir.join("activities.csv"));
    write_history(&config, &deals_csv, Some(&activities_csv))?;

    eprintln!("2/4 importing…");
    let options = ImportOptions::default();
    let summary = import_opportunities(&db, open_file(deals_csv.clone()), &options, &|_| {}).await?;
    eprint!("{}", render_summary("   opportunities", &summary));
    let summary = import_activities(&db, open_file(activities_csv.clone()), &options, &|_| {}).await?;
    eprint!("{}", render_summary("   activities", &summary));

    eprintln!("3/4 training…");
    let deals = crate::store::opportunities::closed_deals(&db, None, None).await?;
    let job = crate::train_job::TrainJob {
        spec: crate::features::FeatureSpec::default_spec(),
        options: crate::training::TrainOptions::default(),
        out_dir: PathBuf::from(&settings.models_dir),
        activate: true,
        gate: crate::lifecycle::gate::GatePolicy::from_settings(&settings),
        who: "dealscore demo".into(),
    };
    let outcome = crate::train_job::run(job, deals, Some(&db), |_| {}).await?;
    let artifact = &outcome.trained.artifact;
    eprintln!(
        "   model {}: holdout ROC AUC {:.3} (prior-only baseline {:.3}), {} closed deals",
        artifact.version,
        artifact.holdout_metrics.roc_auc,
        artifact.baseline_metrics.roc_auc,
        artifact.training.final_rows
    );

    eprintln!("4/4 creating an admin key…");
    let key = generate_key();
    api_keys::insert(
        &db,
        &format!("demo-admin-{}", &key[3..9]),
        "admin",
        &hash_key(&key),
    )
    .await?;
    let open_example = sqlx::query_scalar::<_, String>(
        "SELECT external_id FROM opportunities WHERE status = 'open' ORDER BY id LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?
    .unwrap_or_else(|| "D-0000001".into());
    let owner_example = sqlx::query_scalar::<_, String>(
        "SELECT owner FROM opportunities WHERE status = 'open' AND owner IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?
    .unwrap_or_default();
    // Listen before printing, so the examples name the address actually served (port 0 included)
    // and a taken port fails here, not after the key is shown.
    let app = if args.no_serve {
        db.pool.close().await;
        None
    } else {
        Some(Application::build_with_db(settings.clone(), db).await?)
    };
    let base = match &app {
        Some(app) => format!("http://{}", with_port(&args.bind, app.port())),
        None => format!("http://{}", args.bind),
    };
    let examples = format!(
        r#"
dealscore demo ready — database {db}

Admin key (store it; it is not shown again):
  export KEY={key}

Try:
  curl -s {base}/healthz
  curl -s -H "Authorization: Bearer $KEY" "{base}/v1/opportunities?status=open&limit=3"
  curl -s -H "Authorization: Bearer $KEY" "{base}/v1/opportunities/{open_example}/score"
  curl -s -H "Authorization: Bearer $KEY" "{base}/v1/opportunities/priority?owner={owner_example}&limit=5"
  curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' {base}/v1/score \
       -d '{{"sector":"software","contact_role":"end_user","amount":40000,"cycle_days":30,"interaction_count":3,"response_hours":40}}'
  open {base}/docs for the interactive API documentation
  open {base}/ and sign in with the key for the web UI (add ?lang=fr for French)
"#,
        db = settings.database_url,
    );
    // One write, and a reader that went away (`dealscore demo | head`) is not a reason to stop
    // serving: `println!` would panic on the broken pipe.
    let printed = {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(examples.as_bytes()).and_then(|()| out.flush())
    };
    let Some(app) = app else {
        return printed.context("cannot print the demo's key and examples");
    };
    if let Err(e) = printed {
        tracing::warn!(error = %e, "cannot print the demo's key and examples; serving anyway");
    }
    run_until_stopped(app, &settings).await
}

/// `bind` with its port replaced by the one the listener got (they differ when `bind` asks for 0).
fn with_port(bind: &str, port: u16) -> String {
    match bind.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => format!("{bind}:{port}"),
    }
}

/// Result columns appended by `dealscore score`.
const SCORE_COLUMNS: [&str; 9] = [
    "probability",
    "score",
    "grade",
    "focus",
    "expected_value",
    "next_intervention",
    "uplift",
    "model_version",
    "error",
];

async fn score_file(settings: &Settings, args: ScoreArgs) -> anyhow::Result<()> {
    let mapping = match &args.mapping {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            ImportMapping::from_toml(&text).with_context(|| format!("mapping {}", path.display()))?
        }
        None => ImportMapping::default(),
    };
    let model = match &args.model {
        Some(path) => crate::model::ModelArtifact::load_verified(path)
            .with_context(|| format!("model {}", path.display()))?,
        None => {
            let db = open_db(settings).await?;
            let (record, json) = crate::store::models::active(&db)
                .await?
                .context("no active model: train one with `dealscore-train`, or pass --model FILE")?;
            crate::model::ModelArtifact::from_json_verified(&json)
                .with_context(|| format!("active model {}", record.version))?
        }
    };
    let file =
        std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(out);
    let now = chrono::Utc::now();
    let (mut scored, mut rejected, mut header_written) = (0u64, 0u64, false);
    crate::ingest::csv_import::for_each_row(
        std::io::BufReader::new(file),
        &mapping,
        |headers, record, parsed| {
            if !header_written {
                let mut header: Vec<&str> = headers.iter().collect();
                header.extend(SCORE_COLUMNS);
                writer.write_record(&header).map_err(std::io::Error::other)?;
                header_written = true;
            }
            let mut row: Vec<String> = record.iter().map(str::to_owned).collect();
            row.resize(headers.len(), String::new());
            match parsed {
                Ok(opp) => {
                    scored += 1;
                    let r = crate::scoring::score(
                        &model,
                        &settings.scoring,
                        &opp,
                        now,
                        None,
                        crate::scoring::RankBy::Probability,
                        crate::i18n::Lang::En,
                    );
                    row.extend([
                        format!("{:.6}", r.probability),
                        r.score.to_string(),
                        r.grade.as_str().to_owned(),
                        r.focus.as_str().to_owned(),
                        r.expected_value.map(|v| format!("{v:.2}")).unwrap_or_default(),
                        r.next_intervention
                            .as_ref()
                            .map(|n| n.message.clone())
                            .unwrap_or_default(),
                        r.next_intervention
                            .as_ref()
                            .map(|n| format!("{:.6}", n.uplift))
                            .unwrap_or_default(),
                        r.model_version,
                        String::new(),
                    ]);
                }
                Err(e) => {
                    rejected += 1;
                    row.extend(std::iter::repeat_n(String::new(), SCORE_COLUMNS.len() - 1));
                    row.push(format!("line {}: {}", e.line, e.reason));
                }
            }
            writer.write_record(&row).map_err(std::io::Error::other)
        },
    )
    .with_context(|| format!("{}", args.file.display()))?;
    writer.flush()?;
    eprintln!(
        "scored {scored} opportunities with model {} ({rejected} rows rejected)",
        model.version
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_port;

    #[test]
    fn the_printed_address_carries_the_port_the_listener_got() {
        assert_eq!(with_port("127.0.0.1:0", 40123), "127.0.0.1:40123");
        assert_eq!(with_port("0.0.0.0:8080", 8080), "0.0.0.0:8080");
        assert_eq!(with_port("[::1]:0", 40123), "[::1]:40123");
        assert_eq!(with_port("localhost", 40123), "localhost:40123");
    }
}
