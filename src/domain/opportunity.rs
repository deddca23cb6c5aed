//! The opportunity (deal) as dealscore understands it, and its parser.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::currency;
use super::time::{bad_timestamp, in_accepted_years, parse_timestamp_with_format, year_out_of_range};
use super::validation::{FieldMessage, JsonKind, ValidationErrors};

/// Currency used when none is given.
pub const DEFAULT_CURRENCY: &str = "EUR";
/// Longest accepted `external_id`, in characters.
pub const MAX_EXTERNAL_ID_LEN: usize = 200;
/// Longest accepted free-text field (name, account, …), in characters.
const MAX_TEXT_LEN: usize = 1000;
/// Most custom attributes on one opportunity.
const MAX_ATTRIBUTES: usize = 200;
/// Largest accepted `amount`: far above any deal, and small enough that sums over every deal
/// (won revenue, pipeline value) stay finite and exact to the cent.
pub const MAX_AMOUNT: f64 = 1e15;
/// Largest `response_hours` accepted: about eleven years. A larger figure is a unit mix-up
/// (seconds sent as hours) or a placeholder, and would dominate the response-time feature.
pub const MAX_RESPONSE_HOURS: f64 = 100_000.0;
/// Largest `cycle_days` of a deal sent to be scored: the span of the accepted years 1900–2200.
pub const MAX_CYCLE_DAYS: f64 = 110_000.0;
/// Largest magnitude of a numeric custom attribute, like [`MAX_AMOUNT`]: beyond it a number is
/// no measure of a deal, and squared or summed in a feature it would leave the range of `f64`.
pub const MAX_ATTRIBUTE_NUMBER: f64 = 1e15;

/// Outcome state of a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still in the pipeline.
    Open,
    /// Signed.
    Won,
    /// Lost or abandoned.
    Lost,
}

impl Status {
    /// The lowercase name used in JSON, CSV and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Won => "won",
            Status::Lost => "lost",
        }
    }

    /// Parses `open`, `won` or `lost` (case-insensitive, surrounding spaces ignored).
    pub fn parse(text: &str) -> Option<Status> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Status::Open),
            "won" => Some(Status::Won),
            "lost" => Some(Status::Lost),
            _ => None,
        }
    }

    /// True for won and lost.
    pub fn is_closed(self) -> bool {
        !matches!(self, Status::Open)
    }
}

