//! The design matrix and the L2 logistic fit (linfa-logistic), with its known traps handled:
//! class orientation, gradient tolerance, silent iteration caps and line-search failures.

use chrono::{DateTime, Utc};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ShapeBuilder};

use super::TrainError;
use crate::domain::Opportunity;
use crate::features::{observe, FittedFeatures};
use crate::model::{sigmoid, Convergence};

/// Gradient tolerance per row. linfa's loss is a sum over rows, so its gradient grows with n and a
/// fixed tolerance is needlessly strict for large fits. 1e-4 per row is scikit-learn's default
/// `tol` for lbfgs, which it applies to the largest component of the *mean* loss's gradient
/// (`gtol`); here it bounds the L2 norm of the whole gradient, which is at least as strict.
/// (1e-5, ten times stricter than scikit-learn, took longer for no measurable gain in ROC AUC;
/// see docs/performance.md, "Training fit".)
const TOLERANCE_PER_ROW: f64 = 1e-4;
/// Smallest gradient tolerance used (tiny data sets).
const MIN_TOLERANCE: f64 = 1e-6;
/// Line-search failures are retried with alpha multiplied by this, up to `MAX_RETRIES` times.
const RETRY_ALPHA_FACTOR: f64 = 10.0;
const MAX_RETRIES: usize = 3;
/// Rows above which [`fit_large`] first fits a subsample and warm-starts the full fit from it.
const SUBSAMPLE_WARM_START_ROWS: usize = 100_000;
/// Rows in that subsample.
const SUBSAMPLE_ROWS: usize = 50_000;

/// Builds the column-major design matrix (column-major halves linfa's fit time: its gradient
/// is `Xᵀ·r`, which then reads contiguous columns).
pub fn design_matrix(fitted: &FittedFeatures, rows: &[&Opportunity], now: DateTime<Utc>) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((rows.len(), fitted.n_columns).f());
    for (r, opp) in rows.iter().enumerate() {
        for feature in &fitted.features {
            let code = observe(feature, opp, now).code;
            if let Some((c, v)) = code.column {
                x[[r, feature.offset + c]] = v;
            }
            if let Some(c) = code.indicator {
                x[[r, feature.offset + c]] = 1.0;
            }
        }
    }
    x
}

/// Coefficients of a fit, oriented so that `sigmoid(intercept + x·weights)` = P(won).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    /// Intercept.
    pub intercept: f64,
    /// One weight per design column.
    pub weights: Vec<f64>,
    /// Solver outcome.
    pub convergence: Convergence,
}

impl LinearFit {
    /// P(won) for every row of a design matrix.
    pub fn probabilities(&self, x: &Array2<f64>) -> Vec<f64> {
        let w = Array1::from(self.weights.clone());
        (x.dot(&w) + self.intercept).iter().map(|z| sigmoid(*z)).collect()
    }
}

/// Gradient tolerance for `n` rows.
pub fn tolerance_for(n: usize) -> f64 {
    (TOLERANCE_PER_ROW * n as f64).max(MIN_TOLERANCE)
}

/// Fits L2-penalised logistic regression (loss = Σ log-loss + alpha/2·‖w‖², intercept not
/// penalised; scikit-learn's C = 1/alpha). `warm` is a previous solution to start from.
/// On a line-search failure the fit is retried with a larger alpha, and that is recorded.
pub fn fit_logistic(
    x: &Array2<f64>,
    won: &[bool],
    alpha: f64,
    warm: Option<&LinearFit>,
    max_iterations: u64,
) -> Result<LinearFit, TrainError> {
    let tolerance = tolerance_for(won.len());
    let mut retries = Vec::new();
    let mut alpha_used = alpha;
    let mut warm = warm;
    loop {
        match fit_once(x, won, alpha_used, warm, max_iterations, tolerance) {
            Ok((intercept, weights)) => {
                let gradient_norm = gradient_norm(x, won, alpha_used, intercept, &weights);
                return Ok(LinearFit {
                    intercept,
                    weights,
                    convergence: Convergence {
                        max_iterations,
                        gradient_tolerance: tolerance,
                        gradient_norm,
                        converged: gradient_norm <= tolerance,
                        alpha_used,
                        retries,
                    },
                });
            }
            Err(e) if retries.len() < MAX_RETRIES => {
                retries.push(format!(
                    "alpha {alpha_used}: {e}; retrying with alpha {}",
                    alpha_used * RETRY_ALPHA_FACTOR
                ));
                alpha_used *= RETRY_ALPHA_FACTOR;
                // A warm start may be what led the line search astray.
                warm = None;
            }
            Err(e) => {
                return Err(TrainError::Fit(format!(
                    "{e} (after retries: {})",
                    retries.join("; ")
                )))
            }
        }
    }
}

