//! Holdout splits and stratified cross-validation folds.

use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::TrainError;
use crate::domain::Opportunity;

/// Row indices of the training part and of the holdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows (ascending).
    pub train: Vec<usize>,
    /// Holdout rows (ascending).
    pub holdout: Vec<usize>,
}

/// Number of holdout rows for `n` rows: round(n · fraction), at least 1 and leaving at least 1.
fn holdout_size(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1))
}

/// Time split: deals sorted by (closed_at, external_id); the newest `fraction` is the holdout.
/// Every deal needs `closed_at`.
pub fn time_split(deals: &[&Opportunity], fraction: f64) -> Result<Split, TrainError> {
    let closed_at: Vec<Option<DateTime<Utc>>> = deals.iter().map(|d| d.closed_at).collect();
    time_split_rows(&closed_at, |i| deals[i].external_id.as_str(), fraction)
}

/// [`time_split`] over rows given by their closing times and ids. Rows of one deal (its
/// snapshots, which share its closing time and id) count as one deal and stay on one side: the
/// holdout is the newest `fraction` of the *deals*, with all their rows. A snapshot job then holds
/// out the deals a final-state job on the same data holds out, and its training part is what was
/// known at the holdout's start, where the backtest replays the job.
pub fn time_split_rows<'a>(
    closed_at: &[Option<DateTime<Utc>>],
    id: impl Fn(usize) -> &'a str,
    fraction: f64,
) -> Result<Split, TrainError> {
    let missing: Vec<usize> = (0..closed_at.len()).filter(|&i| closed_at[i].is_none()).collect();
    if let Some(&first) = missing.first() {
        return Err(TrainError::MissingClosedAt {
            count: missing.len(),
            example: id(first).to_owned(),
        });
    }
    let mut order: Vec<usize> = (0..closed_at.len()).collect();
    // Rows read from the database arrive in this order already; the sort then only checks it.
    order.sort_by(|&a, &b| (closed_at[a], id(a)).cmp(&(closed_at[b], id(b))));
    let n = closed_at.len();
    // Where each deal's rows start in that order (a deal's rows are adjacent in it).
    let deal_starts: Vec<usize> = (0..n)
        .filter(|&i| i == 0 || id(order[i]) != id(order[i - 1]))
        .collect();
    let deals = deal_starts.len();
    let cut = if deals >= 2 {
        deal_starts[deals - holdout_size(deals, fraction)]
    } else {
        // One deal cannot be split by deal; its rows are split as rows.
        n - holdout_size(n, fraction)
    };
    let mut train = order[..cut].to_vec();
    let mut holdout = order[cut..].to_vec();
    train.sort_unstable();
    holdout.sort_unstable();
    Ok(Split { train, holdout })
}

/// A random sample of about `size` of `rows`, stratified by outcome (`won` is indexed by row):
/// each outcome keeps its share. Ascending, like `rows`. All of `rows` when `size` is not smaller.
pub fn stratified_sample(rows: &[usize], won: &[bool], size: usize, seed: u64) -> Vec<usize> {
    if size >= rows.len() {
        return rows.to_vec();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5851_f42d_4c95_7f2d);
    let mut sample = Vec::with_capacity(size);
    for class in [true, false] {
        let mut of_class: Vec<usize> = rows.iter().copied().filter(|&r| won[r] == class).collect();
        let keep =
            ((of_class.len() as f64 * size as f64 / rows.len() as f64).round() as usize).min(of_class.len());
        let (chosen, _) = of_class.partial_shuffle(&mut rng, keep);
        sample.extend_from_slice(chosen);
    }
    sample.sort_unstable();
    sample
}

