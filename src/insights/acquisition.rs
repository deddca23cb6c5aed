//! Acquisition spend: parsing `PUT /v1/acquisition-costs` bodies and acquisition-cost CSV files
//! into rows of the `acquisition_costs` table, with every problem named by its field, and the
//! spend of a reporting window (periods overlapping it count pro rata).
//!
//! A period's spend is one total, or split by region, or split by channel, never a mix: mixed
//! rows would count the same money twice. A write replaces every row of the periods it names.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::period::{parse_period, Window};
use crate::domain::ValidationErrors;
use crate::i18n::format::NBSP;
use crate::i18n::Localized;
use crate::store::acquisition_costs::AcquisitionCost;
use crate::tr;

/// Most rows in one write (body or file).
pub const MAX_COSTS: usize = 10_000;

/// Longest region or channel name.
const MAX_NAME_CHARS: usize = 200;

/// First characters that make a spreadsheet read a cell as a formula: refused at the start of
/// a name so that no export can ever hand one back to a spreadsheet.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One item's raw fields, however they arrived (JSON or a CSV row).
#[derive(Debug, Default)]
pub struct RawCost<'a> {
    /// `period`.
    pub period: Option<&'a str>,
    /// `region`; empty is none.
    pub region: Option<&'a str>,
    /// `channel`; empty is none.
    pub channel: Option<&'a str>,
    /// `currency`.
    pub currency: Option<&'a str>,
    /// `amount`, as a number or its text.
    pub amount: Option<Amount<'a>>,
}

/// An amount as sent: a JSON number or a CSV cell.
#[derive(Debug, Clone, Copy)]
pub enum Amount<'a> {
    /// A JSON number.
    Number(f64),
    /// Text (CSV).
    Text(&'a str),
    /// Anything else (a JSON string, boolean…).
    Invalid,
}

fn name_problem(value: &str) -> Option<Localized> {
    if value.chars().count() > MAX_NAME_CHARS || value.chars().any(char::is_control) {
        return Some(tr!(
            "at most {MAX_NAME_CHARS} characters, no control characters",
            "{MAX_NAME_CHARS}{NBSP}caractères au plus, sans caractère de contrôle"
        ));
    }
    value.starts_with(FORMULA_TRIGGERS).then(|| {
        tr!(
            "must not start with = + - @ (a spreadsheet would read a formula)",
            "ne doit pas commencer par = + - @ (un tableur y lirait une formule)"
        )
    })
}

/// Parses one item; problems go to `errors` under `prefix` (`costs[3].` or `line 4: `).
pub fn parse_cost(raw: &RawCost<'_>, prefix: &str, errors: &mut ValidationErrors) -> Option<AcquisitionCost> {
    let before = errors.len();
    let field = |name: &str| format!("{prefix}{name}");
    let period = match raw.period.map(str::trim).and_then(parse_period) {
        Some(p) => Some(p),
        None => {
            errors.push_localized(
                field("period"),
                tr!(
                    "must be a year (2026), a quarter (2026-Q1) or a month (2026-03)",
                    "doit être une année (2026), un trimestre (2026-Q1) ou un mois (2026-03)"
                ),
            );
            None
        }
    };
    let mut name = |key: &str, value: Option<&str>| -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        match name_problem(value) {
            Some(problem) => {
                errors.push_localized(field(key), problem);
                None
            }
            None => Some(value.to_owned()),
        }
    };
    let region = name("region", raw.region);
    let channel = name("channel", raw.channel);
    if region.is_some() && channel.is_some() {
        errors.push_localized(
            field("channel"),
            tr!(
                "give a region or a channel, not both",
                "indiquez une région ou un canal, pas les deux"
            ),
        );
    }
    let currency = match raw.currency.map(str::trim) {
        Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        _ => {
            errors.push_localized(
                field("currency"),
                tr!(
                    "an ISO currency code is required (e.g. EUR)",
                    "un code de devise ISO est obligatoire (par ex. EUR)"
                ),
            );
            None
        }
    };
    let amount = match raw.amount {
        Some(Amount::Number(n)) => Some(n),
        Some(Amount::Text(t)) => t.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|a| a.is_finite() && (0.0..1e15).contains(a));
    if amount.is_none() {
        errors.push_localized(
            field("amount"),
            tr!(
                "must be a number from 0 to below 10^15",
                "doit être un nombre de 0 à moins de 10^15"
            ),
        );
    }
    if errors.len() > before {
        return None;
    }
    let ((period, window), currency, amount) = (period?, currency?, amount?);
    Some(AcquisitionCost {
        period,
        period_start: window.start,
        period_end: window.end,
        region,
        channel,
        currency,
        amount,
    })
}

