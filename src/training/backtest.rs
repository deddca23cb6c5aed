//! The backtest: the training method replayed at a past instant T. A model is fitted on the deals
//! closed by T (what was known then, with the alpha the job chose), then scores the deals that
//! were open at T, as they stood at T, and the scores are compared with how those deals ended.
//! The closed-deal holdout measures final states; this measures the scores reps act on.

use chrono::{DateTime, Utc};

use super::compact::{self, CompactDeals};
use super::fit::{design_matrix, fit_large, LinearFit};
use super::metrics::{brier, calibration_table, roc_auc};
use super::split::time_split_rows;
use super::{fit_rows, FitSettings, TrainError, WarmStart};
use crate::domain::{FieldChange, Opportunity, Status, Touching};
use crate::features::as_of::{as_of, AsOfRules};
use crate::features::{FeatureSpec, FittedFeatures};
use crate::model::{AgeBand, Backtest};

/// Age bands (days at T, lower bounds) of the calibration by age: young deals first, since a
/// model that learns from final states writes them off.
pub const AGE_BANDS: [u32; 4] = [0, 21, 60, 120];

/// Fewest closed deals of each outcome known by T for a backtest model to be fitted.
pub const MIN_OUTCOMES: usize = 5;

/// The backtest's instant for a time split whose holdout starts at `holdout_from` (the closing
/// time of its first deal): the millisecond before, the unit times are stored in. What was known
/// then is the training part itself, every deal of which closed before, so the job's fit on it
/// is the replay's fit (no second fit); the deals closing at `holdout_from` count among those
/// open then, as the holdout's other deals do.
pub fn instant_before(holdout_from: DateTime<Utc>) -> DateTime<Utc> {
    holdout_from - chrono::Duration::milliseconds(1)
}

/// Where a backtest looks from: the instant before the earliest close of the time split's
/// holdout over rows given by their closing times and ids ([`time_split_rows`],
/// [`instant_before`]); `None` when fewer than two rows or rows that cannot be split in time.
pub fn holdout_start<'a>(
    closed_at: &[Option<DateTime<Utc>>],
    id: impl Fn(usize) -> &'a str,
    test_fraction: f64,
) -> Option<DateTime<Utc>> {
    if closed_at.len() < 2 {
        return None;
    }
    let split = time_split_rows(closed_at, id, test_fraction).ok()?;
    split
        .holdout
        .iter()
        .filter_map(|&i| closed_at[i])
        .min()
        .map(instant_before)
}

/// A deal that was open at the backtest instant.
#[derive(Debug, Clone)]
pub struct OpenAtInstant {
    /// The deal as it stood at T (closing fields hidden, measures as of T).
    pub deal: Opportunity,
    /// Its age at T in days, when its creation date is known.
    pub age_days: Option<f64>,
    /// How it ended.
    pub won: bool,
    /// Whether a recorded field history or activities before T shaped it.
    pub with_history: bool,
}

impl OpenAtInstant {
    /// Whether `deal` was open at `at`: created by then, closed after.
    pub fn was_open(deal: &Opportunity, at: DateTime<Utc>) -> bool {
        deal.created_at.is_some_and(|c| c <= at) && deal.closed_at.is_some_and(|c| c > at)
    }

    /// `deal` (closed since) as it stood at `at`, rebuilt from its recorded `history` and
    /// `activities` by the builder scoring uses.
    pub fn rebuild(
        deal: &Opportunity,
        history: &[FieldChange],
        activities: &[impl Touching],
        at: DateTime<Utc>,
        rules: &AsOfRules,
    ) -> OpenAtInstant {
        let with_history = history.iter().any(|c| c.changed_at <= at)
            || activities.iter().any(|a| a.touch().occurred_at <= at);
        let then = as_of(&deal.deal, history, activities, at, rules);
        OpenAtInstant {
            deal: Opportunity {
                external_id: deal.external_id.clone(),
                deal: then.deal,
            },
            age_days: then.age_days,
            won: deal.status == Status::Won,
            with_history,
        }
    }
}

