//! The `dealscore` command line: the clap definitions and the dispatch, one file per command.
//!
//! Every command is a thin shell over the library: it parses its flags, opens what it needs and
//! calls the layers below; none of them writes SQL (that lives in `store`). `dealscore-train` is
//! an alias of `dealscore train`: both run [`train::run`].

pub mod demo;
pub mod generate;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod prune;
pub mod score;
pub mod serve;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::ingest::ImportMapping;
use crate::store::{redact, Db, PoolOptions};

pub use demo::DemoArgs;
pub use generate::GenerateArgs;
pub use import::{render_summary, ImportArgs};
pub use keys::KeysAction;
pub use prune::PruneArgs;
pub use score::ScoreArgs;
pub use serve::{serve, ServeArgs};
pub use train::TrainArgs;

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
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import opportunities (and activities) from CSV.
    Import(ImportArgs),
    /// Write a synthetic CRM history (CSV) whose outcomes follow known success factors.
    Generate(GenerateArgs),
    /// Fresh demo: generated history imported into a new SQLite database, a trained model, an
    /// admin key printed with curl examples, then the API.
    Demo(DemoArgs),
    /// Train a win-probability model on won and lost deals (the same as `dealscore-train`).
    Train(TrainArgs),
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

/// Loads settings with the CLI's overrides.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    load_settings(cli.config.as_deref(), cli.log_format)
}

fn load_settings(config: Option<&Path>, log_format: Option<LogFormat>) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(config)?;
    if let Some(format) = log_format {
        settings.log_format = format;
    }
    Ok(settings)
}

/// Exit status of a command that ran to its end but has something to report, such as rows an
/// import rejected: the binaries exit with [`Exit::code`] after printing the message. Exit codes
/// are documented in the README ("Exit codes").
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    /// What happened, printed on standard error.
    pub message: String,
}

/// Exit code of `dealscore import` when rows were rejected and the others imported.
pub const EXIT_ROWS_REJECTED: u8 = 3;

/// The process exit code for a command's error: the one an [`Exit`] carries, 1 for any other.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.downcast_ref::<Exit>().map_or(1, |exit| exit.code)
}

/// Where the database URL came from, so a message can say which one was used and how to change it.
pub fn describe_database_url(settings: &Settings) -> String {
    let url = redact(&settings.database_url);
    if std::env::var_os("DATABASE_URL").is_some() {
        format!("DATABASE_URL={url}")
    } else if settings.database_url == Settings::default().database_url {
        format!("DATABASE_URL={url} (the default: DATABASE_URL is not set)")
    } else {
        format!("DATABASE_URL={url} (from the configuration file)")
    }
}

/// Opens the configured database (created if it is a SQLite file that does not exist yet;
/// migrations applied). For commands that write.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Db::connect(&settings.database_url, &PoolOptions::from(settings))
        .await
        .with_context(|| format!("database {}", describe_database_url(settings)))
}

/// The file of a SQLite URL (`sqlite://data/x.db?mode=rwc` → `data/x.db`); `None` for another
/// backend or an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Opens the configured database for a command that only reads (or changes what must already be
/// there): a SQLite file that does not exist is an error naming the URL, never created empty.
pub async fn open_existing_db(settings: &Settings) -> anyhow::Result<Db> {
    if let Some(path) = sqlite_file(&settings.database_url) {
        if !path.exists() {
            anyhow::bail!(
                "no database at {} ({}); set DATABASE_URL to the database the server uses",
                path.display(),
                describe_database_url(settings)
            );
        }
    }
    open_db(settings).await
}

/// Reads a TOML column mapping, or the default mapping when none is given.
fn read_mapping(path: Option<&Path>) -> anyhow::Result<ImportMapping> {
    match path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            ImportMapping::from_toml(&text).with_context(|| format!("mapping {}", path.display()))
        }
        None => Ok(ImportMapping::default()),
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        config,
        log_format,
        command,
    } = cli;
    let prepare = || -> anyhow::Result<Settings> {
        let settings = load_settings(config.as_deref(), log_format)?;
        crate::telemetry::init_logging(settings.log_format);
        Ok(settings)
    };
    match command {
        Command::Serve(args) => serve::run(prepare()?, args).await,
        Command::Migrate => migrate::run(&prepare()?).await,
        Command::Import(args) => import::run(&prepare()?, args).await,
        Command::Generate(args) => {
            prepare()?;
            generate::run(args)
        }
        Command::Demo(args) => demo::run(prepare()?, args).await,
        // Training loads its settings and starts its logging itself, as `dealscore-train` does,
        // so the two give the same output; the global flags reach it as that binary's flags.
        Command::Train(args) => {
            let log_format = log_format.unwrap_or(LogFormat::Human);
            train::run(config.as_deref(), log_format, args).await
        }
        Command::Score(args) => score::run(&prepare()?, args).await,
        Command::Prune(args) => prune::run(&prepare()?, args).await,
        Command::Keys { action } => keys::run(&prepare()?, action).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn sqlite_files_are_read_from_their_urls() {
        use std::path::PathBuf;
        let file = super::sqlite_file;
        assert_eq!(file("sqlite://data/x.db"), Some(PathBuf::from("data/x.db")));
        assert_eq!(
            file("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(file("sqlite:x.db"), Some(PathBuf::from("x.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }

    #[test]
    fn rejected_rows_have_their_own_exit_code() {
        let rejected = anyhow::Error::new(super::Exit {
            code: super::EXIT_ROWS_REJECTED,
            message: "2 rows rejected".into(),
        });
        assert_eq!(super::exit_code(&rejected), 3);
        assert_eq!(super::exit_code(&rejected.context("import")), 3);
        assert_eq!(super::exit_code(&anyhow::anyhow!("no such file")), 1);
    }

    #[test]
    fn the_command_lines_are_well_formed() {
        super::Cli::command().debug_assert();
        super::train::TrainCommand::command().debug_assert();
    }
}
