//! Objectives: targets of won revenue (in one currency) or won deal count, per rep or region and
//! period (`PUT /v1/objectives`), and their attainment (`GET /v1/insights/objectives`).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::period::{parse_period, rfc3339, Window};
use super::snapshot::{Deal, Snapshot};
use super::table::{cell, opt, Table};
use crate::domain::{Status, ValidationErrors};
use crate::i18n::format::NBSP;
use crate::store::insights::Objective;
use crate::tr;

/// Most objectives in one `PUT`.
pub const MAX_OBJECTIVES: usize = 1_000;

/// Parses and validates a `PUT /v1/objectives` body: every problem is reported with its field
/// (`objectives[3].target`); nothing is accepted unless everything is valid.
pub fn parse_objectives(body: &Value) -> Result<Vec<Objective>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let Some(items) = body.get("objectives").and_then(Value::as_array) else {
        errors.push_localized(
            "objectives",
            tr!(
                "expected {{\"objectives\": [...]}}",
                "{{\"objectives\": [...]}} est attendu"
            ),
        );
        return Err(errors);
    };
    if items.is_empty() || items.len() > MAX_OBJECTIVES {
        errors.push_localized(
            "objectives",
            tr!(
                "send between 1 and {MAX_OBJECTIVES} objectives",
                "envoyez entre 1 et {MAX_OBJECTIVES}{NBSP}objectifs"
            ),
        );
        return Err(errors);
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("objectives[{i}].{name}");
        let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::trim);
        let scope = match text("scope") {
            Some(s @ ("owner" | "region")) => s.to_owned(),
            _ => {
                errors.push_localized(
                    field("scope"),
                    tr!("must be `owner` or `region`", "doit être `owner` ou `region`"),
                );
                String::new()
            }
        };
        let name = match text("name") {
            // PostgreSQL cannot store a NUL, and a name is one line.
            Some(n) if !n.is_empty() && n.chars().count() <= 200 && !n.chars().any(char::is_control) => {
                n.to_owned()
            }
            _ => {
                errors.push_localized(
                    field("name"),
                    tr!(
                        "the rep or region name is required (at most 200 characters, no control characters)",
                        "le nom du commercial ou de la région est obligatoire (200{NBSP}caractères au plus, sans caractère de contrôle)"
                    ),
                );
                String::new()
            }
        };
        let period = match text("period").and_then(parse_period) {
            Some((label, _)) => label,
            None => {
                errors.push_localized(
                    field("period"),
                    tr!(
                        "must be a year (2026), a quarter (2026-Q1) or a month (2026-03)",
                        "doit être une année (2026), un trimestre (2026-Q1) ou un mois (2026-03)"
                    ),
                );
                String::new()
            }
        };
        let metric = match text("metric") {
            Some(m @ ("won_revenue" | "won_deals")) => m.to_owned(),
            _ => {
                errors.push_localized(
                    field("metric"),
                    tr!(
                        "must be `won_revenue` or `won_deals`",
                        "doit être `won_revenue` ou `won_deals`"
                    ),
                );
                String::new()
            }
        };
        let currency = match (metric.as_str(), text("currency")) {
            ("won_revenue", Some(c)) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                Some(c.to_ascii_uppercase())
            }
            ("won_revenue", _) => {
                errors.push_localized(
                    field("currency"),
                    tr!(
                        "a won_revenue target needs its currency (ISO code, e.g. EUR)",
                        "un objectif won_revenue demande sa devise (code ISO, par ex. EUR)"
                    ),
                );
                None
            }
            (_, Some(_)) => {
                errors.push_localized(
                    field("currency"),
                    tr!(
                        "a won_deals target has no currency",
                        "un objectif won_deals n'a pas de devise"
                    ),
                );
                None
            }
            _ => None,
        };
        let target = match item.get("target").and_then(Value::as_f64) {
            Some(t) if t.is_finite() && t > 0.0 && t < 1e15 => t,
            _ => {
                errors.push_localized(
                    field("target"),
                    tr!("must be a number above 0", "doit être un nombre supérieur à 0"),
                );
                0.0
            }
        };
        out.push(Objective {
            scope,
            name,
            period,
            metric,
            currency,
            target,
        });
    }
    for (i, o) in out.iter().enumerate() {
        if out[..i].iter().any(|p| {
            (&p.scope, &p.name, &p.period, &p.metric, &p.currency)
                == (&o.scope, &o.name, &o.period, &o.metric, &o.currency)
        }) {
            errors.push_localized(
                format!("objectives[{i}]"),
                tr!(
                    "repeats an earlier objective (same scope, name, period, metric and currency)",
                    "répète un objectif précédent (mêmes scope, name, period, metric et currency)"
                ),
            );
        }
    }
    errors.into_result(out)
}

