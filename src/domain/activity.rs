//! Activities (emails, calls, meetings…) attached to an opportunity, and the interaction measures
//! derived from them.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::{bad_timestamp, in_accepted_years, parse_timestamp_with_format, year_out_of_range};
use super::validation::{FieldMessage, ValidationErrors};

/// What kind of touchpoint an activity was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    /// An email.
    Email,
    /// A phone or video call.
    Call,
    /// A meeting.
    Meeting,
    /// A product demonstration.
    Demo,
    /// Anything else.
    Other,
}

impl ActivityKind {
    /// Lowercase name used in JSON, CSV and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Email => "email",
            ActivityKind::Call => "call",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Demo => "demo",
            ActivityKind::Other => "other",
        }
    }

    /// Parses a kind name (case-insensitive).
    pub fn parse(text: &str) -> Option<ActivityKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "email" => Some(ActivityKind::Email),
            "call" => Some(ActivityKind::Call),
            "meeting" => Some(ActivityKind::Meeting),
            "demo" => Some(ActivityKind::Demo),
            "other" => Some(ActivityKind::Other),
            _ => None,
        }
    }
}

/// Who started the activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityDirection {
    /// From the prospect to the rep.
    Inbound,
    /// From the rep to the prospect.
    Outbound,
}

impl ActivityDirection {
    /// Lowercase name used in JSON, CSV and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityDirection::Inbound => "inbound",
            ActivityDirection::Outbound => "outbound",
        }
    }

    /// Parses `inbound` or `outbound` (case-insensitive).
    pub fn parse(text: &str) -> Option<ActivityDirection> {
        match text.trim().to_ascii_lowercase().as_str() {
            "inbound" => Some(ActivityDirection::Inbound),
            "outbound" => Some(ActivityDirection::Outbound),
            _ => None,
        }
    }
}

/// A validated activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// The CRM's id for the activity, when it has one; used to ignore repeated deliveries.
    pub id: Option<String>,
    /// Touchpoint kind.
    pub kind: ActivityKind,
    /// Inbound or outbound.
    pub direction: ActivityDirection,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// When and which way a deal was touched: all the interaction measures and the "as of" rebuild
/// read of an activity (training reads millions of them, and leaves the rest unread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// Inbound or outbound.
    pub direction: ActivityDirection,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What has a direction and a time: an [`Activity`], or just its [`Touch`].
pub trait Touching {
    /// Its direction and time.
    fn touch(&self) -> Touch;
}

impl Touching for Touch {
    fn touch(&self) -> Touch {
        *self
    }
}

impl Touching for Activity {
    fn touch(&self) -> Touch {
        Touch {
            direction: self.direction,
            occurred_at: self.occurred_at,
        }
    }
}

/// No activities, as a slice whose type is told: for tests of what takes any [`Touching`].
#[cfg(test)]
pub(crate) const NO_ACTIVITIES: [Activity; 0] = [];

/// Raw activity fields as received.
pub type ActivityInput = serde_json::Map<String, Value>;

