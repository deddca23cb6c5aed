//! Training: dataset, split, cross-validated alpha, fit, evaluation, success factors.
//!
//! [`train`] is the one entry point; the `dealscore-train` binary and the server's retrain
//! endpoint both call it. Method and metrics: docs/scoring-method.md.

pub mod backtest;
pub mod factors;
pub mod fit;
pub mod metrics;
pub mod report;
pub mod snapshots;
pub mod split;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Opportunity, Status};
use crate::features::{FeatureSpec, FittedFeatures};
use crate::model::artifact::version_id;
use crate::model::profile::TrainingProfile;
use crate::model::{
    ColumnCoefficient, Convergence, CvResult, CvSummary, ModelArtifact, TrainingSummary, FORMAT_VERSION,
};
pub use report::render_report;

use fit::{design_matrix, fit_large, fit_logistic, LinearFit};

/// How the holdout is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    /// The most recently closed deals are the holdout (the honest choice: the model is used on
    /// future deals). Needs `closed_at` on every closed deal.
    #[default]
    Time,
    /// A random holdout, stratified by outcome (for data without dates).
    Random,
}

/// Training options as given, unchecked: [`TrainOptions::check`] turns them into the
/// [`ValidTrainOptions`] that [`train`] takes. `Default` gives the documented defaults with
/// `now = Utc::now()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainOptions {
    /// Holdout choice (default time).
    pub split: SplitKind,
    /// Share of closed deals held out (default 0.2).
    pub test_fraction: f64,
    /// Seed for the random split and the CV folds (default 42).
    pub seed: u64,
    /// Cross-validation folds (default 5).
    pub cv_folds: usize,
    /// Fewest won deals accepted (default 40).
    pub min_won: usize,
    /// Fewest lost deals accepted (default 40).
    pub min_lost: usize,
    /// L2 strengths tried (default 0.01, 0.1, 1, 10, 100). The loss is a sum over rows, so
    /// alpha is scikit-learn's 1/C and the same alpha regularises large data sets less.
    pub alphas: Vec<f64>,
    /// L-BFGS iteration cap per fit (default 200).
    pub max_iterations: u64,
    /// "Now": age of open deals and the version id's time.
    pub now: DateTime<Utc>,
    /// Informational: start of the extraction window.
    pub window_since: Option<DateTime<Utc>>,
    /// Informational: end of the extraction window.
    pub window_until: Option<DateTime<Utc>>,
    /// Version id to use instead of the generated `m-YYYYMMDD-HHMMSS-<6 hex>`.
    pub version: Option<String>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            split: SplitKind::Time,
            test_fraction: 0.2,
            seed: 42,
            cv_folds: 5,
            min_won: 40,
            min_lost: 40,
            alphas: vec![0.01, 0.1, 1.0, 10.0, 100.0],
            max_iterations: 200,
            now: Utc::now(),
            window_since: None,
            window_until: None,
            version: None,
        }
    }
}

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Not enough closed deals of one outcome.
    #[error(
        "too few closed deals to train: {won} won and {lost} lost, need at least {min_won} won and \
         {min_lost} lost (widen the time window or import more history)"
    )]
    TooFewOutcomes {
        /// Won deals found.
        won: usize,
        /// Lost deals found.
        lost: usize,
        /// Minimum won.
        min_won: usize,
        /// Minimum lost.
        min_lost: usize,
    },
    /// Time split without closing dates.
    #[error(
        "the time split needs closed_at on every closed deal, but {count} have none (e.g. `{example}`); \
         add closing dates or use the random split"
    )]
    MissingClosedAt {
        /// Deals without closed_at.
        count: usize,
        /// One of them.
        example: String,
    },
    /// The holdout lacks won or lost deals, so it cannot measure ranking quality.
    #[error("the holdout has {won} won and {lost} lost deals; it needs both (raise test_fraction or use the random split)")]
    DegenerateHoldout {
        /// Won deals in the holdout.
        won: usize,
        /// Lost deals in the holdout.
        lost: usize,
    },
    /// Options out of range.
    #[error("invalid training options: {0}")]
    InvalidOptions(#[from] InvalidOptions),
    /// The solver failed even after retries.
    #[error("logistic regression fit failed: {0}")]
    Fit(String),
}

