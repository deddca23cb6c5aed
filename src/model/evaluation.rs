//! Evaluation records stored in the artifact: holdout metrics, calibration, cross-validation and
//! solver convergence. Training computes them; they are plain data here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Quality of probabilities on a set of deals (the holdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of deals evaluated.
    pub count: usize,
    /// Share of won deals among them.
    pub base_rate: f64,
    /// Area under the ROC curve (0.5 = no ranking skill, 1 = perfect ranking).
    pub roc_auc: f64,
    /// Average precision (area under the precision–recall curve, step-wise).
    pub pr_auc: f64,
    /// Mean negative log-likelihood (lower is better; probabilities clipped to [1e-15, 1−1e-15]).
    pub log_loss: f64,
    /// Mean squared error of the probability (lower is better).
    pub brier: f64,
    /// Probability threshold maximising F1 (predict won when p ≥ threshold).
    pub threshold: f64,
    /// Accuracy at `threshold`.
    pub accuracy: f64,
    /// Precision at `threshold` (0 when nothing is predicted won).
    pub precision: f64,
    /// Recall at `threshold`.
    pub recall: f64,
    /// F1 at `threshold`.
    pub f1: f64,
    /// Confusion matrix at `threshold`.
    pub confusion: ConfusionMatrix,
    /// Win rate of the top 10 % of deals by score divided by the base rate.
    pub top_decile_lift: f64,
    /// Ten equal-width probability bins.
    pub calibration: Vec<CalibrationBin>,
    /// The ROC curve as (false positive rate, true positive rate) points from (0, 0) to (1, 1),
    /// at most 101 of them. Empty in artifacts written before it was added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roc_curve: Vec<RocPoint>,
}

/// One point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// False positive rate: lost deals scored at or above the threshold / all lost deals.
    pub fpr: f64,
    /// True positive rate: won deals scored at or above the threshold / all won deals.
    pub tpr: f64,
}

/// Counts at a threshold (positive = won).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Predicted won, was won.
    pub true_positive: usize,
    /// Predicted won, was lost.
    pub false_positive: usize,
    /// Predicted lost, was lost.
    pub true_negative: usize,
    /// Predicted lost, was won.
    pub false_negative: usize,
}

/// One calibration bin `[lower, upper)` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower probability bound.
    pub lower: f64,
    /// Upper probability bound.
    pub upper: f64,
    /// Deals in the bin.
    pub count: usize,
    /// Mean predicted probability in the bin (`None` when empty).
    pub mean_predicted: Option<f64>,
    /// Observed win rate in the bin (`None` when empty).
    pub observed_win_rate: Option<f64>,
}

/// How a model trained on what was known before a past instant ranks and calibrates the deals
/// that were open at that instant, scored as they stood then, against how they ended: the quality
/// of the scores reps use, where the closed-deal holdout measures final states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// The instant T.
    pub as_of: DateTime<Utc>,
    /// Closed deals known before T, which the backtest model was trained on.
    pub trained_on: usize,
    /// Deals open at T that have closed since (those still open have no outcome yet).
    pub open_deals: usize,
    /// Of those, the won ones.
    pub won: usize,
    /// Open deals at T with a recorded field history or activities before T; the others are
    /// scored on their current values, closing fields hidden.
    pub with_history: usize,
    /// ROC AUC of the scores at T against the outcomes (`None` without both outcomes).
    pub roc_auc: Option<f64>,
    /// Mean squared error of the probabilities (`None` without deals).
    pub brier: Option<f64>,
    /// Mean predicted probability.
    pub mean_probability: Option<f64>,
    /// Share of the open deals that were eventually won.
    pub win_rate: Option<f64>,
    /// Ten equal-width probability bins.
    pub calibration: Vec<CalibrationBin>,
    /// Calibration by the deal's age at T: young deals must not be written off.
    pub by_age: Vec<AgeBand>,
}

/// Calibration of the deals of one age band at the backtest instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgeBand {
    /// Youngest age in the band, in days (inclusive).
    pub from_days: u32,
    /// Oldest age, in days (exclusive); `None` for the last band.
    pub to_days: Option<u32>,
    /// Deals in the band.
    pub deals: usize,
    /// Mean predicted probability (`None` when empty).
    pub mean_probability: Option<f64>,
    /// Observed win rate (`None` when empty).
    pub win_rate: Option<f64>,
}

/// Cross-validated ROC AUC for one alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// L2 strength (scikit-learn's C = 1/alpha).
    pub alpha: f64,
    /// Mean ROC AUC over the folds.
    pub mean_auc: f64,
    /// Standard deviation of the fold AUCs.
    pub sd_auc: f64,
    /// ROC AUC of each fold.
    pub fold_aucs: Vec<f64>,
}

/// Alpha selection by stratified K-fold cross-validation on the training part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    /// Number of folds.
    pub folds: usize,
    /// One entry per alpha of the grid, in grid order.
    pub results: Vec<CvResult>,
    /// The alpha with the best mean AUC (ties go to the larger alpha, the simpler model).
    pub chosen_alpha: f64,
}

/// How the solver ended for the shipped fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// L-BFGS iteration cap used.
    pub max_iterations: u64,
    /// Gradient tolerance used (scaled with the row count).
    pub gradient_tolerance: f64,
    /// Euclidean norm of the loss gradient at the returned coefficients, recomputed by
    /// dealscore (linfa-logistic 0.8.1 does not report iterations or status).
    pub gradient_norm: f64,
    /// True when `gradient_norm ≤ gradient_tolerance`; false means the iteration cap (or a
    /// stalled line search) stopped the solver first.
    pub converged: bool,
    /// The alpha actually used (larger than the chosen one after a line-search retry).
    pub alpha_used: f64,
    /// What went wrong and was retried, if anything.
    pub retries: Vec<String>,
}
