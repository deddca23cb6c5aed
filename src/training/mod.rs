//! Training: dataset, split, cross-validated alpha, fit, evaluation, success factors.
//!
//! [`train`] is the one entry point; the `dealscore-train` binary and the server's retrain
//! endpoint both call it. Method and metrics: docs/scoring-method.md.

pub mod backtest;
pub mod compact;
pub mod factors;
pub mod fit;
pub mod metrics;
pub mod phases;
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

use crate::domain::Opportunity;
use crate::features::{FeatureSpec, FittedFeatures};
use crate::model::artifact::version_id;
use crate::model::{
    sigmoid, ColumnCoefficient, Convergence, CvResult, CvSummary, ModelArtifact, TrainingSummary,
    FORMAT_VERSION,
};
pub use compact::CompactDeals;
pub use phases::{PhaseClock, Phases};
pub use report::render_report;

use fit::{fit_large, fit_logistic, LinearFit};

/// Default of [`TrainOptions::cv_sample`]: above this many training rows, alpha is chosen on a
/// stratified sample of them: 25 fits on the whole training part of a million deals were most of
/// the job's time (docs/performance.md, "Training job").
pub const CV_SAMPLE_ROWS: usize = 100_000;

/// Default of [`TrainOptions::fit_sample`]: a fit on more rows than this reads a stratified
/// sample of this many. A fit's time and its dense matrix grow with the rows it reads, and past
/// half a million rows the model barely moves: on a million-deal history, holdout and backtest
/// ROC AUC within 0.0004 of fits on every row, final states and snapshots alike
/// (docs/scoring-method.md, "Fits on a sample of very many rows").
pub const FIT_SAMPLE_ROWS: usize = 500_000;

/// The smallest [`TrainOptions::fit_sample`] other than 0: a sample of fewer rows would fit
/// noise rather than stand for the data.
pub const MIN_FIT_SAMPLE_ROWS: usize = 10_000;

/// Mixed into the seed of a fit's sample, so that it differs from the cross-validation's.
const FIT_SAMPLE_SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// How many rows a fit reads at most: a fit on more reads a stratified sample of `rows` of them
/// (the same sample for the same rows and seed), with its alpha scaled to the sample so that
/// each row is penalised as in a fit on all of them (the loss is a sum over rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitSample {
    /// The most rows a fit reads (0: every row).
    pub rows: usize,
    /// The sample's seed.
    pub seed: u64,
}

impl FitSample {
    /// Every row, whatever their number.
    pub const EVERY_ROW: FitSample = FitSample { rows: 0, seed: 0 };

    /// Whether a fit on `n` rows reads them all.
    fn reads_every_row(&self, n: usize) -> bool {
        self.rows == 0 || n <= self.rows
    }

    /// How many rows a fit on `n` rows reads.
    fn rows_read(&self, n: usize) -> usize {
        if self.reads_every_row(n) {
            n
        } else {
            self.rows
        }
    }

    /// Whether this and `other` read the same rows of any `n` rows: the same sample, or all.
    fn reads_as(&self, other: &FitSample, n: usize) -> bool {
        self == other || (self.reads_every_row(n) && other.reads_every_row(n))
    }

    /// The rows of `rows` (ascending) a fit reads, and the share of `rows` they are.
    fn of<'a>(&self, rows: &'a [usize], won: &[bool]) -> (std::borrow::Cow<'a, [usize]>, f64) {
        if self.reads_every_row(rows.len()) {
            return (std::borrow::Cow::Borrowed(rows), 1.0);
        }
        let sample = split::stratified_sample(rows, won, self.rows, self.seed ^ FIT_SAMPLE_SEED);
        let share = sample.len() as f64 / rows.len() as f64;
        (std::borrow::Cow::Owned(sample), share)
    }
}

/// What a fit is asked for besides its rows: the L2 strength, the iteration cap and the most
/// rows it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitSettings {
    /// The L2 strength, for a fit on every row.
    pub alpha: f64,
    /// The L-BFGS iteration cap.
    pub max_iterations: u64,
    /// The most rows read.
    pub sample: FitSample,
}