/// One objective with its attainment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Attainment {
    /// The objective.
    #[serde(flatten)]
    pub objective: Objective,
    /// Won revenue (in the objective's currency) or won deals within the period so far.
    pub actual: f64,
    /// actual / target.
    pub attainment: f64,
    /// target − actual (negative once exceeded).
    pub gap: f64,
    /// Expected addition from the deals open now that have a stored score: Σ probability ×
    /// amount (revenue, same currency) or Σ probability (deals).
    pub forecast: f64,
    /// (actual + forecast) / target.
    pub forecast_to_target: f64,
    /// Deals open now in the scope (and currency) without a stored score: not in the forecast.
    pub unscored_open_deals: u64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ObjectivesReport {
    /// The period.
    pub period: String,
    /// Its start (RFC 3339).
    pub from: String,
    /// Its end, exclusive (RFC 3339).
    pub to: String,
    /// Each objective of the period.
    pub objectives: Vec<Attainment>,
}

fn in_scope(snapshot: &Snapshot, o: &Objective, d: &Deal) -> bool {
    let value = if o.scope == "owner" { d.owner } else { d.region };
    let name_ok = value.is_some_and(|v| snapshot.names.name(v) == o.name);
    let currency_ok = o
        .currency
        .as_deref()
        .is_none_or(|c| snapshot.names.name(d.currency) == c);
    name_ok && currency_ok
}

/// Attainment of each objective over the snapshot.
pub fn attainment(
    snapshot: &Snapshot,
    period: &str,
    window: Window,
    objectives: Vec<Objective>,
) -> ObjectivesReport {
    let rows = objectives
        .into_iter()
        .map(|o| {
            let revenue = o.metric == "won_revenue";
            let (mut actual, mut forecast, mut unscored) = (0.0, 0.0, 0u64);
            for d in snapshot.deals.iter().filter(|d| in_scope(snapshot, &o, d)) {
                match d.status {
                    Status::Won if d.closed_at.is_some_and(|t| window.contains(t)) => {
                        actual += if revenue { d.amount.unwrap_or(0.0) } else { 1.0 };
                    }
                    Status::Open => match d.probability {
                        Some(p) => forecast += if revenue { p * d.amount.unwrap_or(0.0) } else { p },
                        None => unscored += 1,
                    },
                    _ => {}
                }
            }
            Attainment {
                attainment: actual / o.target,
                gap: o.target - actual,
                forecast_to_target: (actual + forecast) / o.target,
                actual,
                forecast,
                unscored_open_deals: unscored,
                objective: o,
            }
        })
        .collect();
    ObjectivesReport {
        period: period.to_owned(),
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        objectives: rows,
    }
}

/// CSV: one row per objective.
pub fn table(report: &ObjectivesReport) -> Table {
    let mut t = Table::new([
        "scope",
        "name",
        "period",
        "metric",
        "currency",
        "target",
        "actual",
        "attainment",
        "gap",
        "forecast",
        "forecast_to_target",
        "unscored_open_deals",
    ]);
    for a in &report.objectives {
        let o = &a.objective;
        t.push(vec![
            o.scope.clone(),
            o.name.clone(),
            o.period.clone(),
            o.metric.clone(),
            opt(o.currency.as_ref()),
            cell(o.target),
            cell(a.actual),
            cell(a.attainment),
            cell(a.gap),
            cell(a.forecast),
            cell(a.forecast_to_target),
            cell(a.unscored_open_deals),
        ]);
    }
    t
}
