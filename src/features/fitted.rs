//! Fitted encoders: what each feature learned from the training rows (bin edges, vocabularies,
//! imputation values, means and standard deviations), and the design-matrix columns it owns.
//!
//! Identifiability: every level and every bin keeps its own column (no reference level is
//! dropped). The L2 penalty (alpha > 0, always the case in training) makes the fit unique and
//! treats all levels symmetrically, as scikit-learn's one-hot + L2 default does; explanations are
//! then relative to the average deal rather than to an arbitrary reference level.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::raw::{category_value, format_number, numeric_value, round_significant, NumericValue};
use super::spec::{FeatureDef, FeatureSpec, Kind, SpecErrors, Transform};
use crate::domain::Opportunity;

/// Level used for an empty categorical field.
pub const MISSING_LEVEL: &str = "(missing)";
/// Level used for categories rarer than `min_count` in training, and for unseen ones.
pub const OTHER_LEVEL: &str = "(other)";

/// Every feature of a spec with its fitted encoder, in design-matrix order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedFeatures {
    /// The fitted features; feature `i` owns columns `offset..offset + columns.len()`.
    pub features: Vec<FittedFeature>,
    /// Total number of design-matrix columns.
    pub n_columns: usize,
}

/// One feature: its definition, its encoder and its columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedFeature {
    /// The spec entry.
    pub def: FeatureDef,
    /// Index of the feature's first design-matrix column.
    pub offset: usize,
    /// Column names, e.g. `response_hours[4,8.5)`, `sector=retail`, `amount=(missing)`.
    pub columns: Vec<String>,
    /// The learned encoding.
    pub encoder: Encoder,
}

/// A learned encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoder {
    /// Numeric feature.
    Numeric(NumericEncoder),
    /// Categorical feature.
    Categorical(CategoricalEncoder),
}

/// Numeric encoding. Columns: the bins (or one standardised value column), then the missing
/// indicator if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericEncoder {
    /// Value used for missing entries: the training median of the raw values (0 if none).
    pub impute: f64,
    /// Whether a `<name>=(missing)` indicator column exists (only when training had missing
    /// values).
    pub missing_indicator: bool,
    /// How the (imputed) value becomes columns.
    pub scale: NumericScale,
    /// Count of non-missing training values.
    pub count: usize,
    /// Count of missing training values.
    pub missing: usize,
}

/// The value part of a numeric encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NumericScale {
    /// Quantile bins; bin `i` is `[edges[i-1], edges[i])` with open ends. `edges.len() + 1`
    /// columns.
    Bins {
        /// Ascending, distinct inner edges (rounded to 4 significant digits).
        edges: Vec<f64>,
    },
    /// One column `(t(x) − mean) / sd` where `t` is the identity (`linear`) or
    /// sign(x)·ln(1+|x|) (`log`).
    Standardised {
        /// Training mean of `t(x)`.
        mean: f64,
        /// Training standard deviation of `t(x)` (1 when it was 0).
        sd: f64,
    },
}

/// Categorical encoding: one column per kept level, then `(other)` when training had rare
/// levels. An empty field is the level `(missing)`, kept like any level when frequent enough.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalEncoder {
    /// Kept levels in column order (alphabetical; may include `(missing)`).
    pub levels: Vec<String>,
    /// Whether an `(other)` column exists (training had levels rarer than `min_count`).
    pub other: bool,
    /// Training count per raw level (before merging rare ones), for reports.
    pub counts: BTreeMap<String, usize>,
}

impl Encoder {
    /// Number of design columns this encoder produces.
    pub fn column_count(&self) -> usize {
        match self {
            Encoder::Numeric(e) => {
                let values = match &e.scale {
                    NumericScale::Bins { edges } => edges.len() + 1,
                    NumericScale::Standardised { .. } => 1,
                };
                values + usize::from(e.missing_indicator)
            }
            Encoder::Categorical(e) => e.levels.len() + usize::from(e.other),
        }
    }
}

impl NumericEncoder {
    /// Bin index of a value (0-based), for the binned scale.
    pub fn bin_of(edges: &[f64], x: f64) -> usize {
        edges.partition_point(|e| *e <= x)
    }
}

/// sign(x)·ln(1+|x|): the `log` transform, defined for negative values too.
pub fn signed_log(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// Inner edges at the `1/k … (k-1)/k` quantiles of sorted values, rounded to 4 significant
/// digits, deduplicated, and above the minimum (an edge at the minimum would leave a bin empty).
/// Shared by the model's bins and the drift profile, so both cut the data the same way.
pub fn quantile_edges(sorted: &[f64], k: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..k)
        .filter_map(|i| quantile_sorted(sorted, i as f64 / k as f64))
        .map(round_significant)
        .collect();
    edges.dedup();
    if let Some(min) = sorted.first() {
        edges.retain(|e| e > min);
    }
    edges
}

/// The interval of bin `i` over `edges`, e.g. `[-inf,10)`, `[10,20)`, `[20,inf)`.
pub fn bin_interval(edges: &[f64], i: usize) -> String {
    let lo = match i.checked_sub(1).and_then(|j| edges.get(j)) {
        Some(e) => format_number(*e),
        None => "-inf".to_owned(),
    };
    let hi = edges
        .get(i)
        .map_or_else(|| "inf".to_owned(), |e| format_number(*e));
    format!("[{lo},{hi})")
}

/// Linear-interpolated quantile of sorted values (`q` in 0..=1); `None` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

impl FittedFeatures {
    /// Learns every feature's encoder from the training rows.
    pub fn fit(spec: &FeatureSpec, rows: &[&Opportunity], now: DateTime<Utc>) -> FittedFeatures {
        FittedFeatures::from_encoders(spec, |def| match def.kind() {
            Kind::Numeric => fit_numeric(def, rows, now),
            Kind::Categorical => fit_categorical(def, rows),
        })
    }

