//! The promotion gate: does a newly trained model replace the active one?
//!
//! The candidate becomes active when its ROC AUC is at least the active model's minus a tolerance,
//! or when the active model is older than a maximum age. The figures compared are the backtests
//! when both models have one of the same deals (same instant, same deals open then and closed
//! since: a retrain of the same data with another spec or plan): that is how each method did on
//! deals as they stood while open. Otherwise they are the ROC AUCs on the candidate's own holdout,
//! the active model scored on those same deals. Otherwise it stays a candidate. A forced registration (`--activate`,
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
    /// Which figures decided: `backtest` or `holdout` (decisions stored before backtests were
    /// compared read as `holdout`).
    #[serde(default)]
    pub basis: GateBasis,
    /// Both backtests, when `basis` is `backtest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<BacktestComparison>,
}

/// Which figures the gate compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateBasis {
    /// The ROC AUCs on the candidate's holdout.
    #[default]
    Holdout,
    /// The ROC AUCs of both backtests, on the same deals open at the same instant.
    Backtest,
}

/// Two backtests of the same deals, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestComparison {
    /// The instant both backtests looked from.
    pub as_of: DateTime<Utc>,
    /// Deals open then, closed since.
    pub open_deals: usize,
    /// The candidate's backtest ROC AUC.
    pub candidate_auc: f64,
    /// The active model's backtest ROC AUC.
    pub active_auc: f64,
}

/// The backtests of `candidate` and `active` that judge the same deals, if any: the same
/// instant, the same count of deals open then and closed since, the same count of them won, and a
/// ROC AUC on both sides.
pub fn comparable_backtests(candidate: &ModelArtifact, active: &ModelArtifact) -> Option<BacktestComparison> {
    candidate.backtests.iter().find_map(|c| {
        let a = active
            .backtests
            .iter()
            .find(|a| a.as_of == c.as_of && a.open_deals == c.open_deals && a.won == c.won)?;
        Some(BacktestComparison {
            as_of: c.as_of,
            open_deals: c.open_deals,
            candidate_auc: c.roc_auc.filter(|v| v.is_finite())?,
            active_auc: a.roc_auc.filter(|v| v.is_finite())?,
        })
    })
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
    let measured = active.map(|a| (a, auc_on(a, holdout, candidate.training.now)));
    decide_measured(policy, candidate, measured, holdout.len(), force, now)
}

