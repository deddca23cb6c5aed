//! A deal's field history: which fields are tracked, how a value is written down, what changed
//! between two versions of a deal, and how one recorded value is put back into a deal.
//!
//! Every field a client sends is tracked (`external_id` aside, which names the deal): the record
//! fields and each custom attribute, as `attributes.<name>`. A value is kept as JSON in a
//! canonical form — text as text, numbers as numbers, timestamps as RFC 3339 in UTC with
//! milliseconds — and `None` means the field was cleared (or never set).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::opportunity::{parse_fields, Purpose, RECORD_FIELDS};
use super::validation::{FieldMessage, ValidationErrors};
use super::{AttributeValue, ContactRole, Deal, ParseOptions, Status, DEFAULT_CURRENCY};

/// The record fields whose changes are recorded, in their documented order: every record field
/// but `external_id`, which names the deal. Custom attributes are recorded too, each as
/// `attributes.<name>`.
pub const TRACKED_FIELDS: &[&str] = RECORD_FIELDS.split_at(1).1;

/// The prefix of a custom attribute's field name (`attributes.tier`).
pub const ATTRIBUTE_PREFIX: &str = "attributes.";

/// Where a recorded change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChangeSource {
    /// `PUT /v1/opportunities/{id}`.
    #[serde(rename = "api")]
    Api,
    /// A CSV import of opportunities.
    #[serde(rename = "import")]
    Import,
    /// A CRM webhook event.
    #[serde(rename = "webhook")]
    Webhook,
    /// A CSV of past field changes (a CRM's field history export).
    #[serde(rename = "history-import")]
    HistoryImport,
}

impl ChangeSource {
    /// The name stored and answered (`api`, `import`, `webhook`, `history-import`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Api => "api",
            ChangeSource::Import => "import",
            ChangeSource::Webhook => "webhook",
            ChangeSource::HistoryImport => "history-import",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<ChangeSource> {
        match text {
            "api" => Some(ChangeSource::Api),
            "import" => Some(ChangeSource::Import),
            "webhook" => Some(ChangeSource::Webhook),
            "history-import" => Some(ChangeSource::HistoryImport),
            _ => None,
        }
    }
}

/// What a field held before a recorded change.
#[derive(Debug, Clone, PartialEq)]
pub enum Previous {
    /// Not known: the deal's first write, or a change imported from a CRM's field history.
    Unknown,
    /// This value (`None`: the field was empty).
    Was(Option<Value>),
}

/// One recorded change of one field of a deal.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// A tracked field (`stage`, `attributes.tier`, …).
    pub field: String,
    /// The value from then on, in canonical form; `None` when the field was cleared.
    pub value: Option<Value>,
    /// The value it replaced.
    pub previous: Previous,
    /// When the change took effect (the event's time, the import's `changed_at`, else the time
    /// it was written).
    pub changed_at: DateTime<Utc>,
    /// Where it came from.
    pub source: ChangeSource,
}

/// True for a field whose changes can be recorded: a tracked record field or `attributes.<name>`
/// with a non-empty name.
pub fn is_tracked_field(field: &str) -> bool {
    TRACKED_FIELDS.contains(&field)
        || field
            .strip_prefix(ATTRIBUTE_PREFIX)
            .is_some_and(|name| !name.is_empty())
}