    /// Every feature of `spec` with the encoder and columns `fit` learns for it, laid out one
    /// after the other in the design matrix.
    pub(crate) fn from_encoders(
        spec: &FeatureSpec,
        mut fit: impl FnMut(&FeatureDef) -> (Encoder, Vec<String>),
    ) -> FittedFeatures {
        let mut offset = 0;
        let mut features = Vec::with_capacity(spec.features().len());
        for def in spec.features() {
            let (encoder, columns) = fit(def);
            let n = columns.len();
            features.push(FittedFeature {
                def: def.clone(),
                offset,
                columns,
                encoder,
            });
            offset += n;
        }
        FittedFeatures {
            features,
            n_columns: offset,
        }
    }

    /// All column names in design-matrix order.
    pub fn column_names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.columns.iter().cloned())
            .collect()
    }

    /// The feature spec these encoders were fitted for. Fitting takes a valid spec, but the
    /// fields are public (and artifacts are read from disk), so the list is checked again.
    pub fn spec(&self) -> Result<FeatureSpec, SpecErrors> {
        FeatureSpec::new(self.features.iter().map(|f| f.def.clone()).collect())
    }
}

fn fit_numeric(def: &FeatureDef, rows: &[&Opportunity], now: DateTime<Utc>) -> (Encoder, Vec<String>) {
    let source = def.source();
    let mut values = Vec::with_capacity(rows.len());
    for opp in rows {
        if let NumericValue::Present(v) = numeric_value(&source, opp, now) {
            values.push(v);
        }
    }
    values.sort_by(f64::total_cmp);
    numeric_encoder(def, &values, rows.len())
}

/// The numeric fit from the sorted present values and the number of rows (the others are
/// missing): shared by the fit over deals and training's fit over its compact columns, so both
/// give the same encoder.
pub(crate) fn numeric_encoder(def: &FeatureDef, values: &[f64], rows: usize) -> (Encoder, Vec<String>) {
    let missing = rows - values.len();
    let impute = quantile_sorted(values, 0.5).unwrap_or(0.0);
    let name = def.name();
    let (scale, mut columns) = match def.transform() {
        Transform::Bins => {
            let k = def.bins();
            let edges = quantile_edges(values, k);
            let columns = (0..=edges.len())
                .map(|i| format!("{name}{}", bin_interval(&edges, i)))
                .collect();
            (NumericScale::Bins { edges }, columns)
        }
        transform @ (Transform::Linear | Transform::Log) => {
            let t = |x: f64| {
                if transform == Transform::Log {
                    signed_log(x)
                } else {
                    x
                }
            };
            // Missing rows take the imputed value, so include them in the standardisation.
            let n = rows.max(1) as f64;
            let imputed_t = t(impute);
            let sum: f64 = values.iter().map(|v| t(*v)).sum::<f64>() + imputed_t * missing as f64;
            let mean = sum / n;
            let ss: f64 = values.iter().map(|v| (t(*v) - mean).powi(2)).sum::<f64>()
                + (imputed_t - mean).powi(2) * missing as f64;
            let sd = (ss / n).sqrt();
            let sd = if sd > 0.0 && sd.is_finite() { sd } else { 1.0 };
            let column = if transform == Transform::Log {
                format!("log({name})")
            } else {
                name.to_owned()
            };
            (NumericScale::Standardised { mean, sd }, vec![column])
        }
    };
    let missing_indicator = missing > 0;
    if missing_indicator {
        columns.push(format!("{name}={MISSING_LEVEL}"));
    }
    let encoder = NumericEncoder {
        impute,
        missing_indicator,
        scale,
        count: values.len(),
        missing,
    };
    (Encoder::Numeric(encoder), columns)
}

fn fit_categorical(def: &FeatureDef, rows: &[&Opportunity]) -> (Encoder, Vec<String>) {
    let source = def.source();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for opp in rows {
        let level = category_value(&source, opp);
        let key = level.as_deref().unwrap_or(MISSING_LEVEL);
        match counts.get_mut(key) {
            Some(c) => *c += 1,
            None => {
                counts.insert(key.to_owned(), 1);
            }
        }
    }
    categorical_encoder(def, counts.into_iter().collect())
}

/// The categorical fit from the level counts: shared by the fit over deals and training's fit
/// over its compact columns, so both give the same encoder.
pub(crate) fn categorical_encoder(
    def: &FeatureDef,
    counts: BTreeMap<String, usize>,
) -> (Encoder, Vec<String>) {
    let min_count = def.min_count().max(1);
    // BTreeMap iteration is alphabetical, which fixes the column order.
    let levels: Vec<String> = counts
        .iter()
        .filter(|(level, c)| **c >= min_count && level.as_str() != OTHER_LEVEL)
        .map(|(level, _)| level.clone())
        .collect();
    let other = counts.len() > levels.len();
    let mut columns: Vec<String> = levels.iter().map(|l| format!("{}={l}", def.name())).collect();
    if other {
        columns.push(format!("{}={OTHER_LEVEL}", def.name()));
    }
    (
        Encoder::Categorical(CategoricalEncoder {
            levels,
            other,
            counts,
        }),
        columns,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&v, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn bins_are_half_open() {
        let edges = [4.0, 8.5];
        assert_eq!(NumericEncoder::bin_of(&edges, 3.9), 0);
        assert_eq!(NumericEncoder::bin_of(&edges, 4.0), 1);
        assert_eq!(NumericEncoder::bin_of(&edges, 8.5), 2);
    }
}
