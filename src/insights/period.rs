//! Reporting periods: `from`/`to` windows, calendar buckets (month, quarter) and the period
//! labels of objectives (`2026`, `2026-Q1`, `2026-03`).
//!
//! All periods are half-open UTC intervals `[start, end)` in epoch milliseconds. A `to` date is
//! inclusive for the caller (`to=2026-03-31` covers that whole day), so its end is the next
//! midnight.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use crate::domain::{parse_timestamp, to_epoch_ms};
use crate::i18n::Localized;
use crate::tr;

/// A half-open interval `[start, end)` of epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

impl Window {
    /// Length in milliseconds.
    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The window of equal length just before this one.
    pub fn previous(&self) -> Window {
        Window {
            start: self.start - self.len(),
            end: self.start,
        }
    }

    /// The window `n` lengths before this one (`0` is itself).
    pub fn shifted_back(&self, n: i64) -> Window {
        Window {
            start: self.start - n * self.len(),
            end: self.end - n * self.len(),
        }
    }

    /// True when `t` falls within.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }
}

/// Default window length when `from` is not given: 90 days before `to`.
pub const DEFAULT_DAYS: i64 = 90;

/// Parses a `from` bound: a date (its midnight) or an RFC 3339 instant.
pub fn parse_from(text: &str) -> Result<i64, Localized> {
    parse_bound(text, false)
}

/// Parses a `to` bound: a date (covering that whole day) or an RFC 3339 instant (exclusive).
pub fn parse_to(text: &str) -> Result<i64, Localized> {
    parse_bound(text, true)
}

fn parse_bound(text: &str, inclusive_day: bool) -> Result<i64, Localized> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let date = if inclusive_day {
            date.succ_opt()
                .ok_or_else(|| tr!("`{text}` is out of range", "`{text}` est hors limites"))?
        } else {
            date
        };
        return Ok(to_epoch_ms(midnight(date)));
    }
    parse_timestamp(text).map(to_epoch_ms).map_err(|_| {
        tr!(
            "`{text}` is not a date (YYYY-MM-DD) or an RFC 3339 time",
            "`{text}` n'est ni une date (AAAA-MM-JJ) ni un instant RFC 3339"
        )
    })
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The reporting window from optional `from` and `to` texts: `to` defaults to the end of today,
/// `from` to [`DEFAULT_DAYS`] before `to`. Errors name the field.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Window, (&'static str, Localized)> {
    let end = match to {
        Some(t) => parse_to(t).map_err(|e| ("to", e))?,
        None => to_epoch_ms(midnight(now.date_naive().succ_opt().unwrap_or(now.date_naive()))),
    };
    let start = match from {
        Some(f) => parse_from(f).map_err(|e| ("from", e))?,
        None => end - DEFAULT_DAYS * super::snapshot::DAY_MS,
    };
    if start >= end {
        return Err(("from", tr!("must be before `to`", "doit précéder `to`")));
    }
    Ok(Window { start, end })
}

/// Calendar buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
}

impl Calendar {
    /// The bucket number of an instant (months or quarters since year 0).
    pub fn bucket(self, t: i64) -> i64 {
        let date = DateTime::from_timestamp_millis(t).unwrap_or_default();
        let month = i64::from(date.year()) * 12 + i64::from(date.month0());
        match self {
            Calendar::Month => month,
            Calendar::Quarter => month.div_euclid(3),
        }
    }

    /// The window of a bucket number.
    pub fn window(self, bucket: i64) -> Window {
        let months_per = match self {
            Calendar::Month => 1,
            Calendar::Quarter => 3,
        };
        let start_month = bucket * months_per;
        Window {
            start: month_start(start_month),
            end: month_start(start_month + months_per),
        }
    }

    /// The label of a bucket: `2026-03` or `2026-Q1`.
    pub fn label(self, bucket: i64) -> String {
        match self {
            Calendar::Month => format!("{}-{:02}", bucket.div_euclid(12), bucket.rem_euclid(12) + 1),
            Calendar::Quarter => format!("{}-Q{}", bucket.div_euclid(4), bucket.rem_euclid(4) + 1),
        }
    }
}

