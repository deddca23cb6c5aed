//! Human-readable training report (the `--json` form is `serde_json` of [`TrainedModel`]).

use std::fmt::Write;

use super::TrainedModel;
use crate::model::Metrics;

/// A metric's label and accessor.
type MetricRow = (&'static str, fn(&Metrics) -> f64);

/// Renders a plain-text report: data, alpha selection, holdout vs baseline, calibration,
/// success factors, convergence and warnings.
pub fn render_report(trained: &TrainedModel) -> String {
    let a = &trained.artifact;
    let t = &a.training;
    let mut out = String::new();
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "Model {} (dealscore {}, format {})",
        a.version, a.dealscore_version, a.format_version
    );
    let _ = writeln!(out, "sha256 {}", a.sha256);
    for b in &a.backtests {
        write_backtest(&mut out, b);
    }
    if let Some(plan) = &t.snapshots {
        let seen = match plan {
            crate::features::snapshot_plan::SnapshotPlan::PerDeal(n) => {
                format!("{n} snapshots per closed deal")
            }
            crate::features::snapshot_plan::SnapshotPlan::Ages(ages) => format!(
                "each closed deal at the ages it reached of {} days",
                ages.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let _ = writeln!(
            out,
            "\nLearnt from deals as they stood while open: {seen}{}",
            t.deals_with_history
                .map(|n| format!(", {n} deals with a recorded history before their close"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "\nData: {} {} ({} won, {} lost); {} split, {} training rows, {} holdout rows",
        t.final_rows,
        if t.snapshots.is_some() {
            "snapshots of closed deals"
        } else {
            "closed deals"
        },
        t.won,
        t.lost,
        t.split,
        t.train_rows,
        t.holdout_rows
    );
    if let (Some(first), Some(last)) = (t.first_closed_at, t.last_closed_at) {
        let _ = writeln!(
            out,
            "Closed between {} and {}",
            first.date_naive(),
            last.date_naive()
        );
    }
    if let Some(from) = t.holdout_from {
        let _ = writeln!(out, "Holdout: deals closed from {}", from.date_naive());
    }
    let _ = writeln!(
        out,
        "Features: {} ({} design columns)",
        a.features.features.len(),
        a.features.n_columns
    );

    if trained.cv_rows < t.train_rows {
        let _ = writeln!(
            out,
            "\nAlpha selection ({}-fold stratified CV on a stratified sample of {} of the {} training \
             rows, each alpha scaled to the sample; ROC AUC):",
            a.cv.folds, trained.cv_rows, t.train_rows
        );
    } else {
        let _ = writeln!(
            out,
            "\nAlpha selection ({}-fold stratified CV, ROC AUC):",
            a.cv.folds
        );
    }
    for r in &a.cv.results {
        let mark = if r.alpha == a.cv.chosen_alpha {
            "  <- chosen"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  alpha {:>8}  {:.4} ± {:.4}{mark}",
            r.alpha, r.mean_auc, r.sd_auc
        );
    }

    let _ = writeln!(
        out,
        "\nHoldout metrics            model   baseline (training base rate)"
    );
    let rows: [MetricRow; 9] = [
        ("ROC AUC", |m| m.roc_auc),
        ("PR AUC (avg precision)", |m| m.pr_auc),
        ("log loss", |m| m.log_loss),
        ("Brier", |m| m.brier),
        ("accuracy @ best-F1", |m| m.accuracy),
        ("precision @ best-F1", |m| m.precision),
        ("recall @ best-F1", |m| m.recall),
        ("F1 (best)", |m| m.f1),
        ("top-decile lift", |m| m.top_decile_lift),
    ];
    for (name, get) in rows {
        let _ = writeln!(
            out,
            "  {name:<24} {:>7.4}   {:>7.4}",
            get(&a.holdout_metrics),
            get(&a.baseline_metrics)
        );
    }
    let m = &a.holdout_metrics;
    let _ = writeln!(
        out,
        "  base rate {:.3}; threshold {:.3}; confusion TP {} FP {} TN {} FN {}",
        m.base_rate,
        m.threshold,
        m.confusion.true_positive,
        m.confusion.false_positive,
        m.confusion.true_negative,
        m.confusion.false_negative
    );

    let _ = writeln!(
        out,
        "\nCalibration (holdout)   count  mean predicted  observed win rate"
    );
    for bin in &m.calibration {
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "  [{:.1}, {:.1})  {:>12}  {:>14}  {:>17}",
            bin.lower,
            bin.upper,
            bin.count,
            fmt(bin.mean_predicted),
            fmt(bin.observed_win_rate)
        );
    }

    let _ = writeln!(
        out,
        "\nSuccess factors (importance = sd of log-odds contribution over deals):"
    );
    let mut factors: Vec<_> = a.success_factors.iter().collect();
    factors.sort_by(|x, y| y.importance.total_cmp(&x.importance));
    for f in factors {
        let _ = writeln!(out, "  {:<24} importance {:.3}", f.feature, f.importance);
        let mut levels: Vec<_> = f.levels.iter().collect();
        levels.sort_by(|x, y| y.coefficient.total_cmp(&x.coefficient));
        for l in levels {
            let _ = writeln!(
                out,
                "      {:<28} coef {:>+7.3}  odds x{:.2}",
                l.level, l.coefficient, l.odds_ratio
            );
        }
        if let Some(n) = &f.numeric {
            if let (Some(w), Some(l)) = (&n.overall.won, &n.overall.lost) {
                let _ = writeln!(
                    out,
                    "      won median {:.4} (p25 {:.4}, p75 {:.4}); lost median {:.4}",
                    w.median, w.p25, w.p75, l.median
                );
            }
        }
    }

    let c = &a.convergence;
    let _ = writeln!(
        out,
        "\nConvergence (final fit): {}; gradient norm {:.3e} (tolerance {:.3e}); alpha used {}; max iterations {}",
        if c.converged { "converged" } else { "NOT converged" },
        c.gradient_norm,
        c.gradient_tolerance,
        c.alpha_used,
        c.max_iterations
    );
    if !trained.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &trained.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    let _ = writeln!(out, "\nTrained in {:.2} s", trained.elapsed_seconds);
    let phases: Vec<String> = trained
        .phases
        .iter()
        .map(|(name, seconds)| format!("{name} {seconds:.2} s"))
        .collect();
    if !phases.is_empty() {
        let _ = writeln!(out, "Phases: {}", phases.join(", "));
    }
    out
}

/// The backtest, first in the report: the quality of the scores reps act on.
fn write_backtest(out: &mut String, b: &crate::model::Backtest) {
    let figure = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        out,
        "\nBacktest as of {}: the deals open then, scored as they stood, against how they ended",
        b.as_of.date_naive()
    );
    let _ = writeln!(
        out,
        "  {} open deals ({} won), {} with a recorded history; replayed model fitted on {} rows closed by then",
        b.open_deals, b.won, b.with_history, b.trained_on
    );
    let _ = writeln!(
        out,
        "  ROC AUC {}   Brier {}   mean predicted {} vs won {}",
        figure(b.roc_auc),
        figure(b.brier),
        figure(b.mean_probability),
        figure(b.win_rate)
    );
    for band in b.by_age.iter().filter(|band| band.deals > 0) {
        let ages = match band.to_days {
            Some(to) => format!("{}–{to} days", band.from_days),
            None => format!("{}+ days", band.from_days),
        };
        let _ = writeln!(
            out,
            "  aged {ages:<12} {:>6} deals   predicted {}   won {}",
            band.deals,
            figure(band.mean_probability),
            figure(band.win_rate)
        );
    }
}