impl Activity {
    /// Parses and validates one activity; `prefix` is put before field names in errors
    /// (e.g. `activities[2].`).
    pub fn parse(
        input: &ActivityInput,
        prefix: &str,
        date_format: Option<&str>,
    ) -> Result<Activity, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for key in input.keys() {
            if !["id", "kind", "direction", "occurred_at"].contains(&key.as_str()) {
                errors.push_known(format!("{prefix}{key}"), FieldMessage::UnknownField);
            }
        }
        let text = |field: &str, errors: &mut ValidationErrors| -> Option<String> {
            match input.get(field) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                // Refused here, before any message could quote them back: PostgreSQL cannot
                // store a NUL, and no kind, direction, id or time has a line break.
                Some(Value::String(s)) if s.trim().chars().any(char::is_control) => {
                    errors.push_known(format!("{prefix}{field}"), FieldMessage::ControlCharacters);
                    None
                }
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    errors.push_known(
                        format!("{prefix}{field}"),
                        FieldMessage::ExpectedString { got: None },
                    );
                    None
                }
            }
        };
        let has_error = |errors: &ValidationErrors, field: &str| {
            let name = format!("{prefix}{field}");
            errors.0.iter().any(|e| e.field == name)
        };
        let id = text("id", &mut errors);
        if let Some(id) = &id {
            if id.chars().count() > 200 || id.chars().any(char::is_control) {
                errors.push_known(format!("{prefix}id"), FieldMessage::TooLongOrControl { max: 200 });
            }
        }
        let kind = match text("kind", &mut errors) {
            Some(k) => ActivityKind::parse(&k).or_else(|| {
                errors.push_known(format!("{prefix}kind"), FieldMessage::BadActivityKind { kind: k });
                None
            }),
            None => {
                if !has_error(&errors, "kind") {
                    errors.push_known(format!("{prefix}kind"), FieldMessage::Required);
                }
                None
            }
        };
        let direction = match text("direction", &mut errors) {
            Some(d) => ActivityDirection::parse(&d).or_else(|| {
                errors.push_known(
                    format!("{prefix}direction"),
                    FieldMessage::BadDirection { direction: d },
                );
                None
            }),
            None => {
                if !has_error(&errors, "direction") {
                    errors.push_known(format!("{prefix}direction"), FieldMessage::Required);
                }
                None
            }
        };
        let occurred_at = match text("occurred_at", &mut errors) {
            Some(t) => match parse_timestamp_with_format(&t, date_format) {
                Ok(t) if in_accepted_years(t) => Some(t),
                Ok(_) => {
                    errors.push_known(format!("{prefix}occurred_at"), year_out_of_range());
                    None
                }
                Err(_) => {
                    errors.push_known(format!("{prefix}occurred_at"), bad_timestamp(&t, date_format));
                    None
                }
            },
            None => {
                if !has_error(&errors, "occurred_at") {
                    errors.push_known(format!("{prefix}occurred_at"), FieldMessage::Required);
                }
                None
            }
        };
        match (kind, direction, occurred_at) {
            (Some(kind), Some(direction), Some(occurred_at)) if errors.is_empty() => Ok(Activity {
                id,
                kind,
                direction,
                occurred_at,
            }),
            _ => Err(errors),
        }
    }

    /// Key that identifies the activity within its opportunity: its CRM id, or else its kind,
    /// direction and time (so re-importing the same history adds nothing).
    pub fn dedup_key(&self) -> String {
        match &self.id {
            Some(id) => format!("id:{id}"),
            None => format!(
                "{}:{}:{}",
                self.kind.as_str(),
                self.direction.as_str(),
                self.occurred_at.timestamp_millis()
            ),
        }
    }
}

/// Interaction measures derived from an opportunity's activities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DerivedInteractions {
    /// Number of activities.
    pub interaction_count: i64,
    /// Mean hours from an unanswered inbound activity to the next outbound one; `None` when no
    /// inbound activity has been answered yet.
    pub response_hours: Option<f64>,
    /// Time of the latest activity.
    pub last_activity_at: Option<DateTime<Utc>>,
}