impl FitSettings {
    /// Settings whose fits read every row.
    pub fn every_row(alpha: f64, max_iterations: u64) -> FitSettings {
        FitSettings {
            alpha,
            max_iterations,
            sample: FitSample::EVERY_ROW,
        }
    }
}

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
    /// Training parts larger than this choose alpha on a stratified sample of this many rows
    /// (default [`CV_SAMPLE_ROWS`]; 0 = always on the whole training part).
    pub cv_sample: usize,
    /// Fits on more rows than this (the holdout fit, the refit, the backtest's) read a
    /// stratified sample of this many (default [`FIT_SAMPLE_ROWS`]; 0 = every row).
    pub fit_sample: usize,
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
            cv_sample: CV_SAMPLE_ROWS,
            fit_sample: FIT_SAMPLE_ROWS,
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
    /// Every feature of the spec is empty in the closed deals.
    #[error(
        "every feature of the spec is empty in the closed deals ({}): map the CRM's columns to them \
         or choose other features",
        .empty.join(", ")
    )]
    AllFeaturesEmpty {
        /// The features, all without a value.
        empty: Vec<String>,
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
    /// A phase of the job starts (`load`, `encode`, `cross_validation`, `holdout`, `refit`,
    /// `factors`, `gate`, `artifact`, `register`); the report's `phases` times each one.
    Phase {
        /// The phase's name.
        name: String,
    },
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
    /// Rows alpha was cross-validated on: the training part, or a stratified sample of it when
    /// it is larger than `cv_sample`.
    pub cv_rows: usize,
    /// Wall-clock training time.
    pub elapsed_seconds: f64,
    /// Seconds per phase, in order (the training job adds loading, gate and artifact).
    pub phases: Phases,
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
        if self.fit_sample != 0 && self.fit_sample < MIN_FIT_SAMPLE_ROWS {
            problems.push(InvalidOption::FitSample(self.fit_sample));
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
    /// A fit sample too small to stand for the data.
    #[error("fit_sample must be 0 (every row) or at least {MIN_FIT_SAMPLE_ROWS}, got {0}")]
    FitSample(usize),
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

impl ValidTrainOptions {
    /// The most rows a fit reads.
    pub fn fit_sample(&self) -> FitSample {
        FitSample {
            rows: self.0.fit_sample,
            seed: self.seed,
        }
    }

    /// The fits' settings at `alpha`.
    pub fn fit_settings(&self, alpha: f64) -> FitSettings {
        FitSettings {
            alpha,
            max_iterations: self.max_iterations,
            sample: self.fit_sample(),
        }
    }
}

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
    progress(TrainProgress::Phase {
        name: "encode".into(),
    });
    let data = CompactDeals::from_deals(deals, &compact::sources_for(&[spec]), options.now);
    let encode = started.elapsed().as_secs_f64();
    let (mut trained, run) = train_compact(&data, spec, options, progress)?;
    let mut phases = Phases::default();
    phases.add("encode", encode);
    trained.phases.prepend(phases);
    trained.elapsed_seconds = started.elapsed().as_secs_f64();
    trained.training_predictions = run
        .probabilities
        .iter()
        .enumerate()
        .map(|(row, p)| DealPrediction {
            external_id: data.id(row).to_owned(),
            won: data.won()[row],
            probability: *p,
        })
        .collect();
    Ok(trained)
}

/// What [`train_compact`] leaves besides the model, for the job that follows (the backtest and
/// the gate).
#[derive(Debug, Clone)]
pub struct CompactRun {
    /// Holdout rows (ascending row indices of the data).
    pub holdout: Vec<usize>,
    /// The shipped model's P(won) for every row.
    pub probabilities: Vec<f64>,
    /// The fit on the training part, with its encoders: where a later fit on nearly the same
    /// rows (the backtest's) can start.
    pub holdout_fit: Option<WarmStart>,
}

/// A fit, the encoders its columns follow and the rows it was fitted on, to warm-start a later
/// fit on similar rows (or to stand for a later fit on the same ones).
#[derive(Debug, Clone)]
pub struct WarmStart {
    features: FittedFeatures,
    fit: LinearFit,
    /// The rows fitted (ascending row indices of the data).
    rows: Vec<usize>,
    /// What the fit was asked for besides its rows.
    settings: FitSettings,
}

impl WarmStart {
    /// The fit's weights laid out for `features`' columns (feature by feature, see
    /// `carry_over`); `None` when the features differ.
    pub fn for_features(&self, features: &FittedFeatures) -> Option<LinearFit> {
        carry_over(&self.features, &self.fit, features)
    }

    /// The fit itself when it solved the very problem a fit on `rows` (ascending) with
    /// `features` and `settings` would solve, and solved it to the tolerance: the same rows read
    /// the same sample of them, which gives the same matrix, outcomes and scaled alpha, so a fit
    /// started from this one would stop where it starts, within that tolerance.
    pub(crate) fn same_fit(
        &self,
        rows: &[usize],
        features: &FittedFeatures,
        settings: &FitSettings,
    ) -> Option<&LinearFit> {
        let c = &self.fit.convergence;
        let same = self.rows == rows
            && self.features == *features
            && c.converged
            && c.retries.is_empty()
            && self.settings.alpha == settings.alpha
            && self.settings.max_iterations == settings.max_iterations
            && self.settings.sample.reads_as(&settings.sample, rows.len());
        same.then_some(&self.fit)
    }
}

/// [`train`] on closed deals already read into compact columns (see [`compact`]). The training
/// job reads the database straight into them, so the deals are never all held as opportunities.
/// `training_predictions` is left empty; [`CompactRun::probabilities`] has the figures.
pub fn train_compact(
    data: &CompactDeals,
    spec: &FeatureSpec,
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<(TrainedModel, CompactRun), TrainError> {
    train_compact_ordered(data, spec, options, progress, FitOrder::by_memory)
}

/// [`train_compact`] with the holdout and shipped fits run in the order `fit_order` gives for
/// the data, the rows a fit reads and its columns.
fn train_compact_ordered(
    data: &CompactDeals,
    spec: &FeatureSpec,
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
    fit_order: fn(&CompactDeals, usize, usize) -> FitOrder,
) -> Result<(TrainedModel, CompactRun), TrainError> {
    let started = Instant::now();
    let mut clock = PhaseClock::new();
    clock.enter("split", progress);
    let now = options.now;
    let mut warnings = Vec::new();
    let open = data.open_ignored();
    if open > 0 {
        warnings.push(format!(
            "{open} open deals were ignored (training uses won and lost deals only)"
        ));
    }
    let won = data.won();
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

    // A feature no closed deal has a value for is dropped, and the report says so: kept, it
    // would only learn an odd "(missing)" coefficient.
    let empty: Vec<String> = (spec.features().iter())
        .map(|f| f.name().to_owned())
        .filter(|name| data.source_is_empty(name))
        .collect();
    let reduced;
    let spec = if empty.is_empty() {
        spec
    } else {
        let kept: Vec<_> = (spec.features().iter())
            .filter(|f| !empty.iter().any(|e| e == f.name()))
            .cloned()
            .collect();
        reduced =
            FeatureSpec::new(kept).map_err(|_| TrainError::AllFeaturesEmpty { empty: empty.clone() })?;
        for name in &empty {
            warnings.push(format!(
                "feature `{name}` was dropped: no closed deal has a value for it"
            ));
        }
        &reduced
    };

    let split = match options.split {
        SplitKind::Time => split::time_split_rows(data.closed_at(), |i| data.id(i), options.test_fraction)?,
        SplitKind::Random => split::random_split(won, options.test_fraction, options.seed),
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
    let pick = |rows: &[usize]| -> Vec<bool> { rows.iter().map(|&i| won[i]).collect() };
    let train_won = pick(&split.train);
    let holdout_won_flags = pick(&split.holdout);

    // Alpha: on a stratified sample of the training part when it is large. The loss is a sum
    // over rows, so each alpha is scaled to the sample: the sample's fits then penalise each row
    // as the full fit would (docs/performance.md, "Training job").
    clock.enter("cross_validation", progress);
    let cv_rows = if options.cv_sample > 0 {
        split::stratified_sample(&split.train, won, options.cv_sample, options.seed)
    } else {
        split.train.clone()
    };
    let alpha_scale = cv_rows.len() as f64 / split.train.len() as f64;
    let cv = cross_validate_rows(spec, data, &cv_rows, alpha_scale, options, progress)?;
    drop(cv_rows);
    let alpha = cv.summary.chosen_alpha;

    // The holdout fit (encoders and fit on the training part only, then its holdout metrics and
    // the drift profile) and the shipped model (encoders and fit on every closed deal with the
    // chosen alpha, then its scores and success factors), each fit warm-started from the
    // cross-validation's fit at the chosen alpha, and each laying out its own matrix.
    clock.enter("holdout", progress);
    progress(TrainProgress::HoldoutFit { alpha });
    let settings = options.fit_settings(alpha);
    let all: Vec<usize> = (0..data.len()).collect();
    let train_base_rate = train_won.iter().filter(|w| **w).count() as f64 / train_won.len() as f64;
    let train_features = compact::fit_features(spec, data, &split.train);
    let order = fit_order(
        data,
        settings.sample.rows_read(all.len()),
        train_features.n_columns,
    );
    let (holdout, shipped, profile) = std::thread::scope(|scope| {
        let (rows, cv, settings) = (&all, &cv, &settings);
        let (send_encoders, shipped_encoders) = std::sync::mpsc::channel::<FittedFeatures>();
        let shipped_work = move || {
            let features = compact::fit_features(spec, data, rows);
            // The drift profile needs these encoders only: it is built while this fit runs
            // (side by side) or after it.
            let _ = send_encoders.send(features.clone());
            let fit = fit_with(&features, data, rows, cv, settings)?;
            // Scores, then success factors: at the same time, the memory each pass takes came on
            // top of the other fit's matrix, and the peak passed 2 GB on a million deals'
            // snapshots.
            let probabilities = probabilities(&features, data, rows, &fit);
            let success_factors = factors::success_factors(&features, data, &fit.weights);
            Ok::<_, TrainError>((features, fit, probabilities, success_factors))
        };
        let holdout_work = || {
            let fit = fit_with(&train_features, data, &split.train, cv, settings)?;
            let probabilities = probabilities(&train_features, data, &split.holdout, &fit);
            let metrics = metrics::evaluate(&probabilities, &holdout_won_flags);
            let baseline = metrics::evaluate(&vec![train_base_rate; probabilities.len()], &holdout_won_flags);
            Ok::<_, TrainError>((fit, metrics, baseline))
        };
        let profile = || (shipped_encoders.recv().ok()).map(|features| compact::profile(&features, data));
        match order {
            FitOrder::SideBySide => {
                let shipped = scope.spawn(shipped_work);
                let holdout = holdout_work();
                // What outlasts the holdout's work is the shipped model's.
                clock.enter("refit", progress);
                progress(TrainProgress::FinalFit { rows: data.len() });
                let profile = profile();
                let shipped = (shipped.join())
                    .unwrap_or_else(|_| Err(TrainError::Fit("the final fit stopped unexpectedly".into())));
                (holdout, shipped, profile)
            }
            FitOrder::InTurn => {
                let holdout = holdout_work();
                clock.enter("refit", progress);
                progress(TrainProgress::FinalFit { rows: data.len() });
                let shipped = shipped_work();
                (holdout, shipped, profile())
            }
        }
    });
    drop(all);
    let (holdout_fit, holdout_metrics, baseline_metrics) = holdout?;
    let (features, final_fit, probabilities, success_factors) = shipped?;
    let Some(profile) = profile else {
        return Err(TrainError::Fit("the final fit stopped unexpectedly".into()));
    };

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
    let closed_at = data.closed_at();
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
        cv: cv.summary,
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
            first_closed_at: closed_at.iter().flatten().min().copied(),
            last_closed_at: closed_at.iter().flatten().max().copied(),
            holdout_from: split.holdout.iter().filter_map(|&i| closed_at[i]).min(),
            final_rows: data.len(),
            snapshots: None,
            deals_with_history: None,
            data_fingerprint: None,
        },
        holdout_metrics,
        baseline_metrics,
        success_factors,
        convergence: final_fit.convergence.clone(),
        profile: Some(profile),
        backtests: Vec::new(),
        cut_points: None,
        sha256: String::new(),
    };
    artifact.seal();
    let phases = clock.finish();
    progress(TrainProgress::Finished { version });
    let trained = TrainedModel {
        artifact,
        holdout_fit_convergence: holdout_fit.convergence.clone(),
        warnings,
        cv_rows: cv.rows,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        phases,
        training_predictions: Vec::new(),
    };
    let run = CompactRun {
        holdout: split.holdout,
        probabilities,
        holdout_fit: Some(WarmStart {
            features: train_features,
            fit: holdout_fit,
            rows: split.train,
            settings,
        }),
    };
    Ok((trained, run))
}

/// How the holdout fit and the shipped fit run: on two threads at once, or one after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FitOrder {
    SideBySide,
    InTurn,
}

