//! The promotion gate: does a newly trained model replace the active one?
//!
//! The candidate becomes active when, on the candidate's own holdout, its ROC AUC is at least the
//! active model's ROC AUC on those same deals minus a tolerance, or when the active model is older
//! than a maximum age. Otherwise it stays a candidate. A forced registration (`--activate`,
//! `"force": true`) activates it anyway and is recorded as forced, with the same figures.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Opportunity, Status};
use crate::model::{predict, ModelArtifact};
use crate::training::metrics::roc_auc;

/// Gate settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatePolicy {
    /// How much lower than the active model's AUC the candidate's may be (default 0.01).
    pub auc_tolerance: f64,
    /// An active model older than this many days is replaced regardless (default 90).
    pub max_age_days: f64,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            auc_tolerance: 0.01,
            max_age_days: 90.0,
        }
    }
}

impl GatePolicy {
    /// The policy configured in `settings` (`gate_auc_tolerance`, `gate_max_age_days`).
    pub fn from_settings(settings: &crate::config::Settings) -> GatePolicy {
        GatePolicy {
            auc_tolerance: settings.gate_auc_tolerance,
            max_age_days: settings.gate_max_age_days,
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// No model was active: the candidate is activated.
    FirstModel,
    /// The candidate passed the gate and is active.
    Activated,
    /// The candidate did not pass; it stays a candidate.
    Held,
    /// Activated by an override (`--activate` / `force`), whatever the figures.
    Forced,
}

impl GateOutcome {
    /// True when the candidate becomes the active model.
    pub fn activates(self) -> bool {
        !matches!(self, GateOutcome::Held)
    }

    /// The activation reason recorded in the registry.
    pub fn reason(self) -> &'static str {
        match self {
            GateOutcome::FirstModel => "first model",
            GateOutcome::Activated => "gate",
            GateOutcome::Held => "held by the gate",
            GateOutcome::Forced => "force",
        }
    }
}

/// The decision with every figure it was based on (stored on the run and on the version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateDecision {
    /// Outcome.
    pub outcome: GateOutcome,
    /// One sentence explaining it.
    pub reason: String,
    /// The new model.
    pub candidate_version: String,
    /// Its ROC AUC on its holdout (fit on its training part).
    pub candidate_auc: f64,
    /// The model that was active when the gate ran.
    pub active_version: Option<String>,
    /// The active model's ROC AUC on the candidate's holdout deals.
    pub active_auc: Option<f64>,
    /// Tolerance applied.
    pub auc_tolerance: f64,
    /// Age of the active model in days.
    pub active_age_days: Option<f64>,
    /// Maximum age applied.
    pub max_age_days: f64,
    /// Holdout deals both models were measured on.
    pub holdout_rows: usize,
    /// When the gate ran.
    pub decided_at: DateTime<Utc>,
}

/// ROC AUC of `artifact` on `deals` (won = positive), with `now` for the age of open deals.
pub fn auc_on(artifact: &ModelArtifact, deals: &[&Opportunity], now: DateTime<Utc>) -> f64 {
    let probs: Vec<f64> = deals.iter().map(|d| predict(artifact, d, now)).collect();
    let won: Vec<bool> = deals.iter().map(|d| d.status == Status::Won).collect();
    roc_auc(&probs, &won)
}

/// Decides whether `candidate` replaces `active`. `holdout` is the candidate's holdout (the
/// active model is measured on the same deals); `force` records an override.
pub fn decide(
    policy: &GatePolicy,
    candidate: &ModelArtifact,
    holdout: &[&Opportunity],
    active: Option<&ModelArtifact>,
    force: bool,
    now: DateTime<Utc>,
) -> GateDecision {
    let candidate_auc = candidate.holdout_metrics.roc_auc;
    let active_auc = active.map(|a| auc_on(a, holdout, candidate.training.now));
    let active_age_days = active.map(|a| (now - a.created_at).num_milliseconds() as f64 / 86_400_000.0);
    let (outcome, reason) = match (active, active_auc, active_age_days) {
        (None, _, _) if force => (GateOutcome::Forced, "forced; no model was active".to_owned()),
        (None, _, _) => (GateOutcome::FirstModel, "no model was active".to_owned()),
        (Some(_), Some(active_auc), Some(age)) => {
            let passes = candidate_auc >= active_auc - policy.auc_tolerance;
            let too_old = age > policy.max_age_days;
            let figures = format!(
                "candidate AUC {candidate_auc:.4} vs active AUC {active_auc:.4} on the candidate's {} holdout deals (tolerance {})",
                holdout.len(),
                policy.auc_tolerance
            );
            if force {
                (GateOutcome::Forced, format!("forced; {figures}"))
            } else if passes {
                (GateOutcome::Activated, figures)
            } else if too_old {
                (
                    GateOutcome::Activated,
                    format!(
                        "the active model is {age:.0} days old (maximum {}); {figures}",
                        policy.max_age_days
                    ),
                )
            } else {
                (GateOutcome::Held, format!("{figures}: below the active model"))
            }
        }
        // Unreachable: with an active model both figures are computed.
        (Some(_), _, _) => (
            GateOutcome::Held,
            "the active model could not be measured".to_owned(),
        ),
    };
    GateDecision {
        outcome,
        reason,
        candidate_version: candidate.version.clone(),
        candidate_auc,
        active_version: active.map(|a| a.version.clone()),
        active_auc,
        auc_tolerance: policy.auc_tolerance,
        active_age_days,
        max_age_days: policy.max_age_days,
        holdout_rows: holdout.len(),
        decided_at: now,
    }
}
