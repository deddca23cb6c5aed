//! Rebuilds a model's holdout from deals: the same split `train` made, from the split settings
//! recorded in the artifact.

use crate::domain::{Opportunity, Status};
use crate::model::TrainingSummary;
use crate::training::split::{random_split, time_split};

/// The holdout deals of a model trained on `deals` with `training`'s split settings, or `None`
/// when the split cannot be rebuilt (a time split over deals without closing dates, an unknown
/// split name). `deals` must be in the order training saw them (the database returns closed
/// deals ordered by closing time and id, which is what the server and `dealscore-train` train on).
pub fn holdout_deals<'a>(
    deals: &'a [Opportunity],
    training: &TrainingSummary,
) -> Option<Vec<&'a Opportunity>> {
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    if closed.len() < 2 {
        return None;
    }
    let split = match training.split.as_str() {
        "time" => time_split(&closed, training.test_fraction).ok()?,
        "random" => {
            let won: Vec<bool> = closed.iter().map(|d| d.status == Status::Won).collect();
            random_split(&won, training.test_fraction, training.seed)
        }
        _ => return None,
    };
    Some(split.holdout.iter().map(|&i| closed[i]).collect())
}
