//! Reading a feature's raw value out of an opportunity — the only place that knows which deal
//! field feeds which feature.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::spec::{CoreField, Source};
use crate::domain::{AttributeValue, Deal};
use crate::i18n::Lang;

/// A numeric feature's raw value.
#[derive(Debug, Clone, PartialEq)]
pub enum NumericValue {
    /// A finite number.
    Present(f64),
    /// The field is empty.
    Missing,
    /// The attribute holds text that is not a number (treated as missing, with this text kept
    /// for the explanation).
    NotANumber(String),
}

/// Reads a numeric feature. `now` only matters for the measures of open deals (age, pace, silence).
pub fn numeric_value(source: &Source<'_>, opp: &Deal, now: DateTime<Utc>) -> NumericValue {
    let value = match source {
        Source::Core(CoreField::CycleDays) => opp.cycle_days(now),
        Source::Core(CoreField::InteractionCount) => opp.interaction_count.map(|n| n as f64),
        Source::Core(CoreField::ResponseHours) => opp.response_hours,
        Source::Core(CoreField::Amount) => opp.amount,
        Source::Core(CoreField::InteractionsPerWeek) => opp.interactions_per_week(now),
        Source::Core(CoreField::DaysSinceLastActivity) => opp.days_since_last_activity(now),
        // Categorical core fields never reach here (the spec validator enforces kinds); reading
        // them as numbers would mean "missing".
        Source::Core(_) => None,
        Source::Attribute(name) => match opp.attributes.get(*name) {
            None => None,
            Some(AttributeValue::Number(n)) => Some(*n),
            Some(AttributeValue::Text(t)) => match t.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => return NumericValue::NotANumber(t.clone()),
            },
        },
    };
    match value {
        Some(v) if v.is_finite() => NumericValue::Present(v),
        _ => NumericValue::Missing,
    }
}

/// Reads a categorical feature's level text; `None` when the field is empty.
pub fn category_value<'a>(source: &Source<'_>, opp: &'a Deal) -> Option<Cow<'a, str>> {
    let borrowed = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
    match source {
        Source::Core(CoreField::Sector) => borrowed(&opp.sector),
        Source::Core(CoreField::Region) => borrowed(&opp.region),
        Source::Core(CoreField::Owner) => borrowed(&opp.owner),
        Source::Core(CoreField::ContactRole) => opp.contact_role.as_ref().map(|r| Cow::Borrowed(r.as_str())),
        Source::Core(_) => None,
        Source::Attribute(name) => match opp.attributes.get(*name)? {
            AttributeValue::Text(t) => Some(Cow::Borrowed(t.as_str())),
            AttributeValue::Number(_) => opp.attributes.get(*name).map(|v| Cow::Owned(v.to_text())),
        },
    }
}

/// Formats a number compactly for display and column names: integers without decimals, others
/// with up to 4 significant digits (`52`, `4.5`, `0.0123`, `12500`).
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        let mut text = String::with_capacity(20);
        crate::i18n::format::push_integer(&mut text, x as i64);
        return text;
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let mut text = crate::i18n::format::fixed(x, decimals);
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    text
}

/// Rounds to 4 significant digits (used for bin edges, so their names are short and unique).
pub fn round_significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = x.abs().log10().floor() as i32;
    let factor = 10f64.powi(3 - magnitude);
    (x * factor).round() / factor
}

/// Display text of a numeric value with the unit of its core field (`52 h`, `30 days`).
pub fn display_numeric(source: &Source<'_>, x: f64) -> String {
    display_numeric_in(source, x, Lang::En)
}

/// [`format_number`] written the way `lang` writes numbers: the same significant digits, with
/// French grouping and decimal comma (`12 500`, `4,5`). English is exactly [`format_number`],
/// which never groups thousands, so column names and stored texts keep their spelling.
pub fn format_number_in(x: f64, lang: Lang) -> String {
    let compact = format_number(x);
    match lang {
        Lang::En => compact,
        Lang::Fr if !x.is_finite() => compact,
        Lang::Fr => {
            let decimals = compact.split_once('.').map_or(0, |(_, f)| f.len());
            crate::i18n::format::number(x, decimals, lang)
        }
    }
}

/// [`display_numeric`] in `lang` (`30 days` / `30 jours`, `4.5 h` / `4,5 h`): the number as
/// sentences write measures, with 2–3 significant digits ([`crate::i18n::format::quantity`]).
pub fn display_numeric_in(source: &Source<'_>, x: f64, lang: Lang) -> String {
    if !x.is_finite() {
        return format_number(x);
    }
    let mut text = crate::i18n::format::quantity(x, lang);
    let unit = match (source, lang) {
        (Source::Core(CoreField::CycleDays | CoreField::DaysSinceLastActivity), Lang::En) => " days",
        // French nouns stay singular below 2 ("1,5 jour").
        (Source::Core(CoreField::CycleDays | CoreField::DaysSinceLastActivity), Lang::Fr)
            if x.abs() < 2.0 =>
        {
            " jour"
        }
        (Source::Core(CoreField::CycleDays | CoreField::DaysSinceLastActivity), Lang::Fr) => " jours",
        (Source::Core(CoreField::InteractionsPerWeek), Lang::En) => " a week",
        (Source::Core(CoreField::InteractionsPerWeek), Lang::Fr) => " par semaine",
        (Source::Core(CoreField::ResponseHours), _) => " h",
        _ => "",
    };
    text.push_str(unit);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(format_number(52.0), "52");
        assert_eq!(format_number(4.5), "4.5");
        assert_eq!(format_number(8.4567), "8.457");
        assert_eq!(format_number(0.012345), "0.01235");
        assert_eq!(format_number(f64::INFINITY), "inf");
        assert_eq!(round_significant(12345.6), 12350.0);
        assert_eq!(round_significant(0.0123456), 0.01235);
    }

    #[test]
    fn french_numbers_keep_the_digits_and_change_the_separators() {
        assert_eq!(format_number_in(12500.0, Lang::En), "12500");
        assert_eq!(format_number_in(12500.0, Lang::Fr), "12\u{202F}500");
        assert_eq!(format_number_in(8.4567, Lang::Fr), "8,457");
        let days = Source::Core(CoreField::CycleDays);
        assert_eq!(display_numeric_in(&days, 30.0, Lang::Fr), "30 jours");
        assert_eq!(display_numeric_in(&days, 1.5, Lang::Fr), "1,5 jour");
        assert_eq!(display_numeric_in(&days, 30.0, Lang::En), "30 days");
        assert_eq!(display_numeric_in(&days, 44.57, Lang::Fr), "45 jours");
        let hours = Source::Core(CoreField::ResponseHours);
        assert_eq!(display_numeric_in(&hours, 9.4321, Lang::En), "9.4 h");
        assert_eq!(display_numeric_in(&hours, 7.0, Lang::En), "7 h");
        let amount = Source::Core(CoreField::Amount);
        assert_eq!(display_numeric_in(&amount, 12_500.0, Lang::En), "12,500");
    }
}
