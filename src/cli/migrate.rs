//! `dealscore migrate`: apply pending database migrations and exit.

use crate::config::Settings;
use crate::store::redact;

/// Runs `dealscore migrate`: opening the database applies its pending migrations.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    super::open_db(settings).await?;
    eprintln!("migrations applied to {}", redact(&settings.database_url));
    Ok(())
}
