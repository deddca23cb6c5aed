//! Comparing two model versions on the same deals: the newer model's holdout, rebuilt from the
//! database with the split settings recorded in its artifact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::holdout::holdout_deals;
use crate::domain::{Opportunity, Status};
use crate::i18n::Localized;
use crate::model::{predict, Metrics, ModelArtifact};
use crate::tr;
use crate::training::metrics::evaluate;

/// The holdout both models were measured on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldoutInfo {
    /// Deals in it.
    pub rows: usize,
    /// Won deals in it.
    pub won: usize,
    /// Earliest closing time in it.
    pub closed_from: Option<DateTime<Utc>>,
    /// False when the closed deals found now differ in number from those the newer model was
    /// trained on (deals edited or deleted since): the holdout is then an approximation.
    pub rebuilt_exactly: bool,
}

/// One metric for both models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricDiff {
    /// Metric name (`roc_auc`, `pr_auc`, `log_loss`, `brier`, `top_decile_lift`).
    pub metric: String,
    /// Version `a`'s value.
    pub a: f64,
    /// Version `b`'s value.
    pub b: f64,
    /// `b − a`.
    pub difference: f64,
    /// Whether larger is better for this metric.
    pub higher_is_better: bool,
}

/// One success factor's importance in both models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FactorDiff {
    /// Feature name.
    pub feature: String,
    /// Importance in `a` (absent when `a` does not use the feature).
    pub a: Option<f64>,
    /// Importance in `b`.
    pub b: Option<f64>,
    /// `b − a` when both use it.
    pub difference: Option<f64>,
}

/// `GET /v1/models/compare?a=&b=`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comparison {
    /// Version `a`.
    pub a: String,
    /// Version `b`.
    pub b: String,
    /// The version whose holdout is used (the newer one).
    pub holdout_of: String,
    /// The holdout.
    pub holdout: HoldoutInfo,
    /// Both shipped models scored on the holdout. The newer model's shipped fit has seen these
    /// deals (it is refit on every closed deal), so `newer_recorded_roc_auc` is the fair figure.
    pub metrics: Vec<MetricDiff>,
    /// The newer model's holdout ROC AUC recorded at training (fit on its training part only).
    pub newer_recorded_roc_auc: f64,
    /// Success-factor importance (sd of the log-odds contribution) per feature.
    pub factors: Vec<FactorDiff>,
}

/// Why two versions cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The newer model's holdout cannot be rebuilt from the deals stored now.
    #[error("{}", self.localized())]
    NoHoldout(String),
}

impl CompareError {
    /// The message in every language.
    pub fn localized(&self) -> Localized {
        match self {
            CompareError::NoHoldout(version) => tr!(
                "the holdout of {version} cannot be rebuilt from the stored deals (too few closed deals, \
                 or a time split over deals without closing dates)",
                "l'échantillon de test de {version} ne peut pas être reconstitué à partir des affaires \
                 enregistrées (trop peu d'affaires clôturées, ou découpage temporel sur des affaires sans \
                 date de clôture)"
            ),
        }
    }
}

/// The deal window to load to rebuild `newer`'s holdout: its training window, up to its newest
/// training deal (deals closed later were not there when it was trained).
pub fn window_of(newer: &ModelArtifact) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let t = &newer.training;
    let until = match (t.window_until, t.last_closed_at) {
        (Some(u), Some(l)) => Some(u.min(l)),
        (u, l) => u.or(l),
    };
    (t.window_since, until)
}

/// Compares `a` and `b` on the holdout of the newer of the two, rebuilt from `deals` (the closed
/// deals of [`window_of`]).
pub fn compare(
    a: &ModelArtifact,
    b: &ModelArtifact,
    deals: &[Opportunity],
) -> Result<Comparison, CompareError> {
    let newer = if (b.created_at, &b.version) >= (a.created_at, &a.version) {
        b
    } else {
        a
    };
    let holdout = holdout_deals(deals, &newer.training)
        .ok_or_else(|| CompareError::NoHoldout(newer.version.clone()))?;
    let won: Vec<bool> = holdout.iter().map(|d| d.status == Status::Won).collect();
    if !won.iter().any(|w| *w) || won.iter().all(|w| *w) {
        return Err(CompareError::NoHoldout(newer.version.clone()));
    }
    let now = newer.training.now;
    let measure = |m: &ModelArtifact| -> Metrics {
        let probs: Vec<f64> = holdout.iter().map(|d| predict(m, d, now)).collect();
        evaluate(&probs, &won)
    };
    let (ma, mb) = (measure(a), measure(b));
    type Get = fn(&Metrics) -> f64;
    let rows: [(&str, Get, bool); 5] = [
        ("roc_auc", |m| m.roc_auc, true),
        ("pr_auc", |m| m.pr_auc, true),
        ("log_loss", |m| m.log_loss, false),
        ("brier", |m| m.brier, false),
        ("top_decile_lift", |m| m.top_decile_lift, true),
    ];
    let metrics = rows
        .iter()
        .map(|(name, get, higher)| MetricDiff {
            metric: (*name).to_owned(),
            a: get(&ma),
            b: get(&mb),
            difference: get(&mb) - get(&ma),
            higher_is_better: *higher,
        })
        .collect();
    let mut factors: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for f in &a.success_factors {
        factors.entry(f.feature.clone()).or_default().0 = Some(f.importance);
    }
    for f in &b.success_factors {
        factors.entry(f.feature.clone()).or_default().1 = Some(f.importance);
    }
    let mut factors: Vec<FactorDiff> = factors
        .into_iter()
        .map(|(feature, (fa, fb))| FactorDiff {
            feature,
            a: fa,
            b: fb,
            difference: fa.zip(fb).map(|(x, y)| y - x),
        })
        .collect();
    factors.sort_by(|x, y| {
        let size = |f: &FactorDiff| f.difference.map_or(f64::INFINITY, f64::abs);
        size(y).total_cmp(&size(x))
    });
    let closed = deals.iter().filter(|d| d.status.is_closed()).count();
    Ok(Comparison {
        a: a.version.clone(),
        b: b.version.clone(),
        holdout_of: newer.version.clone(),
        holdout: HoldoutInfo {
            rows: holdout.len(),
            won: won.iter().filter(|w| **w).count(),
            closed_from: holdout.iter().filter_map(|d| d.closed_at).min(),
            rebuilt_exactly: closed == newer.training.final_rows,
        },
        metrics,
        newer_recorded_roc_auc: newer.holdout_metrics.roc_auc,
        factors,
    })
}