/// Like [`fit_logistic`] without a warm start, but large problems (> 100 000 rows) first fit an
/// evenly spaced 50 000-row subsample, with alpha scaled to the subsample so the per-row penalty
/// is the same, and warm-start the full fit from it: the full fit then needs far fewer passes
/// over the data.
pub fn fit_large(
    x: &Array2<f64>,
    won: &[bool],
    alpha: f64,
    max_iterations: u64,
) -> Result<LinearFit, TrainError> {
    let n = won.len();
    if n <= SUBSAMPLE_WARM_START_ROWS {
        return fit_logistic(x, won, alpha, None, max_iterations);
    }
    let step = n.div_ceil(SUBSAMPLE_ROWS);
    let rows: Vec<usize> = (0..n).step_by(step).collect();
    let sub_won: Vec<bool> = rows.iter().map(|&i| won[i]).collect();
    let warm = if sub_won.iter().any(|w| *w) && sub_won.iter().any(|w| !*w) {
        let mut sub = Array2::<f64>::zeros((rows.len(), x.ncols()).f());
        for (c, column) in x.columns().into_iter().enumerate() {
            for (r, &i) in rows.iter().enumerate() {
                sub[[r, c]] = column[i];
            }
        }
        // A failed subsample fit only costs the warm start.
        fit_logistic(
            &sub,
            &sub_won,
            alpha * rows.len() as f64 / n as f64,
            None,
            max_iterations,
        )
        .ok()
    } else {
        None
    };
    fit_logistic(x, won, alpha, warm.as_ref(), max_iterations)
}

/// One linfa fit; returns (intercept, weights) oriented for P(won).
fn fit_once(
    x: &Array2<f64>,
    won: &[bool],
    alpha: f64,
    warm: Option<&LinearFit>,
    max_iterations: u64,
    tolerance: f64,
) -> Result<(f64, Vec<f64>), linfa_logistic::error::Error> {
    let targets = Array1::from(won.to_vec());
    let dataset = DatasetBase::new(x.view(), targets);
    let mut params = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .gradient_tolerance(tolerance);
    if let Some(warm) = warm.filter(|w| w.weights.len() == x.ncols()) {
        // linfa's parameters describe its "positive" class, which in 0.8.1 is the first class
        // seen unless the other one is more frequent; orient the warm start the same way.
        let sign = if linfa_positive_class(won) { 1.0 } else { -1.0 };
        let mut init: Vec<f64> = warm.weights.iter().map(|w| w * sign).collect();
        init.push(warm.intercept * sign);
        params = params.initial_params(Array1::from(init));
    }
    let model = params.fit(&dataset)?;
    // predict_probabilities gives P(labels().pos.class), not P(won): normalise (upstream #393).
    let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
    let weights = model.params().iter().map(|w| w * sign).collect();
    Ok((model.intercept() * sign, weights))
}

/// The class linfa-logistic 0.8.1 treats as positive: the first one seen, unless the other one
/// is strictly more frequent.
fn linfa_positive_class(won: &[bool]) -> bool {
    let first = won.first().copied().unwrap_or(true);
    let n_first = won.iter().filter(|w| **w == first).count();
    let n_other = won.len() - n_first;
    if n_first < n_other {
        !first
    } else {
        first
    }
}

/// ‖∇‖₂ of Σ log-loss + alpha/2·‖w‖² at (intercept, weights), intercept included.
fn gradient_norm(x: &Array2<f64>, won: &[bool], alpha: f64, intercept: f64, weights: &[f64]) -> f64 {
    let w = Array1::from(weights.to_vec());
    let z = x.dot(&w) + intercept;
    let residual: Array1<f64> = z
        .iter()
        .zip(won)
        .map(|(z, y)| sigmoid(*z) - if *y { 1.0 } else { 0.0 })
        .collect();
    let grad_w = x.t().dot(&residual) + &w * alpha;
    let grad_b = residual.sum();
    (grad_w.dot(&grad_w) + grad_b * grad_b).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One informative column: rows with x = 1 win 80 %, rows with x = 0 win 20 % (scaled by
    /// `won_share` to make won the minority or the majority).
    fn data(n_one: usize, n_zero: usize, won_one: usize, won_zero: usize) -> (Array2<f64>, Vec<bool>) {
        let n = n_one + n_zero;
        let mut x = Array2::zeros((n, 1).f());
        let mut y = Vec::with_capacity(n);
        for i in 0..n_one {
            x[[i, 0]] = 1.0;
            y.push(i < won_one);
        }
        for i in 0..n_zero {
            y.push(i < won_zero);
        }
        (x, y)
    }

    #[test]
    fn probabilities_are_of_winning_when_won_is_the_minority() {
        let (x, y) = data(50, 150, 40, 15); // 55 won of 200
        let fit = fit_logistic(&x, &y, 0.01, None, 200).unwrap();
        let p = fit.probabilities(&x);
        assert!((p[0] - 0.8).abs() < 0.01, "{}", p[0]);
        assert!((p[199] - 0.1).abs() < 0.01, "{}", p[199]);
        assert!(fit.convergence.converged, "{:?}", fit.convergence);
    }

    #[test]
    fn probabilities_are_of_winning_when_won_is_the_majority() {
        let (x, y) = data(150, 50, 135, 20); // 155 won of 200
        let fit = fit_logistic(&x, &y, 0.01, None, 200).unwrap();
        let p = fit.probabilities(&x);
        assert!((p[0] - 0.9).abs() < 0.01, "{}", p[0]);
        assert!((p[199] - 0.4).abs() < 0.01, "{}", p[199]);
        // The first row seen is won and won is the majority, so linfa's positive class is won…
        assert!(linfa_positive_class(&y));
        // …and a warm start from the solution converges to the same place.
        let again = fit_logistic(&x, &y, 0.01, Some(&fit), 200).unwrap();
        assert!((again.weights[0] - fit.weights[0]).abs() < 1e-3);
    }

    #[test]
    fn positive_class_follows_linfa_rule() {
        assert!(!linfa_positive_class(&[true, false, false]));
        assert!(linfa_positive_class(&[true, false]));
        assert!(!linfa_positive_class(&[false, true]));
    }
}