impl FitOrder {
    /// Side by side when a second matrix of `rows_read` rows by `columns`, held at once, is no
    /// larger than the data the job holds anyway. The solver keeps a core and a half busy, so
    /// two fits side by side finish sooner than in a row. On snapshots (several rows a deal) the
    /// data outweighs a fit's sampled matrix, and the load's peak stays the job's; on final
    /// states (one row a deal) a second matrix would outweigh the data and set the job's peak.
    fn by_memory(data: &CompactDeals, rows_read: usize, columns: usize) -> FitOrder {
        if rows_read * columns * std::mem::size_of::<f64>() <= data.heap_bytes() {
            FitOrder::SideBySide
        } else {
            FitOrder::InTurn
        }
    }
}

/// P(won) of `rows` under a fit whose columns are `features`', summed as serving sums them.
fn probabilities(
    features: &FittedFeatures,
    data: &CompactDeals,
    rows: &[usize],
    fit: &LinearFit,
) -> Vec<f64> {
    let coefficient = |i: usize| fit.weights.get(i).copied().unwrap_or(0.0);
    compact::logits(features, data, rows, fit.intercept, &coefficient)
        .into_iter()
        .map(sigmoid)
        .collect()
}

/// The fit of `features` on `rows` of `data` (ascending), warm-started from the
/// cross-validation's fit at `settings.alpha`.
fn fit_with(
    features: &FittedFeatures,
    data: &CompactDeals,
    rows: &[usize],
    cv: &CvOutcome,
    settings: &FitSettings,
) -> Result<LinearFit, TrainError> {
    let warm = cv.warm_start(settings.alpha, features);
    fit_rows(features, data, rows, settings, warm.as_ref())
}

