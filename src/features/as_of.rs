//! A deal as it stood at an instant T, rebuilt from its recorded field changes and its
//! activities: what training snapshots, backtests and reproducible scores see of it.
//!
//! The rules (docs/history.md):
//!
//! - A field takes the value of its latest recorded change at or before T.
//! - A field whose recorded changes all come after T takes the value the first of them replaced
//!   when the history knows it; when it does not (the deal's first write, an imported change),
//!   the first value recorded — except a *closing* field, which is then unknown.
//! - A field with no recorded change keeps its current value, except a closing field.
//! - Closing fields change when a deal closes or keep changing until it does: `stage`, `status`,
//!   `closed_at`, the reported interaction measures (`interaction_count`, `response_hours`,
//!   `last_activity_at`) and any field added with [`AsOfRules::closing`]. Unless the history
//!   says otherwise they are unknown at T — left empty and listed in [`AsOf::hidden`] — because
//!   their current value may hold the outcome (a stage "Closed Won", a whole life of
//!   interactions). Of a deal that had closed by T (it is closed now and `closed_at` ≤ T)
//!   everything is known; of one that had not, `status` is open and `closed_at` empty.
//! - The interaction measures of a deal with activities come from its activities at or before
//!   T: their number, the mean response time of inbound activities answered by T, the latest.
//!
//! Everything here is a pure function of (deal, history, activities, T): the same inputs give
//! the same deal whatever day it runs.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::history::set_field;
use crate::domain::{derive_interactions, ActivityDirection, Deal, FieldChange, Previous, Status, Touching};

/// Fields that change when a deal closes: unknown at T unless the history says otherwise.
pub const CLOSING_FIELDS: [&str; 3] = ["stage", "status", "closed_at"];
/// Reported measures that keep growing until a deal closes: treated like closing fields (a deal
/// with activities gets them from its activities instead).
pub const GROWING_FIELDS: [&str; 3] = ["interaction_count", "response_hours", "last_activity_at"];

const MS_PER_DAY: f64 = 86_400_000.0;

/// Which fields are closing fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsOfRules {
    closing: BTreeSet<String>,
}

impl Default for AsOfRules {
    /// [`CLOSING_FIELDS`] and [`GROWING_FIELDS`].
    fn default() -> Self {
        AsOfRules {
            closing: CLOSING_FIELDS
                .iter()
                .chain(&GROWING_FIELDS)
                .map(|f| (*f).to_owned())
                .collect(),
        }
    }
}

impl AsOfRules {
    /// These rules with `field` (a tracked field: `attributes.loss_reason`…) as a closing field
    /// too.
    pub fn closing(mut self, field: impl Into<String>) -> Self {
        self.closing.insert(field.into());
        self
    }

    /// True for a closing field.
    pub fn is_closing(&self, field: &str) -> bool {
        self.closing.contains(field)
    }
}

/// A deal as it stood at [`AsOf::at`], with the measures of its life so far.
#[derive(Debug, Clone, PartialEq)]
pub struct AsOf {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Every field as it stood at `at` (unknown ones empty); its interaction measures are the
    /// ones below, so `Deal::cycle_days(at)` is its age for a deal still open then.
    pub deal: Deal,
    /// False when the deal was created after `at`.
    pub existed: bool,
    /// True when the deal had closed by `at`.
    pub closed: bool,
    /// Days from `created_at` to `at` (`None` without a creation date, or before it).
    pub age_days: Option<f64>,
    /// Interactions up to `at`.
    pub interaction_count: Option<i64>,
    /// Mean response time in hours of the inbound activities answered by `at`.
    pub response_hours: Option<f64>,
    /// Days from the latest activity up to `at` to `at`.
    pub days_since_last_activity: Option<f64>,
    /// Interactions per week of life so far (`interaction_count` × 7 / `age_days`, the age
    /// counted as at least one day).
    pub interactions_per_week: Option<f64>,
    /// The fields unknown at `at` (closing fields without a recorded value), in name order.
    pub hidden: Vec<String>,
}

fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / MS_PER_DAY
}

/// The deal `current` (as stored now) as it stood at `at`, from its recorded `history` and its
/// `activities` (both in any order; entries after `at` are used only as the rules say).
pub fn as_of<A: Touching>(
    current: &Deal,
    history: &[FieldChange],
    activities: &[A],
    at: DateTime<Utc>,
    rules: &AsOfRules,
) -> AsOf {
    Timeline::new(history, activities, rules).as_of(current, at)
}

