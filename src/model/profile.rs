//! The training profile: for each input feature, the bins a drift check compares populations on
//! and the share of training rows in each.
//!
//! Values are read with [`crate::features::observe`], the function training and scoring encode
//! with, so a bin means the same thing at training time and when open deals are checked later.
//! The profile's bins are independent of the model's own encoding: a numeric feature always gets
//! quantile bins (even when the model standardises it), and a categorical feature keeps the
//! model's vocabulary plus explicit `(other)` and `(missing)` bins. Drift method:
//! `docs/drift.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Opportunity;
use crate::features::fitted::{bin_interval, quantile_edges};
use crate::features::{observe, Encoder, FittedFeature, FittedFeatures, MISSING_LEVEL, OTHER_LEVEL};

/// Quantile bins per numeric feature (deciles), before equal edges are merged.
pub const PROFILE_BINS: usize = 10;

/// Per-feature training distributions, in the order of the model's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProfile {
    /// Rows the profile was computed on (the closed deals the shipped model was fitted on).
    pub rows: usize,
    /// One entry per model feature, same order as `features.features`.
    pub features: Vec<FeatureProfile>,
}

/// One feature's bins and training shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// Feature name.
    pub feature: String,
    /// How values map to bins.
    pub bins: ProfileBins,
    /// Bin names, e.g. `[4,8.5)`, `retail`, `(other)`, `(missing)`; one per bin.
    pub labels: Vec<String>,
    /// Training rows per bin.
    pub counts: Vec<usize>,
}

/// How a feature's values map to profile bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProfileBins {
    /// Bin `i` is `[edges[i-1], edges[i])` with open ends (`edges.len() + 1` value bins), then one
    /// bin for missing or non-numeric values.
    Numeric {
        /// Ascending distinct inner edges (training quantiles, 4 significant digits).
        edges: Vec<f64>,
    },
    /// One bin per level, then `(other)` (rare in training, or never seen) and `(missing)`.
    Categorical {
        /// Levels with their own bin (the model's vocabulary without `(missing)`).
        levels: Vec<String>,
    },
}

impl ProfileBins {
    /// Number of bins, the missing bin included.
    pub fn len(&self) -> usize {
        match self {
            ProfileBins::Numeric { edges } => edges.len() + 2,
            ProfileBins::Categorical { levels } => levels.len() + 2,
        }
    }

    /// Never true: every feature has at least a value bin and a missing bin.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl FeatureProfile {
    /// Index of the bin `opp` falls in for `feature` (the fitted feature this profile belongs to).
    pub fn bin_of(&self, feature: &FittedFeature, opp: &crate::domain::Deal, now: DateTime<Utc>) -> usize {
        let observation = observe(feature, opp, now);
        match &self.bins {
            ProfileBins::Numeric { edges } => match observation.raw {
                Some(x) => edges.partition_point(|e| *e <= x),
                None => edges.len() + 1,
            },
            ProfileBins::Categorical { levels } => match observation.category.as_deref() {
                None => levels.len() + 1,
                Some(level) => levels.iter().position(|l| l == level).unwrap_or(levels.len()),
            },
        }
    }

    /// Training share per bin (0 for every bin when the profile has no rows).
    pub fn shares(&self) -> Vec<f64> {
        shares(&self.counts)
    }
}

/// Each count divided by their total (all zeros when the total is 0).
pub fn shares(counts: &[usize]) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|c| *c as f64 / total as f64).collect()
}

impl TrainingProfile {
    /// Profiles every feature of `features` on `rows` (the shipped model's training rows), with
    /// the same `now` training used.
    pub fn compute(features: &FittedFeatures, rows: &[&Opportunity], now: DateTime<Utc>) -> TrainingProfile {
        let features = features
            .features
            .iter()
            .map(|feature| {
                let bins = bins_for(feature, rows, now);
                let labels = labels(&bins);
                let mut profile = FeatureProfile {
                    feature: feature.def.name().to_owned(),
                    counts: vec![0; bins.len()],
                    bins,
                    labels,
                };
                for opp in rows {
                    let bin = profile.bin_of(feature, opp, now);
                    profile.counts[bin] += 1;
                }
                profile
            })
            .collect();
        TrainingProfile {
            rows: rows.len(),
            features,
        }
    }
}