/// A CRM identifier: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    /// Validates an identifier.
    pub fn parse(text: &str) -> Result<ExternalId, FieldMessage> {
        if text.is_empty() {
            return Err(FieldMessage::Empty);
        }
        if text.chars().count() > MAX_EXTERNAL_ID_LEN {
            return Err(FieldMessage::TooLong {
                max: MAX_EXTERNAL_ID_LEN,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(FieldMessage::ControlCharacters);
        }
        Ok(ExternalId(text.to_owned()))
    }

    /// The identifier text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `prefix` followed by `number` on at least 7 digits (`D-0000042`), for generated data: the
    /// prefix loses its control characters and is cut so the identifier always fits.
    pub fn numbered(prefix: &str, number: usize) -> ExternalId {
        let digits = format!("{number:07}");
        let room = MAX_EXTERNAL_ID_LEN.saturating_sub(digits.len());
        let mut id: String = prefix.chars().filter(|c| !c.is_control()).take(room).collect();
        id.push_str(&digits);
        ExternalId(id)
    }
}

impl std::fmt::Display for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ExternalId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps and sets keyed by `ExternalId` be searched with a `&str`.
impl Borrow<str> for ExternalId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Reads as the identifier text wherever a `&str` is expected.
impl Deref for ExternalId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<String> for ExternalId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<str> for ExternalId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ExternalId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<ExternalId> for String {
    fn from(id: ExternalId) -> String {
        id.0
    }
}

/// Role of the deal's main contact, normalised to lower snake case.
///
/// The well-known roles are listed in [`ContactRole::KNOWN`]; any other text is accepted and
/// normalised the same way, so `"Decision Maker"` and `"decision-maker"` are the same role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ContactRole(String);

impl ContactRole {
    /// Roles dealscore knows by name.
    pub const KNOWN: [&'static str; 8] = [
        "decision_maker",
        "economic_buyer",
        "champion",
        "influencer",
        "technical",
        "end_user",
        "procurement",
        "other",
    ];

    /// Normalises free text; `None` when nothing but separators remains.
    pub fn normalise(text: &str) -> Option<ContactRole> {
        // Most values arrive normalised already (`decision_maker`, and every level the model
        // knows): copy them as they are instead of lower-casing them char by char, which is
        // what scoring spent most of this function's time on.
        if Self::is_normalised(text) {
            return Some(ContactRole(text.to_owned()));
        }
        Self::normalise_chars(text)
    }

    /// The general case of [`ContactRole::normalise`]: lower-cased alphanumeric runs joined by
    /// single underscores.
    fn normalise_chars(text: &str) -> Option<ContactRole> {
        let mut out = String::with_capacity(text.len());
        let mut pending_sep = false;
        for ch in text.trim().chars() {
            if ch.is_alphanumeric() {
                if pending_sep && !out.is_empty() {
                    out.push('_');
                }
                pending_sep = false;
                out.extend(ch.to_lowercase());
            } else {
                pending_sep = true;
            }
        }
        (!out.is_empty()).then_some(ContactRole(out))
    }

    /// True when `normalise` would return `text` unchanged and the check is cheap: ASCII
    /// lower-case letters and digits, in runs joined by single underscores.
    fn is_normalised(text: &str) -> bool {
        let bytes = text.as_bytes();
        let word = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        bytes.first().is_some_and(word)
            && bytes.last().is_some_and(word)
            && bytes.iter().all(|b| word(b) || *b == b'_')
            && !text.contains("__")
    }

    /// The normalised role.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A custom CRM field value: text or number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A number (always finite).
    Number(f64),
    /// Free text.
    Text(String),
}

impl AttributeValue {
    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AttributeValue::Number(n) => Some(*n),
            AttributeValue::Text(_) => None,
        }
    }

    /// The value as text (numbers printed the shortest way).
    pub fn to_text(&self) -> String {
        match self {
            AttributeValue::Number(n) => format_number(*n),
            AttributeValue::Text(t) => t.clone(),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A validated deal as scoring reads it: everything but its CRM identity.
///
/// A deal sent to be scored (`POST /v1/score`) is a `Deal`; a stored one is an [`Opportunity`],
/// which adds its identifier and derefs to its `Deal`, so scoring takes either.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deal {
    /// Deal name.
    pub name: Option<String>,
    /// Account (customer company).
    pub account: Option<String>,
    /// Account's sector.
    pub sector: Option<String>,
    /// Sales region.
    pub region: Option<String>,
    /// Owning rep.
    pub owner: Option<String>,
    /// Main contact's role.
    pub contact_role: Option<ContactRole>,
    /// Deal value (0 ≤ amount ≤ [`MAX_AMOUNT`]).
    pub amount: Option<f64>,
    /// An active ISO 4217 code, upper case (default EUR).
    pub currency: String,
    /// CRM stage, free text.
    pub stage: Option<String>,
    /// open, won or lost.
    pub status: Status,
    /// When the deal was opened.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was won or lost (absent for open deals).
    pub closed_at: Option<DateTime<Utc>>,
    /// Number of interactions with the prospect (≥ 0).
    pub interaction_count: Option<i64>,
    /// Average hours the rep took to answer the prospect (≥ 0).
    pub response_hours: Option<f64>,
    /// Most recent activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Custom CRM fields.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Cycle length given explicitly by a deal sent to be scored; never set on a stored
    /// [`Opportunity`] (its cycle is derived from its dates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_days: Option<f64>,
}

/// A validated opportunity: a [`Deal`] with the CRM identifier it is stored under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opportunity {
    /// The CRM's identifier (unique).
    pub external_id: ExternalId,
    /// Everything else about the deal.
    #[serde(flatten)]
    pub deal: Deal,
}

impl Deref for Opportunity {
    type Target = Deal;

    fn deref(&self) -> &Deal {
        &self.deal
    }
}

impl DerefMut for Opportunity {
    fn deref_mut(&mut self) -> &mut Deal {
        &mut self.deal
    }
}

/// Raw fields of an opportunity as received (a JSON object, or a CSV row turned into one).
pub type OpportunityInput = Map<String, Value>;

/// How strictly [`Opportunity::parse`] reads its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// Extra timestamp format (chrono pattern) tried before RFC 3339 and `YYYY-MM-DD`.
    pub date_format: Option<&'a str>,
    /// Input came from text (CSV): numbers may be given as strings.
    pub from_text: bool,
}

/// What the fields are parsed for: a stored opportunity, or a deal sent to be scored, whose
/// `external_id` is optional, `status` defaults to open and `cycle_days` is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A stored opportunity.
    Store,
    /// A deal sent to be scored (also one field of a recorded change, see `history`).
    Score,
}

