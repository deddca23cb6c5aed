//! Binning a population with a model's training profile and comparing it to training.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::psi::{psi_terms, DriftLevel, ALERT, EPSILON, WATCH};
use crate::domain::Opportunity;
use crate::features::FittedFeatures;
use crate::model::profile::{shares, TrainingProfile};

/// Bins listed per feature in [`FeatureDrift::top_bins`].
pub const TOP_BINS: usize = 3;

/// Which deals are compared with the training data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    /// Every open deal (what the model scores today).
    Open,
    /// Won and lost deals closed after the newest closing date in the training data.
    ClosedSince,
}

impl Population {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Population::Open => "open",
            Population::ClosedSince => "closed_since",
        }
    }
}

/// The drift of the active model's features, per population.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DriftReport {
    /// The model whose training data is the reference.
    pub model_version: String,
    /// When the populations were read.
    pub computed_at: DateTime<Utc>,
    /// Training rows behind the reference shares.
    pub training_rows: usize,
    /// PSI from which a feature is `watch` (0.1).
    pub watch_threshold: f64,
    /// PSI from which a feature is `alert` (0.2).
    pub alert_threshold: f64,
    /// Floor of a bin share before the logarithm (0.0001).
    pub epsilon: f64,
    /// One entry per population: `open`, then `closed_since`.
    pub populations: Vec<PopulationDrift>,
}

/// One population compared with training.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PopulationDrift {
    /// Which deals.
    pub population: Population,
    /// `closed_since` only: deals closed after this time are counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Deals in the population.
    pub rows: usize,
    /// The worst feature level; absent when the population is empty.
    pub level: Option<DriftLevel>,
    /// One entry per model feature, in the model's order.
    pub features: Vec<FeatureDrift>,
}

/// One feature's shift.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Population stability index; absent when the population is empty.
    pub psi: Option<f64>,
    /// Level of `psi`.
    pub level: Option<DriftLevel>,
    /// The bins that moved most (largest PSI terms first, at most 3, only moved ones).
    pub top_bins: Vec<BinShift>,
}

/// How one bin moved.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BinShift {
    /// Bin name (`[4,8.5)`, `retail`, `(other)`, `(missing)`).
    pub bin: String,
    /// Share of training rows in the bin.
    pub training_share: f64,
    /// Share of the population's rows in the bin.
    pub current_share: f64,
    /// The bin's PSI term.
    pub contribution: f64,
}

/// Per-feature bin counts of a population, filled deal by deal.
#[derive(Debug, Clone)]
pub struct PopulationCounter {
    counts: Vec<Vec<usize>>,
    rows: usize,
}

impl PopulationCounter {
    /// Empty counts shaped like `profile`.
    pub fn new(profile: &TrainingProfile) -> PopulationCounter {
        PopulationCounter {
            counts: profile.features.iter().map(|f| vec![0; f.counts.len()]).collect(),
            rows: 0,
        }
    }

    /// Counts one deal in every feature's bin. `now` is the age reference of open deals, as when
    /// they are scored.
    pub fn add(
        &mut self,
        features: &FittedFeatures,
        profile: &TrainingProfile,
        opp: &Opportunity,
        now: DateTime<Utc>,
    ) {
        for ((feature, fp), counts) in features
            .features
            .iter()
            .zip(&profile.features)
            .zip(&mut self.counts)
        {
            counts[fp.bin_of(feature, opp, now)] += 1;
        }
        self.rows += 1;
    }