/// Checks the rows together: at least one and at most [`MAX_COSTS`], no two for the same
/// period, region or channel and currency, and one way of splitting per period. `label(i)` names
/// row `i` in messages (`costs[3]`, `line 4`).
pub fn check_together(
    costs: &[AcquisitionCost],
    label: impl Fn(usize) -> String,
    errors: &mut ValidationErrors,
) {
    let mut seen = BTreeSet::new();
    let mut split: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, c) in costs.iter().enumerate() {
        let dimension = dimension_of(c);
        if !seen.insert((&c.period, &c.region, &c.channel, &c.currency)) {
            errors.push_localized(
                label(i),
                tr!(
                    "repeats an earlier row (same period, region or channel, and currency)",
                    "répète une ligne précédente (mêmes période, région ou canal, et devise)"
                ),
            );
        }
        match split.get(c.period.as_str()) {
            Some(first) if *first != dimension => {
                let period = &c.period;
                errors.push_localized(
                    label(i),
                    tr!(
                        "the spend of {period} is already given another way: one total, per region, or per channel",
                        "les dépenses de {period} sont déjà données autrement{NBSP}: un total, par région ou par canal"
                    ),
                );
            }
            Some(_) => {}
            None => {
                split.insert(&c.period, dimension);
            }
        }
    }
}

/// `""`, `"region"` or `"channel"`.
pub fn dimension_of(c: &AcquisitionCost) -> &'static str {
    match (&c.region, &c.channel) {
        (Some(_), _) => "region",
        (None, Some(_)) => "channel",
        (None, None) => "",
    }
}

/// Parses a `PUT /v1/acquisition-costs` body `{"costs": [...]}`; all or nothing.
pub fn parse_body(body: &Value) -> Result<Vec<AcquisitionCost>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let items = match body.get("costs").and_then(Value::as_array) {
        Some(items) if (1..=MAX_COSTS).contains(&items.len()) => items,
        _ => {
            errors.push_localized(
                "costs",
                tr!(
                    "expected {{\"costs\": [...]}} with 1 to {MAX_COSTS} items",
                    "{{\"costs\": [...]}} est attendu, avec 1 à {MAX_COSTS}{NBSP}éléments"
                ),
            );
            return Err(errors);
        }
    };
    let mut costs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("costs[{i}].");
        let Some(object) = item.as_object() else {
            errors.push_localized(
                format!("costs[{i}]"),
                tr!("must be an object", "doit être un objet"),
            );
            continue;
        };
        let known = ["period", "region", "channel", "currency", "amount"];
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            errors.push_localized(format!("{prefix}{key}"), tr!("unknown field", "champ inconnu"));
        }
        let text = |name: &str| item.get(name).and_then(Value::as_str);
        let text_or_null = |name: &str| match item.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            // A number or object as a name: reported as not a text below.
            Some(_) => Some("\u{0}"),
        };
        let raw = RawCost {
            period: text("period"),
            region: text_or_null("region"),
            channel: text_or_null("channel"),
            currency: text("currency"),
            amount: item
                .get("amount")
                .map(|v| v.as_f64().map_or(Amount::Invalid, Amount::Number)),
        };
        if let Some(cost) = parse_cost(&raw, &prefix, &mut errors) {
            costs.push(cost);
        }
    }
    if errors.is_empty() {
        check_together(&costs, |i| format!("costs[{i}]"), &mut errors);
    }
    errors.into_result(costs)
}

/// Parses an acquisition-cost CSV: a header with `period`, `currency`, `amount` and optionally
/// `region` and/or `channel` (any order, any case), then one row per amount. All or nothing:
/// every problem is listed by line (the header is line 1).
pub fn parse_csv(input: impl std::io::Read) -> Result<Vec<AcquisitionCost>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect::<Vec<_>>(),
        Err(e) => {
            errors.push("header", format!("unreadable CSV header: {e}"));
            return Err(errors);
        }
    };
    let known = ["period", "region", "channel", "currency", "amount"];
    for h in headers.iter().filter(|h| !known.contains(&h.as_str())) {
        errors.push_localized(
            "header",
            tr!(
                "unknown column `{h}` (expected period, region, channel, currency, amount)",
                "colonne `{h}` inconnue (attendu{NBSP}: period, region, channel, currency, amount)"
            ),
        );
    }
    for required in ["period", "currency", "amount"] {
        if !headers.iter().any(|h| h == required) {
            errors.push_localized(
                "header",
                tr!("column `{required}` is missing", "la colonne `{required}` manque"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (period, region, channel, currency, amount) = (
        column("period"),
        column("region"),
        column("channel"),
        column("currency"),
        column("amount"),
    );
    let mut costs = Vec::new();
    let mut lines = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {line}"), format!("unreadable row: {e}"));
                continue;
            }
        };
        let cell = |at: Option<usize>| at.and_then(|a| record.get(a));
        let raw = RawCost {
            period: cell(period),
            region: cell(region),
            channel: cell(channel),
            currency: cell(currency),
            amount: cell(amount).map(Amount::Text),
        };
        if let Some(cost) = parse_cost(&raw, &format!("line {line}: "), &mut errors) {
            costs.push(cost);
            lines.push(line);
        }
        if costs.len() > MAX_COSTS {
            errors.push_localized(
                format!("line {line}"),
                tr!(
                    "more than {MAX_COSTS} rows in one file",
                    "plus de {MAX_COSTS}{NBSP}lignes dans un fichier"
                ),
            );
            return Err(errors);
        }
    }
    if costs.is_empty() && errors.is_empty() {
        errors.push_localized(
            "file",
            tr!("no row after the header", "aucune ligne après l'en-tête"),
        );
    }
    if errors.is_empty() {
        check_together(&costs, |i| format!("line {}", lines[i]), &mut errors);
    }
    errors.into_result(costs)
}