/// The record fields of an opportunity, in their documented order: the JSON field names and the
/// default CSV headers (attributes aside).
pub const RECORD_FIELDS: [&str; 16] = [
    "external_id",
    "name",
    "account",
    "sector",
    "region",
    "owner",
    "contact_role",
    "amount",
    "currency",
    "stage",
    "status",
    "created_at",
    "closed_at",
    "interaction_count",
    "response_hours",
    "last_activity_at",
];

/// Body fields accepted besides the record fields.
const EXTRA_FIELDS: [&str; 3] = ["attributes", "cycle_days", "activities"];

impl Opportunity {
    /// Parses and validates raw fields, collecting every problem.
    ///
    /// `path_id` is the identifier from the URL when there is one; a body `external_id` must then
    /// match it.
    pub fn parse(
        path_id: Option<&str>,
        input: &OpportunityInput,
        options: ParseOptions<'_>,
    ) -> Result<Opportunity, ValidationErrors> {
        let (external_id, deal, errors) = parse_fields(path_id, input, options, Purpose::Store);
        match external_id {
            Some(external_id) if errors.is_empty() => Ok(Opportunity { external_id, deal }),
            // Without an id, `parse_fields` recorded why (required, empty, mismatched…).
            _ => Err(errors),
        }
    }
}

impl Deal {
    /// Parses a deal sent to be scored, collecting every problem: `external_id` is optional,
    /// `status` defaults to open and `cycle_days` may replace the dates.
    ///
    /// A caller may send a stored deal's shape: its `external_id` is checked as a stored one's
    /// would be (a malformed one is refused, as it always was) and plays no part in the score.
    pub fn parse_to_score(
        input: &OpportunityInput,
        options: ParseOptions<'_>,
    ) -> Result<Deal, ValidationErrors> {
        let (_, deal, errors) = parse_fields(None, input, options, Purpose::Score);
        errors.into_result(deal)
    }

    /// Deal age in days: `closed_at − created_at` for closed deals, `now − created_at` for open
    /// ones, or the explicit `cycle_days` of a scoring request. `None` without the dates.
    pub fn cycle_days(&self, now: DateTime<Utc>) -> Option<f64> {
        if self.cycle_days.is_some() {
            return self.cycle_days;
        }
        let created = self.created_at?;
        let end = match self.status {
            Status::Open => now,
            Status::Won | Status::Lost => self.closed_at?,
        };
        Some(((end - created).num_milliseconds() as f64 / MS_PER_DAY).max(0.0))
    }

    /// The instant the deal is seen at when read at `now`: the end of an explicit `cycle_days`
    /// counted from `created_at` (a training snapshot carries its age there, so this is the
    /// snapshot's instant), else `closed_at` for a closed deal and `now` for an open one.
    pub fn seen_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let (Some(days), Some(created)) = (self.cycle_days, self.created_at) {
            // Ages are whole milliseconds over a day's; rounding recovers them exactly, so a
            // snapshot's instant is the instant it was taken at, to the millisecond.
            let ms = (days * MS_PER_DAY).round();
            if !(ms.is_finite() && ms.abs() < 1e15) {
                return None;
            }
            return created.checked_add_signed(chrono::TimeDelta::milliseconds(ms as i64));
        }
        match self.status {
            Status::Open => Some(now),
            Status::Won | Status::Lost => self.closed_at,
        }
    }

    /// Interactions per week of the deal's life so far (of its whole cycle once closed):
    /// `interaction_count` × 7 / [`Deal::cycle_days`], the age counted as at least one day so
    /// a deal's first day does not read as a frantic pace.
    pub fn interactions_per_week(&self, now: DateTime<Utc>) -> Option<f64> {
        let count = self.interaction_count?;
        let age = self.cycle_days(now)?;
        Some(count as f64 * 7.0 / age.max(1.0))
    }

    /// Days from the latest activity to the instant the deal is seen at ([`Deal::seen_at`]); a
    /// deal known to have had no interaction counts from its creation. `None` when neither is
    /// known.
    pub fn days_since_last_activity(&self, now: DateTime<Utc>) -> Option<f64> {
        let at = self.seen_at(now)?;
        let since = match self.last_activity_at {
            Some(last) => last,
            None if self.interaction_count == Some(0) => self.created_at?,
            None => return None,
        };
        Some(((at - since).num_milliseconds() as f64 / MS_PER_DAY).max(0.0))
    }
}

/// Milliseconds in a day: ages and silences are measured in days from millisecond instants.
const MS_PER_DAY: f64 = 86_400_000.0;

