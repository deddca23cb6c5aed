//! Numbers, money, percentages and dates written the way each language writes them: the one
//! formatting layer of the pages, the API's sentences and the command line.
//!
//! English: grouping with a comma and a decimal point, currency symbol first (`€12,500`),
//! percent sign right after the number (`42%`). French: narrow no-break space (U+202F) between
//! thousands, decimal comma, symbol after a no-break space (`12 500 €`), as CLDR's `fr` locale
//! does, and a narrow no-break space before `:` `;` `!` `?` `%` ([`colon`], [`percent`]).
//!
//! - counts: [`count`] (`4,000` / `4 000`);
//! - measures in sentences: [`quantity`], 2–3 significant digits (`9.4`, `45`, `0.25`);
//! - money: [`money`] without noise decimals (`€188,350`, `€12.50`), [`money_whole`];
//! - percentages: [`percent`], the same in the API's sentences and on the pages;
//! - a label and its value: [`label_value`] (`Focus: Prioritize` / `Priorité : Prioriser`);
//! - a line of parts: [`join_parts`], which skips empty parts (no `a · · b`).

use chrono::{DateTime, NaiveDate, Utc};

use super::Lang;

/// Narrow no-break space: French thousands separator.
pub const NNBSP: char = '\u{202F}';
/// No-break space: between a French number and its unit or symbol.
pub const NBSP: char = '\u{A0}';

/// Appends `integer` (ASCII digits) to `out` with `separator` between groups of three: the
/// leading group, then a separator and three digits at a time (whole slices, not char by char:
/// scoring writes dozens of numbers per deal).
fn push_grouped(out: &mut String, integer: &str, separator: char) {
    let lead = match integer.len() % 3 {
        0 => integer.len().min(3),
        n => n,
    };
    let (first, mut rest) = integer.split_at(lead);
    out.push_str(first);
    // ASCII digits: every third byte is a char boundary.
    while let (Some(group), Some(tail)) = (rest.get(..3), rest.get(3..)) {
        out.push(separator);
        out.push_str(group);
        rest = tail;
    }
}

/// Appends `n` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(n);
    for _ in text.len()..width {
        out.push('0');
    }
    out.push_str(text);
}

/// Appends the integer `n` in decimal (`-` first when negative), without the formatting machinery.
pub fn push_integer(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(n.unsigned_abs()));
}