    /// Deals counted.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Compares the counts with the training shares.
    pub fn compare(
        &self,
        profile: &TrainingProfile,
        population: Population,
        since: Option<DateTime<Utc>>,
    ) -> PopulationDrift {
        let features: Vec<FeatureDrift> = profile
            .features
            .iter()
            .zip(&self.counts)
            .map(|(fp, counts)| {
                if self.rows == 0 {
                    return FeatureDrift {
                        feature: fp.feature.clone(),
                        psi: None,
                        level: None,
                        top_bins: Vec::new(),
                    };
                }
                let expected = fp.shares();
                let actual = shares(counts);
                let terms = psi_terms(&expected, &actual);
                let psi: f64 = terms.iter().sum();
                let mut order: Vec<usize> = (0..terms.len()).filter(|&i| terms[i] > 0.0).collect();
                order.sort_by(|&a, &b| terms[b].total_cmp(&terms[a]));
                FeatureDrift {
                    feature: fp.feature.clone(),
                    psi: Some(psi),
                    level: Some(DriftLevel::of(psi)),
                    top_bins: order
                        .into_iter()
                        .take(TOP_BINS)
                        .map(|i| BinShift {
                            bin: fp.labels.get(i).cloned().unwrap_or_default(),
                            training_share: expected[i],
                            current_share: actual[i],
                            contribution: terms[i],
                        })
                        .collect(),
                }
            })
            .collect();
        PopulationDrift {
            population,
            since,
            rows: self.rows,
            level: features.iter().filter_map(|f| f.level).max(),
            features,
        }
    }
}

impl DriftReport {
    /// A report with the documented thresholds around `populations`.
    pub fn new(
        model_version: &str,
        profile: &TrainingProfile,
        computed_at: DateTime<Utc>,
        populations: Vec<PopulationDrift>,
    ) -> DriftReport {
        DriftReport {
            model_version: model_version.to_owned(),
            computed_at,
            training_rows: profile.rows,
            watch_threshold: WATCH,
            alert_threshold: ALERT,
            epsilon: EPSILON,
            populations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureSpec;
    use crate::generate::{generate, GeneratorConfig, Shift};

    fn population(shift: Shift, seed: u64) -> Vec<Opportunity> {
        generate(&GeneratorConfig {
            deals: 3_000,
            seed,
            open_fraction: 0.0,
            with_activities: false,
            shift,
            ..GeneratorConfig::default()
        })
        .opportunities
    }

    fn compare(train: &[Opportunity], other: &[Opportunity]) -> PopulationDrift {
        let rows: Vec<&Opportunity> = train.iter().collect();
        let end = GeneratorConfig::default().end;
        let features = FittedFeatures::fit(&FeatureSpec::default_spec(), &rows, end);
        let profile = TrainingProfile::compute(&features, &rows, end);
        let mut counter = PopulationCounter::new(&profile);
        for opp in other {
            counter.add(&features, &profile, opp, end);
        }
        counter.compare(&profile, Population::ClosedSince, None)
    }

    fn psi_of(drift: &PopulationDrift, feature: &str) -> f64 {
        drift
            .features
            .iter()
            .find(|f| f.feature == feature)
            .and_then(|f| f.psi)
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn a_fresh_sample_of_the_same_distribution_stays_ok() {
        let drift = compare(&population(Shift::default(), 1), &population(Shift::default(), 2));
        assert_eq!(drift.level, Some(DriftLevel::Ok), "{drift:#?}");
    }

    #[test]
    fn tripled_amounts_raise_an_alert_on_amount_only() {
        let shift = Shift {
            amount_factor: 3.0,
            ..Shift::default()
        };
        let drift = compare(&population(Shift::default(), 1), &population(shift, 2));
        assert!(psi_of(&drift, "amount") >= ALERT, "{drift:#?}");
        for unshifted in ["sector", "contact_role", "region", "cycle_days"] {
            assert!(psi_of(&drift, unshifted) < WATCH, "{unshifted}: {drift:#?}");
        }
        let amount = drift
            .features
            .iter()
            .find(|f| f.feature == "amount")
            .expect("amount");
        // The top bin is the highest amount bin, which now holds far more deals than in training.
        let top = &amount.top_bins[0];
        assert!(top.bin.ends_with(",inf)"), "{top:?}");
        assert!(top.current_share > top.training_share);
    }

    #[test]
    fn an_empty_population_has_no_psi() {
        let drift = compare(&population(Shift::default(), 1), &[]);
        assert_eq!(drift.rows, 0);
        assert_eq!(drift.level, None);
        assert!(drift.features.iter().all(|f| f.psi.is_none()));
    }
}
