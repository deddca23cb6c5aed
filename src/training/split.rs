//! Holdout splits and stratified cross-validation folds.

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
    let missing: Vec<&str> = deals
        .iter()
        .filter(|d| d.closed_at.is_none())
        .map(|d| d.external_id.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(TrainError::MissingClosedAt {
            count: missing.len(),
            example: (*first).to_owned(),
        });
    }
    let mut order: Vec<usize> = (0..deals.len()).collect();
    order.sort_by(|&a, &b| {
        (deals[a].closed_at, &deals[a].external_id).cmp(&(deals[b].closed_at, &deals[b].external_id))
    });
    let k = holdout_size(deals.len(), fraction);
    let mut cut = deals.len() - k;
    // Rows of one deal (its snapshots, adjacent in this order) stay on one side: the cut moves
    // past the deal it would split, or before it when that would empty the holdout.
    let same_deal = |cut: usize| deals[order[cut]].external_id == deals[order[cut - 1]].external_id;
    let mut later = cut;
    while later < deals.len() && same_deal(later) {
        later += 1;
    }
    if later < deals.len() {
        cut = later;
    } else {
        while cut > 1 && same_deal(cut) {
            cut -= 1;
        }
    }
    let mut train = order[..cut].to_vec();
    let mut holdout = order[cut..].to_vec();
    train.sort_unstable();
    holdout.sort_unstable();
    Ok(Split { train, holdout })
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
    let k = k.max(2);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut fold = vec![0; won.len()];
    let mut next = 0;
    for class in [true, false] {
        let mut rows: Vec<usize> = (0..won.len()).filter(|&i| won[i] == class).collect();
        rows.shuffle(&mut rng);
        for row in rows {
            fold[row] = next % k;
            next += 1;
        }
    }
    fold
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
        for fraction in [0.1, 0.2, 0.3, 0.5, 0.9] {
            let split = time_split(&refs, fraction).unwrap();
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
    fn folds_are_balanced_per_class() {
        let won: Vec<bool> = (0..50).map(|i| i % 5 == 0).collect(); // 10 won
        let folds = stratified_folds(&won, 5, 1);
        for f in 0..5 {
            assert_eq!((0..50).filter(|&i| folds[i] == f && won[i]).count(), 2);
            assert_eq!((0..50).filter(|&i| folds[i] == f).count(), 10);
        }
    }
}