/// A timestamp in canonical form.
pub fn canonical_time(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Every tracked field the deal holds a value for, in canonical form (empty fields are absent).
pub fn tracked_values(deal: &Deal) -> BTreeMap<String, Value> {
    let record =
        (TRACKED_FIELDS.iter()).filter_map(|field| Some(((*field).to_owned(), tracked_value(deal, field)?)));
    let attributes = deal.attributes.keys().filter_map(|name| {
        let field = format!("{ATTRIBUTE_PREFIX}{name}");
        let value = tracked_value(deal, &field)?;
        Some((field, value))
    });
    record.chain(attributes).collect()
}

/// One tracked field of the deal in canonical form, as [`tracked_values`] holds it: `None` when
/// the field is empty or not a tracked field. For a reader of a few fields of many deals
/// (training snapshots), where building every field's value would be most of the work.
pub fn tracked_value(deal: &Deal, field: &str) -> Option<Value> {
    let text = |value: Option<&str>| value.map(|v| Value::String(v.to_owned()));
    let value = match field {
        "name" => text(deal.name.as_deref()),
        "account" => text(deal.account.as_deref()),
        "sector" => text(deal.sector.as_deref()),
        "region" => text(deal.region.as_deref()),
        "owner" => text(deal.owner.as_deref()),
        "contact_role" => text(deal.contact_role.as_ref().map(ContactRole::as_str)),
        "currency" => text(Some(deal.currency.as_str())),
        "stage" => text(deal.stage.as_deref()),
        "status" => text(Some(deal.status.as_str())),
        "amount" => deal.amount.map(number),
        "created_at" => deal.created_at.map(canonical_time),
        "closed_at" => deal.closed_at.map(canonical_time),
        "interaction_count" => deal.interaction_count.map(Value::from),
        "response_hours" => deal.response_hours.map(number),
        "last_activity_at" => deal.last_activity_at.map(canonical_time),
        _ => match deal.attributes.get(field.strip_prefix(ATTRIBUTE_PREFIX)?)? {
            AttributeValue::Number(n) => Some(number(*n)),
            AttributeValue::Text(t) => Some(Value::String(t.clone())),
        },
    };
    value.filter(|v| !v.is_null())
}

/// One field's change between two versions of a deal.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The field.
    pub field: String,
    /// Its new value (`None`: cleared).
    pub value: Option<Value>,
    /// What it held before.
    pub previous: Previous,
}

/// The fields whose value differs between `old` (`None`: the deal did not exist) and `new`, in
/// field-name order. A first write lists every field `new` holds, with an unknown previous value.
pub fn changed_fields(old: Option<&Deal>, new: &Deal) -> Vec<Changed> {
    let after = tracked_values(new);
    let Some(old) = old else {
        return after
            .into_iter()
            .map(|(field, value)| Changed {
                field,
                value: Some(value),
                previous: Previous::Unknown,
            })
            .collect();
    };
    let mut before = tracked_values(old);
    let mut changes: BTreeMap<String, Changed> = BTreeMap::new();
    for (field, value) in after {
        let previous = before.remove(&field);
        if previous.as_ref() != Some(&value) {
            let changed = Changed {
                field: field.clone(),
                value: Some(value),
                previous: Previous::Was(previous),
            };
            changes.insert(field, changed);
        }
    }
    for (field, previous) in before {
        let changed = Changed {
            field: field.clone(),
            value: None,
            previous: Previous::Was(Some(previous)),
        };
        changes.insert(field, changed);
    }
    changes.into_values().collect()
}

/// Parses the text of one field's new value exactly as a deal write reads that field (a CSV
/// cell: numbers may be text, an empty cell clears the field), returning it in canonical form.
/// `field` must be tracked ([`is_tracked_field`]); `status` cannot be cleared.
pub fn parse_field_value(
    field: &str,
    raw: &str,
    options: ParseOptions<'_>,
) -> Result<Option<Value>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if !is_tracked_field(field) {
        errors.push_known(field, FieldMessage::UnknownField);
        return Err(errors);
    }
    if field == "status" && raw.trim().is_empty() {
        errors.push_known(field, FieldMessage::StatusRequired);
        return Err(errors);
    }
    let mut input = Map::new();
    match field.strip_prefix(ATTRIBUTE_PREFIX) {
        Some(name) => {
            let mut attributes = Map::new();
            attributes.insert(name.to_owned(), Value::String(raw.to_owned()));
            input.insert("attributes".into(), Value::Object(attributes));
        }
        None => {
            input.insert(field.to_owned(), Value::String(raw.to_owned()));
        }
    }
    let options = ParseOptions {
        from_text: true,
        ..options
    };
    // Read as a deal to score: nothing else is required, and the checks between fields (a won
    // deal needs `closed_at`) do not apply to one field alone. Only this field's errors count.
    let (_, deal, all) = parse_fields(None, &input, options, Purpose::Score);
    errors.0 = all.0.into_iter().filter(|e| e.field == field).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut values = tracked_values(&deal);
    if field == "currency" && raw.trim().is_empty() {
        return Ok(Some(Value::String(DEFAULT_CURRENCY.to_owned())));
    }
    Ok(values.remove(field))
}

