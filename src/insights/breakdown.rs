//! `GET /v1/insights/breakdown?by=<field>`: per value of one field (a core category or a custom
//! attribute), the open, won and lost deals of a period, the win rate with its 95 % Wilson
//! interval, won revenue per currency, the median won and lost cycle, and the active model's
//! effect of that value when the field is one of its features. Values with fewer than
//! [`MIN_DEALS`] deals in the period share one `(other)` row.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::period::{rfc3339, Window};
use super::snapshot::{Deal, NameId, Names, Snapshot, NONE_LABEL};
use super::stats::{quantile, ratio, PerCurrency};
use super::success_factors::ModelLevel;
use super::table::{cell, opt, Table};
use crate::domain::Status;
use crate::model::ModelArtifact;

/// A value with fewer deals than this in the period (open, won and lost together) is grouped
/// into [`OTHER_LABEL`]: its win rate would rest on too few outcomes to compare.
pub const MIN_DEALS: u64 = 10;

/// Label of the row of the values too rare to compare.
pub const OTHER_LABEL: &str = "(other)";

/// The core fields a breakdown can be by (categories of every opportunity).
pub const CORE_FIELDS: [&str; 6] = ["sector", "region", "owner", "contact_role", "account", "currency"];

/// Longest attribute name accepted in `by=attr.<name>`.
pub const MAX_ATTRIBUTE_NAME: usize = 200;

/// The `z` of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The field a breakdown is by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// One of [`CORE_FIELDS`].
    Core(&'static str),
    /// A custom attribute (`attr.<name>`), by its name.
    Attribute(String),
}

impl Field {
    /// Parses `by`: a core field name or `attr.<name>` (a name of 1 to [`MAX_ATTRIBUTE_NAME`]
    /// characters without control characters), exactly the pattern the API description states:
    /// nothing is trimmed, as attribute names are kept as the CRM sent them.
    pub fn parse(text: &str) -> Option<Field> {
        if let Some(name) = text.strip_prefix("attr.") {
            let fine = !name.is_empty()
                && name.chars().count() <= MAX_ATTRIBUTE_NAME
                && !name.chars().any(char::is_control);
            return fine.then(|| Field::Attribute(name.to_owned()));
        }
        CORE_FIELDS.iter().find(|f| **f == text).map(|f| Field::Core(f))
    }

    /// The field as written in `by` and in feature specs (`sector`, `attr.tier`).
    pub fn name(&self) -> String {
        match self {
            Field::Core(f) => (*f).to_owned(),
            Field::Attribute(a) => format!("attr.{a}"),
        }
    }

    /// A core field's value of a deal.
    fn core_value(field: &str, d: &Deal) -> Option<NameId> {
        match field {
            "sector" => d.sector,
            "region" => d.region,
            "owner" => d.owner,
            "contact_role" => d.contact_role,
            "account" => d.account,
            "currency" => Some(d.currency),
            _ => None,
        }
    }
}

/// One attribute's value per deal of a snapshot, in the snapshot's deal order, values interned.
/// Numbers are grouped by their text (`3`, `2.5`), as the CRM sent them.
#[derive(Debug, Default)]
pub struct AttributeColumn {
    /// The values' texts.
    pub names: Names,
    /// Per deal of the snapshot (same index): its value, if it has one.
    pub values: Vec<Option<NameId>>,
}

impl AttributeColumn {
    /// Aligns `(deal id, value)` pairs with the snapshot's deals (both in id order); a deal of
    /// the snapshot without a pair has no value, a pair of a deal the snapshot lacks is ignored.
    pub fn aligned(snapshot: &Snapshot, pairs: impl IntoIterator<Item = (i64, String)>) -> Self {
        let mut column = AttributeColumn {
            names: Names::default(),
            values: vec![None; snapshot.deals.len()],
        };
        for (id, value) in pairs {
            if let Ok(at) = snapshot.deals.binary_search_by_key(&id, |d| d.id) {
                column.values[at] = Some(column.names.intern(&value));
            }
        }
        column
    }
}