/// Replays training at `at`: fits on the deals of `closed` that closed by `at`, scores `open`
/// as of `at`. `None` when too few outcomes were known by then to fit (fewer than
/// [`MIN_OUTCOMES`] won or lost).
pub fn backtest(
    closed: &[&Opportunity],
    open: &[OpenAtInstant],
    at: DateTime<Utc>,
    spec: &FeatureSpec,
    alpha: f64,
    max_iterations: u64,
) -> Result<Option<Backtest>, TrainError> {
    let known: Vec<&Opportunity> = closed
        .iter()
        .copied()
        .filter(|d| d.status.is_closed() && d.closed_at.is_some_and(|c| c <= at))
        .collect();
    let known_won: Vec<bool> = known.iter().map(|d| d.status == Status::Won).collect();
    if !enough_outcomes(&known_won) {
        return Ok(None);
    }
    // Encoders, bins included, are fitted on what was known at T, like the fit.
    let features = FittedFeatures::fit(spec, &known, at);
    let fit = fit_large(
        &design_matrix(&features, &known, at),
        &known_won,
        alpha,
        max_iterations,
    )?;
    Ok(Some(score_open(&features, &fit, open, at, known.len())))
}

/// [`backtest`] on closed deals (or their snapshots) already read into compact columns: the
/// training job replays on the rows it trained on, closed by `at`, so the backtest needs no
/// second read of them. A closed deal reads the same whatever "now" is, so the encoders and the
/// design matrix are those [`backtest`] builds from the same deals.
///
/// With `warm` (the job's fit on its training part, which holds nearly the same rows when `at`
/// is the holdout's start) the fit starts from it instead of from a subsample's fit; it then
/// reaches the same optimum, to the solver's tolerance, in a few iterations.
pub fn backtest_compact(
    data: &CompactDeals,
    open: &[OpenAtInstant],
    at: DateTime<Utc>,
    spec: &FeatureSpec,
    fit: &FitSettings,
    warm: Option<&WarmStart>,
) -> Result<Option<Backtest>, TrainError> {
    let known = known_by(data, at);
    let won = data.won();
    let known_won: Vec<bool> = known.iter().map(|&r| won[r]).collect();
    if !enough_outcomes(&known_won) {
        return Ok(None);
    }
    let features = compact::fit_features(spec, data, &known);
    // When `at` is the start of a time split's holdout, what was known then is usually the
    // training part itself (unless deals closed at the very instant the holdout starts): the
    // job has already solved this fit.
    if let Some(same) = warm.and_then(|w| w.same_fit(&known, &features, fit)) {
        return Ok(Some(score_open(&features, same, open, at, known.len())));
    }
    let warm = warm.and_then(|w| w.for_features(&features));
    let replayed = fit_rows(&features, data, &known, fit, warm.as_ref())?;
    Ok(Some(score_open(&features, &replayed, open, at, known.len())))
}

/// The rows of `data` whose outcome was known by `at` (closed by then), ascending.
fn known_by(data: &CompactDeals, at: DateTime<Utc>) -> Vec<usize> {
    let closed_at = data.closed_at();
    (0..data.len())
        .filter(|&r| closed_at[r].is_some_and(|c| c <= at))
        .collect()
}

/// Whether both outcomes were known [`MIN_OUTCOMES`] times or more.
fn enough_outcomes(won: &[bool]) -> bool {
    let n_won = won.iter().filter(|w| **w).count();
    n_won >= MIN_OUTCOMES && won.len() - n_won >= MIN_OUTCOMES
}

/// Scores the deals open at `at`, as they stood then, with the replayed fit.
fn score_open(
    features: &FittedFeatures,
    fit: &LinearFit,
    open: &[OpenAtInstant],
    at: DateTime<Utc>,
    trained_on: usize,
) -> Backtest {
    let rows: Vec<&Opportunity> = open.iter().map(|o| &o.deal).collect();
    let probabilities = fit.probabilities(&design_matrix(features, &rows, at));
    let won: Vec<bool> = open.iter().map(|o| o.won).collect();
    let ages: Vec<Option<f64>> = open.iter().map(|o| o.age_days).collect();
    summarise(at, trained_on, &probabilities, &won, &ages, open)
}