/// Progress events, in order, for CLIs and job status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum TrainProgress {
    /// Data selected and split.
    Prepared {
        /// Won deals.
        won: usize,
        /// Lost deals.
        lost: usize,
        /// Training-part rows.
        train_rows: usize,
        /// Holdout rows.
        holdout_rows: usize,
    },
    /// One cross-validation fit done.
    CrossValidation {
        /// Fits done so far.
        done: usize,
        /// Fits in total.
        total: usize,
        /// Alpha of this fit.
        alpha: f64,
        /// Fold of this fit (0-based).
        fold: usize,
        /// Its validation ROC AUC.
        auc: f64,
    },
    /// Alpha chosen; fitting the training part for holdout metrics.
    HoldoutFit {
        /// Chosen alpha.
        alpha: f64,
    },
    /// Fitting the shipped model on all closed deals.
    FinalFit {
        /// Rows.
        rows: usize,
    },
    /// Done.
    Finished {
        /// The new version id.
        version: String,
    },
}

/// A training-time prediction of the shipped model (for checks and audits).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DealPrediction {
    /// The deal's external id.
    pub external_id: String,
    /// Its outcome.
    pub won: bool,
    /// P(won) computed from the training design matrix.
    pub probability: f64,
}

/// The result of [`train`]: the artifact plus training diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainedModel {
    /// The artifact to save and serve.
    pub artifact: ModelArtifact,
    /// Solver outcome of the fit on the training part (the one the holdout metrics come from).
    pub holdout_fit_convergence: Convergence,
    /// Things an analyst should know (non-convergence, retries, ignored open deals…).
    pub warnings: Vec<String>,
    /// Wall-clock training time.
    pub elapsed_seconds: f64,
    /// The shipped model's probabilities for every closed deal, in input order (not in the
    /// JSON report: it can be large).
    #[serde(skip)]
    pub training_predictions: Vec<DealPrediction>,
}

impl TrainOptions {
    /// Checks every option, reporting every one out of range: the only way to get the
    /// [`ValidTrainOptions`] that [`train`] takes.
    pub fn check(self) -> Result<ValidTrainOptions, InvalidOptions> {
        let mut problems = Vec::new();
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            problems.push(InvalidOption::TestFraction(self.test_fraction));
        }
        if self.cv_folds < 2 {
            problems.push(InvalidOption::CvFolds(self.cv_folds));
        }
        if self.alphas.is_empty() || self.alphas.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
            problems.push(InvalidOption::Alphas);
        }
        if self.max_iterations == 0 {
            problems.push(InvalidOption::MaxIterations);
        }
        if problems.is_empty() {
            Ok(ValidTrainOptions(self))
        } else {
            Err(InvalidOptions(problems))
        }
    }
}

/// One training option out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidOption {
    /// The holdout share is not strictly between 0 and 1.
    #[error("test_fraction must be in (0, 1), got {0}")]
    TestFraction(f64),
    /// Fewer than two cross-validation folds.
    #[error("cv_folds must be at least 2, got {0}")]
    CvFolds(usize),
    /// No alpha, or one that is not a positive number.
    #[error("alphas must be a non-empty list of positive numbers")]
    Alphas,
    /// An iteration cap of zero.
    #[error("max_iterations must be at least 1")]
    MaxIterations,
}

/// Every training option out of range, in the order of [`TrainOptions`]' fields (never empty).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidOptions(pub Vec<InvalidOption>);

/// Training options known to be in range, made by [`TrainOptions::check`]; reads like the
/// options it was checked from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidTrainOptions(TrainOptions);

impl std::ops::Deref for ValidTrainOptions {
    type Target = TrainOptions;

    fn deref(&self) -> &TrainOptions {
        &self.0
    }
}