fn month_start(month_index: i64) -> i64 {
    let year = i32::try_from(month_index.div_euclid(12)).unwrap_or(i32::MAX);
    let month = u32::try_from(month_index.rem_euclid(12) + 1).unwrap_or(1);
    NaiveDate::from_ymd_opt(year, month, 1).map_or(i64::MAX, |d| to_epoch_ms(midnight(d)))
}

/// Parses an objective period: `2026` (year), `2026-Q1` (quarter) or `2026-03` (month), into its
/// canonical label and window.
pub fn parse_period(text: &str) -> Option<(String, Window)> {
    let text = text.trim();
    let year_of = |s: &str| {
        s.parse::<i64>()
            .ok()
            .filter(|y| (1970..=9999).contains(y) && s.len() == 4)
    };
    if let Some(year) = year_of(text) {
        return Some((
            format!("{year}"),
            Window {
                start: month_start(year * 12),
                end: month_start(year * 12 + 12),
            },
        ));
    }
    let (year, rest) = text.split_once('-')?;
    let year = year_of(year)?;
    if let Some(q) = rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
        let q: i64 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
        let bucket = year * 4 + q - 1;
        return Some((Calendar::Quarter.label(bucket), Calendar::Quarter.window(bucket)));
    }
    let month: i64 = rest
        .parse()
        .ok()
        .filter(|m| (1..=12).contains(m) && rest.len() == 2)?;
    let bucket = year * 12 + month - 1;
    Some((Calendar::Month.label(bucket), Calendar::Month.window(bucket)))
}

/// RFC 3339 text of an epoch-millisecond instant.
pub fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp_millis(t)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        to_epoch_ms(parse_timestamp(text).unwrap())
    }

    #[test]
    fn to_dates_cover_the_whole_day() {
        let w = window(Some("2026-01-01"), Some("2026-01-31"), Utc::now()).unwrap();
        assert_eq!(w.start, ms("2026-01-01T00:00:00Z"));
        assert_eq!(w.end, ms("2026-02-01T00:00:00Z"));
        assert_eq!(w.previous().start, ms("2025-12-01T00:00:00Z"));
    }

    #[test]
    fn bad_windows_name_their_field() {
        assert_eq!(window(Some("nope"), None, Utc::now()).unwrap_err().0, "from");
        assert_eq!(
            window(Some("2026-02-01"), Some("2026-01-01"), Utc::now())
                .unwrap_err()
                .0,
            "from"
        );
        assert_eq!(window(None, Some("2026-13-01"), Utc::now()).unwrap_err().0, "to");
    }

    #[test]
    fn buckets_round_trip() {
        let t = ms("2026-05-17T10:00:00Z");
        let m = Calendar::Month.bucket(t);
        assert_eq!(Calendar::Month.label(m), "2026-05");
        assert_eq!(Calendar::Month.window(m).start, ms("2026-05-01T00:00:00Z"));
        assert_eq!(Calendar::Month.window(m).end, ms("2026-06-01T00:00:00Z"));
        let q = Calendar::Quarter.bucket(t);
        assert_eq!(Calendar::Quarter.label(q), "2026-Q2");
        assert_eq!(Calendar::Quarter.window(q).start, ms("2026-04-01T00:00:00Z"));
        assert_eq!(Calendar::Quarter.window(q - 1).end, ms("2026-04-01T00:00:00Z"));
    }

    #[test]
    fn objective_periods_parse() {
        let (label, w) = parse_period("2026-q4").unwrap();
        assert_eq!(label, "2026-Q4");
        assert_eq!(
            (w.start, w.end),
            (ms("2026-10-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(parse_period("2026-02").unwrap().1.end, ms("2026-03-01T00:00:00Z"));
        assert_eq!(parse_period("2026").unwrap().1.end, ms("2027-01-01T00:00:00Z"));
        for bad in ["2026-13", "2026-Q5", "26", "2026-1", "x", ""] {
            assert!(parse_period(bad).is_none(), "{bad}");
        }
    }
}
