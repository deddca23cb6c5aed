//! Classification metrics for win probabilities (won = positive). Small, self-contained
//! functions, each tested against hand-computed values; linfa lacks most of them.

use crate::model::{CalibrationBin, ConfusionMatrix, Metrics, RocPoint};

/// Probabilities are clipped to [EPS, 1 − EPS] in the log loss, as scikit-learn does.
const LOG_LOSS_EPS: f64 = 1e-15;

/// Row indices sorted by score, highest first (ties keep input order).
fn by_score_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Area under the ROC curve via the rank-sum (Mann–Whitney) statistic, ties counted as half.
/// 0.5 when either class is absent.
pub fn roc_auc(scores: &[f64], won: &[bool]) -> f64 {
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum_pos, mut n_pos) = (0.0, 0usize);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Average 1-based rank of the tie group i..=j.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &row in &order[i..=j] {
            if won[row] {
                rank_sum_pos += rank;
                n_pos += 1;
            }
        }
        i = j + 1;
    }
    let n_neg = n - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return 0.5;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    (rank_sum_pos - p * (p + 1.0) / 2.0) / (p * q)
}

/// Average precision: Σ (R_k − R_{k−1}) · P_k over distinct score thresholds, highest first
/// (scikit-learn's definition). 0 without won deals.
pub fn average_precision(scores: &[f64], won: &[bool]) -> f64 {
    let total_pos = won.iter().filter(|w| **w).count();
    if total_pos == 0 {
        return 0.0;
    }
    let order = by_score_desc(scores);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    let mut i = 0;
    while i < order.len() {
        let threshold = scores[order[i]];
        while i < order.len() && scores[order[i]] == threshold {
            if won[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let recall = tp as f64 / total_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap
}

/// Mean negative log-likelihood of the outcomes.
pub fn log_loss(probs: &[f64], won: &[bool]) -> f64 {
    if probs.is_empty() {
        return 0.0;
    }
    let sum: f64 = probs
        .iter()
        .zip(won)
        .map(|(p, w)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if *w {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    sum / probs.len() as f64
}

/// Mean squared difference between probability and outcome (1 = won).
pub fn brier(probs: &[f64], won: &[bool]) -> f64 {
    if probs.is_empty() {
        return 0.0;
    }
    let sum: f64 = probs
        .iter()
        .zip(won)
        .map(|(p, w)| (p - if *w { 1.0 } else { 0.0 }).powi(2))
        .sum();
    sum / probs.len() as f64
}

/// Confusion matrix when deals with probability ≥ `threshold` are predicted won.
pub fn confusion_at(probs: &[f64], won: &[bool], threshold: f64) -> ConfusionMatrix {
    let mut m = ConfusionMatrix {
        true_positive: 0,
        false_positive: 0,
        true_negative: 0,
        false_negative: 0,
    };
    for (p, w) in probs.iter().zip(won) {
        match (*p >= threshold, *w) {
            (true, true) => m.true_positive += 1,
            (true, false) => m.false_positive += 1,
            (false, false) => m.true_negative += 1,
            (false, true) => m.false_negative += 1,
        }
    }
    m
}

/// F1 of a confusion matrix (0 when undefined).
pub fn f1(m: &ConfusionMatrix) -> f64 {
    let denom = 2 * m.true_positive + m.false_positive + m.false_negative;
    if denom == 0 {
        0.0
    } else {
        2.0 * m.true_positive as f64 / denom as f64
    }
}

/// The threshold (one of the scores) that maximises F1, and that F1. Ties go to the higher
/// threshold. `(0.5, 0.0)` for empty input.
pub fn best_f1_threshold(probs: &[f64], won: &[bool]) -> (f64, f64) {
    let total_pos = won.iter().filter(|w| **w).count();
    let order = by_score_desc(probs);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (0.5, 0.0);
    let mut i = 0;
    while i < order.len() {
        let threshold = probs[order[i]];
        while i < order.len() && probs[order[i]] == threshold {
            if won[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let f = 2.0 * tp as f64 / (tp + fp + total_pos) as f64;
        if f > best.1 {
            best = (threshold, f);
        }
    }
    best
}

/// Ten equal-width probability bins: count, mean predicted, observed win rate.
pub fn calibration_table(probs: &[f64], won: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (p, w) in probs.iter().zip(won) {
        let b = ((p * bins as f64).floor() as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += usize::from(*w);
    }
    sums.into_iter()
        .enumerate()
        .map(|(i, (count, sum_p, n_won))| CalibrationBin {
            lower: i as f64 / bins as f64,
            upper: (i + 1) as f64 / bins as f64,
            count,
            mean_predicted: (count > 0).then(|| sum_p / count as f64),
            observed_win_rate: (count > 0).then(|| n_won as f64 / count as f64),
        })
        .collect()
}

/// Win rate among the top 10 % (rounded up) of deals by score, divided by the overall win rate.
/// Deals tied at the cut-off count with their group's average win rate, so a constant score
/// has lift 1. 0 without won deals.
pub fn top_decile_lift(probs: &[f64], won: &[bool]) -> f64 {
    let n = probs.len();
    let total_pos = won.iter().filter(|w| **w).count();
    if n == 0 || total_pos == 0 {
        return 0.0;
    }
    let k = n.div_ceil(10);
    let order = by_score_desc(probs);
    let cut = probs[order[k - 1]];
    let (mut above, mut above_won, mut tied, mut tied_won) = (0usize, 0usize, 0usize, 0usize);
    for (p, w) in probs.iter().zip(won) {
        if *p > cut {
            above += 1;
            above_won += usize::from(*w);
        } else if *p == cut {
            tied += 1;
            tied_won += usize::from(*w);
        }
    }
    let from_ties = (k - above) as f64 * tied_won as f64 / tied.max(1) as f64;
    ((above_won as f64 + from_ties) / k as f64) / (total_pos as f64 / n as f64)
}

/// Most points kept on a ROC curve (enough for a chart, small in the artifact).
const ROC_POINTS: usize = 101;

/// The ROC curve: one point per distinct score threshold (ties move together), thinned to at
/// most [`ROC_POINTS`] evenly spaced points, always from (0, 0) to (1, 1). Empty when either
/// class is absent.
pub fn roc_curve(scores: &[f64], won: &[bool]) -> Vec<RocPoint> {
    let n_pos = won.iter().filter(|w| **w).count();
    let n_neg = won.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Vec::new();
    }
    let order = by_score_desc(scores);
    let mut points = vec![RocPoint { fpr: 0.0, tpr: 0.0 }];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &row) in order.iter().enumerate() {
        if won[row] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&next| scores[next] != scores[row]);
        if last_of_tie {
            points.push(RocPoint {
                fpr: fp as f64 / n_neg as f64,
                tpr: tp as f64 / n_pos as f64,
            });
        }
    }
    if points.len() <= ROC_POINTS {
        return points;
    }
    let last = points.len() - 1;
    (0..ROC_POINTS)
        .map(|i| points[i * last / (ROC_POINTS - 1)])
        .collect()
}

/// Every holdout metric for one set of probabilities.
pub fn evaluate(probs: &[f64], won: &[bool]) -> Metrics {
    let n = probs.len();
    let n_won = won.iter().filter(|w| **w).count();
    let (threshold, best_f1) = best_f1_threshold(probs, won);
    let confusion = confusion_at(probs, won, threshold);
    let predicted_pos = confusion.true_positive + confusion.false_positive;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Metrics {
        count: n,
        base_rate: ratio(n_won, n),
        roc_auc: roc_auc(probs, won),
        pr_auc: average_precision(probs, won),
        log_loss: log_loss(probs, won),
        brier: brier(probs, won),
        threshold,
        accuracy: ratio(confusion.true_positive + confusion.true_negative, n),
        precision: ratio(confusion.true_positive, predicted_pos),
        recall: ratio(confusion.true_positive, n_won),
        f1: best_f1,
        confusion,
        top_decile_lift: top_decile_lift(probs, won),
        calibration: calibration_table(probs, won, 10),
        roc_curve: roc_curve(probs, won),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand example: scores with outcomes (won = true).
    const P: [f64; 6] = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2];
    const Y: [bool; 6] = [true, false, true, true, false, false];

    #[test]
    fn roc_curve_walks_from_origin_to_corner_and_matches_the_auc() {
        let curve = roc_curve(&P, &Y);
        assert_eq!(curve.first(), Some(&RocPoint { fpr: 0.0, tpr: 0.0 }));
        assert_eq!(curve.last(), Some(&RocPoint { fpr: 1.0, tpr: 1.0 }));
        assert_eq!(curve.len(), 7);
        // Trapezoids under the curve give back the rank-sum AUC.
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
            .sum();
        assert!((area - roc_auc(&P, &Y)).abs() < 1e-12);
        // Ties move together: one step, not two.
        assert_eq!(roc_curve(&[0.5, 0.5], &[true, false]).len(), 2);
        assert!(roc_curve(&[0.1, 0.2], &[true, true]).is_empty());
        let many: Vec<f64> = (0..5000).map(|i| f64::from(i) / 5000.0).collect();
        let won: Vec<bool> = (0..5000).map(|i| i % 3 == 0).collect();
        let thinned = roc_curve(&many, &won);
        assert_eq!(thinned.len(), ROC_POINTS);
        assert_eq!(thinned.last(), Some(&RocPoint { fpr: 1.0, tpr: 1.0 }));
    }

    #[test]
    fn roc_auc_counts_correctly_ordered_pairs() {
        // Won scores {0.9, 0.7, 0.6} vs lost {0.8, 0.4, 0.2}: ordered pairs
        // 0.9>all 3, 0.7>0.4,0.2 (2), 0.6>0.4,0.2 (2) = 7 of 9.
        assert!((roc_auc(&P, &Y) - 7.0 / 9.0).abs() < 1e-12);
        // A tie between a won and a lost deal counts one half.
        assert!((roc_auc(&[0.5, 0.5], &[true, false]) - 0.5).abs() < 1e-12);
        assert!((roc_auc(&[0.6, 0.5, 0.5], &[true, true, false]) - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), 0.5);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // Thresholds: 0.9 → P=1, R=1/3; 0.8 → P=1/2, R=1/3; 0.7 → P=2/3, R=2/3;
        // 0.6 → P=3/4, R=1; rest add no recall. AP = 1/3·1 + 1/3·2/3 + 1/3·3/4.
        let expected = (1.0 + 2.0 / 3.0 + 0.75) / 3.0;
        assert!((average_precision(&P, &Y) - expected).abs() < 1e-12);
    }

    #[test]
    fn log_loss_and_brier_match_hand_computation() {
        let p = [0.8, 0.3];
        let y = [true, false];
        let expected = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        assert!((log_loss(&p, &y) - expected).abs() < 1e-12);
        assert!((brier(&p, &y) - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        // Certain and wrong stays finite thanks to clipping.
        assert!(log_loss(&[0.0], &[true]).is_finite());
    }

    #[test]
    fn best_threshold_maximises_f1() {
        // At 0.6: TP=3, FP=1, FN=0 → F1 = 6/7, the best.
        let (t, f) = best_f1_threshold(&P, &Y);
        assert_eq!(t, 0.6);
        assert!((f - 6.0 / 7.0).abs() < 1e-12);
        let m = confusion_at(&P, &Y, t);
        assert_eq!(
            (
                m.true_positive,
                m.false_positive,
                m.true_negative,
                m.false_negative
            ),
            (3, 1, 2, 0)
        );
        assert!((f1(&m) - f).abs() < 1e-12);
    }

    #[test]
    fn calibration_bins_and_lift() {
        let table = calibration_table(&P, &Y, 10);
        assert_eq!(table.len(), 10);
        assert_eq!(table[9].count, 1); // 0.9
        assert_eq!(table[8].count, 1); // 0.8
        assert_eq!(table[2].observed_win_rate, Some(0.0)); // 0.2, lost
        assert_eq!(table[0].mean_predicted, None);
        assert_eq!(calibration_table(&[1.0], &[true], 10)[9].count, 1);
        // Top decile of 6 = 1 deal (0.9, won): 1 / 0.5 = 2.
        assert!((top_decile_lift(&P, &Y) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_constant_baseline_has_no_ranking_skill() {
        let p = [0.5; 6];
        let m = evaluate(&p, &Y);
        assert_eq!(m.roc_auc, 0.5);
        assert!((m.pr_auc - 0.5).abs() < 1e-12);
        assert!((m.brier - 0.25).abs() < 1e-12);
        assert!((m.top_decile_lift - 1.0).abs() < 1e-12);
    }
}
