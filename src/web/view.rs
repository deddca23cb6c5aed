//! Small formatting helpers shared by the pages: what a template shows for a grade, a trend, a
//! focus, a probability.

use crate::i18n::{format, Lang};
use crate::scoring::{Focus, Grade, Trend};

/// CSS class of a grade badge (the letter is always shown too: colour is never the only cue).
pub fn grade_class(grade: Grade) -> &'static str {
    match grade {
        Grade::A => "grade grade-a",
        Grade::B => "grade grade-b",
        Grade::C => "grade grade-c",
        Grade::D => "grade grade-d",
    }
}

/// Arrow and catalogue key of a trend.
pub fn trend(trend: Trend) -> (&'static str, &'static str) {
    match trend {
        Trend::Improving => ("▲", "trend.improving"),
        Trend::Steady => ("▶", "trend.steady"),
        Trend::Declining => ("▼", "trend.declining"),
        // No glyph: a bullet beside the " · " separators reads as an empty part ("43% · · new").
        Trend::New => ("", "trend.new"),
    }
}

/// Catalogue key of a focus.
pub fn focus_key(focus: Focus) -> &'static str {
    match focus {
        Focus::Prioritize => "focus.prioritize",
        Focus::Secure => "focus.secure",
        Focus::Deprioritize => "focus.deprioritize",
        Focus::Nurture => "focus.nurture",
    }
}

/// An amount, or a dash when unknown.
pub fn money(amount: Option<f64>, currency: &str, lang: Lang) -> String {
    amount.map_or_else(|| "–".into(), |a| format::money(a, currency, lang))
}

/// One whole-unit amount per currency, joined by " · "; `None` when there is none.
pub fn money_by_currency(values: &std::collections::BTreeMap<String, f64>, lang: Lang) -> Option<String> {
    (!values.is_empty()).then(|| {
        values
            .iter()
            .map(|(currency, v)| format::money_whole(*v, currency, lang))
            .collect::<Vec<_>>()
            .join(" · ")
    })
}

/// A 0–1 probability as a whole percentage.
pub fn probability(p: f64, lang: Lang) -> String {
    format::percent(p, 0, lang)
}

/// An optional rate with one decimal, or a dash.
pub fn rate(p: Option<f64>, lang: Lang) -> String {
    p.map_or_else(|| "–".into(), |p| format::percent(p, 1, lang))
}

/// A signed change of a rate in percentage points.
pub fn points(delta: Option<f64>, lang: Lang) -> String {
    match delta {
        Some(d) => {
            let sign = if d > 0.0 { "+" } else { "" };
            let unit = match lang {
                Lang::En => " pts",
                Lang::Fr => "\u{A0}pts",
            };
            format!("{sign}{}{unit}", format::number(d * 100.0, 1, lang))
        }
        None => "–".into(),
    }
}

/// A signed whole-number change.
pub fn signed(delta: f64, lang: Lang) -> String {
    let sign = if delta > 0.0 { "+" } else { "" };
    format!("{sign}{}", format::number(delta, 0, lang))
}

/// `up`, `down` or `flat`: the CSS class of a change.
pub fn direction(delta: Option<f64>) -> &'static str {
    match delta {
        Some(d) if d > 0.0 => "up",
        Some(d) if d < 0.0 => "down",
        _ => "flat",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(points(Some(0.034), Lang::En), "+3.4 pts");
        assert_eq!(points(Some(-0.034), Lang::Fr), "-3,4\u{A0}pts");
        assert_eq!(points(None, Lang::Fr), "–");
        assert_eq!(signed(1200.0, Lang::Fr), "+1\u{202F}200");
        assert_eq!(direction(Some(-1.0)), "down");
        assert_eq!(money(None, "EUR", Lang::En), "–");
        assert_eq!(probability(0.424, Lang::Fr), "42\u{202F}%");
    }
}