/// The spend of `window` per currency: each row counts in proportion to the share of its
/// period inside the window (a whole quarter inside counts fully, a month half inside counts
/// half).
pub fn spend_within<'a>(
    costs: impl IntoIterator<Item = &'a AcquisitionCost>,
    window: Window,
) -> BTreeMap<String, f64> {
    let mut spend = BTreeMap::new();
    for c in costs {
        let overlap = (c.period_end.min(window.end) - c.period_start.max(window.start)).max(0);
        let length = (c.period_end - c.period_start).max(1);
        if overlap > 0 {
            *spend.entry(c.currency.clone()).or_insert(0.0) += c.amount * overlap as f64 / length as f64;
        }
    }
    spend
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_valid_body_parses_and_canonicalises() {
        let body = json!({"costs": [
            {"period": "2026-q1", "currency": "eur", "amount": 30000},
            {"period": "2026-02", "region": "DACH", "currency": "EUR", "amount": 1000.5},
            {"period": "2026-02", "region": "APAC", "currency": "EUR", "amount": 0},
        ]});
        let costs = parse_body(&body).unwrap();
        assert_eq!(costs[0].period, "2026-Q1");
        assert_eq!(costs[0].currency, "EUR");
        assert_eq!(costs[1].region.as_deref(), Some("DACH"));
        assert_eq!(dimension_of(&costs[2]), "region");
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let body = json!({"costs": [
            {"period": "2026-13", "currency": "EURO", "amount": -1, "colour": 1},
            {"period": "2026", "region": "=cmd", "currency": "EUR", "amount": "5"},
            {"period": "2026", "region": "a", "channel": "b", "currency": "EUR", "amount": 5},
        ]});
        let err = serde_json::to_string(&parse_body(&body).unwrap_err().0).unwrap();
        for field in [
            "costs[0].period",
            "costs[0].currency",
            "costs[0].amount",
            "costs[0].colour",
            "costs[1].region",
            "costs[1].amount",
            "costs[2].channel",
        ] {
            assert!(err.contains(&format!("\"{field}\"")), "{field} in {err}");
        }
    }

    #[test]
    fn repeated_rows_and_mixed_splits_are_refused() {
        let body = json!({"costs": [
            {"period": "2026-01", "currency": "EUR", "amount": 1},
            {"period": "2026-01", "region": "DACH", "currency": "EUR", "amount": 1},
            {"period": "2026-02", "currency": "EUR", "amount": 1},
            {"period": "2026-02", "currency": "eur", "amount": 2},
        ]});
        let err = serde_json::to_string(&parse_body(&body).unwrap_err().0).unwrap();
        assert!(
            err.contains("\"costs[1]\"") && err.contains("\"costs[3]\""),
            "{err}"
        );
        assert!(!err.contains("\"costs[2]\""), "{err}");
    }

    #[test]
    fn csv_rows_parse_and_bad_lines_are_listed() {
        let good = "Period,Region,Currency,Amount\n2026-Q1,DACH,EUR,100\n2026-Q1,APAC,EUR,50.5\n";
        let costs = parse_csv(good.as_bytes()).unwrap();
        assert_eq!(costs.len(), 2);
        assert_eq!(costs[1].amount, 50.5);
        let bad = "period,currency,amount\n2026-Q1,EUR,100\n2026-Q5,EUR,x\n";
        let err = serde_json::to_string(&parse_csv(bad.as_bytes()).unwrap_err().0).unwrap();
        assert!(
            err.contains("line 3: period") && err.contains("line 3: amount"),
            "{err}"
        );
        assert!(parse_csv("period,amount\n".as_bytes()).is_err());
        assert!(parse_csv("period,currency,amount\n".as_bytes()).is_err());
    }

    #[test]
    fn spend_counts_overlapping_periods_pro_rata() {
        let body = json!({"costs": [
            {"period": "2026-Q1", "currency": "EUR", "amount": 900},
            {"period": "2026-04", "currency": "EUR", "amount": 300},
            {"period": "2026-04", "currency": "USD", "amount": 10},
        ]});
        let costs = parse_body(&body).unwrap();
        let (_, april) = parse_period("2026-04").unwrap();
        // The first 15 of April's 30 days.
        let half = Window {
            start: april.start,
            end: april.start + 15 * 86_400_000,
        };
        let spend = spend_within(&costs, half);
        assert_eq!(spend["EUR"], 150.0);
        assert_eq!(spend["USD"], 5.0);
        let (_, year) = parse_period("2026").unwrap();
        assert_eq!(spend_within(&costs, year)["EUR"], 1200.0);
    }
}