/// The backtest's figures from the probabilities at T and the outcomes.
fn summarise(
    at: DateTime<Utc>,
    trained_on: usize,
    probabilities: &[f64],
    won: &[bool],
    ages: &[Option<f64>],
    open: &[OpenAtInstant],
) -> Backtest {
    let n = probabilities.len();
    let n_won = won.iter().filter(|w| **w).count();
    let mean = |values: &mut dyn Iterator<Item = f64>| -> Option<f64> {
        let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        (count > 0).then(|| sum / count as f64)
    };
    Backtest {
        as_of: at,
        trained_on,
        open_deals: n,
        won: n_won,
        with_history: open.iter().filter(|o| o.with_history).count(),
        roc_auc: (n_won > 0 && n_won < n).then(|| roc_auc(probabilities, won)),
        brier: (n > 0).then(|| brier(probabilities, won)),
        mean_probability: mean(&mut probabilities.iter().copied()),
        win_rate: (n > 0).then(|| n_won as f64 / n as f64),
        calibration: calibration_table(probabilities, won, 10),
        by_age: age_bands(probabilities, won, ages),
    }
}

/// Calibration per [`AGE_BANDS`] band; deals of unknown age are left out.
fn age_bands(probabilities: &[f64], won: &[bool], ages: &[Option<f64>]) -> Vec<AgeBand> {
    AGE_BANDS
        .iter()
        .enumerate()
        .map(|(i, &from)| {
            let to = AGE_BANDS.get(i + 1).copied();
            let inside = |age: f64| age >= f64::from(from) && to.is_none_or(|t| age < f64::from(t));
            let members: Vec<usize> = (0..probabilities.len())
                .filter(|&k| ages[k].is_some_and(inside))
                .collect();
            let deals = members.len();
            let share = |value: &dyn Fn(usize) -> f64| -> Option<f64> {
                (deals > 0).then(|| members.iter().map(|&k| value(k)).sum::<f64>() / deals as f64)
            };
            AgeBand {
                from_days: from,
                to_days: to,
                deals,
                mean_probability: share(&|k| probabilities[k]),
                win_rate: share(&|k| f64::from(u8::from(won[k]))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, GeneratorConfig};
    use crate::training::fixtures::generated;

    use crate::domain::NO_ACTIVITIES;

    fn any_deal() -> Opportunity {
        generate(&GeneratorConfig {
            deals: 1,
            ..GeneratorConfig::default()
        })
        .opportunities
        .remove(0)
    }

    /// `deals` generated deals (seed `seed`) in compact columns, trained on as the job trains
    /// (default spec, time split): the history, the spec, the columns, the model and its run.
    fn trained_on_columns(
        deals: usize,
        seed: u64,
    ) -> (
        crate::generate::SyntheticHistory,
        FeatureSpec,
        CompactDeals,
        crate::training::TrainedModel,
        crate::training::CompactRun,
    ) {
        let (config, history) = generated(deals, seed);
        let spec = FeatureSpec::default_spec();
        let (data, trained, run) = trained_on_rows(&history.opportunities, &spec, config.end);
        (history, spec, data, trained, run)
    }

    /// `rows` (closed deals or their snapshots, in the order the job reads them) in compact
    /// columns, trained on with `spec` as the job trains at `now`: the columns, the model and
    /// its run.
    fn trained_on_rows(
        rows: &[Opportunity],
        spec: &FeatureSpec,
        now: DateTime<Utc>,
    ) -> (
        CompactDeals,
        crate::training::TrainedModel,
        crate::training::CompactRun,
    ) {
        let data = CompactDeals::from_deals(rows, &compact::sources_for(&[spec]), now);
        let options = crate::training::TrainOptions {
            now,
            ..Default::default()
        }
        .check()
        .unwrap();
        let (trained, run) = crate::training::train_compact(&data, spec, &options, &mut |_| {}).unwrap();
        (data, trained, run)
    }

    /// Three snapshots of each closed deal of `history` (no recorded history), in the order the
    /// job reads them: by closing time, then id.
    fn three_snapshots_each(history: &crate::generate::SyntheticHistory) -> Vec<Opportunity> {
        use crate::features::as_of::AsOfRules;
        use crate::training::snapshots::{snapshots, SnapshotPlan};
        let mut rows: Vec<Opportunity> = (history.opportunities.iter())
            .filter(|o| o.status.is_closed())
            .flat_map(|o| {
                snapshots(
                    o,
                    &[],
                    &NO_ACTIVITIES,
                    &SnapshotPlan::PerDeal(3),
                    &AsOfRules::default(),
                )
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.closed_at, a.external_id.as_str()).cmp(&(b.closed_at, b.external_id.as_str()))
        });
        rows
    }

    /// The closed deals of `history`, and the instant by which `share` of them had closed.
    fn closed_and_instant(
        history: &crate::generate::SyntheticHistory,
        share: (usize, usize),
    ) -> (Vec<&Opportunity>, DateTime<Utc>) {
        let closed: Vec<&Opportunity> = history
            .opportunities
            .iter()
            .filter(|d| d.status.is_closed())
            .collect();
        let mut closes: Vec<DateTime<Utc>> = closed.iter().filter_map(|d| d.closed_at).collect();
        closes.sort_unstable();
        let at = closes[closes.len() * share.0 / share.1];
        (closed, at)
    }

    /// The deals among `deals` that were open at `at`, rebuilt as they stood then.
    fn open_at<'a>(
        deals: impl IntoIterator<Item = &'a Opportunity>,
        at: DateTime<Utc>,
    ) -> Vec<OpenAtInstant> {
        deals
            .into_iter()
            .filter(|d| d.status.is_closed() && OpenAtInstant::was_open(d, at))
            .map(|d| OpenAtInstant::rebuild(d, &[], &NO_ACTIVITIES, at, &AsOfRules::default()))
            .collect()
    }

    fn open(age: f64, won: bool) -> OpenAtInstant {
        OpenAtInstant {
            deal: any_deal(),
            age_days: Some(age),
            won,
            with_history: age < 30.0,
        }
    }

    #[test]
    fn age_bands_split_deals_by_their_age_at_the_instant() {
        let probabilities = [0.1, 0.3, 0.5, 0.7, 0.9];
        let won = [false, true, false, true, true];
        let ages = [Some(2.0), Some(20.9), Some(21.0), Some(500.0), None];
        let bands = age_bands(&probabilities, &won, &ages);
        assert_eq!(bands.len(), 4);
        assert_eq!(
            (bands[0].from_days, bands[0].to_days, bands[0].deals),
            (0, Some(21), 2)
        );
        assert!((bands[0].mean_probability.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(bands[0].win_rate, Some(0.5));
        assert_eq!((bands[1].deals, bands[1].win_rate), (1, Some(0.0)));
        assert_eq!((bands[2].deals, bands[2].mean_probability), (0, None));
        assert_eq!(
            (bands[3].to_days, bands[3].deals, bands[3].win_rate),
            (None, 1, Some(1.0))
        );
    }

    #[test]
    fn the_summary_counts_outcomes_and_leaves_auc_out_with_one_outcome() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let deals = [open(5.0, true), open(50.0, false), open(90.0, true)];
        let ages = [Some(5.0), Some(50.0), Some(90.0)];
        let summary = summarise(at, 40, &[0.8, 0.2, 0.6], &[true, false, true], &ages, &deals);
        assert_eq!(
            (
                summary.open_deals,
                summary.won,
                summary.with_history,
                summary.trained_on
            ),
            (3, 2, 1, 40)
        );
        assert_eq!(summary.roc_auc, Some(1.0));
        assert!((summary.brier.unwrap() - (0.04 + 0.04 + 0.16) / 3.0).abs() < 1e-12);
        let all_won = summarise(at, 40, &[0.8], &[true], &[Some(5.0)], &deals[..1]);
        assert_eq!(all_won.roc_auc, None);
        assert_eq!(all_won.win_rate, Some(1.0));
    }

    #[test]
    fn a_replay_fits_on_what_was_closed_by_the_instant_and_scores_what_was_open() {
        let (_, history) = generated(3000, 5);
        let (closed, at) = closed_and_instant(&history, (3, 4));
        let open = open_at(closed.iter().copied(), at);
        assert!(open.len() > 50, "{}", open.len());
        let spec = FeatureSpec::default_spec();
        let replay = backtest(&closed, &open, at, &spec, 1.0, 200)
            .unwrap()
            .expect("enough outcomes");
        assert_eq!(
            replay.trained_on,
            closed
                .iter()
                .filter(|d| d.closed_at.is_some_and(|c| c <= at))
                .count()
        );
        assert_eq!(replay.open_deals, open.len());
        assert_eq!(replay.by_age.iter().map(|b| b.deals).sum::<usize>(), open.len());
        let auc = replay.roc_auc.expect("both outcomes");
        assert!(auc > 0.5 && auc <= 1.0, "{auc}");
        // Before any deal closed there is nothing to learn from.
        let first = closed.iter().filter_map(|d| d.closed_at).min().unwrap() - chrono::Duration::days(1);
        assert!(backtest(&closed, &open, first, &spec, 1.0, 200)
            .unwrap()
            .is_none());
    }

    /// The replay on `data` at `at`, every row read at `alpha` (200 iterations), from `warm`.
    fn replay_on(
        data: &CompactDeals,
        open: &[OpenAtInstant],
        at: DateTime<Utc>,
        spec: &FeatureSpec,
        alpha: f64,
        warm: Option<&WarmStart>,
    ) -> Option<Backtest> {
        backtest_compact(data, open, at, spec, &FitSettings::every_row(alpha, 200), warm).unwrap()
    }

    #[test]
    fn a_replay_on_compact_columns_equals_the_replay_on_the_deals() {
        let (config, history) = generated(3000, 9);
        let (closed, at) = closed_and_instant(&history, (4, 5));
        let open = open_at(closed.iter().copied(), at);
        let spec = FeatureSpec::default_spec();
        // Read at the generator's end, long after `at`: closed deals read the same at any time.
        let data = CompactDeals::from_deals(
            &history.opportunities,
            &compact::sources_for(&[&spec]),
            config.end,
        );
        let on_deals = backtest(&closed, &open, at, &spec, 1.0, 200).unwrap();
        let on_columns = replay_on(&data, &open, at, &spec, 1.0, None);
        assert!(on_deals.is_some());
        assert_eq!(on_columns, on_deals);
        let first = closed.iter().filter_map(|d| d.closed_at).min().unwrap() - chrono::Duration::days(1);
        assert!(replay_on(&data, &open, first, &spec, 1.0, None).is_none());
    }

    #[test]
    fn a_replay_just_before_the_holdout_scores_with_the_training_part_fit_as_a_refit_would() {
        let (history, spec, data, trained, run) = trained_on_columns(4000, 13);
        let at = instant_before(trained.artifact.training.holdout_from.expect("time split"));
        let alpha = trained.artifact.cv.chosen_alpha;
        let warm = run.holdout_fit.expect("a fit on the training part");
        let known = known_by(&data, at);
        let features = compact::fit_features(&spec, &data, &known);
        assert!(
            warm.same_fit(&known, &features, &FitSettings::every_row(alpha, 200))
                .is_some(),
            "what was known then is the training part"
        );
        let open = open_at(&history.opportunities, at);
        let reused = replay_on(&data, &open, at, &spec, alpha, Some(&warm)).expect("enough outcomes");
        // The same warm start without its rows: the replay fits again, from the same weights.
        let unknown_rows = WarmStart {
            rows: Vec::new(),
            ..warm.clone()
        };
        let refitted =
            replay_on(&data, &open, at, &spec, alpha, Some(&unknown_rows)).expect("enough outcomes");
        assert_eq!(reused.trained_on, trained.artifact.training.train_rows);
        assert_eq!(
            (reused.trained_on, reused.open_deals, reused.won),
            (refitted.trained_on, refitted.open_deals, refitted.won)
        );
        for (r, f) in [
            (reused.roc_auc, refitted.roc_auc),
            (reused.brier, refitted.brier),
            (reused.mean_probability, refitted.mean_probability),
        ] {
            let (r, f) = (r.unwrap(), f.unwrap());
            assert!((r - f).abs() < 1e-6, "{r} vs {f}");
        }
    }

    #[test]
    fn a_replay_warm_started_from_the_training_part_fit_reaches_the_same_scores() {
        let (history, spec, data, trained, run) = trained_on_columns(4000, 11);
        let at = trained.artifact.training.holdout_from.expect("time split");
        let alpha = trained.artifact.cv.chosen_alpha;
        let open = open_at(&history.opportunities, at);
        let cold = replay_on(&data, &open, at, &spec, alpha, None).expect("enough outcomes");
        let warm =
            replay_on(&data, &open, at, &spec, alpha, run.holdout_fit.as_ref()).expect("enough outcomes");
        assert_eq!(
            (warm.trained_on, warm.open_deals, warm.won),
            (cold.trained_on, cold.open_deals, cold.won)
        );
        let (w, c) = (warm.roc_auc.unwrap(), cold.roc_auc.unwrap());
        assert!((w - c).abs() < 1e-3, "{w} vs {c}");
        let (w, c) = (warm.mean_probability.unwrap(), cold.mean_probability.unwrap());
        assert!((w - c).abs() < 1e-3, "{w} vs {c}");
    }

    /// Training drops a feature no closed deal has a value for (snapshots of deals without
    /// activities have no interactions): replayed with the features the model kept, the backtest
    /// just before the holdout is the job's own fit, which the replay then reuses.
    #[test]
    fn a_replay_with_the_models_features_reuses_the_fit_when_training_dropped_an_empty_one() {
        let (config, history) = generated(3000, 5);
        let asked = FeatureSpec::default_spec().for_snapshots();
        let rows = three_snapshots_each(&history);
        let (data, trained, run) = trained_on_rows(&rows, &asked, config.end);
        let kept = trained.artifact.features.spec().unwrap();
        assert!(
            kept.features().len() < asked.features().len(),
            "an empty feature was dropped"
        );
        let at = instant_before(trained.artifact.training.holdout_from.expect("time split"));
        let known = known_by(&data, at);
        let warm = run.holdout_fit.expect("a fit on the training part");
        let alpha = trained.artifact.cv.chosen_alpha;
        let with_kept = compact::fit_features(&kept, &data, &known);
        let settings = FitSettings::every_row(alpha, 200);
        assert!(warm.same_fit(&known, &with_kept, &settings).is_some());
        let with_asked = compact::fit_features(&asked, &data, &known);
        assert!(warm.same_fit(&known, &with_asked, &settings).is_none());
    }

    /// A job whose fits read a sample of their rows (large data) scales alpha to the sample: the
    /// backtest just before the holdout still recognises the job's fit on its training part as
    /// the very fit it would make, and reuses it, as long as it reads the same sample.
    #[test]
    fn a_replay_reuses_the_training_part_fit_when_the_fits_read_a_sample() {
        use crate::training::{FitSample, MIN_FIT_SAMPLE_ROWS};
        let (config, history) = generated(6000, 17);
        let spec = FeatureSpec::default_spec();
        let rows = three_snapshots_each(&history);
        let data = CompactDeals::from_deals(&rows, &compact::sources_for(&[&spec]), config.end);
        let options = crate::training::TrainOptions {
            now: config.end,
            fit_sample: MIN_FIT_SAMPLE_ROWS,
            ..Default::default()
        }
        .check()
        .unwrap();
        let (trained, run) = crate::training::train_compact(&data, &spec, &options, &mut |_| {}).unwrap();
        let at = instant_before(trained.artifact.training.holdout_from.expect("time split"));
        let known = known_by(&data, at);
        assert!(
            known.len() > MIN_FIT_SAMPLE_ROWS,
            "{} rows: the fits read them all",
            known.len()
        );
        let warm = run.holdout_fit.expect("a fit on the training part");
        let alpha = trained.artifact.cv.chosen_alpha;
        // The fit read a sample, with alpha scaled to it.
        assert!(
            warm.fit.convergence.alpha_used < alpha,
            "{:?}",
            warm.fit.convergence
        );
        // The features the model kept (snapshots without activities have no interactions).
        let kept = trained.artifact.features.spec().unwrap();
        let features = compact::fit_features(&kept, &data, &known);
        let settings = options.fit_settings(alpha);
        assert!(warm.fit.convergence.converged, "{:?}", warm.fit.convergence);
        let reused = warm
            .same_fit(&known, &features, &settings)
            .expect("the job's own fit");
        assert_eq!(reused, &warm.fit);
        // Another sample, or every row, is another problem.
        let other_seed = FitSettings {
            sample: FitSample {
                seed: settings.sample.seed + 1,
                ..settings.sample
            },
            ..settings
        };
        assert!(warm.same_fit(&known, &features, &other_seed).is_none());
        assert!(warm
            .same_fit(
                &known,
                &features,
                &FitSettings::every_row(alpha, settings.max_iterations)
            )
            .is_none());
        assert!(warm
            .same_fit(&known, &features, &options.fit_settings(alpha * 2.0))
            .is_none());
    }
}
