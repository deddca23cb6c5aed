//! Drift as Prometheus gauges, refreshed by a timer in the server and by every call of the drift
//! endpoint.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use super::measure::{measure, DriftError};
use super::report::DriftReport;
use crate::serving::ActiveModel;
use crate::store::Db;

/// How soon the refresher notices that another model serves (at most; less when the refresh
/// period itself is shorter).
const MODEL_FOLLOW: Duration = Duration::from_secs(5);

/// `dealscore_feature_psi{feature, population}` and `dealscore_drift_rows{population}`.
#[derive(Clone)]
pub struct DriftGauges {
    psi: GaugeVec,
    rows: IntGaugeVec,
    /// The last report, for pages that must not wait for a measurement (the web UI).
    last: Arc<std::sync::Mutex<Option<Arc<DriftReport>>>>,
}

impl DriftGauges {
    /// Creates the gauges and registers them in `registry` (the one served at `/metrics`).
    pub fn register(registry: &Registry) -> Result<DriftGauges, prometheus::Error> {
        let psi = GaugeVec::new(
            Opts::new(
                "feature_psi",
                "Population stability index of a model feature between the training data and a population \
                 (open, closed_since); ok < 0.1 <= watch < 0.2 <= alert",
            ),
            &["feature", "population"],
        )?;
        let rows = IntGaugeVec::new(
            Opts::new("drift_rows", "Deals in each population of the last drift check"),
            &["population"],
        )?;
        registry.register(Box::new(psi.clone()))?;
        registry.register(Box::new(rows.clone()))?;
        Ok(DriftGauges {
            psi,
            rows,
            last: Arc::default(),
        })
    }

    /// Replaces every series with the report's values. Features of an empty population have no
    /// PSI, so they have no series (rather than a misleading 0).
    pub fn update(&self, report: &DriftReport) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Arc::new(report.clone()));
        }
        self.psi.reset();
        self.rows.reset();
        for population in &report.populations {
            let name = population.population.as_str();
            self.rows.with_label_values(&[name]).set(population.rows as i64);
            for feature in &population.features {
                if let Some(psi) = feature.psi {
                    self.psi
                        .with_label_values(&[feature.feature.as_str(), name])
                        .set(psi);
                }
            }
        }
    }

    /// Removes every series (no model, or a model without a profile).
    pub fn clear(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = None;
        }
        self.psi.reset();
        self.rows.reset();
    }

    /// The report of the last check, if any since the server started (and not cleared).
    pub fn last(&self) -> Option<Arc<DriftReport>> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    /// Measures drift for the serving model and updates the gauges. `Ok(None)` when no model is
    /// serving.
    pub async fn refresh(&self, db: &Db, model: &ActiveModel) -> Result<Option<DriftReport>, DriftError> {
        let Some(artifact) = model.get() else {
            self.clear();
            return Ok(None);
        };
        match measure(db, &artifact, Utc::now()).await {
            Ok(report) => {
                self.update(&report);
                Ok(Some(report))
            }
            Err(e) => {
                if matches!(
                    e,
                    DriftError::NoProfile { .. } | DriftError::ProfileMismatch { .. }
                ) {
                    self.clear();
                }
                Err(e)
            }
        }
    }

    /// Refreshes the gauges every `every` in the background (first run after one period, so
    /// startup is not slowed by a scan of the pipeline), and soon after the serving model
    /// changes (an activation on this server or another, a training run that passed the gate),
    /// so the last check never describes the previous model for a whole period.
    pub fn spawn_refresher(
        &self,
        db: Db,
        model: Arc<ActiveModel>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let gauges = self.clone();
        tokio::spawn(async move {
            let follow = every.min(MODEL_FOLLOW);
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + follow, follow);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_error: Option<String> = None;
            let mut next_full = tokio::time::Instant::now() + every;
            // The serving version at the last check (or attempt): a model without a profile is
            // tried once, not at every tick. The one serving at startup waits for the period.
            let mut checked: Option<String> = model.get().map(|m| m.version.clone());
            loop {
                ticker.tick().await;
                let serving = model.get().map(|m| m.version.clone());
                let now = tokio::time::Instant::now();
                if now < next_full && serving == checked {
                    continue;
                }
                next_full = now + every;
                checked = serving;
                match gauges.refresh(&db, &model).await {
                    Ok(_) => last_error = None,
                    Err(e) => {
                        // A persistent problem (an old model without profile) is logged once.
                        let text = e.to_string();
                        if last_error.as_deref() != Some(text.as_str()) {
                            tracing::warn!(error = %text, "drift check failed");
                            last_error = Some(text);
                        }
                    }
                }
            }
        })
    }
}