/// Random split stratified by outcome: the same share of won and of lost deals is held out.
pub fn random_split(won: &[bool], fraction: f64, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut holdout = Vec::new();
    for class in [true, false] {
        let mut rows: Vec<usize> = (0..won.len()).filter(|&i| won[i] == class).collect();
        rows.shuffle(&mut rng);
        let k = if rows.len() > 1 {
            holdout_size(rows.len(), fraction)
        } else {
            0
        };
        holdout.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    train.sort_unstable();
    holdout.sort_unstable();
    Split { train, holdout }
}

/// Stratified K-fold assignment: each class is shuffled and dealt round-robin, so every fold
/// gets nearly the same number of won and lost rows. Returns the fold of each row.
pub fn stratified_folds(won: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let groups: Vec<usize> = (0..won.len()).collect();
    grouped_stratified_folds(won, &groups, k, seed)
}

/// Stratified K-fold assignment of groups of rows: every row of a group lands in the same fold,
/// and the groups (not the rows) of each class are shuffled and dealt round-robin. `group[i]`
/// numbers row *i*'s group, counting groups from 0 in order of first appearance; a group takes
/// the class of its first row (the snapshots of one deal share its outcome).
///
/// Training snapshots are several rows of one deal: validated on one of them while trained on
/// another, a fold would measure how well the model remembers a deal instead of how it ranks
/// deals it never saw. With one row per group this is exactly [`stratified_folds`].
pub fn grouped_stratified_folds(won: &[bool], group: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(2);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let groups = group.iter().max().map_or(0, |g| g + 1);
    let mut class_of = vec![None; groups];
    for (row, &g) in group.iter().enumerate() {
        class_of[g].get_or_insert(won[row]);
    }
    let mut fold_of_group = vec![0; groups];
    let mut next = 0;
    for class in [true, false] {
        let mut members: Vec<usize> = (0..groups).filter(|&g| class_of[g] == Some(class)).collect();
        members.shuffle(&mut rng);
        for g in members {
            fold_of_group[g] = next % k;
            next += 1;
        }
    }
    group.iter().map(|&g| fold_of_group[g]).collect()
}

/// Numbers the groups of `keys` (row *i*'s key is `keys(i)`) from 0 in order of first
/// appearance, for [`grouped_stratified_folds`].
pub fn group_numbers<'a>(rows: usize, keys: impl Fn(usize) -> &'a str) -> Vec<usize> {
    let mut numbers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    (0..rows)
        .map(|i| {
            let next = numbers.len();
            *numbers.entry(keys(i)).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Deal, ExternalId, Status};
    use chrono::{TimeZone, Utc};

    fn closed(id: &str, day: u32) -> Opportunity {
        Opportunity {
            external_id: ExternalId::parse(id).expect("test ids are valid"),
            deal: Deal {
                name: None,
                account: None,
                sector: None,
                region: None,
                owner: None,
                contact_role: None,
                amount: None,
                currency: "EUR".into(),
                stage: None,
                status: Status::Won,
                created_at: None,
                closed_at: Some(Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap()),
                interaction_count: None,
                response_hours: None,
                last_activity_at: None,
                attributes: Default::default(),
                cycle_days: None,
            },
        }
    }

    #[test]
    fn time_split_holds_out_the_newest_deals_reproducibly() {
        let deals: Vec<_> = [("e", 5), ("a", 1), ("d", 9), ("b", 9), ("c", 3)]
            .iter()
            .map(|(id, day)| closed(id, *day))
            .collect();
        let refs: Vec<_> = deals.iter().collect();
        let split = time_split(&refs, 0.4).unwrap();
        // Newest two: day 9 "b" (index 3) and day 9 "d" (index 2); ties ordered by id.
        assert_eq!(split.holdout, vec![2, 3]);
        assert_eq!(split.train, vec![0, 1, 4]);
        assert_eq!(time_split(&refs, 0.4).unwrap(), split);
    }

    #[test]
    fn a_deals_snapshots_stay_on_one_side_of_the_time_split() {
        // Three snapshots each of four deals, in no particular order.
        let deals: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .zip([1, 2, 3, 4])
            .flat_map(|(id, day)| std::iter::repeat_n(closed(id, day), 3))
            .rev()
            .collect();
        let refs: Vec<_> = deals.iter().collect();
        let single_rows: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .zip([1, 2, 3, 4])
            .map(|(id, day)| closed(id, day))
            .collect();
        let single_refs: Vec<_> = single_rows.iter().collect();
        for fraction in [0.1, 0.2, 0.3, 0.5, 0.9] {
            let split = time_split(&refs, fraction).unwrap();
            // The same deals are held out as when each deal is one row.
            let by_deal = time_split(&single_refs, fraction).unwrap();
            let held_out = |rows: &[usize], of: &[Opportunity]| -> std::collections::BTreeSet<String> {
                rows.iter().map(|&i| of[i].external_id.to_string()).collect()
            };
            assert_eq!(
                held_out(&split.holdout, &deals),
                held_out(&by_deal.holdout, &single_rows),
                "{fraction}"
            );
            let side = |rows: &[usize]| -> std::collections::BTreeSet<String> {
                rows.iter().map(|&i| deals[i].external_id.to_string()).collect()
            };
            let (train, holdout) = (side(&split.train), side(&split.holdout));
            assert!(train.is_disjoint(&holdout), "{fraction}: {train:?} / {holdout:?}");
            assert!(!holdout.is_empty() && !train.is_empty(), "{fraction}");
            assert_eq!(split.train.len() + split.holdout.len(), 12);
        }
    }

    #[test]
    fn a_time_split_of_snapshots_holds_out_the_newest_deals_whatever_their_row_counts() {
        // Two old deals seen five times each, three new ones seen once: 40 % of the deals is the
        // two newest, though they are far fewer than 40 % of the rows.
        let deals: Vec<_> = [("a", 1, 5), ("b", 2, 5), ("c", 3, 1), ("d", 4, 1), ("e", 5, 1)]
            .iter()
            .flat_map(|(id, day, rows)| std::iter::repeat_n(closed(id, *day), *rows))
            .collect();
        let refs: Vec<_> = deals.iter().collect();
        let split = time_split(&refs, 0.4).unwrap();
        assert_eq!(split.holdout, vec![11, 12]);
        assert_eq!(split.train, (0..11).collect::<Vec<_>>());
    }

    #[test]
    fn time_split_needs_closed_at() {
        let mut deal = closed("x", 1);
        deal.closed_at = None;
        let other = closed("y", 2);
        let err = time_split(&[&deal, &other], 0.2).unwrap_err();
        assert!(err.to_string().contains("random split"), "{err}");
    }

    #[test]
    fn random_split_is_stratified_and_seeded() {
        let won: Vec<bool> = (0..100).map(|i| i % 4 == 0).collect(); // 25 won
        let split = random_split(&won, 0.2, 7);
        assert_eq!(split.holdout.len(), 20);
        assert_eq!(split.holdout.iter().filter(|&&i| won[i]).count(), 5);
        assert_eq!(random_split(&won, 0.2, 7), split);
        assert_ne!(random_split(&won, 0.2, 8), split);
    }

    #[test]
    fn a_stratified_sample_keeps_each_outcome_share() {
        let won: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect(); // 250 won
        let rows: Vec<usize> = (0..1000).filter(|i| i % 10 != 3).collect(); // 900 rows, 250 won
        let sample = stratified_sample(&rows, &won, 300, 9);
        assert_eq!(sample.len(), 300);
        assert_eq!(sample.iter().filter(|&&r| won[r]).count(), 83); // 250 · 300 / 900
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        assert!(sample.iter().all(|r| rows.contains(r)));
        assert_eq!(stratified_sample(&rows, &won, 300, 9), sample);
        assert_eq!(stratified_sample(&rows, &won, 5000, 9), rows);
    }

    #[test]
    fn a_deals_snapshots_share_a_fold_and_single_rows_fold_as_before() {
        // 40 deals of 1–4 snapshots each, every fourth deal won.
        let mut keys = Vec::new();
        let mut won = Vec::new();
        for deal in 0..40 {
            for _ in 0..(1 + deal % 4) {
                keys.push(format!("D-{deal}"));
                won.push(deal % 4 == 0);
            }
        }
        let group = group_numbers(keys.len(), |i| keys[i].as_str());
        let folds = grouped_stratified_folds(&won, &group, 5, 3);
        for i in 0..keys.len() {
            for j in 0..keys.len() {
                if keys[i] == keys[j] {
                    assert_eq!(folds[i], folds[j], "{} split across folds", keys[i]);
                }
            }
        }
        // Deals, not rows, are dealt: each fold gets 2 of the 10 won deals and 8 deals in all.
        for f in 0..5 {
            let deals_in = |only_won: bool| {
                let mut seen: Vec<&str> = (0..keys.len())
                    .filter(|&i| folds[i] == f && (!only_won || won[i]))
                    .map(|i| keys[i].as_str())
                    .collect();
                seen.dedup();
                seen.len()
            };
            assert_eq!((deals_in(true), deals_in(false)), (2, 8));
        }
        // One row per deal: the same folds as the plain stratified assignment.
        let won: Vec<bool> = (0..50).map(|i| i % 3 == 0).collect();
        let single: Vec<usize> = (0..50).collect();
        assert_eq!(
            grouped_stratified_folds(&won, &single, 5, 7),
            stratified_folds(&won, 5, 7)
        );
    }

    #[test]
    fn folds_are_balanced_per_class() {
        let won: Vec<bool> = (0..50).map(|i| i % 5 == 0).collect(); // 10 won
        let folds = stratified_folds(&won, 5, 1);
        for f in 0..5 {
            assert_eq!((0..50).filter(|&i| folds[i] == f && won[i]).count(), 2);
            assert_eq!((0..50).filter(|&i| folds[i] == f).count(), 10);
        }
    }
}