/// Trains a win-probability model on the won and lost deals among `deals` (open ones are
/// ignored): split, alpha by stratified K-fold CV on the training part, holdout evaluation,
/// refit on all closed deals, success factors, sealed artifact.
pub fn train(
    deals: &[Opportunity],
    spec: &FeatureSpec,
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<TrainedModel, TrainError> {
    let started = Instant::now();
    let now = options.now;
    let mut warnings = Vec::new();
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    let open = deals.len() - closed.len();
    if open > 0 {
        warnings.push(format!(
            "{open} open deals were ignored (training uses won and lost deals only)"
        ));
    }
    let won: Vec<bool> = closed.iter().map(|d| d.status == Status::Won).collect();
    let n_won = won.iter().filter(|w| **w).count();
    let n_lost = won.len() - n_won;
    if n_won < options.min_won.max(2) || n_lost < options.min_lost.max(2) {
        return Err(TrainError::TooFewOutcomes {
            won: n_won,
            lost: n_lost,
            min_won: options.min_won,
            min_lost: options.min_lost,
        });
    }

    let split = match options.split {
        SplitKind::Time => split::time_split(&closed, options.test_fraction)?,
        SplitKind::Random => split::random_split(&won, options.test_fraction, options.seed),
    };
    let holdout_won = split.holdout.iter().filter(|&&i| won[i]).count();
    if holdout_won == 0 || holdout_won == split.holdout.len() {
        return Err(TrainError::DegenerateHoldout {
            won: holdout_won,
            lost: split.holdout.len() - holdout_won,
        });
    }
    progress(TrainProgress::Prepared {
        won: n_won,
        lost: n_lost,
        train_rows: split.train.len(),
        holdout_rows: split.holdout.len(),
    });

    let pick = |rows: &[usize]| -> (Vec<&Opportunity>, Vec<bool>) {
        (
            rows.iter().map(|&i| closed[i]).collect(),
            rows.iter().map(|&i| won[i]).collect(),
        )
    };
    let (train_deals, train_won) = pick(&split.train);
    let (holdout_deals, holdout_won_flags) = pick(&split.holdout);

    let cv = cross_validate(spec, &train_deals, &train_won, options, progress)?;
    let alpha = cv.chosen_alpha;

    // Holdout metrics: encoders and fit on the training part only.
    progress(TrainProgress::HoldoutFit { alpha });
    let train_features = FittedFeatures::fit(spec, &train_deals, now);
    let x_train = design_matrix(&train_features, &train_deals, now);
    let holdout_fit = fit_large(&x_train, &train_won, alpha, options.max_iterations)?;
    let x_holdout = design_matrix(&train_features, &holdout_deals, now);
    let holdout_probs = holdout_fit.probabilities(&x_holdout);
    let holdout_metrics = metrics::evaluate(&holdout_probs, &holdout_won_flags);
    let train_base_rate = train_won.iter().filter(|w| **w).count() as f64 / train_won.len() as f64;
    let baseline_metrics = metrics::evaluate(&vec![train_base_rate; holdout_probs.len()], &holdout_won_flags);
    drop(x_train);
    drop(x_holdout);

    // The shipped model: encoders and fit on every closed deal, with the chosen alpha.
    progress(TrainProgress::FinalFit { rows: closed.len() });
    let features = FittedFeatures::fit(spec, &closed, now);
    let x_all = design_matrix(&features, &closed, now);
    let final_fit = fit_large(&x_all, &won, alpha, options.max_iterations)?;
    let probabilities = final_fit.probabilities(&x_all);
    let success_factors = factors::success_factors(&features, &x_all, &final_fit.weights, &closed, &won, now);
    let profile = TrainingProfile::compute(&features, &closed, now);
    drop(x_all);

    for (name, c) in [
        ("holdout", &holdout_fit.convergence),
        ("final", &final_fit.convergence),
    ] {
        if !c.converged {
            warnings.push(format!(
                "{name} fit did not reach the gradient tolerance ({:.3e} > {:.3e}) within {} iterations",
                c.gradient_norm, c.gradient_tolerance, c.max_iterations
            ));
        }
        warnings.extend(c.retries.iter().map(|r| format!("{name} fit: {r}")));
    }

    let coefficients: Vec<ColumnCoefficient> = features
        .features
        .iter()
        .flat_map(|f| {
            f.columns.iter().enumerate().map(|(c, column)| ColumnCoefficient {
                column: column.clone(),
                feature: f.def.name().to_owned(),
                coefficient: final_fit.weights[f.offset + c],
            })
        })
        .collect();
    let closed_dates: Vec<DateTime<Utc>> = closed.iter().filter_map(|d| d.closed_at).collect();
    let version = options.version.clone().unwrap_or_else(|| {
        let content: Vec<u8> = final_fit
            .weights
            .iter()
            .chain(std::iter::once(&final_fit.intercept))
            .flat_map(|w| w.to_le_bytes())
            .chain(now.timestamp_nanos_opt().unwrap_or_default().to_le_bytes())
            .collect();
        version_id(now, &content)
    });
    let mut artifact = ModelArtifact {
        format_version: FORMAT_VERSION,
        version: version.clone(),
        created_at: Utc::now(),
        dealscore_version: env!("CARGO_PKG_VERSION").to_owned(),
        features,
        intercept: final_fit.intercept,
        coefficients,
        cv,
        training: TrainingSummary {
            now,
            window_since: options.window_since,
            window_until: options.window_until,
            split: match options.split {
                SplitKind::Time => "time",
                SplitKind::Random => "random",
            }
            .to_owned(),
            test_fraction: options.test_fraction,
            seed: options.seed,
            won: n_won,
            lost: n_lost,
            train_rows: split.train.len(),
            holdout_rows: split.holdout.len(),
            first_closed_at: closed_dates.iter().min().copied(),
            last_closed_at: closed_dates.iter().max().copied(),
            holdout_from: holdout_deals.iter().filter_map(|d| d.closed_at).min(),
            final_rows: closed.len(),
            snapshots: None,
            deals_with_history: None,
        },
        holdout_metrics,
        baseline_metrics,
        success_factors,
        convergence: final_fit.convergence.clone(),
        profile: Some(profile),
        backtests: Vec::new(),
        sha256: String::new(),
    };
    artifact.seal();
    let training_predictions = closed
        .iter()
        .zip(&won)
        .zip(probabilities)
        .map(|((d, w), p)| DealPrediction {
            external_id: d.external_id.to_string(),
            won: *w,
            probability: p,
        })
        .collect();
    progress(TrainProgress::Finished { version });
    Ok(TrainedModel {
        artifact,
        holdout_fit_convergence: holdout_fit.convergence,
        warnings,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        training_predictions,
    })
}

/// Cross-validates every alpha of `options.alphas` on **all** closed deals (stratified K-fold,
/// encoders refit inside each fold), without a holdout. Useful to compare with published
/// cross-validation figures; [`train`] itself cross-validates on its training part only.
pub fn cross_validate_all(
    deals: &[Opportunity],
    spec: &FeatureSpec,
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<CvSummary, TrainError> {
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    let won: Vec<bool> = closed.iter().map(|d| d.status == Status::Won).collect();
    let n_won = won.iter().filter(|w| **w).count();
    let n_lost = won.len() - n_won;
    if n_won < options.min_won.max(options.cv_folds) || n_lost < options.min_lost.max(options.cv_folds) {
        return Err(TrainError::TooFewOutcomes {
            won: n_won,
            lost: n_lost,
            min_won: options.min_won,
            min_lost: options.min_lost,
        });
    }
    cross_validate(spec, &closed, &won, options, progress)
}

/// Stratified K-fold CV of every alpha on the training part. Encoders are refit inside each
/// fold on that fold's training rows, so validation rows never shape bins or vocabularies.
fn cross_validate(
    spec: &FeatureSpec,
    deals: &[&Opportunity],
    won: &[bool],
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<CvSummary, TrainError> {
    let k = options.cv_folds;
    let folds = split::stratified_folds(won, k, options.seed);
    // Strongest penalty first: each fit warm-starts the next, weaker one.
    let mut order: Vec<usize> = (0..options.alphas.len()).collect();
    order.sort_by(|&a, &b| options.alphas[b].total_cmp(&options.alphas[a]));
    let mut fold_aucs = vec![Vec::with_capacity(k); options.alphas.len()];
    let total = k * options.alphas.len();
    let mut done = 0;
    for fold in 0..k {
        let (fit_rows, val_rows): (Vec<usize>, Vec<usize>) =
            (0..deals.len()).partition(|&i| folds[i] != fold);
        let fit_deals: Vec<&Opportunity> = fit_rows.iter().map(|&i| deals[i]).collect();
        let fit_won: Vec<bool> = fit_rows.iter().map(|&i| won[i]).collect();
        let val_deals: Vec<&Opportunity> = val_rows.iter().map(|&i| deals[i]).collect();
        let val_won: Vec<bool> = val_rows.iter().map(|&i| won[i]).collect();
        let encoders = FittedFeatures::fit(spec, &fit_deals, options.now);
        let x_fit = design_matrix(&encoders, &fit_deals, options.now);
        let x_val = design_matrix(&encoders, &val_deals, options.now);
        let mut warm: Option<LinearFit> = None;
        for &a in &order {
            let alpha = options.alphas[a];
            let fit = match &warm {
                Some(w) => fit_logistic(&x_fit, &fit_won, alpha, Some(w), options.max_iterations)?,
                None => fit_large(&x_fit, &fit_won, alpha, options.max_iterations)?,
            };
            let auc = metrics::roc_auc(&fit.probabilities(&x_val), &val_won);
            // Folds run in order, so each alpha's list is indexed by fold.
            fold_aucs[a].push(auc);
            done += 1;
            progress(TrainProgress::CrossValidation {
                done,
                total,
                alpha,
                fold,
                auc,
            });
            warm = Some(fit);
        }
    }
    let results: Vec<CvResult> = options
        .alphas
        .iter()
        .zip(fold_aucs)
        .map(|(&alpha, aucs)| {
            let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
            let var = aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / aucs.len() as f64;
            CvResult {
                alpha,
                mean_auc: mean,
                sd_auc: var.sqrt(),
                fold_aucs: aucs,
            }
        })
        .collect();
    // Best mean AUC; on (near-)ties prefer the larger alpha (the simpler model).
    let best = results.iter().map(|r| r.mean_auc).fold(f64::MIN, f64::max);
    let chosen_alpha = results
        .iter()
        .filter(|r| r.mean_auc >= best - 1e-9)
        .map(|r| r.alpha)
        .fold(f64::MIN, f64::max);
    Ok(CvSummary {
        folds: k,
        results,
        chosen_alpha,
    })
}