/// Parses the fields of an opportunity or of a deal sent to be scored, collecting every problem;
/// the identifier is `None` when absent or invalid (the reason is then among the errors).
pub(super) fn parse_fields(
    path_id: Option<&str>,
    input: &OpportunityInput,
    options: ParseOptions<'_>,
    purpose: Purpose,
) -> (Option<ExternalId>, Deal, ValidationErrors) {
    let mut errors = ValidationErrors::default();
    let mut reader = FieldReader {
        input,
        errors: &mut errors,
        options,
    };

    for key in input.keys() {
        if !(RECORD_FIELDS.contains(&key.as_str()) || EXTRA_FIELDS.contains(&key.as_str()))
            || (key == "cycle_days" && purpose == Purpose::Store)
        {
            reader.errors.push_known(key.clone(), FieldMessage::UnknownField);
        }
    }

    let body_id = reader.text("external_id", MAX_EXTERNAL_ID_LEN);
    let external_id = match (path_id, body_id.as_deref()) {
        (Some(p), Some(b)) if p != b => {
            reader.errors.push_known(
                "external_id",
                FieldMessage::IdMismatch {
                    body: b.to_owned(),
                    path: p.to_owned(),
                },
            );
            None
        }
        (Some(id), _) | (None, Some(id)) => match ExternalId::parse(id) {
            Ok(id) => Some(id),
            Err(message) => {
                reader.errors.push_known("external_id", message);
                None
            }
        },
        (None, None) => {
            if purpose == Purpose::Store && !reader.has_error("external_id") {
                reader.errors.push_known("external_id", FieldMessage::Required);
            }
            None
        }
    };

    let name = reader.text("name", MAX_TEXT_LEN);
    let account = reader.text("account", MAX_TEXT_LEN);
    let sector = reader.text("sector", MAX_TEXT_LEN);
    let region = reader.text("region", MAX_TEXT_LEN);
    let owner = reader.text("owner", MAX_TEXT_LEN);
    let stage = reader.text("stage", MAX_TEXT_LEN);
    let contact_role = reader
        .text("contact_role", MAX_TEXT_LEN)
        .and_then(|t| ContactRole::normalise(&t));
    let amount = reader.amount("amount");
    let currency = match reader.text("currency", 3) {
        Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            let code = c.to_ascii_uppercase();
            if !currency::is_active(&code) {
                reader
                    .errors
                    .push_known("currency", FieldMessage::UnknownCurrency { code: code.clone() });
            }
            code
        }
        Some(c) => {
            reader
                .errors
                .push_known("currency", FieldMessage::BadCurrency { code: c });
            String::new()
        }
        None => DEFAULT_CURRENCY.to_owned(),
    };
    let status = match reader.text("status", 50) {
        Some(s) => match Status::parse(&s) {
            Some(status) => status,
            None => {
                reader
                    .errors
                    .push_known("status", FieldMessage::BadStatus { status: s });
                Status::Open
            }
        },
        None => {
            if purpose == Purpose::Store && !reader.has_error("status") {
                reader.errors.push_known("status", FieldMessage::StatusRequired);
            }
            Status::Open
        }
    };
    let created_at = reader.timestamp("created_at");
    let closed_at = reader.timestamp("closed_at");
    let last_activity_at = reader.timestamp("last_activity_at");
    let interaction_count = reader.count("interaction_count");
    let response_hours = reader.bounded("response_hours", MAX_RESPONSE_HOURS);
    let cycle_days = if purpose == Purpose::Score {
        reader.bounded("cycle_days", MAX_CYCLE_DAYS)
    } else {
        None
    };
    let attributes = reader.attributes();

    let status_known = input.get("status").is_some_and(|v| !v.is_null());
    // A refused status is not compared with `closed_at`: it was replaced by `open` only to go on.
    let status_refused = errors.0.iter().any(|e| e.field == "status");
    if (status_known || purpose == Purpose::Store) && !status_refused {
        match (status, closed_at) {
            (Status::Open, Some(_)) => errors.push_known("closed_at", FieldMessage::ClosedWhileOpen),
            (Status::Won | Status::Lost, None) if !errors.0.iter().any(|e| e.field == "closed_at") => {
                errors.push_known(
                    "closed_at",
                    FieldMessage::ClosedRequired {
                        status: status.as_str(),
                    },
                );
            }
            _ => {}
        }
    }
    if let (Some(created), Some(closed)) = (created_at, closed_at) {
        if closed < created {
            errors.push_known("closed_at", FieldMessage::ClosedBeforeCreated);
        }
    }

    let deal = Deal {
        name,
        account,
        sector,
        region,
        owner,
        contact_role,
        amount,
        currency,
        stage,
        status,
        created_at,
        closed_at,
        interaction_count,
        response_hours,
        last_activity_at,
        attributes,
        cycle_days,
    };
    (external_id, deal, errors)
}