/// `|value|` rounded to `decimals` digits, as (integer part, fraction digits as an integer), when
/// that rounding is unambiguous; `None` when only the float formatter can tell (see [`fixed`]).
///
/// With at most six decimals and a scaled value under 10^15, `value × 10^decimals` is computed
/// with one rounding (the power of ten is exact), so rounding it to an integer gives the
/// formatter's digits — except when it lands exactly on a half: the exact decimal value may then
/// be just above or below it, or be a true tie that the formatter rounds to even.
fn rounded_parts(value: f64, decimals: usize) -> Option<(u64, u64)> {
    const POWERS: [u64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
    let power = *POWERS.get(decimals)?;
    let scaled = value.abs() * power as f64;
    if scaled.is_nan() || scaled >= 1e15 || scaled.fract() == 0.5 {
        return None;
    }
    // In range (checked above): the cast neither saturates nor loses digits.
    let units = scaled.round() as u64;
    Some((units / power, units % power))
}

/// `format!("{value:.decimals$}")`, the same digits, without the general float formatter in the
/// common case. Explanations write several numbers per scored deal, and that formatter was the
/// largest single cost of a 10,000-deal batch (docs/performance.md, "Batch scoring").
/// Ties and out-of-range values (see [`rounded_parts`]) go to `format!`.
pub fn fixed(value: f64, decimals: usize) -> String {
    let Some((integer, fraction)) = rounded_parts(value, decimals) else {
        return format!("{value:.decimals$}");
    };
    let mut out = String::with_capacity(24);
    if value.is_sign_negative() {
        out.push('-');
    }
    push_padded(&mut out, integer, 1);
    if decimals > 0 {
        out.push('.');
        push_padded(&mut out, fraction, decimals);
    }
    out
}

/// A number with `decimals` digits after the separator, grouped by thousands. Written straight
/// into one string in the common case (scoring writes several per deal).
pub fn number(value: f64, decimals: usize, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let (group, point) = match lang {
        Lang::En => (',', '.'),
        Lang::Fr => (NNBSP, ','),
    };
    let Some((integer, fraction)) = rounded_parts(value, decimals) else {
        return number_slow(value, decimals, group, point);
    };
    let mut out = String::with_capacity(32);
    // "-0" is not worth a sign.
    if value < 0.0 && (integer != 0 || fraction != 0) {
        out.push('-');
    }
    push_grouped(&mut out, itoa::Buffer::new().format(integer), group);
    if decimals > 0 {
        out.push(point);
        push_padded(&mut out, fraction, decimals);
    }
    out
}

/// A count, grouped by thousands: `4,000` / `4 000` (narrow no-break space).
pub fn count(n: u64, lang: Lang) -> String {
    let mut out = String::with_capacity(24);
    push_grouped(&mut out, itoa::Buffer::new().format(n), group_separator(lang));
    out
}

fn group_separator(lang: Lang) -> char {
    match lang {
        Lang::En => ',',
        Lang::Fr => NNBSP,
    }
}

/// [`number`] through the float formatter (ties and huge values).
fn number_slow(value: f64, decimals: usize, group: char, point: char) -> String {
    let text = format!("{:.decimals$}", value.abs());
    let (integer, fraction) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let negative = value < 0.0 && text.bytes().any(|c| c.is_ascii_digit() && c != b'0');
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 2);
    if negative {
        out.push('-');
    }
    push_grouped(&mut out, integer, group);
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

/// Amounts from this size up are written in whole units: their cents are noise on a page.
const WHOLE_MONEY_FROM: f64 = 1_000.0;

/// An amount in a currency (ISO 4217 code) without noise decimals: whole units from 1,000 up
/// or when there are no cents (`€188,350`, `€40`), cents otherwise (`€12.50`).
pub fn money(amount: f64, currency: &str, lang: Lang) -> String {
    let cents = (amount * 100.0).round();
    let decimals = if amount.abs() >= WHOLE_MONEY_FROM || cents % 100.0 == 0.0 {
        0
    } else {
        2
    };
    money_with(amount, decimals, currency, lang)
}

/// An amount with exactly `decimals` digits after the separator.
fn money_with(amount: f64, decimals: usize, currency: &str, lang: Lang) -> String {
    let symbol = currency_symbol(currency);
    let digits = number(amount, decimals, lang);
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
    money_with(amount, 0, currency, lang)
}

/// A 0–1 fraction as a percentage with `decimals` digits (`42 %` in French, `42%` in English).
pub fn percent(fraction: f64, decimals: usize, lang: Lang) -> String {
    let mut text = number(fraction * 100.0, decimals, lang);
    if lang == Lang::Fr {
        text.push(NNBSP);
    }
    text.push('%');
    text
}

/// A measure as a sentence shows it, with 2–3 significant digits and no trailing zeros: whole
/// from 10 up (`45`, `1,250`), one decimal from 1 to 10 (`9.4`, `7`), two significant digits
/// below 1 (`0.25`, `0.034`). A dash when it is not a number.
pub fn quantity(value: f64, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 10.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 1.0 {
        1
    } else {
        // 0.25 → 2 decimals, 0.034 → 3: two significant digits.
        (1 - magnitude.log10().floor() as i32).clamp(1, 6) as usize
    };
    let mut text = number(value, decimals, lang);
    if decimals > 0 {
        let point = match lang {
            Lang::En => '.',
            Lang::Fr => ',',
        };
        let kept = text.trim_end_matches('0').trim_end_matches(point).len();
        text.truncate(kept);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// The separator between a label and its value: `: ` in English, a narrow no-break space before
/// the colon in French (` : `).
pub fn colon(lang: Lang) -> &'static str {
    match lang {
        Lang::En => ": ",
        Lang::Fr => "\u{202F}: ",
    }
}

/// `label: value` in `lang` (`Focus: Prioritize` / `Priorité : Prioriser`).
pub fn label_value(label: &str, value: &str, lang: Lang) -> String {
    [label, colon(lang), value].concat()
}

/// The parts that are not empty, joined by ` · ` (an account without a stage gives
/// `Acme · lena`, never `Acme · lena · ·`).
pub fn join_parts<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .map(|p| p.as_ref().trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
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
        assert_eq!(money(12_500.0, "EUR", Lang::Fr), "12\u{202F}500\u{A0}€");
        assert_eq!(money(12_500.0, "EUR", Lang::En), "€12,500");
        assert_eq!(money(-3.5, "USD", Lang::En), "-$3.50");
        assert_eq!(money(1_234_567.891, "CHF", Lang::En), "CHF\u{A0}1,234,568");
        assert_eq!(
            money_whole(1_234_567.891, "EUR", Lang::Fr),
            "1\u{202F}234\u{202F}568\u{A0}€"
        );
        assert_eq!(money_whole(999.5, "EUR", Lang::En), "€1,000");
    }

    /// One row per case: the value, then English and French.
    #[test]
    fn the_formatting_layer_in_both_languages() {
        type Case = (&'static str, String, String);
        let both = |f: &dyn Fn(Lang) -> String| (f(Lang::En), f(Lang::Fr));
        let rows: Vec<Case> = vec![
            ("count 4000", count(4_000, Lang::En), count(4_000, Lang::Fr)),
            ("count 0", count(0, Lang::En), count(0, Lang::Fr)),
            (
                "count 1234567",
                count(1_234_567, Lang::En),
                count(1_234_567, Lang::Fr),
            ),
            ("quantity 9.4", quantity(9.4, Lang::En), quantity(9.4, Lang::Fr)),
            ("quantity 7.0", quantity(7.0, Lang::En), quantity(7.0, Lang::Fr)),
            (
                "quantity 44.57",
                quantity(44.57, Lang::En),
                quantity(44.57, Lang::Fr),
            ),
            (
                "quantity 1250.4",
                quantity(1250.4, Lang::En),
                quantity(1250.4, Lang::Fr),
            ),
            (
                "quantity 0.254",
                quantity(0.254, Lang::En),
                quantity(0.254, Lang::Fr),
            ),
            (
                "quantity 0.0341",
                quantity(0.0341, Lang::En),
                quantity(0.0341, Lang::Fr),
            ),
            (
                "quantity 9.96",
                quantity(9.96, Lang::En),
                quantity(9.96, Lang::Fr),
            ),
            (
                "quantity -0.0012",
                quantity(-0.0012, Lang::En),
                quantity(-0.0012, Lang::Fr),
            ),
            ("quantity 0", quantity(0.0, Lang::En), quantity(0.0, Lang::Fr)),
            (
                "quantity NaN",
                quantity(f64::NAN, Lang::En),
                quantity(f64::NAN, Lang::Fr),
            ),
            (
                "money 188349.73",
                money(188_349.73, "EUR", Lang::En),
                money(188_349.73, "EUR", Lang::Fr),
            ),
            (
                "money 40",
                money(40.0, "USD", Lang::En),
                money(40.0, "USD", Lang::Fr),
            ),
            (
                "money 12.5",
                money(12.5, "GBP", Lang::En),
                money(12.5, "GBP", Lang::Fr),
            ),
            (
                "money -950.256",
                money(-950.256, "EUR", Lang::En),
                money(-950.256, "EUR", Lang::Fr),
            ),
            (
                "percent 0.43",
                percent(0.43, 0, Lang::En),
                percent(0.43, 0, Lang::Fr),
            ),
            (
                "percent 0.4237 .1",
                percent(0.4237, 1, Lang::En),
                percent(0.4237, 1, Lang::Fr),
            ),
            {
                let (en, fr) = both(&|lang| label_value("X", "y", lang));
                ("label_value", en, fr)
            },
        ];
        let expected: [(&str, &str, &str); 20] = [
            ("count 4000", "4,000", "4\u{202F}000"),
            ("count 0", "0", "0"),
            ("count 1234567", "1,234,567", "1\u{202F}234\u{202F}567"),
            ("quantity 9.4", "9.4", "9,4"),
            ("quantity 7.0", "7", "7"),
            ("quantity 44.57", "45", "45"),
            ("quantity 1250.4", "1,250", "1\u{202F}250"),
            ("quantity 0.254", "0.25", "0,25"),
            ("quantity 0.0341", "0.034", "0,034"),
            ("quantity 9.96", "10", "10"),
            ("quantity -0.0012", "-0.0012", "-0,0012"),
            ("quantity 0", "0", "0"),
            ("quantity NaN", "–", "–"),
            ("money 188349.73", "€188,350", "188\u{202F}350\u{A0}€"),
            ("money 40", "$40", "40\u{A0}$"),
            ("money 12.5", "£12.50", "12,50\u{A0}£"),
            ("money -950.256", "-€950.26", "-950,26\u{A0}€"),
            ("percent 0.43", "43%", "43\u{202F}%"),
            ("percent 0.4237 .1", "42.4%", "42,4\u{202F}%"),
            ("label_value", "X: y", "X\u{202F}: y"),
        ];
        assert_eq!(rows.len(), expected.len());
        for ((name, en, fr), (want_name, want_en, want_fr)) in rows.iter().zip(expected) {
            assert_eq!(*name, want_name);
            assert_eq!((en.as_str(), fr.as_str()), (want_en, want_fr), "{name}");
        }
    }

    #[test]
    fn joined_parts_never_show_an_empty_one() {
        assert_eq!(join_parts(&["Acme", "lena", "", "€40"]), "Acme · lena · €40");
        assert_eq!(join_parts(&["", " ", "a"]), "a");
        assert_eq!(join_parts::<&str>(&[]), "");
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
    fn digits_are_grouped_by_three_from_the_right() {
        // The char-by-char rule, as a reference for the slice-at-a-time writer.
        let reference = |integer: &str| {
            let mut out = String::new();
            for (i, c) in integer.chars().enumerate() {
                if i > 0 && (integer.len() - i) % 3 == 0 {
                    out.push('_');
                }
                out.push(c);
            }
            out
        };
        let all = "12345678901234567890";
        for len in 0..=all.len() {
            let integer = &all[..len];
            let mut out = String::from("x");
            push_grouped(&mut out, integer, '_');
            assert_eq!(out, format!("x{}", reference(integer)), "{integer}");
        }
        assert_eq!(number(u64::MAX as f64 / 1e5, 0, Lang::En), "184,467,440,737,096");
        assert_eq!(number(1234.5, 1, Lang::Fr), "1\u{202F}234,5");
    }

    #[test]
    fn fixed_writes_the_same_digits_as_the_float_formatter() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            -2.5,
            0.125,
            0.375,
            1.005,
            2.675,
            0.045,
            1e-7,
            -1e-7,
            0.049999,
            999.9999,
            12_345.675,
            9.999_999_5e14,
            1e15,
            4.5e15,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123_456_789.123_456_7,
        ];
        // A fixed pseudo-random spread over many magnitudes, both signs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = (state % 19) as i32 - 6;
            let sign = if state & 1 == 0 { 1.0 } else { -1.0 };
            values.push(sign * mantissa * 10f64.powi(exponent));
            // Values with few decimals, where halves are common.
            values.push(sign * (state % 100_000) as f64 / 1_000.0);
        }
        for value in values {
            for decimals in 0..9 {
                assert_eq!(
                    fixed(value, decimals),
                    format!("{value:.decimals$}"),
                    "{value:e} .{decimals}"
                );
                // number()'s own fast path against its float-formatter path.
                if value.is_finite() {
                    for (lang, group, point) in [(Lang::En, ',', '.'), (Lang::Fr, NNBSP, ',')] {
                        assert_eq!(
                            number(value, decimals, lang),
                            number_slow(value, decimals, group, point),
                            "{value:e} .{decimals} {lang:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dates_use_the_language_month_names() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        assert_eq!(date(day, Lang::En), "Feb 3, 2026");
        assert_eq!(date(day, Lang::Fr), "3 févr. 2026");
    }
}
