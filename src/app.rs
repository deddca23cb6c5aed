//! Builds the HTTP application in three steps: the [`AppState`] every route shares, the
//! background tasks that keep it fresh ([`AppState::spawn_background`]), and the server that
//! hands the state to the routes. The listener is bound first (port 0 in tests).

use std::net::TcpListener;
use std::path::PathBuf;
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
use crate::drift::DriftGauges;
use crate::ingest::webhook::writeback::{spawn_worker, RetryPolicy};
use crate::ingest::webhook::{DeliveryQueue, Sources};
use crate::insights::InsightsCache;
use crate::lifecycle::gate::GatePolicy;
use crate::lifecycle::runner::Trainer;
use crate::lifecycle::schedule::{self, Schedule};
use crate::ranking::PriorityCache;
use crate::serving::ActiveModel;
use crate::store::group_commit::GroupCommit;
use crate::store::upsert_queue::UpsertQueue;
use crate::store::{Db, PoolOptions};
use crate::telemetry::{observe, Metrics};
use crate::web::memo::PageMemos;
use crate::web::throttle::SignInThrottle;

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    model: Arc<ActiveModel>,
    background: Background,
}

/// The state shared by every route: each field is registered as app data, so a handler takes
/// any of them as a `web::Data<…>` argument. Built once; every worker shares the same values.
#[derive(Clone)]
pub struct AppState {
    /// Settings the server started with.
    pub settings: web::Data<Settings>,
    /// The connection pool.
    pub db: web::Data<Db>,
    /// The writer that commits concurrent write transactions together.
    pub writer: web::Data<GroupCommit>,
    /// Coalesces single-opportunity upserts into group commits.
    pub upsert_queue: web::Data<UpsertQueue>,
    /// Coalesces webhook deliveries into group commits.
    pub delivery_queue: web::Data<DeliveryQueue>,
    /// Prometheus metrics.
    pub metrics: web::Data<Arc<Metrics>>,
    /// Recently checked API keys.
    pub key_cache: web::Data<KeyCache>,
    /// The model scoring answers with.
    pub model: web::Data<ActiveModel>,
    /// Drift gauges exported with the metrics.
    pub drift: web::Data<DriftGauges>,
    /// Background rescoring jobs.
    pub jobs: web::Data<Jobs>,
    /// Training runs started over HTTP or by the schedule.
    pub trainer: web::Data<Trainer>,
    /// Insights snapshots, by change stamp.
    pub insights_cache: web::Data<InsightsCache>,
    /// Priority lists, by change stamp.
    pub priority_cache: web::Data<PriorityCache>,
    /// Rendered page fragments of the web UI.
    pub page_memos: web::Data<PageMemos>,
    /// Failed sign-ins per client.
    pub signin_throttle: web::Data<SignInThrottle>,
    /// Webhook sources (CRM connections).
    pub sources: web::Data<Sources>,
}

/// The background tasks of a running application. Dropping it stops them, except the outbox
/// worker, which [`Application::run_until_stopped`] stops once the server has.
struct Background {
    _watcher: AbortOnDrop,
    /// Drift gauges, retention and cache warming (each absent when turned off).
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

impl AppState {
    /// Builds the shared state over `db`: loads the active model (startup continues without one)
    /// and checks the webhook sources and metrics. Writes nothing and starts no timer; the
    /// queues' writer tasks are part of the state.
    pub async fn build(settings: Settings, db: Db) -> anyhow::Result<AppState> {
        // A bad webhook source (no secret, unreadable mapping) stops startup with its name.
        let sources = Arc::new(Sources::from_settings(&settings)?);
        let metrics = Metrics::new()?;
        let model = Arc::new(ActiveModel::new());
        if let Err(e) = model.refresh(&db).await {
            tracing::error!(error = %e, "no model loaded at startup; scoring answers 503 until one is activated");
        }
        if model.get().is_none() {
            tracing::warn!(
                database = %crate::store::redact(&settings.database_url),
                "no active model in this database: train one with `dealscore train`; scoring answers 503 meanwhile"
            );
        }
        let drift = DriftGauges::register(&metrics.registry)?;
        let trainer = Trainer::new(
            db.clone(),
            model.clone(),
            PathBuf::from(&settings.models_dir),
            GatePolicy::from_settings(&settings),
        );
        let key_cache = KeyCache::new(Duration::from_secs(settings.auth_cache_secs));
        let signin_throttle = SignInThrottle::new(settings.signin_failures_per_minute);
        let group_commit = GroupCommit::spawn(db.clone());
        Ok(AppState {
            upsert_queue: web::Data::new(UpsertQueue::spawn(group_commit.clone())),
            delivery_queue: web::Data::new(DeliveryQueue::spawn(group_commit.clone())),
            writer: web::Data::new(group_commit),
            settings: web::Data::new(settings),
            db: web::Data::new(db),
            metrics: web::Data::new(metrics),
            key_cache: web::Data::new(key_cache),
            model: web::Data::from(model),
            drift: web::Data::new(drift),
            jobs: web::Data::new(Jobs::default()),
            trainer: web::Data::new(trainer),
            insights_cache: web::Data::new(InsightsCache::new()),
            priority_cache: web::Data::new(PriorityCache::new()),
            page_memos: web::Data::new(PageMemos::default()),
            signin_throttle: web::Data::new(signin_throttle),
            sources: web::Data::from(sources),
        })
    }

