//! Grades and focus classes cut on the data (`cut_points = "data"`, the default), and the
//! derivation of those cut points when a model is trained (see `docs/scoring-method.md`).
//!
//! The artifact records quantile tables of the deals it was calibrated on; the configured shares
//! pick the cut at scoring time, so one deal's grade and focus depend on nothing but the
//! artifact, the deal and the configuration.

use chrono::{DateTime, Utc};

use super::recommend::{levers, RankBy};
use super::{Focus, Grade, Intervention};
use crate::config::{CutSource, ScoringConfig};
use crate::domain::Deal;
use crate::i18n::Lang;
use crate::model::cuts::{at, CutPoints};
use crate::model::{explain_in, ModelArtifact};

/// Shares of the deals at or above which grades A, B and C start: quartiles.
pub const GRADE_SHARES: [f64; 3] = [0.75, 0.5, 0.25];

/// The cut points `config` says to use with `artifact`, if they come from the data.
pub fn data_cuts<'a>(artifact: &'a ModelArtifact, config: &ScoringConfig) -> Option<&'a CutPoints> {
    match config.cut_points {
        CutSource::Data => artifact.cut_points.as_ref(),
        CutSource::Fixed => None,
    }
}

/// The lowest probabilities of grades A, B and C under `cuts`.
pub fn grade_probabilities(cuts: &CutPoints) -> [f64; 3] {
    GRADE_SHARES.map(|share| at(&cuts.probability, share))
}

/// The grade of `probability` against the quartiles of `cuts`.
pub fn grade(probability: f64, cuts: &CutPoints) -> Grade {
    let [a, b, c] = grade_probabilities(cuts);
    if probability >= a {
        Grade::A
    } else if probability >= b {
        Grade::B
    } else if probability >= c {
        Grade::C
    } else {
        Grade::D
    }
}

/// Expected value the most valuable lever adds: uplift × amount (`typical` for a deal without
/// an amount; the bare uplift when neither is known), 0 without a lever.
pub fn lever_gain(levers: &[Intervention], amount: Option<f64>, typical: Option<f64>) -> f64 {
    let amount = amount
        .filter(|a| a.is_finite() && *a > 0.0)
        .or(typical)
        .unwrap_or(1.0);
    levers.iter().map(|l| l.uplift * amount).fold(0.0, f64::max)
}

/// The focus class on data cut points, first rule that holds:
/// 1. `prioritize`: the lever gain is positive and among the top `prioritize_share`;
/// 2. `secure`: the probability is among the top `secure_share`;
/// 3. `deprioritize`: the probability after the best lever is among the lowest
///    `deprioritize_share`;
/// 4. `nurture`.
pub fn focus(
    probability: f64,
    best_after: f64,
    gain: f64,
    cuts: &CutPoints,
    config: &ScoringConfig,
) -> Focus {
    let share = |s: f64| if s.is_finite() { s.clamp(0.0, 1.0) } else { 0.0 };
    let prioritize_from = at(&cuts.value_gain, 1.0 - share(config.prioritize_share));
    if share(config.prioritize_share) > 0.0 && gain > 0.0 && gain >= prioritize_from {
        Focus::Prioritize
    } else if share(config.secure_share) > 0.0
        && probability >= at(&cuts.probability, 1.0 - share(config.secure_share))
    {
        Focus::Secure
    } else if best_after < at(&cuts.probability_after, share(config.deprioritize_share)) {
        Focus::Deprioritize
    } else {
        Focus::Nurture
    }
}

/// The cut points of `artifact` over `deals` (scored at `now`), recorded as coming from `basis`
/// (`open` or `holdout`); `None` without deals.
pub fn derive(
    artifact: &ModelArtifact,
    deals: &[&Deal],
    now: DateTime<Utc>,
    basis: &str,
) -> Option<CutPoints> {
    let config = ScoringConfig::default();
    let mut amounts: Vec<f64> = deals
        .iter()
        .filter_map(|d| d.amount)
        .filter(|a| a.is_finite() && *a > 0.0)
        .collect();
    amounts.sort_by(f64::total_cmp);
    let typical = amounts.get(amounts.len() / 2).copied();
    let mut probability = Vec::with_capacity(deals.len());
    let mut after = Vec::with_capacity(deals.len());
    let mut gain = Vec::with_capacity(deals.len());
    for deal in deals {
        let explanation = explain_in(artifact, deal, now, Lang::En);
        let found = levers(
            artifact,
            deal,
            now,
            explanation.logit,
            &config,
            RankBy::Probability,
            Lang::En,
        );
        let p = explanation.probability;
        probability.push(p);
        after.push(found.first().map_or(p, |l| l.probability_after.max(p)));
        gain.push(lever_gain(&found, deal.amount, typical));
    }
    CutPoints::from_values(basis, probability, after, gain, typical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform() -> CutPoints {
        let v: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
        CutPoints::from_values("open", v.clone(), v.clone(), v, Some(1.0)).unwrap()
    }

    #[test]
    fn grades_are_quartiles_of_the_recorded_scores() {
        let cuts = uniform();
        assert_eq!(grade(0.80, &cuts), Grade::A);
        assert_eq!(grade(0.60, &cuts), Grade::B);
        assert_eq!(grade(0.30, &cuts), Grade::C);
        assert_eq!(grade(0.10, &cuts), Grade::D);
    }

    #[test]
    fn focus_classes_follow_the_configured_shares() {
        let cuts = uniform();
        let c = ScoringConfig::default();
        // Top quarter of lever gains: prioritize whatever the probability.
        assert_eq!(focus(0.2, 0.9, 0.8, &cuts, &c), Focus::Prioritize);
        assert_eq!(focus(0.9, 0.9, 0.5, &cuts, &c), Focus::Secure);
        assert_eq!(focus(0.1, 0.2, 0.1, &cuts, &c), Focus::Deprioritize);
        assert_eq!(focus(0.5, 0.5, 0.1, &cuts, &c), Focus::Nurture);
        // No gain is never a priority, even when most deals have none.
        let zero = CutPoints::from_values("open", vec![0.5; 10], vec![0.5; 10], vec![0.0; 10], None).unwrap();
        assert_ne!(focus(0.5, 0.5, 0.0, &zero, &c), Focus::Prioritize);
        let none = ScoringConfig {
            prioritize_share: 0.0,
            ..ScoringConfig::default()
        };
        assert_ne!(focus(0.2, 0.9, 1.0, &cuts, &none), Focus::Prioritize);
    }

    #[test]
    fn lever_gain_uses_the_amount_or_the_typical_one() {
        assert_eq!(lever_gain(&[], Some(100.0), None), 0.0);
    }
}
