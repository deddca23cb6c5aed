//! `dealscore serve`: run the HTTP API until a shutdown signal.

use crate::app::Application;
use crate::config::Settings;
use crate::store::redact;

/// Arguments of `dealscore serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen address (overrides DEALSCORE_BIND).
    #[arg(long)]
    pub bind: Option<String>,
    /// Retrain on a schedule, e.g. `7d`, `12h` (overrides DEALSCORE_RETRAIN_EVERY; off by
    /// default). With several servers on one database only one runs it.
    #[arg(long, value_name = "DURATION", value_parser = parse_retrain_every)]
    pub retrain_every: Option<String>,
}

fn parse_retrain_every(text: &str) -> Result<String, String> {
    crate::lifecycle::schedule::parse_duration(text).map(|_| text.trim().to_owned())
}

/// Runs `dealscore serve`: the flags override the settings, then [`serve`].
pub async fn run(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        settings.bind = bind;
    }
    if let Some(every) = args.retrain_every {
        settings.retrain_every = every;
    }
    serve(settings).await
}

/// Starts the API and serves until stopped.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone()).await?;
    run_until_stopped(app, &settings).await
}

/// Serves with `app` until a shutdown signal, logging where it listens and when it stops.
pub(super) async fn run_until_stopped(app: Application, settings: &Settings) -> anyhow::Result<()> {
    let (bind, url) = (&settings.bind, redact(&settings.database_url));
    tracing::info!(%bind, port = app.port(), database = %url, "dealscore listening");
    app.run_until_stopped().await?;
    tracing::info!("dealscore stopped");
    Ok(())
}