/// Derives interaction measures from activities (in any order).
///
/// Rule: every activity counts as one interaction. The response clock starts at the first
/// inbound activity that is not yet answered (later inbound ones before the answer do not restart
/// it) and stops at the next outbound activity; `response_hours` is the mean of those waits.
/// An inbound activity still unanswered is not counted (its wait is not known yet). The mean is
/// held to the bound a sent `response_hours` has ([`crate::domain::opportunity::MAX_RESPONSE_HOURS`]), so a
/// stored deal's measure is within it whichever way it came.
pub fn derive_interactions(activities: &[(ActivityDirection, DateTime<Utc>)]) -> DerivedInteractions {
    // Training rebuilds a deal at many instants from activities already in time order: those
    // are read in place; a stable sort would leave them as they are.
    let sorted: Cow<[(ActivityDirection, DateTime<Utc>)]> = if activities.is_sorted_by_key(|(_, t)| *t) {
        Cow::Borrowed(activities)
    } else {
        let mut sorted = activities.to_vec();
        sorted.sort_by_key(|(_, t)| *t);
        Cow::Owned(sorted)
    };
    let mut waiting_since: Option<DateTime<Utc>> = None;
    let mut total_hours = 0.0;
    let mut answered = 0u32;
    for (direction, at) in sorted.iter() {
        match direction {
            ActivityDirection::Inbound => {
                waiting_since.get_or_insert(*at);
            }
            ActivityDirection::Outbound => {
                if let Some(start) = waiting_since.take() {
                    total_hours += (*at - start).num_milliseconds() as f64 / 3_600_000.0;
                    answered += 1;
                }
            }
        }
    }
    DerivedInteractions {
        interaction_count: sorted.len() as i64,
        response_hours: (answered > 0)
            .then(|| (total_hours / f64::from(answered)).min(crate::domain::opportunity::MAX_RESPONSE_HOURS)),
        last_activity_at: sorted.last().map(|(_, t)| *t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_timestamp;
    use ActivityDirection::{Inbound, Outbound};

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    #[test]
    fn response_time_runs_from_first_unanswered_inbound_to_next_outbound() {
        let derived = derive_interactions(&[
            (Outbound, at("2025-01-01T08:00:00Z")),
            (Inbound, at("2025-01-01T10:00:00Z")),
            (Inbound, at("2025-01-01T11:00:00Z")),
            (Outbound, at("2025-01-01T14:00:00Z")),
            (Inbound, at("2025-01-02T10:00:00Z")),
            (Outbound, at("2025-01-02T12:00:00Z")),
            (Inbound, at("2025-01-03T10:00:00Z")),
        ]);
        assert_eq!(derived.interaction_count, 7);
        assert_eq!(derived.response_hours, Some(3.0));
        assert_eq!(derived.last_activity_at, Some(at("2025-01-03T10:00:00Z")));
    }

    #[test]
    fn no_answered_inbound_means_no_response_time() {
        let derived = derive_interactions(&[(Outbound, at("2025-01-01")), (Inbound, at("2025-01-02"))]);
        assert_eq!(derived.response_hours, None);
        assert_eq!(derived.interaction_count, 2);
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let derived = derive_interactions(&[
            (Outbound, at("2025-01-01T12:00:00Z")),
            (Inbound, at("2025-01-01T06:00:00Z")),
        ]);
        assert_eq!(derived.response_hours, Some(6.0));
        // A wait of centuries (dates at both ends of the accepted years) is held to the bound.
        let derived = derive_interactions(&[(Inbound, at("1900-01-01")), (Outbound, at("2200-01-01"))]);
        assert_eq!(
            derived.response_hours,
            Some(crate::domain::opportunity::MAX_RESPONSE_HOURS)
        );
    }

    #[test]
    fn control_characters_and_out_of_range_dates_are_refused() {
        let cases = [
            ("kind", serde_json::json!("email\u{0}"), Some("a.kind")),
            ("direction", serde_json::json!("in\nbound"), Some("a.direction")),
            ("id", serde_json::json!("x\u{0}"), Some("a.id")),
            (
                "occurred_at",
                serde_json::json!("2025-01-01\u{0}"),
                Some("a.occurred_at"),
            ),
            (
                "occurred_at",
                serde_json::json!("0001-01-01"),
                Some("a.occurred_at"),
            ),
            (
                "occurred_at",
                serde_json::json!("2201-01-01"),
                Some("a.occurred_at"),
            ),
            ("occurred_at", serde_json::json!("2200-12-31"), None),
            ("id", serde_json::json!("crm-1"), None),
        ];
        for (field, value, error) in cases {
            let mut input =
                serde_json::json!({"kind": "call", "direction": "inbound", "occurred_at": "2025-01-01"});
            input[field] = value.clone();
            let serde_json::Value::Object(map) = input else {
                unreachable!()
            };
            match (Activity::parse(&map, "a.", None), error) {
                (Ok(_), None) => {}
                (Err(e), Some(expected)) => {
                    let fields: Vec<_> = e.0.iter().map(|e| e.field.as_str()).collect();
                    assert_eq!(fields, [expected], "{field}={value}");
                }
                (result, _) => panic!("{field}={value}: {result:?}"),
            }
        }
    }

    #[test]
    fn parse_reports_each_bad_field_with_prefix() {
        let serde_json::Value::Object(map) = serde_json::json!({"kind": "fax", "direction": "sideways"})
        else {
            unreachable!()
        };
        let err = Activity::parse(&map, "activities[1].", None).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "activities[1].kind",
                "activities[1].direction",
                "activities[1].occurred_at"
            ]
        );
    }
}