/// A value's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The value; `(none)` for deals without one, `(other)` for the rare values together.
    pub value: String,
    /// Deals open at the end of the period.
    pub open_deals: u64,
    /// Deals won in the period.
    pub won_deals: u64,
    /// Deals lost in the period.
    pub lost_deals: u64,
    /// won / (won + lost); null when none closed.
    pub win_rate: Option<f64>,
    /// Lower bound of the 95 % Wilson interval of the win rate.
    pub win_rate_low: Option<f64>,
    /// Upper bound of the 95 % Wilson interval of the win rate.
    pub win_rate_high: Option<f64>,
    /// Won revenue per currency.
    pub won_revenue: BTreeMap<String, f64>,
    /// Median cycle (days) of the deals won in the period with both dates.
    pub median_won_cycle_days: Option<f64>,
    /// Median cycle (days) of the deals lost in the period with both dates.
    pub median_lost_cycle_days: Option<f64>,
    /// The active model's coefficient for this value, when the field is a categorical feature
    /// of the model and the value one of its levels.
    pub model_effect: Option<ModelLevel>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BreakdownReport {
    /// The field (`sector`, `attr.tier`).
    pub by: String,
    /// Period start (inclusive, RFC 3339).
    pub from: String,
    /// Period end (exclusive, RFC 3339).
    pub to: String,
    /// Values with fewer deals than this in the period are in the `(other)` row.
    pub other_threshold: u64,
    /// How many values the `(other)` row holds.
    pub other_values: u64,
    /// Version of the active model (absent without one).
    pub model_version: Option<String>,
    /// True when the field is a feature of the active model.
    pub model_feature: bool,
    /// The values, by deals in the period (most first), then value; `(none)` and `(other)` last.
    pub rows: Vec<BreakdownRow>,
}

#[derive(Debug, Default)]
struct Acc {
    open: u64,
    won: u64,
    lost: u64,
    money: PerCurrency,
    won_cycles: Vec<f64>,
    lost_cycles: Vec<f64>,
}

impl Acc {
    fn deals(&self) -> u64 {
        self.open + self.won + self.lost
    }

    fn merge(&mut self, other: Acc) {
        self.open += other.open;
        self.won += other.won;
        self.lost += other.lost;
        for (c, m) in other.money.0 {
            let mine = self.money.0.entry(c).or_default();
            mine.sum += m.sum;
            mine.with_amount += m.with_amount;
            mine.without_amount += m.without_amount;
        }
        self.won_cycles.extend(other.won_cycles);
        self.lost_cycles.extend(other.lost_cycles);
    }
}

