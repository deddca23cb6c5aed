//! Training snapshots: a closed deal seen at several instants of its open life, each labelled with
//! how it ended. Open deals are what gets scored, so the model learns from deals as they stood
//! while open — their age then, the activities so far, the fields as they were — rather than
//! from their final state (docs/scoring-method.md).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::domain::history::{tracked_value, Previous};
use crate::domain::{FieldChange, Opportunity, Touching};
use crate::features::as_of::{as_of, AsOf, AsOfRules, Timeline};
pub use crate::features::snapshot_plan::{instants, SnapshotPlan, MAX_AGES, MAX_PER_DEAL};

/// Snapshots per closed deal by default: every deal weighs the same.
pub const DEFAULT_PER_DEAL: usize = 3;

/// The ages (days) a training job sees each closed deal at when nothing else is asked and the
/// deals have timestamped activities: the ages open deals are scored at, up to a year, every two
/// weeks or so until five months (the oldest open deals are the long ones, which lose more:
/// sparse old ages over-estimated them; docs/scoring-method.md).
pub const DEFAULT_AGES: [u32; 16] = [
    0, 7, 14, 21, 30, 45, 60, 75, 90, 105, 120, 135, 150, 180, 240, 365,
];

/// The snapshots of one closed deal: the deal as it stood at each instant of `plan`, with its
/// outcome and close date kept (the label, and the time split keeps a deal's snapshots on one
/// side) and its age then as its cycle. A deal without both dates, or closed the instant it was
/// created, cannot be placed in time: its final state stands for it (as many times as a
/// per-deal count, so it weighs as much as the others; once with ages).
pub fn snapshots<A: Touching>(
    deal: &Opportunity,
    history: &[FieldChange],
    activities: &[A],
    plan: &SnapshotPlan,
    rules: &AsOfRules,
) -> Vec<Opportunity> {
    let undated = match plan {
        SnapshotPlan::PerDeal(n) => (*n).clamp(1, MAX_PER_DEAL),
        SnapshotPlan::Ages(_) => 1,
    };
    let (Some(created), Some(closed)) = (deal.created_at, deal.closed_at) else {
        return vec![deal.clone(); undated];
    };
    if closed <= created || !deal.status.is_closed() {
        return vec![deal.clone(); undated];
    }
    let history = telling_before(deal, history, closed);
    // Arranged once for all the deal's instants.
    let timeline = Timeline::new(&history, activities, rules);
    plan.instants(created, closed)
        .into_iter()
        .map(|at| labelled(deal, timeline.as_of(&deal.deal, at)))
        .collect()
}

/// `history` without the changes that tell nothing of the deal before `closed`: a field's only
/// change when its previous value is unknown, it was recorded at or after the close and it
/// wrote the field's current value. At any instant before the close, the "as of" rebuild gives
/// such a field its current value, or hides it by a closing rule, with or without the change.
/// A history first written after the deals closed (an import of closed deals) is all such
/// changes, one per field, and each snapshot would otherwise visit every field.
fn telling_before<'a>(
    deal: &Opportunity,
    history: &'a [FieldChange],
    closed: DateTime<Utc>,
) -> Cow<'a, [FieldChange]> {
    let late_and_unknown = |c: &FieldChange| c.changed_at >= closed && c.previous == Previous::Unknown;
    if !history.iter().any(late_and_unknown) {
        return Cow::Borrowed(history);
    }
    // A history is a few dozen changes: a scan per candidate costs less than hashing them all,
    // and only a candidate's own field is rendered to compare (not every field of the deal).
    let only_change_of_its_field =
        |c: &FieldChange| history.iter().filter(|o| o.field == c.field).count() == 1;
    let idle = |c: &FieldChange| {
        late_and_unknown(c)
            && only_change_of_its_field(c)
            && tracked_value(&deal.deal, &c.field).as_ref() == c.value.as_ref()
    };
    Cow::Owned(history.iter().filter(|c| !idle(c)).cloned().collect())
}

