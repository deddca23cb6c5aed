//! Timestamp parsing and the epoch-millisecond representation used in storage.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::validation::FieldMessage;
use crate::i18n::Lang;

/// First year of a date dealscore accepts: older dates are typing mistakes (`0001-01-01` is a
/// CRM's "no date"), and they would stretch every cycle length and chart axis.
pub const MIN_YEAR: i32 = 1900;
/// Last year of a date dealscore accepts (`9999-12-31` is another CRM "no date").
pub const MAX_YEAR: i32 = 2200;

/// True when `t` falls in the years [`MIN_YEAR`]–[`MAX_YEAR`] (UTC).
pub fn in_accepted_years(t: DateTime<Utc>) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&t.year())
}

/// The field message for a date outside [`MIN_YEAR`]–[`MAX_YEAR`].
pub fn year_out_of_range() -> FieldMessage {
    FieldMessage::YearOutOfRange {
        min: MIN_YEAR,
        max: MAX_YEAR,
    }
}

/// Parses an RFC 3339 timestamp or a plain `YYYY-MM-DD` date (midnight UTC).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    parse_timestamp_with_format(text, None)
}

/// Like [`parse_timestamp`], trying `format` (a chrono `strftime` pattern, date or date-time,
/// read as UTC) first when given.
pub fn parse_timestamp_with_format(text: &str, format: Option<&str>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Some(format) = format {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Utc.from_utc_datetime(&dt));
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, format) {
            return Ok(midnight(date));
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(midnight(date));
    }
    Err(bad_timestamp(text, format).text(Lang::En))
}

/// The field message for `text` that is not a timestamp (`format`: the custom one tried first).
pub fn bad_timestamp(text: &str, format: Option<&str>) -> FieldMessage {
    FieldMessage::BadTimestamp {
        text: text.trim().to_owned(),
        format: format.map(str::to_owned),
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// Milliseconds since the Unix epoch, the storage representation of every timestamp.
pub fn to_epoch_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Inverse of [`to_epoch_ms`]; out-of-range values clamp to the epoch.
pub fn from_epoch_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc3339_plain_dates_and_custom_formats() {
        let cases = [
            ("2025-03-01T10:00:00Z", None, "2025-03-01T10:00:00+00:00"),
            ("2025-03-01T12:00:00+02:00", None, "2025-03-01T10:00:00+00:00"),
            ("2025-03-01", None, "2025-03-01T00:00:00+00:00"),
            ("01/03/2025", Some("%d/%m/%Y"), "2025-03-01T00:00:00+00:00"),
            (
                "01/03/2025 08:30",
                Some("%d/%m/%Y %H:%M"),
                "2025-03-01T08:30:00+00:00",
            ),
            ("2025-03-01", Some("%d/%m/%Y"), "2025-03-01T00:00:00+00:00"),
        ];
        for (text, format, expected) in cases {
            let parsed = parse_timestamp_with_format(text, format).unwrap();
            assert_eq!(parsed.to_rfc3339(), expected, "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "yesterday", "2025-13-01", "2025-02-30"] {
            assert!(parse_timestamp(text).is_err(), "{text}");
        }
    }

    #[test]
    fn accepted_years_are_1900_to_2200_inclusive() {
        let cases = [
            ("0001-01-01", false),
            ("1899-12-31T23:59:59Z", false),
            ("1900-01-01", true),
            ("2025-06-30", true),
            ("2200-12-31T23:59:59Z", true),
            ("2201-01-01", false),
            ("9999-12-31", false),
        ];
        for (text, accepted) in cases {
            let t = parse_timestamp(text).unwrap();
            assert_eq!(in_accepted_years(t), accepted, "{text}");
        }
    }

    #[test]
    fn epoch_ms_round_trips() {
        let t = parse_timestamp("2024-02-29T23:59:59.123Z").unwrap();
        assert_eq!(from_epoch_ms(to_epoch_ms(t)), t);
    }
}