/// A deal's recorded changes and activities arranged once for [`as_of`] at several instants
/// (training sees each closed deal at several ages): the changes by field, then oldest first,
/// each field's changes one run; the activities oldest first.
#[derive(Debug, Clone)]
pub struct Timeline<'a> {
    /// The changes, by field then time; a stable sort keeps the recorded order of changes made
    /// at the same instant.
    changes: Vec<&'a FieldChange>,
    /// Each field with a recorded change or a closing rule, in name order, with its run of
    /// `changes` (empty for a closing field without any) and whether it is a closing field
    /// (looked up once here, not at every instant). Only these can differ from their current
    /// value (any other keeps it), so these are the fields to visit.
    fields: Vec<(&'a str, std::ops::Range<usize>, bool)>,
    /// The activities' directions and times, oldest first (a stable sort: activities of one
    /// instant in the order given).
    touches: Vec<(ActivityDirection, DateTime<Utc>)>,
}

impl<'a> Timeline<'a> {
    /// Arranges `history` and `activities` (both in any order) for the fields `rules` close.
    pub fn new<A: Touching>(
        history: &'a [FieldChange],
        activities: &[A],
        rules: &'a AsOfRules,
    ) -> Timeline<'a> {
        let mut changes: Vec<&FieldChange> = history.iter().collect();
        changes.sort_by(|a, b| a.field.cmp(&b.field).then(a.changed_at.cmp(&b.changed_at)));
        let names: BTreeSet<&str> = changes
            .iter()
            .map(|c| c.field.as_str())
            .chain(rules.closing.iter().map(String::as_str))
            .collect();
        let fields = names
            .into_iter()
            .map(|field| {
                let start = changes.partition_point(|c| c.field.as_str() < field);
                let len = changes[start..].partition_point(|c| c.field == field);
                (field, start..start + len, rules.is_closing(field))
            })
            .collect();
        let mut touches: Vec<_> = (activities.iter().map(Touching::touch))
            .map(|t| (t.direction, t.occurred_at))
            .collect();
        touches.sort_by_key(|(_, t)| *t);
        Timeline {
            changes,
            fields,
            touches,
        }
    }

    /// The deal `current` (as stored now) as it stood at `at` ([`as_of`]).
    pub fn as_of(&self, current: &Deal, at: DateTime<Utc>) -> AsOf {
        let closed = current.status.is_closed() && current.closed_at.is_some_and(|c| c <= at);
        let mut deal = current.clone();
        deal.cycle_days = None;
        let mut hidden = Vec::new();
        for (field, run, closing_field) in &self.fields {
            let field = *field;
            let mine = &self.changes[run.clone()];
            let last_known = mine.iter().take_while(|c| c.changed_at <= at).last();
            let first_after = mine.iter().find(|c| c.changed_at > at);
            let closing = *closing_field && !closed;
            let value: Option<Option<&Value>> = match (last_known, first_after) {
                (Some(change), _) => Some(change.value.as_ref()),
                (None, Some(change)) => match &change.previous {
                    Previous::Was(previous) => Some(previous.as_ref()),
                    Previous::Unknown if closing => None,
                    Previous::Unknown => Some(change.value.as_ref()),
                },
                (None, None) if closing => None,
                // No recorded change: the current value stands.
                (None, None) => continue,
            };
            match value {
                Some(v) => set_field(&mut deal, field, v),
                None => match field {
                    // A deal that had not closed by T was open then, with no closing date: that
                    // is known, not hidden.
                    "status" => deal.status = Status::Open,
                    "closed_at" => deal.closed_at = None,
                    _ => {
                        set_field(&mut deal, field, None);
                        hidden.push(field.to_owned());
                    }
                },
            }
        }
        self.finish(deal, hidden, at, closed)
    }

    /// The interaction measures and ages of `deal` (its fields as of `at`).
    fn finish(&self, mut deal: Deal, mut hidden: Vec<String>, at: DateTime<Utc>, closed: bool) -> AsOf {
        // A reported time later than T cannot have been known at T.
        if deal.last_activity_at.is_some_and(|t| t > at) {
            deal.last_activity_at = None;
        }
        if !self.touches.is_empty() {
            // Oldest first: the ones up to T are a prefix.
            let before = &self.touches[..self.touches.partition_point(|(_, t)| *t <= at)];
            let derived = derive_interactions(before);
            deal.interaction_count = Some(derived.interaction_count);
            hidden.retain(|f| f != "interaction_count");
            if derived.response_hours.is_some() {
                deal.response_hours = derived.response_hours;
                hidden.retain(|f| f != "response_hours");
            }
            if let Some(last) = derived.last_activity_at {
                deal.last_activity_at =
                    Some(deal.last_activity_at.map_or(last, |reported| reported.max(last)));
                hidden.retain(|f| f != "last_activity_at");
            }
        }

        let existed = deal.created_at.is_none_or(|c| c <= at);
        let age_days = deal.created_at.filter(|c| *c <= at).map(|c| days_between(c, at));
        let interactions_per_week = match (deal.interaction_count, age_days) {
            (Some(n), Some(age)) => Some(n as f64 * 7.0 / age.max(1.0)),
            _ => None,
        };
        AsOf {
            at,
            existed,
            closed,
            age_days,
            interaction_count: deal.interaction_count,
            response_hours: deal.response_hours,
            days_since_last_activity: deal.last_activity_at.map(|t| days_between(t, at)),
            interactions_per_week,
            hidden,
            deal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::tracked_values;
    use crate::domain::{
        parse_timestamp, Activity, ActivityDirection, ActivityKind, ChangeSource, Opportunity, ParseOptions,
    };
    use serde_json::json;

    use crate::domain::NO_ACTIVITIES;

    /// `d` as of `at`, from `history` alone, under the default rules.
    fn as_of_by_default(d: &Deal, history: &[FieldChange], at: &str) -> AsOf {
        as_of(d, history, &NO_ACTIVITIES, t(at), &AsOfRules::default())
    }

    fn t(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    fn deal(value: Value) -> Deal {
        let Value::Object(map) = value else {
            panic!("object")
        };
        Opportunity::parse(Some("D-1"), &map, ParseOptions::default())
            .unwrap()
            .deal
    }

    /// A won deal: created 2025-01-01, closed 2025-03-01, with final values that give the
    /// outcome away.
    fn won() -> Deal {
        deal(
            json!({"status": "won", "stage": "Closed Won", "created_at": "2025-01-01",
                    "closed_at": "2025-03-01", "amount": 900, "sector": "retail", "owner": "ann",
                    "interaction_count": 40, "response_hours": 2,
                    "last_activity_at": "2025-02-28", "attributes": {"tier": "gold"}}),
        )
    }

    fn change(field: &str, value: Option<Value>, previous: Previous, at: &str) -> FieldChange {
        FieldChange {
            field: field.to_owned(),
            value,
            previous,
            changed_at: t(at),
            source: ChangeSource::Api,
        }
    }

    fn activity(direction: ActivityDirection, at: &str) -> Activity {
        Activity {
            id: None,
            kind: ActivityKind::Email,
            direction,
            occurred_at: t(at),
        }
    }

    #[test]
    fn without_history_closing_fields_are_hidden_and_the_rest_is_current() {
        let d = won();
        let a = as_of(&d, &[], &NO_ACTIVITIES, t("2025-02-01"), &AsOfRules::default());
        assert!(a.existed);
        assert!(!a.closed);
        assert_eq!(a.deal.status, Status::Open);
        assert_eq!(a.deal.closed_at, None);
        assert_eq!(a.deal.stage, None);
        assert_eq!(a.deal.interaction_count, None);
        assert_eq!(a.deal.response_hours, None);
        assert_eq!(a.deal.last_activity_at, None);
        assert_eq!(
            a.hidden,
            ["interaction_count", "last_activity_at", "response_hours", "stage"]
        );
        assert_eq!(a.deal.amount, Some(900.0));
        assert_eq!(a.deal.sector.as_deref(), Some("retail"));
        assert_eq!(a.deal.attributes["tier"].to_text(), "gold");
        assert_eq!(a.age_days, Some(31.0));
        // Its cycle at T is its age: it was open.
        assert_eq!(a.deal.cycle_days(a.at), Some(31.0));
    }

    #[test]
    fn a_deal_closed_by_t_is_known_whole() {
        let d = won();
        let a = as_of(&d, &[], &NO_ACTIVITIES, t("2025-04-01"), &AsOfRules::default());
        assert!(a.closed);
        assert!(a.hidden.is_empty());
        let mut expected = d.clone();
        expected.cycle_days = None;
        assert_eq!(a.deal, expected);
        assert_eq!(a.deal.cycle_days(a.at), Some(59.0));
    }

    #[test]
    fn a_field_takes_its_latest_change_at_or_before_t() {
        let d = won();
        let history = [
            change(
                "stage",
                Some(json!("Proposal")),
                Previous::Was(Some(json!("Discovery"))),
                "2025-01-20",
            ),
            change("stage", Some(json!("Discovery")), Previous::Unknown, "2025-01-01"),
            change(
                "stage",
                Some(json!("Closed Won")),
                Previous::Was(Some(json!("Proposal"))),
                "2025-03-01",
            ),
            change("amount", Some(json!(500.0)), Previous::Unknown, "2025-01-01"),
            change(
                "amount",
                Some(json!(900.0)),
                Previous::Was(Some(json!(500.0))),
                "2025-02-15",
            ),
        ];
        let rules = AsOfRules::default();
        let at = |when: &str| as_of(&d, &history, &NO_ACTIVITIES, t(when), &rules);
        assert_eq!(at("2025-01-10").deal.stage.as_deref(), Some("Discovery"));
        assert_eq!(
            at("2025-01-20").deal.stage.as_deref(),
            Some("Proposal"),
            "a change at T counts"
        );
        assert_eq!(at("2025-02-01").deal.amount, Some(500.0));
        assert_eq!(at("2025-02-20").deal.amount, Some(900.0));
        assert!(!at("2025-02-01").hidden.contains(&"stage".to_owned()));
        // The input order does not matter.
        let mut reversed = history.to_vec();
        reversed.reverse();
        assert_eq!(
            as_of(&d, &reversed, &NO_ACTIVITIES, t("2025-02-01"), &rules),
            at("2025-02-01")
        );
    }

    #[test]
    fn before_its_first_change_a_field_holds_what_that_change_replaced() {
        let d = won();
        let history = [
            // Recorded while the deal was known: the earlier values are known too.
            change(
                "amount",
                Some(json!(900.0)),
                Previous::Was(Some(json!(700.0))),
                "2025-02-15",
            ),
            change(
                "stage",
                Some(json!("Closed Won")),
                Previous::Was(Some(json!("Negotiation"))),
                "2025-03-01",
            ),
            // An attribute first set after T was empty at T.
            change(
                "attributes.tier",
                Some(json!("gold")),
                Previous::Was(None),
                "2025-02-10",
            ),
        ];
        let a = as_of_by_default(&d, &history, "2025-02-01");
        assert_eq!(a.deal.amount, Some(700.0));
        assert_eq!(a.deal.stage.as_deref(), Some("Negotiation"));
        assert!(!a.deal.attributes.contains_key("tier"));
        assert!(!a.hidden.contains(&"stage".to_owned()));
    }

    #[test]
    fn a_first_write_after_t_gives_its_values_but_not_its_closing_ones() {
        // Imported after it closed: every value comes from one write after T.
        let d = won();
        let history: Vec<FieldChange> = tracked_values(&d)
            .into_iter()
            .map(|(field, value)| change(&field, Some(value), Previous::Unknown, "2025-06-01"))
            .collect();
        let a = as_of_by_default(&d, &history, "2025-02-01");
        assert_eq!(a.deal.amount, Some(900.0));
        assert_eq!(a.deal.owner.as_deref(), Some("ann"));
        assert_eq!(a.deal.stage, None);
        assert_eq!(a.deal.status, Status::Open);
        assert_eq!(a.deal.closed_at, None);
        assert_eq!(a.deal.interaction_count, None);
        assert!(a.hidden.contains(&"stage".to_owned()));
    }

    #[test]
    fn a_cleared_field_is_empty_from_its_change_on() {
        let d = deal(json!({"status": "open", "created_at": "2025-01-01"}));
        let history = [
            change("owner", Some(json!("ann")), Previous::Unknown, "2025-01-01"),
            change("owner", None, Previous::Was(Some(json!("ann"))), "2025-01-15"),
        ];
        let rules = AsOfRules::default();
        assert_eq!(
            as_of(&d, &history, &NO_ACTIVITIES, t("2025-01-10"), &rules)
                .deal
                .owner
                .as_deref(),
            Some("ann")
        );
        assert_eq!(
            as_of(&d, &history, &NO_ACTIVITIES, t("2025-01-20"), &rules)
                .deal
                .owner,
            None
        );
    }

    #[test]
    fn measures_come_from_the_activities_before_t() {
        use ActivityDirection::{Inbound, Outbound};
        let d = won();
        let activities = [
            activity(Outbound, "2025-01-02T09:00:00Z"),
            activity(Inbound, "2025-01-05T10:00:00Z"),
            activity(Outbound, "2025-01-05T16:00:00Z"),
            // Asked before T, answered after: its wait is not known at T.
            activity(Inbound, "2025-01-14T10:00:00Z"),
            activity(Outbound, "2025-01-16T10:00:00Z"),
            activity(Inbound, "2025-02-20T10:00:00Z"),
        ];
        let a = as_of(&d, &[], &activities, t("2025-01-15"), &AsOfRules::default());
        assert_eq!(a.interaction_count, Some(4));
        assert_eq!(a.deal.interaction_count, Some(4));
        assert_eq!(a.response_hours, Some(6.0));
        assert_eq!(a.deal.last_activity_at, Some(t("2025-01-14T10:00:00Z")));
        let since = a.days_since_last_activity.unwrap();
        assert!((since - 14.0 / 24.0).abs() < 1e-9, "{since}");
        assert_eq!(a.age_days, Some(14.0));
        assert_eq!(a.interactions_per_week, Some(2.0));
        assert!(!a
            .hidden
            .iter()
            .any(|f| f == "interaction_count" || f == "response_hours"));
        // Before any activity: none counted, nothing answered yet.
        let early = as_of(&d, &[], &activities, t("2025-01-02"), &AsOfRules::default());
        assert_eq!(early.interaction_count, Some(0));
        assert_eq!(early.response_hours, None);
        assert_eq!(early.days_since_last_activity, None);
        assert_eq!(early.interactions_per_week, Some(0.0));
        // In any order, and arranged once for several instants, the same deal.
        let reversed: Vec<Activity> = activities.iter().rev().cloned().collect();
        let history = [change(
            "amount",
            Some(json!(10.0)),
            Previous::Unknown,
            "2025-01-10",
        )];
        let rules = AsOfRules::default();
        let timeline = Timeline::new(&history, &reversed, &rules);
        for at in ["2025-01-01", "2025-01-05T10:00:00Z", "2025-01-15", "2025-03-01"] {
            let whole = as_of(&d, &history, &activities, t(at), &rules);
            assert_eq!(timeline.as_of(&d, t(at)), whole, "{at}");
        }
    }

    #[test]
    fn reported_measures_need_a_recorded_value() {
        let d = won();
        let history = [
            change(
                "interaction_count",
                Some(json!(3)),
                Previous::Unknown,
                "2025-01-10",
            ),
            change(
                "interaction_count",
                Some(json!(40)),
                Previous::Was(Some(json!(3))),
                "2025-03-01",
            ),
        ];
        let a = as_of_by_default(&d, &history, "2025-02-01");
        assert_eq!(a.interaction_count, Some(3));
        assert!(a.hidden.contains(&"response_hours".to_owned()));
        assert_eq!(a.interactions_per_week, Some(3.0 * 7.0 / 31.0));
    }

    #[test]
    fn more_closing_fields_can_be_named() {
        let d = deal(
            json!({"status": "lost", "created_at": "2025-01-01", "closed_at": "2025-02-01",
                            "attributes": {"loss_reason": "price", "tier": "gold"}}),
        );
        let rules = AsOfRules::default().closing("attributes.loss_reason");
        let a = as_of(&d, &[], &NO_ACTIVITIES, t("2025-01-15"), &rules);
        assert!(!a.deal.attributes.contains_key("loss_reason"));
        assert!(a.deal.attributes.contains_key("tier"));
        assert!(a.hidden.contains(&"attributes.loss_reason".to_owned()));
        let after = as_of(&d, &[], &NO_ACTIVITIES, t("2025-02-01"), &rules);
        assert_eq!(after.deal.attributes["loss_reason"].to_text(), "price");
    }

    #[test]
    fn before_its_creation_a_deal_did_not_exist() {
        let d = won();
        let a = as_of(&d, &[], &NO_ACTIVITIES, t("2024-12-01"), &AsOfRules::default());
        assert!(!a.existed);
        assert_eq!(a.age_days, None);
        assert_eq!(a.interactions_per_week, None);
    }

    #[test]
    fn a_reported_time_after_t_is_not_known_at_t() {
        let d = deal(json!({"status": "open", "created_at": "2025-01-01",
                            "last_activity_at": "2025-03-01"}));
        let history = [change(
            "last_activity_at",
            Some(json!("2025-03-01T00:00:00.000Z")),
            Previous::Unknown,
            "2025-01-01",
        )];
        let a = as_of_by_default(&d, &history, "2025-02-01");
        assert_eq!(a.deal.last_activity_at, None);
        assert_eq!(a.days_since_last_activity, None);
    }
}