/// The 95 % Wilson score interval of `won` successes in `n` trials; `None` when `n` is 0.
pub fn wilson(won: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = won as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

fn median(values: &mut [f64]) -> Option<f64> {
    (!values.is_empty()).then(|| quantile(values, 0.5))
}

/// Computes the breakdown of the deals of `window` by `field`; `column` holds the attribute's
/// values when `field` is an attribute (`None`: no deal has one).
pub fn breakdown(
    snapshot: &Snapshot,
    field: &Field,
    column: Option<&AttributeColumn>,
    window: Window,
    model: Option<&ModelArtifact>,
) -> BreakdownReport {
    // Keys are name ids of the snapshot (core fields) or of the column (attributes).
    let key = |i: usize, d: &Deal| match field {
        Field::Core(f) => Field::core_value(f, d),
        Field::Attribute(_) => column.and_then(|c| c.values.get(i).copied().flatten()),
    };
    let label = |id: NameId| match field {
        Field::Core(_) => snapshot.names.name(id).to_owned(),
        Field::Attribute(_) => column.map_or_else(String::new, |c| c.names.name(id).to_owned()),
    };
    let mut groups: BTreeMap<Option<NameId>, Acc> = BTreeMap::new();
    for (i, d) in snapshot.deals.iter().enumerate() {
        let closed = d.closed_within(window.start, window.end);
        let open = d.open_at(window.end);
        if !closed && !open {
            continue;
        }
        let acc = groups.entry(key(i, d)).or_default();
        if open {
            acc.open += 1;
            continue;
        }
        let cycle = d.cycle_days();
        if d.status == Status::Won {
            acc.won += 1;
            acc.money.add(d.currency, d.amount);
            acc.won_cycles.extend(cycle);
        } else {
            acc.lost += 1;
            acc.lost_cycles.extend(cycle);
        }
    }
    let factor = model.and_then(|m| {
        let name = field.name();
        m.success_factors.iter().find(|f| f.feature == name)
    });
    let effect = |value: &str| {
        factor?
            .levels
            .iter()
            .find(|l| l.level == value)
            .map(|l| ModelLevel {
                level: l.level.clone(),
                coefficient: l.coefficient,
                odds_ratio: l.odds_ratio,
            })
    };
    let row = |value: String, mut a: Acc, with_effect: bool| {
        let closed = a.won + a.lost;
        let interval = wilson(a.won, closed);
        BreakdownRow {
            model_effect: if with_effect { effect(&value) } else { None },
            value,
            open_deals: a.open,
            won_deals: a.won,
            lost_deals: a.lost,
            win_rate: ratio(a.won, closed),
            win_rate_low: interval.map(|i| i.0),
            win_rate_high: interval.map(|i| i.1),
            won_revenue: a.money.sums(snapshot),
            median_won_cycle_days: median(&mut a.won_cycles),
            median_lost_cycle_days: median(&mut a.lost_cycles),
        }
    };
    let mut rows = Vec::new();
    let mut none = None;
    let mut other = Acc::default();
    let mut other_values = 0u64;
    for (k, acc) in groups {
        match k {
            None => none = Some(acc),
            Some(_) if acc.deals() < MIN_DEALS => {
                other.merge(acc);
                other_values += 1;
            }
            Some(id) => rows.push(row(label(id), acc, true)),
        }
    }
    rows.sort_by(|a, b| {
        let deals = |r: &BreakdownRow| r.open_deals + r.won_deals + r.lost_deals;
        deals(b).cmp(&deals(a)).then_with(|| a.value.cmp(&b.value))
    });
    // The model's `(none)` level, if any, is the deals without a value too.
    if let Some(acc) = none {
        rows.push(row(NONE_LABEL.to_owned(), acc, true));
    }
    if other_values > 0 {
        rows.push(row(OTHER_LABEL.to_owned(), other, false));
    }
    BreakdownReport {
        by: field.name(),
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        other_threshold: MIN_DEALS,
        other_values,
        model_version: model.map(|m| m.version.clone()),
        model_feature: factor.is_some(),
        rows,
    }
}

/// CSV: one row per value; money in one column per currency.
pub fn table(report: &BreakdownReport) -> Table {
    let currencies: Vec<&String> = {
        let mut all: Vec<&String> = report.rows.iter().flat_map(|r| r.won_revenue.keys()).collect();
        all.sort();
        all.dedup();
        all
    };
    let mut columns: Vec<String> = [
        "by",
        "value",
        "open_deals",
        "won_deals",
        "lost_deals",
        "win_rate",
        "win_rate_low",
        "win_rate_high",
        "median_won_cycle_days",
        "median_lost_cycle_days",
        "model_coefficient",
        "model_odds_ratio",
    ]
    .map(String::from)
    .to_vec();
    columns.extend(currencies.iter().map(|c| format!("won_revenue_{c}")));
    let mut t = Table::new(columns);
    for r in &report.rows {
        let mut row = vec![
            report.by.clone(),
            r.value.clone(),
            cell(r.open_deals),
            cell(r.won_deals),
            cell(r.lost_deals),
            opt(r.win_rate),
            opt(r.win_rate_low),
            opt(r.win_rate_high),
            opt(r.median_won_cycle_days),
            opt(r.median_lost_cycle_days),
            opt(r.model_effect.as_ref().map(|e| e.coefficient)),
            opt(r.model_effect.as_ref().map(|e| e.odds_ratio)),
        ];
        row.extend(currencies.iter().map(|c| opt(r.won_revenue.get(*c))));
        t.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::snapshot::sample;

    const START: i64 = 1_700_000_000_000;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 8 of 10: the classic example, [0.4902, 0.9433].
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!(
            (lo - 0.490_162).abs() < 1e-5 && (hi - 0.943_318).abs() < 1e-5,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 5).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.434_482).abs() < 1e-5, "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn by_parses_core_fields_and_attributes_only() {
        assert_eq!(Field::parse("sector"), Some(Field::Core("sector")));
        assert_eq!(Field::parse("attr.tier"), Some(Field::Attribute("tier".into())));
        assert_eq!(Field::parse("attr. x"), Some(Field::Attribute(" x".into())));
        for bad in [
            "",
            "attr.",
            "amount",
            "status",
            "Sector",
            " sector",
            "attr.a\u{7}",
        ] {
            assert_eq!(Field::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Field::parse(&format!("attr.{}", "x".repeat(201))), None);
    }

    /// Counts per sector by plain filters, a pass per sector.
    #[test]
    fn counts_rates_and_rare_values_match_plain_passes() {
        let s = sample(3_000, 5);
        let window = Window {
            start: START + 100 * super::super::snapshot::DAY_MS,
            end: START + 500 * super::super::snapshot::DAY_MS,
        };
        let report = breakdown(&s, &Field::Core("sector"), None, window, None);
        let mut seen_other = 0;
        let sectors: Vec<Option<&str>> = [
            "retail", "banking", "energy", "health", "public", "telecom", "mining",
        ]
        .map(Some)
        .into_iter()
        .chain([None])
        .collect();
        for sector in sectors {
            let of = |d: &&Deal| d.sector.map(|i| s.names.name(i)) == sector;
            let open = s
                .deals
                .iter()
                .filter(of)
                .filter(|d| d.open_at(window.end))
                .count() as u64;
            let closed: Vec<&Deal> = s
                .deals
                .iter()
                .filter(of)
                .filter(|d| d.closed_within(window.start, window.end))
                .collect();
            let won = closed.iter().filter(|d| d.status == Status::Won).count() as u64;
            let lost = closed.len() as u64 - won;
            let label = sector.unwrap_or(NONE_LABEL);
            if sector.is_some() && open + won + lost < MIN_DEALS {
                assert!(report.rows.iter().all(|r| r.value != label), "{label} is rare");
                seen_other += 1;
                continue;
            }
            let r = report.rows.iter().find(|r| r.value == label).unwrap();
            assert_eq!(
                (r.open_deals, r.won_deals, r.lost_deals),
                (open, won, lost),
                "{label}"
            );
            let mut cycles: Vec<f64> = closed
                .iter()
                .filter(|d| d.status == Status::Won)
                .filter_map(|d| d.cycle_days())
                .collect();
            cycles.sort_by(f64::total_cmp);
            let n = cycles.len();
            let expected = (n > 0).then(|| {
                if n % 2 == 1 {
                    cycles[n / 2]
                } else {
                    (cycles[n / 2 - 1] + cycles[n / 2]) / 2.0
                }
            });
            assert_eq!(r.median_won_cycle_days, expected, "{label}");
            let revenue: f64 = closed
                .iter()
                .filter(|d| d.status == Status::Won && s.names.name(d.currency) == "EUR")
                .filter_map(|d| d.amount)
                .sum();
            assert!((r.won_revenue.get("EUR").copied().unwrap_or(0.0) - revenue).abs() < 1e-6);
        }
        // "mining" (1 deal in 200) is rare in the sample.
        assert!(seen_other >= 1);
        assert_eq!(report.other_values, seen_other);
        assert_eq!(report.rows.last().map(|r| r.value.as_str()), Some(OTHER_LABEL));
        let csv = table(&report).to_csv().unwrap();
        assert!(csv.starts_with("by,value,open_deals,"), "{csv}");
        assert_eq!(csv.lines().count(), report.rows.len() + 1);
    }

    #[test]
    fn attribute_columns_align_with_the_deals_by_id() {
        let s = sample(50, 2);
        let pairs = vec![(s.deals[3].id, "gold".to_owned()), (99_999, "ghost".to_owned())];
        let column = AttributeColumn::aligned(&s, pairs);
        assert_eq!(column.values.iter().filter(|v| v.is_some()).count(), 1);
        assert_eq!(column.values[3].map(|i| column.names.name(i)), Some("gold"));
    }
}