fn bins_for(feature: &FittedFeature, rows: &[&Opportunity], now: DateTime<Utc>) -> ProfileBins {
    match &feature.encoder {
        Encoder::Numeric(_) => {
            let mut values: Vec<f64> = rows
                .iter()
                .filter_map(|opp| observe(feature, opp, now).raw)
                .collect();
            values.sort_by(f64::total_cmp);
            ProfileBins::Numeric {
                edges: quantile_edges(&values, PROFILE_BINS),
            }
        }
        Encoder::Categorical(encoder) => ProfileBins::Categorical {
            levels: encoder
                .levels
                .iter()
                .filter(|l| l.as_str() != MISSING_LEVEL && l.as_str() != OTHER_LEVEL)
                .cloned()
                .collect(),
        },
    }
}

/// A profile's bin labels: the numeric intervals or the levels and the other level, then the
/// missing level.
pub(crate) fn labels(bins: &ProfileBins) -> Vec<String> {
    let mut out: Vec<String> = match bins {
        ProfileBins::Numeric { edges } => (0..=edges.len()).map(|i| bin_interval(edges, i)).collect(),
        ProfileBins::Categorical { levels } => {
            let mut out = levels.clone();
            out.push(OTHER_LEVEL.to_owned());
            out
        }
    };
    out.push(MISSING_LEVEL.to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureSpec;
    use crate::generate::{generate, GeneratorConfig};

    #[test]
    fn edges_are_deciles_without_duplicates() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let edges = quantile_edges(&values, 10);
        assert_eq!(edges.len(), 9);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        let constant = vec![5.0; 50];
        assert!(quantile_edges(&constant, 10).is_empty());
        assert!(quantile_edges(&[], 10).is_empty());
    }

    #[test]
    fn profile_covers_every_training_row_once_per_feature() {
        let config = GeneratorConfig {
            deals: 2_000,
            with_activities: false,
            ..GeneratorConfig::default()
        };
        let history = generate(&config);
        let rows: Vec<&Opportunity> = history
            .opportunities
            .iter()
            .filter(|o| o.status.is_closed())
            .collect();
        let features = FittedFeatures::fit(&FeatureSpec::default_spec(), &rows, config.end);
        let profile = TrainingProfile::compute(&features, &rows, config.end);
        assert_eq!(profile.features.len(), features.features.len());
        for f in &profile.features {
            assert_eq!(f.counts.iter().sum::<usize>(), rows.len(), "{}", f.feature);
            assert_eq!(f.counts.len(), f.labels.len());
            assert!((f.shares().iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        // Deciles: no numeric value bin holds much more than a tenth of the rows (ties aside).
        let amount = profile
            .features
            .iter()
            .find(|f| f.feature == "amount")
            .expect("amount profiled");
        assert!(amount
            .counts
            .iter()
            .all(|c| (*c as f64) < 0.2 * rows.len() as f64));
        let sector = profile
            .features
            .iter()
            .find(|f| f.feature == "sector")
            .expect("sector profiled");
        assert_eq!(sector.labels.last().map(String::as_str), Some(MISSING_LEVEL));
    }

    #[test]
    fn unseen_categories_fall_in_other_and_empty_ones_in_missing() {
        let config = GeneratorConfig {
            deals: 500,
            with_activities: false,
            ..GeneratorConfig::default()
        };
        let history = generate(&config);
        let rows: Vec<&Opportunity> = history.opportunities.iter().collect();
        let features = FittedFeatures::fit(&FeatureSpec::default_spec(), &rows, config.end);
        let profile = TrainingProfile::compute(&features, &rows, config.end);
        let index = features
            .features
            .iter()
            .position(|f| f.def.name() == "sector")
            .expect("sector");
        let (feature, sector) = (&features.features[index], &profile.features[index]);
        let mut opp = history.opportunities[0].clone();
        opp.sector = Some("space_mining".into());
        let other = sector.labels.iter().position(|l| l == OTHER_LEVEL);
        assert_eq!(Some(sector.bin_of(feature, &opp, config.end)), other);
        opp.sector = None;
        assert_eq!(sector.bin_of(feature, &opp, config.end), sector.labels.len() - 1);
    }
}