/// [`decide`] with the active model already measured on the candidate's `holdout_rows` holdout
/// deals (`active` is the model and its ROC AUC there); the training job measures it on the
/// compact rows it trained from.
pub fn decide_measured(
    policy: &GatePolicy,
    candidate: &ModelArtifact,
    active: Option<(&ModelArtifact, f64)>,
    holdout_rows: usize,
    force: bool,
    now: DateTime<Utc>,
) -> GateDecision {
    let candidate_auc = candidate.holdout_metrics.roc_auc;
    let active_auc = active.map(|(_, auc)| auc);
    let active = active.map(|(a, _)| a);
    let active_age_days = active.map(|a| (now - a.created_at).num_milliseconds() as f64 / 86_400_000.0);
    let backtest = active.and_then(|a| comparable_backtests(candidate, a));
    let (outcome, reason) = match (active, active_auc, active_age_days) {
        (None, _, _) if force => (GateOutcome::Forced, "forced; no model was active".to_owned()),
        (None, _, _) => (GateOutcome::FirstModel, "no model was active".to_owned()),
        (Some(_), Some(active_auc), Some(age)) => {
            let (passes, figures) = match &backtest {
                Some(b) => (
                    b.candidate_auc >= b.active_auc - policy.auc_tolerance,
                    format!(
                        "candidate backtest AUC {:.4} vs active backtest AUC {:.4} on the {} deals open at {} \
                         (tolerance {})",
                        b.candidate_auc,
                        b.active_auc,
                        b.open_deals,
                        b.as_of.format("%Y-%m-%d"),
                        policy.auc_tolerance
                    ),
                ),
                None => (
                    candidate_auc >= active_auc - policy.auc_tolerance,
                    format!(
                        "candidate AUC {candidate_auc:.4} vs active AUC {active_auc:.4} on the candidate's {} holdout deals (tolerance {})",
                        holdout_rows,
                        policy.auc_tolerance
                    ),
                ),
            };
            let too_old = age > policy.max_age_days;
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
        holdout_rows,
        decided_at: now,
        basis: if backtest.is_some() {
            GateBasis::Backtest
        } else {
            GateBasis::Holdout
        },
        backtest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureSpec;
    use crate::lifecycle::holdout::holdout_deals;
    use crate::training::{train, TrainOptions};

    fn trained(deals: &[Opportunity], spec: &FeatureSpec) -> ModelArtifact {
        let options = TrainOptions {
            cv_folds: 2,
            alphas: vec![1.0],
            ..TrainOptions::default()
        };
        train(deals, spec, &options.check().unwrap(), &mut |_| {})
            .unwrap()
            .artifact
    }

    /// 2,000 generated deals, a model of them on the default spec and a weak one on the region
    /// alone.
    fn deals_strong_and_weak() -> (Vec<Opportunity>, ModelArtifact, ModelArtifact) {
        let history = crate::generate::generate(&crate::generate::GeneratorConfig {
            deals: 2000,
            seed: 3,
            with_activities: false,
            ..crate::generate::GeneratorConfig::default()
        });
        let deals = history.opportunities;
        let strong = trained(&deals, &FeatureSpec::default_spec());
        let weak_spec =
            FeatureSpec::from_toml("[[feature]]\nname = \"region\"\nkind = \"categorical\"\n").unwrap();
        let weak = trained(&deals, &weak_spec);
        (deals, strong, weak)
    }

    #[test]
    fn every_outcome_of_the_gate() {
        let (deals, strong, weak) = deals_strong_and_weak();
        let holdout = holdout_deals(&deals, &weak.training).unwrap();
        let policy = GatePolicy::default();
        let now = strong.created_at;

        let first = decide(&policy, &weak, &holdout, None, false, now);
        assert_eq!(first.outcome, GateOutcome::FirstModel);
        let held = decide(&policy, &weak, &holdout, Some(&strong), false, now);
        assert_eq!(held.outcome, GateOutcome::Held, "{held:?}");
        assert!(held.active_auc.unwrap() > held.candidate_auc + policy.auc_tolerance);
        assert_eq!(held.holdout_rows, holdout.len());
        let forced = decide(&policy, &weak, &holdout, Some(&strong), true, now);
        assert_eq!(forced.outcome, GateOutcome::Forced);
        assert_eq!(forced.active_auc, held.active_auc);
        // The same strong model, 91 days later: too old, replaced whatever the figures.
        let later = now + chrono::Duration::days(91);
        let stale = decide(&policy, &weak, &holdout, Some(&strong), false, later);
        assert_eq!(stale.outcome, GateOutcome::Activated, "{stale:?}");
        assert!(stale.reason.contains("days old"), "{}", stale.reason);
        // A tolerance as wide as the gap lets the weak model through.
        let gap = held.active_auc.unwrap() - held.candidate_auc;
        let lenient = GatePolicy {
            auc_tolerance: gap + 0.001,
            ..policy
        };
        assert_eq!(
            decide(&lenient, &weak, &holdout, Some(&strong), false, now).outcome,
            GateOutcome::Activated
        );
    }

    fn backtest(as_of: DateTime<Utc>, open_deals: usize, won: usize, roc_auc: f64) -> crate::model::Backtest {
        crate::model::Backtest {
            as_of,
            trained_on: 900,
            open_deals,
            won,
            with_history: 0,
            roc_auc: Some(roc_auc),
            brier: None,
            mean_probability: None,
            win_rate: None,
            calibration: Vec::new(),
            by_age: Vec::new(),
        }
    }

    #[test]
    fn backtests_of_the_same_deals_decide_and_others_leave_it_to_the_holdout() {
        let (deals, mut strong, mut weak) = deals_strong_and_weak();
        let holdout = holdout_deals(&deals, &weak.training).unwrap();
        let (policy, now) = (GatePolicy::default(), strong.created_at);
        let t = now - chrono::Duration::days(60);

        // On the holdout the weak candidate is held; on a backtest of the same deals where it did
        // better, it passes, and the decision says which figures it used.
        weak.backtests = vec![backtest(t, 300, 120, 0.74)];
        strong.backtests = vec![backtest(t, 300, 120, 0.70)];
        let decision = decide(&policy, &weak, &holdout, Some(&strong), false, now);
        assert_eq!(decision.outcome, GateOutcome::Activated, "{decision:?}");
        assert_eq!(decision.basis, GateBasis::Backtest);
        let compared = decision.backtest.as_ref().expect("both backtests");
        assert_eq!((compared.candidate_auc, compared.active_auc), (0.74, 0.70));
        assert!(
            decision.reason.contains("backtest AUC 0.7400"),
            "{}",
            decision.reason
        );
        // Worse on the backtest: held, on the backtest's figures.
        weak.backtests = vec![backtest(t, 300, 120, 0.60)];
        let decision = decide(&policy, &weak, &holdout, Some(&strong), false, now);
        assert_eq!(
            (decision.outcome, decision.basis),
            (GateOutcome::Held, GateBasis::Backtest)
        );

        // Backtests of other deals (another instant, more deals closed since, other outcomes)
        // are not compared: the holdout decides, as without backtests.
        for other in [
            backtest(t - chrono::Duration::days(1), 300, 120, 0.9),
            backtest(t, 310, 120, 0.9),
            backtest(t, 300, 121, 0.9),
        ] {
            weak.backtests = vec![other];
            let decision = decide(&policy, &weak, &holdout, Some(&strong), false, now);
            assert_eq!(
                (decision.outcome, decision.basis),
                (GateOutcome::Held, GateBasis::Holdout)
            );
            assert!(decision.backtest.is_none());
        }
        weak.backtests.clear();
        assert_eq!(
            decide(&policy, &weak, &holdout, Some(&strong), false, now).basis,
            GateBasis::Holdout
        );
    }
}