/// Reads typed fields out of a raw object, recording a field error for each bad one.
struct FieldReader<'a, 'e> {
    input: &'a OpportunityInput,
    errors: &'e mut ValidationErrors,
    options: ParseOptions<'a>,
}

impl FieldReader<'_, '_> {
    /// True when `field` already has an error (so "is required" is not added to "too long").
    fn has_error(&self, field: &str) -> bool {
        self.errors.0.iter().any(|e| e.field == field)
    }

    fn present(&self, field: &str) -> Option<&Value> {
        match self.input.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if self.options.from_text && s.trim().is_empty() => None,
            Some(v) => Some(v),
        }
    }

    fn text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.present(field)? {
            Value::String(s) => {
                let s = s.trim();
                if s.is_empty() {
                    return None;
                }
                if s.chars().count() > max_chars {
                    self.errors
                        .push_known(field, FieldMessage::TooLong { max: max_chars });
                    return None;
                }
                // Record fields are one-line values (names, codes, stages): a tab, newline or NUL
                // is a broken export, and PostgreSQL cannot store a NUL at all.
                if s.chars().any(char::is_control) {
                    self.errors.push_known(field, FieldMessage::ControlCharacters);
                    return None;
                }
                Some(s.to_owned())
            }
            Value::Number(n) if self.options.from_text => Some(n.to_string()),
            other => {
                let got = Some(JsonKind::of(other));
                self.errors
                    .push_known(field, FieldMessage::ExpectedString { got });
                None
            }
        }
    }

    fn number(&mut self, field: &str) -> Option<f64> {
        let value = match self.present(field)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if self.options.from_text => s.trim().parse::<f64>().ok(),
            other => {
                let got = JsonKind::of(other);
                self.errors
                    .push_known(field, FieldMessage::ExpectedNumber { got });
                return None;
            }
        };
        match value {
            Some(v) if v.is_finite() => Some(v),
            _ => {
                self.errors.push_known(field, FieldMessage::ExpectedFiniteNumber);
                None
            }
        }
    }

    fn non_negative_number(&mut self, field: &str) -> Option<f64> {
        let v = self.number(field)?;
        if v < 0.0 {
            self.errors.push_known(field, FieldMessage::Negative);
            return None;
        }
        Some(v)
    }

    fn amount(&mut self, field: &str) -> Option<f64> {
        self.bounded(field, MAX_AMOUNT)
    }

    /// A number in `0..=max`.
    fn bounded(&mut self, field: &str, max: f64) -> Option<f64> {
        let v = self.non_negative_number(field)?;
        if v > max {
            self.errors
                .push_known(field, FieldMessage::TooLarge { max: max as u64 });
            return None;
        }
        Some(v)
    }

    fn count(&mut self, field: &str) -> Option<i64> {
        let v = self.non_negative_number(field)?;
        if v.fract() != 0.0 || v > 1e12 {
            self.errors.push_known(field, FieldMessage::ExpectedWholeNumber);
            return None;
        }
        Some(v as i64)
    }

    fn timestamp(&mut self, field: &str) -> Option<DateTime<Utc>> {
        match self.present(field)? {
            // Refused before parsing so the message never quotes the control characters back.
            Value::String(s) if s.chars().any(char::is_control) => {
                self.errors.push_known(field, FieldMessage::ControlCharacters);
                None
            }
            Value::String(s) => match parse_timestamp_with_format(s, self.options.date_format) {
                Ok(t) if in_accepted_years(t) => Some(t),
                Ok(_) => {
                    self.errors.push_known(field, year_out_of_range());
                    None
                }
                Err(_) => {
                    let message = bad_timestamp(s, self.options.date_format);
                    self.errors.push_known(field, message);
                    None
                }
            },
            other => {
                let got = JsonKind::of(other);
                self.errors
                    .push_known(field, FieldMessage::ExpectedTimestamp { got });
                None
            }
        }
    }

    fn attributes(&mut self) -> BTreeMap<String, AttributeValue> {
        let mut out = BTreeMap::new();
        let Some(value) = self.input.get("attributes") else {
            return out;
        };
        let object = match value {
            Value::Null => return out,
            Value::Object(o) => o,
            other => {
                let got = JsonKind::of(other);
                self.errors
                    .push_known("attributes", FieldMessage::ExpectedObject { got });
                return out;
            }
        };
        if object.len() > MAX_ATTRIBUTES {
            self.errors.push_known(
                "attributes",
                FieldMessage::TooManyAttributes { max: MAX_ATTRIBUTES },
            );
            return out;
        }
        for (key, value) in object {
            let field = format!("attributes.{key}");
            if key.is_empty() || key.chars().count() > 100 || key.chars().any(char::is_control) {
                self.errors.push_known(field, FieldMessage::BadAttributeName);
                continue;
            }
            match value {
                Value::Null => {}
                Value::Number(n) => match n.as_f64() {
                    Some(v) if v.abs() <= MAX_ATTRIBUTE_NUMBER => {
                        out.insert(key.clone(), AttributeValue::Number(v));
                    }
                    Some(v) if v.is_finite() => self.errors.push_known(
                        field,
                        FieldMessage::OutOfRange {
                            max: MAX_ATTRIBUTE_NUMBER as u64,
                        },
                    ),
                    _ => self.errors.push_known(field, FieldMessage::ExpectedFiniteNumber),
                },
                Value::String(s) => {
                    let s = s.trim();
                    if s.is_empty() {
                        continue;
                    }
                    if s.chars().count() > MAX_TEXT_LEN {
                        self.errors
                            .push_known(field, FieldMessage::TooLong { max: MAX_TEXT_LEN });
                        continue;
                    }
                    // Custom fields may hold notes: tabs and line breaks are text there, other
                    // control characters (NUL first, which PostgreSQL refuses) are not.
                    if s.chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                    {
                        self.errors.push_known(field, FieldMessage::ControlCharacters);
                        continue;
                    }
                    let parsed = if self.options.from_text {
                        s.parse::<f64>().ok().filter(|v| v.is_finite())
                    } else {
                        None
                    };
                    let v = match parsed {
                        // A CSV cell is held to the bound of a JSON number.
                        Some(n) if n.abs() > MAX_ATTRIBUTE_NUMBER => {
                            self.errors.push_known(
                                field,
                                FieldMessage::OutOfRange {
                                    max: MAX_ATTRIBUTE_NUMBER as u64,
                                },
                            );
                            continue;
                        }
                        Some(n) => AttributeValue::Number(n),
                        None => AttributeValue::Text(s.to_owned()),
                    };
                    out.insert(key.clone(), v);
                }
                other => {
                    let got = JsonKind::of(other);
                    self.errors
                        .push_known(field, FieldMessage::ExpectedStringOrNumber { got })
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Opportunity, ValidationErrors> {
        let Value::Object(map) = value else {
            panic!("object")
        };
        Opportunity::parse(None, &map, ParseOptions::default())
    }

    fn fields_of(result: Result<Opportunity, ValidationErrors>) -> Vec<String> {
        result.unwrap_err().0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn parses_a_complete_won_deal() {
        let opp = parse(json!({
            "external_id": "D-1", "name": "Renewal", "account": "Acme", "sector": "retail",
            "region": "EMEA", "owner": "alice", "contact_role": "Decision Maker", "amount": 12500.5,
            "currency": "usd", "stage": "Closed Won", "status": "Won",
            "created_at": "2025-01-01", "closed_at": "2025-02-15T12:00:00Z",
            "interaction_count": 7, "response_hours": 3.5,
            "attributes": {"tier": "gold", "seats": 40}
        }))
        .unwrap();
        assert_eq!(opp.status, Status::Won);
        assert_eq!(opp.currency, "USD");
        assert_eq!(opp.contact_role.as_ref().unwrap().as_str(), "decision_maker");
        assert_eq!(opp.attributes["seats"], AttributeValue::Number(40.0));
        let now = Utc::now();
        assert!((opp.cycle_days(now).unwrap() - 45.5).abs() < 1e-9);
    }

    #[test]
    fn table_of_bad_inputs_names_the_field() {
        let long_id = "x".repeat(201);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"external_id": "a", "status": "pending"}), "status"),
            (
                json!({"external_id": "a", "status": "open", "amount": -1}),
                "amount",
            ),
            (
                json!({"external_id": "a", "status": "open", "amount": "12"}),
                "amount",
            ),
            (
                json!({"external_id": "a", "status": "open", "interaction_count": -2}),
                "interaction_count",
            ),
            (
                json!({"external_id": "a", "status": "open", "interaction_count": 1.5}),
                "interaction_count",
            ),
            (
                json!({"external_id": "a", "status": "open", "response_hours": -0.5}),
                "response_hours",
            ),
            (
                json!({"external_id": "a", "status": "open", "response_hours": 100_000.5}),
                "response_hours",
            ),
            (
                json!({"external_id": "a", "status": "open", "attributes": {"seats": 2e15}}),
                "attributes.seats",
            ),
            (
                json!({"external_id": "a", "status": "open", "attributes": {"gap": -1e300}}),
                "attributes.gap",
            ),
            (json!({"external_id": "a", "status": "won"}), "closed_at"),
            (
                json!({"external_id": "a", "status": "open", "closed_at": "2025-01-01"}),
                "closed_at",
            ),
            (
                json!({"external_id": "a", "status": "lost", "created_at": "2025-02-01", "closed_at": "2025-01-01"}),
                "closed_at",
            ),
            (json!({"external_id": long_id, "status": "open"}), "external_id"),
            (
                json!({"external_id": "a\u{0007}b", "status": "open"}),
                "external_id",
            ),
            (
                json!({"external_id": "a", "status": "open", "currency": "EURO"}),
                "currency",
            ),
            (
                json!({"external_id": "a", "status": "open", "created_at": "soon"}),
                "created_at",
            ),
            (
                json!({"external_id": "a", "status": "open", "attributes": {"x": true}}),
                "attributes.x",
            ),
            (
                json!({"external_id": "a", "status": "open", "colour": "red"}),
                "colour",
            ),
            (json!({"status": "open"}), "external_id"),
        ];
        for (input, field) in cases {
            let fields = fields_of(parse(input.clone()));
            assert!(fields.contains(&field.to_string()), "{input} -> {fields:?}");
        }
    }

    /// One field of a valid deal replaced: whether it is accepted, and the field an error names.
    #[test]
    fn control_characters_and_bounds_table() {
        let base = || {
            json!({"external_id": "a", "status": "won", "created_at": "2025-01-01",
                   "closed_at": "2025-02-01", "amount": 10, "currency": "EUR", "name": "Deal"})
        };
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("name", json!("Acme\u{0}Corp"), Some("name")),
            ("name", json!("two\nlines"), Some("name")),
            ("name", json!("tab\there"), Some("name")),
            ("name", json!("bell\u{7}"), Some("name")),
            ("name", json!("del\u{7f}"), Some("name")),
            ("name", json!("  trailing newline\n"), None),
            ("name", json!("Société Générale – ünïcode"), None),
            ("account", json!("\u{0}"), Some("account")),
            ("owner", json!("a\u{1b}[31m"), Some("owner")),
            ("stage", json!("x\u{85}y"), Some("stage")),
            ("contact_role", json!("cto\u{0}"), Some("contact_role")),
            ("status", json!("won\u{0}"), Some("status")),
            ("external_id", json!("a\u{0}"), Some("external_id")),
            ("created_at", json!("2025-01-01\u{0}"), Some("created_at")),
            ("amount", json!(1e15), None),
            ("amount", json!(1.000_000_000_000_1e15), Some("amount")),
            ("amount", json!(1.5e308), Some("amount")),
            ("amount", json!(0), None),
            ("created_at", json!("0001-01-01"), Some("created_at")),
            ("created_at", json!("1899-12-31T23:59:59Z"), Some("created_at")),
            ("created_at", json!("1900-01-01"), None),
            ("closed_at", json!("9999-12-31"), Some("closed_at")),
            ("closed_at", json!("2200-12-31"), None),
            ("closed_at", json!("2201-01-01"), Some("closed_at")),
            ("last_activity_at", json!("2201-01-01"), Some("last_activity_at")),
            ("currency", json!("ZZZ"), Some("currency")),
            ("currency", json!("usd"), None),
            ("currency", json!("chf"), None),
            ("currency", json!("HRK"), Some("currency")),
            ("currency", json!("E\u{0}R"), Some("currency")),
        ];
        for (field, value, error) in cases {
            let mut input = base();
            input[field] = value.clone();
            let result = parse(input);
            match error {
                None => assert!(result.is_ok(), "{field}={value}: {result:?}"),
                Some(expected) => {
                    let errors = result.unwrap_err();
                    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
                    assert_eq!(fields, [expected], "{field}={value}");
                    assert!(
                        !errors.0[0].message.contains('\u{0}'),
                        "a message never quotes a NUL back: {:?}",
                        errors.0[0].message
                    );
                }
            }
        }
    }

    #[test]
    fn attribute_text_keeps_tabs_and_line_breaks_but_refuses_other_control_characters() {
        let cases = [
            (json!("line one\nline two\tcol"), None),
            (json!("crlf\r\nend"), None),
            (json!("nul\u{0}"), Some("attributes.notes")),
            (json!("escape\u{1b}"), Some("attributes.notes")),
        ];
        for (value, error) in cases {
            let result = parse(json!({"external_id": "a", "status": "open", "attributes": {"notes": value}}));
            match error {
                None => assert!(result.is_ok(), "{value}: {result:?}"),
                Some(field) => assert_eq!(fields_of(result), [field], "{value}"),
            }
        }
        let fields = fields_of(parse(
            json!({"external_id": "a", "status": "open", "attributes": {"a\u{0}b": 1}}),
        ));
        assert_eq!(
            fields,
            ["attributes.a\\u{0}b"],
            "field names are answered with controls escaped"
        );
    }

    #[test]
    fn bound_messages_name_the_rule() {
        let errors = parse(json!({"external_id": "a", "status": "open", "currency": "zzz",
                                  "amount": 2e15, "created_at": "9999-12-31"}))
        .unwrap_err();
        let messages: Vec<(&str, &str)> = errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                ("amount", "must be at most 1000000000000000"),
                ("currency", "`ZZZ` is not an active ISO 4217 currency code"),
                ("created_at", "must be a date between the years 1900 and 2200"),
            ]
        );
    }

    #[test]
    fn collects_every_problem_at_once() {
        let fields = fields_of(parse(json!({"external_id": "", "status": "x", "amount": -3})));
        assert_eq!(fields, vec!["external_id", "amount", "status"]);
    }

    #[test]
    fn text_input_accepts_numbers_as_strings_and_empty_cells() {
        let Value::Object(map) = json!({
            "external_id": "7", "status": "open", "amount": "1200", "interaction_count": "3",
            "response_hours": "", "attributes": {"seats": "40", "tier": "gold"}
        }) else {
            unreachable!()
        };
        let opp = Opportunity::parse(
            None,
            &map,
            ParseOptions {
                from_text: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(opp.amount, Some(1200.0));
        assert_eq!(opp.interaction_count, Some(3));
        assert_eq!(opp.response_hours, None);
        assert_eq!(opp.attributes["seats"], AttributeValue::Number(40.0));
        assert_eq!(opp.attributes["tier"], AttributeValue::Text("gold".into()));
    }

    #[test]
    fn contact_roles_normalise_to_snake_case() {
        for (raw, expected) in [
            ("Decision Maker", "decision_maker"),
            ("decision-maker", "decision_maker"),
            ("  Economic   Buyer ", "economic_buyer"),
            ("CTO / Tech", "cto_tech"),
        ] {
            assert_eq!(ContactRole::normalise(raw).unwrap().as_str(), expected);
        }
        assert!(ContactRole::normalise(" - ").is_none());
    }

    #[test]
    fn normalised_roles_take_the_short_path_with_the_same_result() {
        let pieces = ["", "a", "b2", "_", "__", "-", " ", "É", "é", "X", "9", "ß", "İ"];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    assert_eq!(
                        ContactRole::normalise(&text),
                        ContactRole::normalise_chars(&text),
                        "{text:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, pieces.len().pow(3));
        assert!(ContactRole::is_normalised("decision_maker"));
        assert!(!ContactRole::is_normalised("Decision_maker"));
        assert!(!ContactRole::is_normalised("decision__maker"));
        assert!(!ContactRole::is_normalised("_maker"));
    }

    #[test]
    fn path_id_must_match_body_id() {
        let Value::Object(map) = json!({"external_id": "b", "status": "open"}) else {
            unreachable!()
        };
        let err = Opportunity::parse(Some("a"), &map, ParseOptions::default()).unwrap_err();
        assert_eq!(err.0[0].field, "external_id");
        let Value::Object(map) = json!({"status": "open"}) else {
            unreachable!()
        };
        assert_eq!(
            Opportunity::parse(Some("a"), &map, ParseOptions::default())
                .unwrap()
                .external_id,
            "a"
        );
    }

    #[test]
    fn scoring_requests_need_no_id_or_status_and_accept_cycle_days() {
        let Value::Object(map) = json!({"cycle_days": 30, "sector": "retail"}) else {
            unreachable!()
        };
        let opp = Deal::parse_to_score(&map, ParseOptions::default()).unwrap();
        assert_eq!(opp.status, Status::Open);
        assert_eq!(opp.cycle_days(Utc::now()), Some(30.0));
    }
}