/// Puts a recorded value back into `deal` (`None` clears the field). A value that does not fit
/// the field — only a damaged row could hold one — leaves the field empty; unknown fields are
/// ignored.
pub fn set_field(deal: &mut Deal, field: &str, value: Option<&Value>) {
    let text = || value.and_then(Value::as_str).map(str::to_owned);
    let time = || {
        value
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let float = || value.and_then(Value::as_f64).filter(|x| x.is_finite());
    match field {
        "name" => deal.name = text(),
        "account" => deal.account = text(),
        "sector" => deal.sector = text(),
        "region" => deal.region = text(),
        "owner" => deal.owner = text(),
        "contact_role" => deal.contact_role = text().and_then(|t| ContactRole::normalise(&t)),
        "amount" => deal.amount = float(),
        "currency" => deal.currency = text().unwrap_or_else(|| DEFAULT_CURRENCY.to_owned()),
        "stage" => deal.stage = text(),
        "status" => deal.status = text().and_then(|t| Status::parse(&t)).unwrap_or(Status::Open),
        "created_at" => deal.created_at = time(),
        "closed_at" => deal.closed_at = time(),
        "interaction_count" => deal.interaction_count = value.and_then(Value::as_i64),
        "response_hours" => deal.response_hours = float(),
        "last_activity_at" => deal.last_activity_at = time(),
        other => {
            if let Some(name) = other.strip_prefix(ATTRIBUTE_PREFIX) {
                let attribute = match value {
                    Some(Value::Number(n)) => n.as_f64().map(AttributeValue::Number),
                    Some(Value::String(s)) => Some(AttributeValue::Text(s.clone())),
                    _ => None,
                };
                match attribute {
                    Some(a) => {
                        deal.attributes.insert(name.to_owned(), a);
                    }
                    None => {
                        deal.attributes.remove(name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Opportunity, OpportunityInput};
    use serde_json::json;

    #[test]
    fn every_record_field_but_the_id_is_tracked() {
        assert_eq!(TRACKED_FIELDS.len() + 1, RECORD_FIELDS.len());
        assert!(!TRACKED_FIELDS.contains(&"external_id"));
        assert_eq!(TRACKED_FIELDS.first(), Some(&"name"));
        assert!(is_tracked_field("last_activity_at"));
    }

    fn deal(value: Value) -> Deal {
        let Value::Object(map) = value else {
            panic!("object")
        };
        let map: OpportunityInput = map;
        Opportunity::parse(Some("D-1"), &map, ParseOptions::default())
            .unwrap()
            .deal
    }

    #[test]
    fn one_field_reads_as_every_field_holds_it() {
        let full = deal(
            json!({"name": "Big", "account": "Acme", "sector": "retail", "region": "EU",
                               "owner": "ann", "contact_role": "cfo", "amount": 1250.5,
                               "stage": "Closed Won", "status": "won", "created_at": "2025-01-02",
                               "closed_at": "2025-03-04T05:06:07Z", "interaction_count": 12,
                               "response_hours": 3.5, "last_activity_at": "2025-03-01",
                               "attributes": {"tier": "gold", "seats": 4}}),
        );
        let sparse = deal(json!({"status": "open"}));
        for d in [&full, &sparse] {
            let all = tracked_values(d);
            let asked = TRACKED_FIELDS.iter().map(|f| (*f).to_owned());
            let attributes = ["attributes.tier", "attributes.seats", "attributes.none"];
            for field in asked.chain(attributes.map(String::from)) {
                assert_eq!(tracked_value(d, &field).as_ref(), all.get(&field), "{field}");
            }
        }
        assert_eq!(tracked_values(&full).len(), TRACKED_FIELDS.len() + 2);
        assert_eq!(tracked_value(&full, "external_id"), None);
        assert_eq!(tracked_value(&full, "attributes."), None);
    }

    #[test]
    fn a_first_write_lists_every_field_it_holds() {
        let d = deal(json!({"status": "open", "stage": "Discovery", "amount": 100,
                            "created_at": "2025-01-02", "attributes": {"tier": "gold", "seats": 4}}));
        let changes = changed_fields(None, &d);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "amount",
                "attributes.seats",
                "attributes.tier",
                "created_at",
                "currency",
                "stage",
                "status"
            ]
        );
        assert!(changes.iter().all(|c| c.previous == Previous::Unknown));
        let value = |field: &str| changes.iter().find(|c| c.field == field).map(|c| c.value.clone());
        assert_eq!(value("created_at"), Some(Some(json!("2025-01-02T00:00:00.000Z"))));
        assert_eq!(value("currency"), Some(Some(json!("EUR"))));
    }

    #[test]
    fn only_real_changes_are_listed_and_a_cleared_field_is_none() {
        let old = deal(
            json!({"status": "open", "stage": "Discovery", "amount": 100, "owner": "ann",
                              "attributes": {"tier": "gold"}}),
        );
        assert!(changed_fields(Some(&old), &old.clone()).is_empty());
        let new = deal(json!({"status": "open", "stage": "Proposal", "amount": 100.0,
                              "attributes": {"tier": "gold", "seats": 3}}));
        let change = |field: &str, value: Option<Value>, previous: Option<Value>| Changed {
            field: field.to_owned(),
            value,
            previous: Previous::Was(previous),
        };
        assert_eq!(
            changed_fields(Some(&old), &new),
            vec![
                change("attributes.seats", Some(json!(3.0)), None),
                change("owner", None, Some(json!("ann"))),
                change("stage", Some(json!("Proposal")), Some(json!("Discovery"))),
            ]
        );
    }

    #[test]
    fn values_are_parsed_like_the_same_field_of_a_deal_write() {
        let o = ParseOptions::default();
        assert_eq!(
            parse_field_value("amount", "1200", o).unwrap(),
            Some(json!(1200.0))
        );
        assert_eq!(parse_field_value("amount", "", o).unwrap(), None);
        assert_eq!(
            parse_field_value("currency", "usd", o).unwrap(),
            Some(json!("USD"))
        );
        assert_eq!(parse_field_value("currency", "", o).unwrap(), Some(json!("EUR")));
        assert_eq!(
            parse_field_value("contact_role", "Decision Maker", o).unwrap(),
            Some(json!("decision_maker"))
        );
        assert_eq!(parse_field_value("status", "Won", o).unwrap(), Some(json!("won")));
        assert_eq!(
            parse_field_value("closed_at", "2025-03-01", o).unwrap(),
            Some(json!("2025-03-01T00:00:00.000Z"))
        );
        assert_eq!(
            parse_field_value("attributes.seats", "40", o).unwrap(),
            Some(json!(40.0))
        );
        assert_eq!(
            parse_field_value("attributes.tier", "gold", o).unwrap(),
            Some(json!("gold"))
        );
        let dmy = ParseOptions {
            date_format: Some("%d/%m/%Y"),
            from_text: true,
        };
        assert_eq!(
            parse_field_value("created_at", "31/12/2024", dmy).unwrap(),
            Some(json!("2024-12-31T00:00:00.000Z"))
        );
        let refused = [
            ("amount", "-5"),
            ("amount", "2e15"),
            ("amount", "lots"),
            ("currency", "ZZZ"),
            ("status", "pending"),
            ("status", ""),
            ("closed_at", "soon"),
            ("closed_at", "9999-12-31"),
            ("interaction_count", "1.5"),
            ("stage", "two\u{0}words"),
            ("colour", "red"),
            ("external_id", "D-2"),
            ("attributes.", "x"),
        ];
        for (field, raw) in refused {
            let errors = parse_field_value(field, raw, o).unwrap_err();
            assert_eq!(errors.0.len(), 1, "{field}={raw:?}: {errors}");
            assert_eq!(errors.0[0].field, field, "{field}={raw:?}");
        }
    }

    #[test]
    fn recorded_values_go_back_into_a_deal() {
        let original = deal(json!({"status": "lost", "stage": "Closed Lost", "amount": 9.5,
                                   "created_at": "2025-01-01", "closed_at": "2025-02-01T10:00:00Z",
                                   "contact_role": "champion", "interaction_count": 4,
                                   "attributes": {"tier": "gold", "seats": 4}}));
        let mut rebuilt = deal(json!({"status": "open"}));
        for (field, value) in tracked_values(&original) {
            set_field(&mut rebuilt, &field, Some(&value));
        }
        assert_eq!(rebuilt, original);
        set_field(&mut rebuilt, "attributes.tier", None);
        set_field(&mut rebuilt, "stage", None);
        assert!(!rebuilt.attributes.contains_key("tier"));
        assert_eq!(rebuilt.stage, None);
    }

    #[test]
    fn sources_have_stable_names() {
        for source in [
            ChangeSource::Api,
            ChangeSource::Import,
            ChangeSource::Webhook,
            ChangeSource::HistoryImport,
        ] {
            assert_eq!(ChangeSource::parse(source.as_str()), Some(source));
            assert_eq!(serde_json::to_value(source).unwrap(), json!(source.as_str()));
        }
        assert_eq!(ChangeSource::parse("API"), None);
    }
}