    /// Starts what keeps the state fresh and does the work no request waits for: the model
    /// watcher, the drift and retention timers, cache warming, the retraining `schedule` and the
    /// score write-back worker.
    fn spawn_background(&self, retrain: Schedule) -> Background {
        let settings = &self.settings;
        let db = self.db.get_ref();
        let model = self.model.clone().into_inner();
        let watcher = model.spawn_watcher(
            db.clone(),
            Duration::from_secs(settings.model_refresh_secs.max(1)),
        );
        let mut timers = Vec::new();
        if settings.drift_refresh_secs > 0 {
            timers.push(AbortOnDrop(self.drift.spawn_refresher(
                db.clone(),
                model.clone(),
                Duration::from_secs(settings.drift_refresh_secs),
            )));
        }
        if settings.retention_interval_hours > 0 {
            timers.push(AbortOnDrop(crate::retention::spawn_timer(
                db.clone(),
                crate::retention::RetentionPolicy::from_settings(settings),
                settings.models_dir.clone().into(),
                Duration::from_secs(settings.retention_interval_hours * 3600),
            )));
        }
        let scheduler = schedule::spawn(self.trainer.clone().into_inner(), retrain);
        if settings.warm_caches {
            let (db, model, scoring) = (db.clone(), model.clone(), settings.scoring.clone());
            let (insights, priority) = (self.insights_cache.clone(), self.priority_cache.clone());
            let attributes = crate::warmup::competitor_attributes(&settings.insights);
            timers.push(AbortOnDrop(tokio::spawn(async move {
                crate::warmup::warm(&db, &model, &scoring, &insights, &priority, &attributes).await;
            })));
        }
        let outbox_worker = spawn_worker(
            db.clone(),
            self.sources.clone().into_inner(),
            self.metrics.get_ref().clone(),
            RetryPolicy {
                max_attempts: settings.outbox_max_attempts,
                base_delay: Duration::from_millis(settings.outbox_base_delay_ms),
            },
        );
        Background {
            _watcher: AbortOnDrop(watcher),
            _timers: timers,
            _scheduler: AbortOnDrop(scheduler),
            outbox_worker,
        }
    }

    /// Registers every field as app data.
    fn register(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.db.clone())
            .app_data(self.writer.clone())
            .app_data(self.upsert_queue.clone())
            .app_data(self.delivery_queue.clone())
            .app_data(self.metrics.clone())
            .app_data(self.key_cache.clone())
            .app_data(self.settings.clone())
            .app_data(self.model.clone())
            .app_data(self.drift.clone())
            .app_data(self.jobs.clone())
            .app_data(self.trainer.clone())
            .app_data(self.insights_cache.clone())
            .app_data(self.priority_cache.clone())
            .app_data(self.page_memos.clone())
            .app_data(self.signin_throttle.clone())
            .app_data(self.sources.clone());
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
        let state = AppState::build(settings, db).await?;
        let retrain = Schedule::from_settings(&state.settings).map_err(|e| anyhow::anyhow!(e))?;
        // Training runs interrupted by a crash are marked failed before anything else runs; the
        // recovery sweep and the retraining schedule then run in the background
        // (docs/operations.md).
        state.trainer.recover().await?;
        let background = state.spawn_background(retrain);
        let (db, model) = (state.db.get_ref().clone(), state.model.clone().into_inner());
        let server = serve(state, listener)?;
        Ok(Application {
            port,
            server,
            db,
            model,
            background,
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
        self.background.outbox_worker.abort();
        result
    }
}

/// Starts serving the routes over `state` on `listener`.
fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let settings = state.settings.clone();
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
            .wrap(from_fn(crate::web::security_headers::add))
            .configure(|cfg| state.register(cfg))
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
    Ok(server.run())
}
