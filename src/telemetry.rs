//! Logs (human or JSON), request ids and Prometheus metrics.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber (once; later calls are ignored). The level comes from
/// `RUST_LOG` (default `info`). Human logs are coloured only on a terminal: written to a file or
/// a log collector, colour codes are noise in every line.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The Prometheus registry and the HTTP metrics in it.
#[derive(Clone)]
pub struct Metrics {
    /// Registry served at `/metrics`; other modules register their own metrics here.
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    webhook_events: IntCounterVec,
    outbox_deliveries: IntCounterVec,
}

impl Metrics {
    /// A registry with `http_requests_total` and `http_request_duration_seconds`.
    pub fn new() -> Result<Arc<Metrics>, prometheus::Error> {
        let registry = Registry::new_custom(Some("dealscore".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["method", "route"],
        )?;
        let webhook_events = IntCounterVec::new(
            Opts::new(
                "webhook_events_total",
                "Webhook events by source and outcome status",
            ),
            &["source", "status"],
        )?;
        let outbox_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_outbox_deliveries_total",
                "Score write-back attempts by source and result (delivered, retry, dead)",
            ),
            &["source", "result"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(webhook_events.clone()))?;
        registry.register(Box::new(outbox_deliveries.clone()))?;
        Ok(Arc::new(Metrics {
            registry,
            requests,
            latency,
            webhook_events,
            outbox_deliveries,
        }))
    }

    /// Counts one webhook event of `source` with outcome `status` (applied, duplicate, ignored,
    /// rejected) in `dealscore_webhook_events_total`. Only configured sources are counted, so the
    /// label set stays small.
    pub fn webhook_event(&self, source: &str, status: &str) {
        self.webhook_events.with_label_values(&[source, status]).inc();
    }

    /// Counts one write-back attempt in `dealscore_webhook_outbox_deliveries_total`; `result` is
    /// delivered, retry or dead.
    pub fn outbox_delivery(&self, source: &str, result: &str) {
        self.outbox_deliveries.with_label_values(&[source, result]).inc();
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_default()
    }
}

/// Middleware: records request count and latency per route pattern (not per raw path, so ids do
/// not explode the label set), echoes the request id in `X-Request-Id`, and writes an access log
/// line per request at debug level under the `dealscore::access` target (off by default for its
/// volume, see docs/operations.md; `RUST_LOG=info,dealscore::access=debug` turns it on).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let start = Instant::now();
    let metrics = req.app_data::<actix_web::web::Data<Arc<Metrics>>>().cloned();
    let method = req.method().as_str().to_owned();
    let request_id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    // Resolved once per request by the request span; resolved here only when that middleware
    // is not in front of this one.
    let taken = req.extensions_mut().remove::<RoutePattern>();
    let route = taken.map_or_else(|| route_of(&req), |r| r.0);
    let mut response = next.call(req).await?;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    if let Some(metrics) = metrics {
        metrics
            .requests
            .with_label_values(&[&method, &route, &status.to_string()])
            .inc();
        metrics
            .latency
            .with_label_values(&[&method, &route])
            .observe(elapsed.as_secs_f64());
    }
    // Method, route and request id are the request span's fields, written with every line.
    tracing::debug!(target: "dealscore::access", status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    Ok(response)
}

/// A request's route pattern (`/v1/opportunities/{external_id}`), resolved once by
/// [`RequestSpan`] and taken by [`observe`] for its metric labels.
struct RoutePattern(String);

/// The route pattern the request matches, `unmatched` for none.
fn route_of(request: &ServiceRequest) -> String {
    request.match_pattern().unwrap_or_else(|| "unmatched".to_owned())
}

/// The span each request runs in: method, route pattern and request id (what ties a log line to
/// the `X-Request-Id` the client saw), then the status. tracing-actix-web's default span also
/// carries the client address, user agent, host, scheme, HTTP version, target and OpenTelemetry
/// fields; the log formatter renders every field of a span as text when the span opens, so on a
/// one-opportunity `POST /v1/score` that was a measurable share of the request's CPU for fields
/// no log line here uses.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let route = route_of(request);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            route = route.as_str(),
            request_id = request_id.map(tracing::field::display),
            status = tracing::field::Empty,
        );
        request.extensions_mut().insert(RoutePattern(route));
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
    }
}
