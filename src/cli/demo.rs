//! `dealscore demo`: the whole loop on a fresh SQLite database — generate a history, import it,
//! train a model, create an admin key, listen, print curl examples, serve.

use std::path::PathBuf;

use anyhow::Context;

use super::generate::{today_midnight, write_history};
use super::import::{open_file, render_summary};
use crate::app::Application;
use crate::auth::{generate_key, hash_key};
use crate::config::Settings;
use crate::ingest::{import_activities, import_history, import_opportunities, ImportOptions};
use crate::store::{api_keys, opportunities};

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

/// Runs `dealscore demo`.
pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
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
    // The generator writes these attributes, so the competitors page has data to show.
    let insights = &mut settings.insights;
    insights
        .competitor_field
        .get_or_insert_with(|| "attr.competitor".to_owned());
    insights
        .loss_reason_field
        .get_or_insert_with(|| "attr.loss_reason".to_owned());
    let db = super::open_db(&settings).await?;

    eprintln!("1/4 generating {} deals…", args.deals);
    let config = crate::generate::GeneratorConfig {
        deals: args.deals,
        end: today_midnight(),
        with_activities: true,
        ..crate::generate::GeneratorConfig::default()
    };
    let (deals_csv, activities_csv, history_csv) = (
        dir.join("deals.csv"),
        dir.join("activities.csv"),
        dir.join("history.csv"),
    );
    let files = super::generate::HistoryFiles {
        opportunities: deals_csv.clone(),
        activities: Some(activities_csv.clone()),
        history: Some(history_csv.clone()),
        truth: None,
    };
    write_history(&config, &files)?;

    eprintln!("2/4 importing…");
    let options = ImportOptions::default();
    let summary = import_opportunities(&db, open_file(deals_csv.clone()), &options, &|_| {}).await?;
    eprint!("{}", render_summary("   opportunities", &summary));
    let summary = import_activities(&db, open_file(activities_csv.clone()), &options, &|_| {}).await?;
    eprint!("{}", render_summary("   activities", &summary));
    let summary = import_history(&db, open_file(history_csv.clone()), &options, &|_| {}).await?;
    eprint!("{}", render_summary("   stage history", &summary));
    demo_customers(&mut settings, &db, config.end).await?;

    eprintln!("3/4 training…");
    let job = crate::lifecycle::train_job::TrainJob {
        spec: crate::features::FeatureSpec::default_spec(),
        options: crate::training::TrainOptions::default(),
        out_dir: PathBuf::from(&settings.models_dir),
        activate: true,
        gate: crate::lifecycle::gate::GatePolicy::from_settings(&settings),
        who: "dealscore demo".into(),
        point_in_time: crate::lifecycle::point_in_time::PointInTime {
            source: Some(db.clone()),
            // The demo's history has timestamped activities: it learns from deals as they stood
            // while open, at the ages open deals are scored at (docs/scoring-method.md).
            snapshots: Some(crate::training::snapshots::SnapshotPlan::Ages(
                crate::training::snapshots::DEFAULT_AGES.to_vec(),
            )),
        },
        low_priority: false,
    };
    let input = crate::lifecycle::train_job::TrainInput::Database {
        since: None,
        until: None,
    };
    let outcome = crate::lifecycle::train_job::run(job, input, Some(&db), Some(&db), |_| {}).await?;
    let artifact = &outcome.trained.artifact;
    eprintln!(
        "   model {}: holdout ROC AUC {:.3} (prior-only baseline {:.3}), {} snapshots of closed deals",
        artifact.version,
        artifact.holdout_metrics.roc_auc,
        artifact.baseline_metrics.roc_auc,
        artifact.training.final_rows
    );
    for b in &artifact.backtests {
        eprintln!(
            "   backtest as of {}: {} deals open then, ROC AUC {}",
            b.as_of.date_naive(),
            b.open_deals,
            b.roc_auc.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
        );
    }
    // Score the open deals once, so the forecast, at-risk and priority views show values as soon
    // as the server answers instead of waiting for the first rescoring.
    let model = std::sync::Arc::new(crate::serving::LoadedModel::new(artifact.clone()));
    let scored = crate::rescoring::rescore_all(&db, model, settings.scoring.clone(), |_| {}).await?;
    eprintln!("   scored {scored} open deals");

    eprintln!("4/4 creating an admin key…");
    let key = generate_key();
    api_keys::insert(
        &db,
        &format!("demo-admin-{}", &key[3..9]),
        "admin",
        &hash_key(&key),
    )
    .await?;
    let open_example = opportunities::first_open(&db)
        .await?
        .unwrap_or_else(|| "D-0000001".into());
    let owner_example = opportunities::first_open_owner(&db).await?.unwrap_or_default();
    // Listen before printing, so the examples name the address actually served (port 0 included)
    // and a taken port fails here, not after the key is shown.
    let app = if args.no_serve {
        // The database is then a file to copy or open elsewhere: every write in it.
        db.close().await?;
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
  curl -s -H "Authorization: Bearer $KEY" "{base}/v1/insights/competitors"
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
    super::serve::run_until_stopped(app, &settings).await
}

/// Regions of the generated history and the demo's quarterly acquisition spend in each (EUR).
const DEMO_SPEND: [(&str, f64); 6] = [
    ("DACH", 60_000.0),
    ("EMEA-North", 40_000.0),
    ("EMEA-South", 35_000.0),
    ("NA-East", 30_000.0),
    ("NA-West", 25_000.0),
    ("APAC", 35_000.0),
];

/// Points the customers insight at the generator's deal type and contract length (unless the
/// configuration names other fields) and records acquisition spend per region for the eight
/// quarters up to `end`, so the customers page shows every figure.
async fn demo_customers(
    settings: &mut Settings,
    db: &crate::store::Db,
    end: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use chrono::Datelike;
    let insights = &mut settings.insights;
    insights
        .deal_type_field
        .get_or_insert_with(|| "attr.deal_type".into());
    if insights.contract_end_field.is_none() {
        insights
            .contract_months_field
            .get_or_insert_with(|| "attr.contract_months".into());
    }
    let quarter = i64::from(end.year()) * 4 + i64::from(end.month0() / 3);
    let mut costs = Vec::new();
    for q in quarter - 7..=quarter {
        let label = format!("{}-Q{}", q.div_euclid(4), q.rem_euclid(4) + 1);
        let (period, window) = crate::insights::period::parse_period(&label)
            .with_context(|| format!("bad demo period {label}"))?;
        costs.extend(DEMO_SPEND.iter().map(|(region, amount)| {
            crate::store::acquisition_costs::AcquisitionCost {
                period: period.clone(),
                period_start: window.start,
                period_end: window.end,
                region: Some((*region).to_owned()),
                channel: None,
                currency: "EUR".into(),
                amount: *amount,
            }
        }));
    }
    crate::store::acquisition_costs::replace_periods(db, &costs).await?;
    eprintln!(
        "   recorded acquisition spend for 8 quarters in {} regions",
        DEMO_SPEND.len()
    );
    Ok(())
}

/// `bind` with its port replaced by the one the listener got (they differ when `bind` asks for 0).
fn with_port(bind: &str, port: u16) -> String {
    match bind.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => format!("{bind}:{port}"),
    }
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