/// One snapshot: the deal as of `at` (the "as of" builder scoring uses), labelled.
pub fn snapshot_at<A: Touching>(
    deal: &Opportunity,
    history: &[FieldChange],
    activities: &[A],
    at: DateTime<Utc>,
    rules: &AsOfRules,
) -> Opportunity {
    labelled(deal, as_of(&deal.deal, history, activities, at, rules))
}

/// The snapshot of `deal` made of `then`, the deal as of an instant of its open life.
fn labelled(deal: &Opportunity, then: AsOf) -> Opportunity {
    let mut state = then.deal;
    // The label and the split key; the features read the age at `at`, set just below.
    state.status = deal.status;
    state.closed_at = deal.closed_at;
    state.cycle_days = then.age_days;
    Opportunity {
        external_id: deal.external_id.clone(),
        deal: state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Activity, ActivityDirection, ActivityKind, Status};
    use crate::generate::{generate, GeneratorConfig};

    use crate::domain::NO_ACTIVITIES;

    fn t(text: &str) -> DateTime<Utc> {
        crate::domain::parse_timestamp(text).unwrap()
    }

    fn closed_deal() -> Opportunity {
        let mut deal = generate(&GeneratorConfig {
            deals: 1,
            ..GeneratorConfig::default()
        })
        .opportunities
        .remove(0);
        deal.deal.status = Status::Won;
        deal.deal.stage = Some("Closed Won".into());
        deal.deal.created_at = Some(t("2025-01-01T00:00:00Z"));
        deal.deal.closed_at = Some(t("2025-05-01T00:00:00Z"));
        deal.deal.interaction_count = Some(40);
        deal.deal.cycle_days = None;
        deal
    }

    fn activity(at: &str) -> Activity {
        Activity {
            id: None,
            kind: ActivityKind::Email,
            direction: ActivityDirection::Outbound,
            occurred_at: t(at),
        }
    }

    #[test]
    fn a_training_snapshot_scores_exactly_as_the_deal_scored_as_of_that_instant() {
        let (artifact, deals, _) = crate::training::fixtures::trained_on_generated(600, 11);
        let activities = [activity("2025-01-10T00:00:00Z"), activity("2025-02-15T00:00:00Z")];
        let mut checked = 0;
        for deal in deals.iter().filter(|d| d.status.is_closed()).take(40) {
            let (Some(created), Some(closed)) = (deal.created_at, deal.closed_at) else {
                continue;
            };
            for at in instants(created, closed, 3) {
                let shot = snapshot_at(deal, &[], &activities, at, &AsOfRules::default());
                let scored = as_of(&deal.deal, &[], &activities, at, &AsOfRules::default()).deal;
                let (a, b) = (
                    crate::model::predict(&artifact, &shot.deal, at),
                    crate::model::predict(&artifact, &scored, at),
                );
                assert!((a - b).abs() <= 1e-12, "{} at {at}: {a} vs {b}", deal.external_id);
                checked += 1;
            }
        }
        assert!(checked >= 90, "{checked}");
    }

    #[test]
    fn instants_split_the_open_life_evenly() {
        let got = instants(t("2025-01-01T00:00:00Z"), t("2025-01-05T00:00:00Z"), 3);
        assert_eq!(
            got,
            [
                t("2025-01-02T00:00:00Z"),
                t("2025-01-03T00:00:00Z"),
                t("2025-01-04T00:00:00Z")
            ]
        );
    }

    #[test]
    fn each_snapshot_is_the_deal_as_it_stood_labelled_with_its_outcome() {
        let deal = closed_deal();
        let activities = [activity("2025-01-10T00:00:00Z"), activity("2025-03-15T00:00:00Z")];
        let shots = snapshots(
            &deal,
            &[],
            &activities,
            &SnapshotPlan::PerDeal(3),
            &AsOfRules::default(),
        );
        assert_eq!(shots.len(), 3);
        for shot in &shots {
            assert_eq!(shot.status, Status::Won);
            assert_eq!(shot.closed_at, deal.closed_at);
            // The closing stage is not known while the deal is open.
            assert_eq!(shot.stage, None);
        }
        // 30 days in, one activity so far; 60 days, one; 90 days, two.
        let ages: Vec<f64> = shots.iter().map(|s| s.cycle_days.unwrap().round()).collect();
        assert_eq!(ages, [30.0, 60.0, 90.0]);
        let counts: Vec<Option<i64>> = shots.iter().map(|s| s.interaction_count).collect();
        assert_eq!(counts, [Some(1), Some(1), Some(2)]);
        // The age is what the features read.
        assert_eq!(
            shots[0].cycle_days(t("2030-01-01T00:00:00Z")),
            shots[0].cycle_days
        );
    }

    /// The as-of measures a snapshot job adds to the default spec read the same of a training
    /// snapshot as of the deal scored as of that instant, and as [`as_of`] measures them.
    #[test]
    fn pace_and_silence_read_the_same_of_a_snapshot_and_of_the_deal_as_of_its_instant() {
        use crate::features::raw::{numeric_value, NumericValue};
        use crate::features::{CoreField, Source};
        let deal = closed_deal();
        let activities = [activity("2025-01-10T00:00:00Z"), activity("2025-03-15T06:30:00Z")];
        let rules = AsOfRules::default();
        let read = |source: CoreField, d: &crate::domain::Deal, at| match numeric_value(
            &Source::Core(source),
            d,
            at,
        ) {
            NumericValue::Present(x) => Some(x),
            _ => None,
        };
        let later = t("2031-06-01T00:00:00Z");
        for at in [
            t("2025-01-05T00:00:00Z"),
            t("2025-02-01T12:00:00Z"),
            t("2025-04-20T00:00:00Z"),
        ] {
            let shot = snapshot_at(&deal, &[], &activities, at, &rules);
            let then = as_of(&deal.deal, &[], &activities, at, &rules);
            for source in [CoreField::InteractionsPerWeek, CoreField::DaysSinceLastActivity] {
                // A snapshot is read whatever the training's "now"; a deal scored as of T, at T.
                assert_eq!(
                    read(source, &shot.deal, later),
                    read(source, &then.deal, at),
                    "{at}"
                );
            }
            assert_eq!(
                read(CoreField::InteractionsPerWeek, &shot.deal, later),
                then.interactions_per_week
            );
            let silence = read(CoreField::DaysSinceLastActivity, &shot.deal, later);
            match then.days_since_last_activity {
                Some(days) => assert_eq!(silence, Some(days)),
                // No activity yet: silent since the deal was created.
                None => assert_eq!(silence, then.age_days),
            }
        }
        // 26 days in, one activity so far, 17 days ago.
        let shot = snapshot_at(&deal, &[], &activities, t("2025-01-27T00:00:00Z"), &rules);
        assert_eq!(
            read(CoreField::DaysSinceLastActivity, &shot.deal, later),
            Some(17.0)
        );
        assert_eq!(
            read(CoreField::InteractionsPerWeek, &shot.deal, later),
            Some(7.0 / 26.0)
        );
    }

    #[test]
    fn a_deal_without_dates_stands_for_itself_as_often_as_the_others() {
        let mut deal = closed_deal();
        deal.deal.created_at = None;
        let shots = snapshots(
            &deal,
            &[],
            &NO_ACTIVITIES,
            &SnapshotPlan::PerDeal(4),
            &AsOfRules::default(),
        );
        assert_eq!(shots.len(), 4);
        assert!(shots.iter().all(|s| s == &deal));
        let once = snapshots(
            &deal,
            &[],
            &NO_ACTIVITIES,
            &SnapshotPlan::Ages(vec![7, 30]),
            &AsOfRules::default(),
        );
        assert_eq!(once, [deal]);
    }

    #[test]
    fn a_deal_is_seen_at_each_listed_age_it_reached_while_open() {
        let plan = SnapshotPlan::Ages(vec![7, 30, 90, 365]);
        let (created, closed) = (t("2025-01-01T00:00:00Z"), t("2025-05-01T00:00:00Z"));
        assert_eq!(
            plan.instants(created, closed),
            [
                t("2025-01-08T00:00:00Z"),
                t("2025-01-31T00:00:00Z"),
                t("2025-04-01T00:00:00Z")
            ]
        );
        // Closed before the first age: once, halfway.
        assert_eq!(
            plan.instants(created, t("2025-01-05T00:00:00Z")),
            [t("2025-01-03T00:00:00Z")]
        );
        let deal = closed_deal();
        assert_eq!(
            snapshots(&deal, &[], &NO_ACTIVITIES, &plan, &AsOfRules::default()).len(),
            3
        );
    }

    #[test]
    fn plans_out_of_range_are_refused_with_the_reason() {
        assert!(SnapshotPlan::PerDeal(3).check().is_ok());
        assert!(SnapshotPlan::Ages(vec![7, 30]).check().is_ok());
        assert!(SnapshotPlan::PerDeal(0)
            .check()
            .unwrap_err()
            .contains("between 1 and 12"));
        assert!(SnapshotPlan::PerDeal(13).check().is_err());
        assert!(SnapshotPlan::Ages(vec![]).check().is_err());
        assert!(SnapshotPlan::Ages(vec![30, 7])
            .check()
            .unwrap_err()
            .contains("increasing"));
        assert!(SnapshotPlan::Ages(vec![7, 7]).check().is_err());
    }

    #[test]
    fn a_first_write_after_the_close_is_left_out_only_where_it_cannot_change_a_snapshot() {
        let deal = closed_deal();
        let after_close = t("2025-06-01T00:00:00Z");
        let change = |field: &str, value: serde_json::Value, at| FieldChange {
            field: field.to_owned(),
            value: Some(value),
            previous: Previous::Unknown,
            changed_at: at,
            source: crate::domain::ChangeSource::Import,
        };
        // An import of the closed deal: every tracked field written once, after the close.
        let mut history: Vec<FieldChange> = crate::domain::history::tracked_values(&deal.deal)
            .into_iter()
            .map(|(field, value)| change(&field, value, after_close))
            .collect();
        let written = history.len();
        // Kept: a late write of another value; a field changed twice; a write before the close.
        history.push(change("owner", serde_json::json!("someone else"), after_close));
        history.push(change(
            "amount",
            serde_json::json!(1.0),
            t("2025-07-01T00:00:00Z"),
        ));
        history.push(change(
            "stage",
            serde_json::json!("Proposal"),
            t("2025-02-01T00:00:00Z"),
        ));
        let closed = deal.closed_at.unwrap();
        let told = telling_before(&deal, &history, closed);
        let kept: Vec<&str> = told.iter().map(|c| c.field.as_str()).collect();
        assert!(written > 5 && told.len() < written, "{kept:?}");
        for field in ["owner", "amount", "stage"] {
            assert!(kept.contains(&field), "{field} kept: {kept:?}");
        }
        assert!(!kept.contains(&"sector") && !kept.contains(&"status"), "{kept:?}");
        // Every snapshot is what the whole history gives.
        let rules = AsOfRules::default();
        for plan in [
            SnapshotPlan::PerDeal(4),
            SnapshotPlan::Ages(DEFAULT_AGES.to_vec()),
        ] {
            let whole: Vec<Opportunity> = plan
                .instants(deal.created_at.unwrap(), closed)
                .into_iter()
                .map(|at| snapshot_at(&deal, &history, &NO_ACTIVITIES, at, &rules))
                .collect();
            assert!(!whole.is_empty());
            assert_eq!(snapshots(&deal, &history, &NO_ACTIVITIES, &plan, &rules), whole);
        }
    }
}