/// A fit of `features` on `rows` (ascending) of `data`, or on their sample when there are more
/// than `settings.sample` allows: only the rows read are laid out as a dense matrix, dropped
/// when the fit ends.
pub(crate) fn fit_rows(
    features: &FittedFeatures,
    data: &CompactDeals,
    rows: &[usize],
    settings: &FitSettings,
    warm: Option<&LinearFit>,
) -> Result<LinearFit, TrainError> {
    let won = data.won();
    let (read, share) = settings.sample.of(rows, won);
    let x = compact::design(features, data, &read);
    let read_won: Vec<bool> = read.iter().map(|&r| won[r]).collect();
    fit_from(
        &x,
        &read_won,
        settings.alpha * share,
        warm,
        settings.max_iterations,
    )
}

/// A fit from `warm` when there is one, else [`fit_large`] (a subsample first on large data).
pub(crate) fn fit_from(
    x: &ndarray::Array2<f64>,
    won: &[bool],
    alpha: f64,
    warm: Option<&LinearFit>,
    max_iterations: u64,
) -> Result<LinearFit, TrainError> {
    match warm {
        Some(w) => fit_logistic(x, won, alpha, Some(w), max_iterations),
        None => fit_large(x, won, alpha, max_iterations),
    }
}

/// `fit`'s coefficients laid out for `to`'s columns, as a warm start: a feature with the same
/// number of columns keeps its weights in order (bin edges move a little between data sets,
/// the bins' effects do not), another one keeps those of the columns with the same name.
fn carry_over(from: &FittedFeatures, fit: &LinearFit, to: &FittedFeatures) -> Option<LinearFit> {
    if from.features.len() != to.features.len() || fit.weights.len() != from.n_columns {
        return None;
    }
    let mut weights = vec![0.0; to.n_columns];
    for (f, t) in from.features.iter().zip(&to.features) {
        let source = &fit.weights[f.offset..f.offset + f.columns.len()];
        let target = &mut weights[t.offset..t.offset + t.columns.len()];
        if source.len() == target.len() {
            target.copy_from_slice(source);
        } else {
            for (slot, name) in target.iter_mut().zip(&t.columns) {
                if let Some(c) = f.columns.iter().position(|n| n == name) {
                    *slot = source[c];
                }
            }
        }
    }
    Some(LinearFit {
        intercept: fit.intercept,
        weights,
        convergence: fit.convergence.clone(),
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
    let data = CompactDeals::from_deals(deals, &compact::sources_for(&[spec]), options.now);
    let won = data.won();
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
    let rows: Vec<usize> = (0..data.len()).collect();
    Ok(cross_validate_rows(spec, &data, &rows, 1.0, options, progress)?.summary)
}

/// The outcome of cross-validation, with what the holdout fit can start from.
struct CvOutcome {
    summary: CvSummary,
    /// Rows cross-validated.
    rows: usize,
    /// The first fold's encoders and its fit per alpha (grid order).
    first_fold: Option<(FittedFeatures, Vec<Option<LinearFit>>)>,
}

impl CvOutcome {
    /// The first fold's fit at `alpha` (a grid value), laid out for `features`.
    fn warm_start(&self, alpha: f64, features: &FittedFeatures) -> Option<LinearFit> {
        let (encoders, fits) = self.first_fold.as_ref()?;
        let a = self.summary.results.iter().position(|r| r.alpha == alpha)?;
        carry_over(encoders, fits.get(a)?.as_ref()?, features)
    }
}

/// One fold's results.
struct FoldOutcome {
    fold: usize,
    /// Validation ROC AUC per alpha (grid order).
    aucs: Vec<f64>,
    /// The first fold keeps its encoders and fits (warm starts for the holdout fit).
    kept: Option<(FittedFeatures, Vec<Option<LinearFit>>)>,
}

/// Stratified K-fold CV of every alpha over `rows` (ascending row indices), fitting each alpha
/// times `alpha_scale`. Folds are dealt by deal (rows sharing an external id: the snapshots of
/// one deal), so no deal is on both sides of a fold. Encoders are refit inside each fold on that fold's training rows, so
/// validation rows never shape bins or vocabularies. Within a fold each alpha, strongest first,
/// warm-starts the next. The first fold runs first, alone; the others then run on every core,
/// each starting from the first fold's fit at the strongest alpha: a start near their own
/// optimum, and the same whatever the number of cores, so the results are too.
fn cross_validate_rows(
    spec: &FeatureSpec,
    data: &CompactDeals,
    rows: &[usize],
    alpha_scale: f64,
    options: &ValidTrainOptions,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<CvOutcome, TrainError> {
    let k = options.cv_folds;
    let all_won = data.won();
    let won: Vec<bool> = rows.iter().map(|&r| all_won[r]).collect();
    // Folds are dealt by deal: a deal's snapshots validate together or train together.
    let groups = split::group_numbers(rows.len(), |i| data.id(rows[i]));
    let folds = split::grouped_stratified_folds(&won, &groups, k, options.seed);
    // Strongest penalty first: each fit warm-starts the next, weaker one.
    let mut order: Vec<usize> = (0..options.alphas.len()).collect();
    order.sort_by(|&a, &b| options.alphas[b].total_cmp(&options.alphas[a]));
    let total = k * options.alphas.len();
    let task = FoldTask {
        spec,
        data,
        rows,
        folds: &folds,
        won: &won,
        order: &order,
        alpha_scale,
        options,
    };
    let mut done = 0;
    let mut report = |fold: usize, a: usize, auc: f64| {
        done += 1;
        progress(TrainProgress::CrossValidation {
            done,
            total,
            alpha: options.alphas[a],
            fold,
            auc,
        });
    };
    let first = task.run(0, None, &mut |a, auc| report(0, a, auc))?;
    let start =
        (first.kept.as_ref()).and_then(|(encoders, fits)| Some((encoders, fits.get(order[0])?.as_ref()?)));
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, (k - 1).max(1));
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, usize, f64)>();
    let outcomes: Vec<Result<Vec<FoldOutcome>, TrainError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let sender = sender.clone();
                let task = &task;
                scope.spawn(move || {
                    (1 + worker..k)
                        .step_by(workers)
                        .map(|fold| {
                            // The receiver lives until every worker is done.
                            let mut send = |a, auc| {
                                let _ = sender.send((fold, a, auc));
                            };
                            task.run(fold, start, &mut send)
                        })
                        .collect::<Result<Vec<FoldOutcome>, TrainError>>()
                })
            })
            .collect();
        drop(sender);
        for (fold, a, auc) in receiver {
            report(fold, a, auc);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TrainError::Fit(
                        "a cross-validation worker stopped unexpectedly".into(),
                    ))
                })
            })
            .collect()
    });
    let outcomes = std::iter::once(Ok(vec![first])).chain(outcomes);
    let mut fold_aucs = vec![vec![f64::NAN; k]; options.alphas.len()];
    let mut first_fold = None;
    for outcome in outcomes {
        for fold in outcome? {
            for (a, auc) in fold.aucs.iter().enumerate() {
                fold_aucs[a][fold.fold] = *auc;
            }
            if fold.kept.is_some() {
                first_fold = fold.kept;
            }
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
    Ok(CvOutcome {
        summary: CvSummary {
            folds: k,
            results,
            chosen_alpha,
        },
        rows: rows.len(),
        first_fold,
    })
}

/// What a fold needs, shared by the workers.
struct FoldTask<'a> {
    spec: &'a FeatureSpec,
    data: &'a CompactDeals,
    rows: &'a [usize],
    folds: &'a [usize],
    won: &'a [bool],
    order: &'a [usize],
    alpha_scale: f64,
    options: &'a ValidTrainOptions,
}

