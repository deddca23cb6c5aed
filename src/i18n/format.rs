//! Numbers, money, percentages and dates written the way each language writes them.
//!
//! English: `12,500.00 €`-style grouping with a comma and a decimal point, currency symbol first
//! (`€12,500.00`). French: narrow no-break space (U+202F) between thousands, decimal comma, symbol
//! after a no-break space (`12 500,00 €`), as CLDR's `fr` locale does.

use chrono::{DateTime, NaiveDate, Utc};

use super::Lang;

/// Narrow no-break space: French thousands separator.
pub const NNBSP: char = '\u{202F}';
/// No-break space: between a French number and its unit or symbol.
pub const NBSP: char = '\u{A0}';

fn group_digits(integer: &str, separator: char) -> String {
    let mut out = String::with_capacity(integer.len() + integer.len() / 3);
    for (i, c) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

/// A number with `decimals` digits after the separator, grouped by thousands.
pub fn number(value: f64, decimals: usize, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (integer, fraction) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let (group, point) = match lang {
        Lang::En => (',', '.'),
        Lang::Fr => (NNBSP, ','),
    };
    // "-0" is not worth a sign.
    let negative = value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&group_digits(integer, group));
    if let Some(fraction) = fraction {
        out.push(point);
        out.push_str(fraction);
    }
    out
}

fn currency_symbol(code: &str) -> &str {
    match code {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        "JPY" => "¥",
        "CHF" => "CHF",
        other => other,
    }
}

/// An amount in a currency (ISO 4217 code), two decimals.
pub fn money(amount: f64, currency: &str, lang: Lang) -> String {
    let symbol = currency_symbol(currency);
    let digits = number(amount, 2, lang);
    match lang {
        Lang::Fr => format!("{digits}{NBSP}{symbol}"),
        Lang::En if symbol.len() > 1 && symbol.chars().all(|c| c.is_ascii_uppercase()) => {
            format!("{symbol}{NBSP}{digits}")
        }
        Lang::En => match digits.strip_prefix('-') {
            Some(positive) => format!("-{symbol}{positive}"),
            None => format!("{symbol}{digits}"),
        },
    }
}

/// An amount rounded to whole units (dashboards: "1.2M" is too vague, cents are noise).
pub fn money_whole(amount: f64, currency: &str, lang: Lang) -> String {
    let full = money(amount.round(), currency, lang);
    let point = match lang {
        Lang::En => ".00",
        Lang::Fr => ",00",
    };
    full.replacen(point, "", 1)
}

/// A 0–1 fraction as a percentage with `decimals` digits (`42 %` in French, `42%` in English).
pub fn percent(fraction: f64, decimals: usize, lang: Lang) -> String {
    let digits = number(fraction * 100.0, decimals, lang);
    match lang {
        Lang::En => format!("{digits}%"),
        Lang::Fr => format!("{digits}{NNBSP}%"),
    }
}

/// A calendar date: `Nov 28, 2026` / `28 nov. 2026`.
pub fn date(day: NaiveDate, lang: Lang) -> String {
    use chrono::Datelike;
    let month = day.month0() as usize;
    match lang {
        Lang::En => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!("{} {}, {}", MONTHS[month], day.day(), day.year())
        }
        Lang::Fr => {
            const MONTHS: [&str; 12] = [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
                "déc.",
            ];
            format!("{} {} {}", day.day(), MONTHS[month], day.year())
        }
    }
}

/// A timestamp's date in UTC (see [`date`]).
pub fn timestamp_date(at: DateTime<Utc>, lang: Lang) -> String {
    date(at.date_naive(), lang)
}

/// A timestamp to the minute, UTC.
pub fn timestamp(at: DateTime<Utc>, lang: Lang) -> String {
    format!("{} {} UTC", timestamp_date(at, lang), at.format("%H:%M"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_amounts_group_with_narrow_spaces_and_a_decimal_comma() {
        assert_eq!(money(12_500.0, "EUR", Lang::Fr), "12\u{202F}500,00\u{A0}€");
        assert_eq!(money(12_500.0, "EUR", Lang::En), "€12,500.00");
        assert_eq!(money(-3.5, "USD", Lang::En), "-$3.50");
        assert_eq!(money(1_234_567.891, "CHF", Lang::En), "CHF\u{A0}1,234,567.89");
        assert_eq!(
            money_whole(1_234_567.891, "EUR", Lang::Fr),
            "1\u{202F}234\u{202F}568\u{A0}€"
        );
        assert_eq!(money_whole(999.5, "EUR", Lang::En), "€1,000");
    }

    #[test]
    fn numbers_and_percentages() {
        assert_eq!(number(0.0, 0, Lang::En), "0");
        assert_eq!(number(-0.001, 1, Lang::En), "0.0");
        assert_eq!(number(100.0, 0, Lang::Fr), "100");
        assert_eq!(number(1000.0, 1, Lang::Fr), "1\u{202F}000,0");
        assert_eq!(number(f64::NAN, 1, Lang::Fr), "–");
        assert_eq!(percent(0.4237, 1, Lang::Fr), "42,4\u{202F}%");
        assert_eq!(percent(0.4237, 0, Lang::En), "42%");
    }

    #[test]
    fn dates_use_the_language_month_names() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        assert_eq!(date(day, Lang::En), "Feb 3, 2026");
        assert_eq!(date(day, Lang::Fr), "3 févr. 2026");
    }
}
