//! Builds the HTTP application: binds the listener (port 0 in tests), wires state and routes.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::jobs::Jobs;
use crate::auth::KeyCache;
use crate::config::Settings;
use crate::ingest::webhook::writeback::{spawn_worker, RetryPolicy};
use crate::ingest::webhook::{DeliveryQueue, Sources};
use crate::lifecycle::gate::GatePolicy;
use crate::lifecycle::runner::Trainer;
use crate::lifecycle::schedule::{self, Schedule};
use crate::serving::ActiveModel;
use crate::store::group_commit::GroupCommit;
use crate::store::upsert_queue::UpsertQueue;
use crate::store::{Db, PoolOptions};
use crate::telemetry::{observe, Metrics};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    model: Arc<ActiveModel>,
    _watcher: AbortOnDrop,
    /// Drift gauges and retention timers (absent when turned off).
    _timers: Vec<AbortOnDrop>,
    _scheduler: AbortOnDrop,
    outbox_worker: tokio::task::JoinHandle<()>,
}

/// Stops a background task when the application is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Application {
    /// Connects to the database (applying migrations), binds `settings.bind` and prepares the
    /// server. Bind to port 0 to get a free port (see [`Application::port`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = Db::connect(&settings.database_url, &PoolOptions::from(&settings)).await?;
        Self::build_with_db(settings, db).await
    }

    /// Like [`Application::build`] over an existing pool.
    pub async fn build_with_db(settings: Settings, db: Db) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        // A bad webhook source (no secret, unreadable mapping) stops startup with its name.
        let sources = Arc::new(Sources::from_settings(&settings)?);
        let metrics = Metrics::new()?;
        let model = Arc::new(ActiveModel::new());
        if let Err(e) = model.refresh(&db).await {
            tracing::error!(error = %e, "no model loaded at startup; scoring answers 503 until one is activated");
        }
        if model.get().is_none() {
            tracing::warn!(
                "no active model: train one with `dealscore-train`; scoring answers 503 meanwhile"
            );
        }
        let watcher = model.spawn_watcher(
            db.clone(),
            Duration::from_secs(settings.model_refresh_secs.max(1)),
        );
        let drift_gauges = crate::drift::DriftGauges::register(&metrics.registry)?;
        let mut timers = Vec::new();
        if settings.drift_refresh_secs > 0 {
            timers.push(AbortOnDrop(drift_gauges.spawn_refresher(
                db.clone(),
                model.clone(),
                Duration::from_secs(settings.drift_refresh_secs),
            )));
        }
        if settings.retention_interval_hours > 0 {
            timers.push(AbortOnDrop(crate::retention::spawn_timer(
                db.clone(),
                crate::retention::RetentionPolicy::from_settings(&settings),
                settings.models_dir.clone().into(),
                Duration::from_secs(settings.retention_interval_hours * 3600),
            )));
        }
        let drift_data = web::Data::new(drift_gauges);
        // Training runs: fail those interrupted by a crash, then the recovery sweep and the
        // retraining schedule run in the background (docs/operations.md).
        let retrain = Schedule::from_settings(&settings).map_err(|e| anyhow::anyhow!(e))?;
        let trainer = Arc::new(Trainer::new(
            db.clone(),
            model.clone(),
            std::path::PathBuf::from(&settings.models_dir),
            GatePolicy::from_settings(&settings),
        ));
        trainer.recover().await?;
        let scheduler = schedule::spawn(trainer.clone(), retrain);
        let trainer_data = web::Data::from(trainer);
        let model_data = web::Data::from(model.clone());
        let jobs = web::Data::new(Jobs::default());
        let insights_cache = web::Data::new(crate::insights::InsightsCache::new());
        let priority_cache = web::Data::new(crate::ranking::PriorityCache::new());
        let page_memos = web::Data::new(crate::web::memo::PageMemos::default());
        let signin_throttle = web::Data::new(crate::web::throttle::SignInThrottle::new(
            settings.signin_failures_per_minute,
        ));
        if settings.warm_caches {
            let (db, model, scoring) = (db.clone(), model.clone(), settings.scoring.clone());
            let (insights, priority) = (insights_cache.clone(), priority_cache.clone());
            timers.push(AbortOnDrop(tokio::spawn(async move {
                crate::warmup::warm(&db, &model, &scoring, &insights, &priority).await;
            })));
        }
        let outbox_worker = spawn_worker(
            db.clone(),
            sources.clone(),
            metrics.clone(),
            RetryPolicy {
                max_attempts: settings.outbox_max_attempts,
                base_delay: Duration::from_millis(settings.outbox_base_delay_ms),
            },
        );
        let sources_data = web::Data::from(sources);
        let key_cache = web::Data::new(KeyCache::new(Duration::from_secs(settings.auth_cache_secs)));
        let db_data = web::Data::new(db.clone());
        let group_commit = GroupCommit::spawn(db.clone());
        let upsert_queue = web::Data::new(UpsertQueue::spawn(group_commit.clone()));
        let delivery_queue = web::Data::new(DeliveryQueue::spawn(group_commit.clone()));
        let writer = web::Data::new(group_commit);
        let metrics_data = web::Data::new(metrics);
        let settings = Arc::new(settings);
        let settings_data = web::Data::from(settings.clone());
        let max_body = settings.max_body_bytes;
        let max_import = settings.max_import_bytes;
        let max_batch = settings.max_batch_body_bytes;
        let openapi = crate::api::docs::ApiDoc::openapi();
        let mut server = HttpServer::new(move || {
            App::new()
                // Innermost: problems are re-worded before metrics and logs see the response.
                .wrap(from_fn(crate::error::localize_problems))
                .wrap(from_fn(observe))
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(db_data.clone())
                .app_data(writer.clone())
                .app_data(upsert_queue.clone())
                .app_data(delivery_queue.clone())
                .app_data(metrics_data.clone())
                .app_data(key_cache.clone())
                .app_data(settings_data.clone())
                .app_data(model_data.clone())
                .app_data(drift_data.clone())
                .app_data(jobs.clone())
                .app_data(trainer_data.clone())
                .app_data(insights_cache.clone())
                .app_data(priority_cache.clone())
                .app_data(page_memos.clone())
                .app_data(signin_throttle.clone())
                .app_data(sources_data.clone())
                .app_data(web::PayloadConfig::new(max_import))
                .configure(|cfg| crate::api::configure(cfg, max_body, max_batch))
                // The web UI's forms are small: the JSON body limit applies to them too.
                .app_data(
                    web::FormConfig::default()
                        .limit(max_body)
                        .error_handler(crate::web::error::bad_form),
                )
                .configure(crate::web::configure)
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .service(web::redirect("/docs", "/docs/"))
                .default_service(web::to(crate::api::not_found))
        })
        .shutdown_timeout(settings.shutdown_timeout_secs)
        // actix-http leaves Nagle's algorithm on unless told. A streamed answer (a large batch
        // score, a CSV export) is several writes, and Nagle held the last small one until the
        // client's delayed ACK, up to 40 ms later (docs/performance.md, "Batch scoring").
        .tcp_nodelay(true)
        .listen(listener)?;
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            db,
            model,
            _watcher: AbortOnDrop(watcher),
            _timers: timers,
            _scheduler: AbortOnDrop(scheduler),
            outbox_worker,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database pool the server uses.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The model holder the server scores with.
    pub fn model(&self) -> &Arc<ActiveModel> {
        &self.model
    }

    /// Serves until SIGTERM/SIGINT (in-flight requests finish within the shutdown timeout).
    /// The write-back worker stops with the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.outbox_worker.abort();
        result
    }
}