impl FoldTask<'_> {
    /// Fits every alpha on the fold's training rows and scores its validation rows; each
    /// (alpha, AUC) is reported as soon as it is known. The first alpha's fit starts from
    /// `start` (encoders and their fit) when given, laid out for this fold's encoders.
    fn run(
        &self,
        fold: usize,
        start: Option<(&FittedFeatures, &LinearFit)>,
        report: &mut dyn FnMut(usize, f64),
    ) -> Result<FoldOutcome, TrainError> {
        let (mut fit_rows, mut val_rows) = (Vec::new(), Vec::new());
        let (mut fit_won, mut val_won) = (Vec::new(), Vec::new());
        for (i, &row) in self.rows.iter().enumerate() {
            if self.folds[i] == fold {
                val_rows.push(row);
                val_won.push(self.won[i]);
            } else {
                fit_rows.push(row);
                fit_won.push(self.won[i]);
            }
        }
        let encoders = compact::fit_features(self.spec, self.data, &fit_rows);
        let x_fit = compact::design(&encoders, self.data, &fit_rows);
        let n_alphas = self.options.alphas.len();
        let mut aucs = vec![f64::NAN; n_alphas];
        let mut fits: Vec<Option<LinearFit>> = vec![None; n_alphas];
        let mut warm: Option<LinearFit> = start.and_then(|(from, fit)| carry_over(from, fit, &encoders));
        for &a in self.order {
            let alpha = self.options.alphas[a] * self.alpha_scale;
            let fit = fit_from(
                &x_fit,
                &fit_won,
                alpha,
                warm.as_ref(),
                self.options.max_iterations,
            )?;
            let probs = probabilities(&encoders, self.data, &val_rows, &fit);
            let auc = metrics::roc_auc(&probs, &val_won);
            aucs[a] = auc;
            report(a, auc);
            if fold == 0 {
                fits[a] = Some(fit.clone());
            }
            warm = Some(fit);
        }
        Ok(FoldOutcome {
            fold,
            aucs,
            kept: (fold == 0).then_some((encoders, fits)),
        })
    }
}
