//! `GET /v1/insights/resources`: per region and per rep, open deals and value, won revenue, win
//! rate, the trend over the last periods, the forecast of the open deals, and workload flags.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::period::{rfc3339, Window};
use super::snapshot::{ByName, Deal, Snapshot};
use super::stats::{quantile, ratio, PerCurrency};
use super::table::{cell, opt, Table};
use crate::domain::Status;

/// Periods in each trend (the window and the ones before it, of equal length).
pub const TREND_PERIODS: i64 = 4;
/// A rep is flagged overloaded above this multiple of the median open deals per rep.
pub const OVERLOAD_FACTOR: f64 = 1.5;

/// Results of one earlier period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrendPoint {
    /// Start (RFC 3339).
    pub from: String,
    /// End, exclusive (RFC 3339).
    pub to: String,
    /// Won deals.
    pub won_deals: u64,
    /// Lost deals.
    pub lost_deals: u64,
    /// won / (won + lost).
    pub win_rate: Option<f64>,
    /// Won revenue per currency.
    pub won_revenue: BTreeMap<String, f64>,
}

/// One region or rep.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ResourceRow {
    /// Region or rep (`(none)` when absent).
    pub name: String,
    /// Deals open at the end of the window.
    pub open_deals: u64,
    /// Their amounts per currency.
    pub open_value: BTreeMap<String, f64>,
    /// Deals won within the window.
    pub won_deals: u64,
    /// Deals lost within the window.
    pub lost_deals: u64,
    /// Won revenue per currency.
    pub won_revenue: BTreeMap<String, f64>,
    /// won / (won + lost) within the window.
    pub win_rate: Option<f64>,
    /// The last periods of the window's length, oldest first (the window is the last).
    pub trend: Vec<TrendPoint>,
    /// Σ probability × amount over the deals open now that have a stored score, per currency.
    pub forecast: BTreeMap<String, f64>,
    /// Deals open now with a stored score (the forecast's base).
    pub scored_open_deals: u64,
    /// Deals open now without a stored score (not in the forecast).
    pub unscored_open_deals: u64,
    /// Reps only: open deals above [`OVERLOAD_FACTOR`] × the median of the reps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overloaded: Option<bool>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ResourcesReport {
    /// Window start (RFC 3339).
    pub from: String,
    /// Window end, exclusive (RFC 3339).
    pub to: String,
    /// Median open deals per rep (reps with at least one deal in the data).
    pub median_open_deals_per_rep: Option<f64>,
    /// Per region, by name.
    pub regions: Vec<ResourceRow>,
    /// Per rep, by name.
    pub reps: Vec<ResourceRow>,
}

#[derive(Debug, Default, Clone)]
struct Acc {
    open: u64,
    open_money: PerCurrency,
    scored_open: u64,
    unscored_open: u64,
    forecast: PerCurrency,
    trend: Vec<(u64, u64, PerCurrency)>,
}

impl Acc {
    fn with_periods() -> Self {
        Acc {
            trend: vec![(0, 0, PerCurrency::default()); TREND_PERIODS as usize],
            ..Acc::default()
        }
    }
}

impl Acc {
    /// Adds one deal: `open_at_end` whether it was open at the end of the window, `period` the
    /// trend period it closed in.
    fn add(&mut self, d: &Deal, open_at_end: bool, period: Option<usize>) {
        if open_at_end {
            self.open += 1;
            self.open_money.add(d.currency, d.amount);
        }
        if d.status == Status::Open {
            match d.probability {
                Some(p) => {
                    self.scored_open += 1;
                    if let Some(a) = d.amount {
                        self.forecast.add(d.currency, Some(p * a));
                    }
                }
                None => self.unscored_open += 1,
            }
        }
        if let Some(point) = period.and_then(|i| self.trend.get_mut(i)) {
            if d.status == Status::Won {
                point.0 += 1;
                point.2.add(d.currency, d.amount);
            } else {
                point.1 += 1;
            }
        }
    }
}

/// One pass over the deals for both tables: per region and per rep. Each accumulator gets its
/// deals in id order, as with one pass per table.
fn accumulate(snapshot: &Snapshot, window: Window) -> (ByName<Acc>, ByName<Acc>) {
    let periods: Vec<Window> = (0..TREND_PERIODS).rev().map(|k| window.shifted_back(k)).collect();
    let earliest = periods[0].start;
    let mut regions = ByName::new(&snapshot.names);
    let mut reps = ByName::new(&snapshot.names);
    for d in &snapshot.deals {
        let open_at_end = d.open_at(window.end);
        let period = match (d.status.is_closed(), d.closed_at) {
            (true, Some(closed)) if closed >= earliest && closed < window.end => {
                periods.iter().position(|w| w.contains(closed))
            }
            _ => None,
        };
        // Every deal gets a row, so reps with nothing open still count in the workload median.
        regions
            .entry(d.region, Acc::with_periods)
            .add(d, open_at_end, period);
        reps.entry(d.owner, Acc::with_periods).add(d, open_at_end, period);
    }
    (regions, reps)
}

fn rows(snapshot: &Snapshot, window: Window, groups: ByName<Acc>) -> Vec<ResourceRow> {
    let periods: Vec<Window> = (0..TREND_PERIODS).rev().map(|k| window.shifted_back(k)).collect();
    let mut out: Vec<ResourceRow> = groups
        .into_entries()
        .map(|(key, acc)| {
            let trend: Vec<TrendPoint> = acc
                .trend
                .iter()
                .zip(&periods)
                .map(|((won, lost, money), w)| TrendPoint {
                    from: rfc3339(w.start),
                    to: rfc3339(w.end),
                    won_deals: *won,
                    lost_deals: *lost,
                    win_rate: ratio(*won, won + lost),
                    won_revenue: money.sums(snapshot),
                })
                .collect();
            let last = trend.last().cloned();
            ResourceRow {
                name: snapshot.label(key),
                open_deals: acc.open,
                open_value: acc.open_money.sums(snapshot),
                won_deals: last.as_ref().map_or(0, |t| t.won_deals),
                lost_deals: last.as_ref().map_or(0, |t| t.lost_deals),
                won_revenue: last.as_ref().map(|t| t.won_revenue.clone()).unwrap_or_default(),
                win_rate: last.and_then(|t| t.win_rate),
                trend,
                forecast: acc.forecast.sums(snapshot),
                scored_open_deals: acc.scored_open,
                unscored_open_deals: acc.unscored_open,
                overloaded: None,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.name == super::snapshot::NONE_LABEL, &a.name)
            .cmp(&(b.name == super::snapshot::NONE_LABEL, &b.name))
    });
    out
}

/// Computes the report.
pub fn resources(snapshot: &Snapshot, window: Window) -> ResourcesReport {
    let (regions, reps) = accumulate(snapshot, window);
    let regions = rows(snapshot, window, regions);
    let mut reps = rows(snapshot, window, reps);
    let mut loads: Vec<f64> = reps
        .iter()
        .filter(|r| r.name != super::snapshot::NONE_LABEL)
        .map(|r| r.open_deals as f64)
        .collect();
    let median = (!loads.is_empty()).then(|| quantile(&mut loads, 0.5));
    for r in reps.iter_mut().filter(|r| r.name != super::snapshot::NONE_LABEL) {
        r.overloaded = median.map(|m| r.open_deals as f64 > OVERLOAD_FACTOR * m);
    }
    ResourcesReport {
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        median_open_deals_per_rep: median,
        regions,
        reps,
    }
}

/// CSV: one row per region then per rep; money per currency; the trend as won-deal counts.
pub fn table(report: &ResourcesReport) -> Table {
    let all = report
        .regions
        .iter()
        .map(|r| ("region", r))
        .chain(report.reps.iter().map(|r| ("rep", r)));
    let mut currencies: Vec<String> = all
        .clone()
        .flat_map(|(_, r)| {
            r.open_value
                .keys()
                .chain(r.won_revenue.keys())
                .chain(r.forecast.keys())
                .cloned()
        })
        .collect();
    currencies.sort();
    currencies.dedup();
    let mut columns: Vec<String> = [
        "kind",
        "name",
        "open_deals",
        "won_deals",
        "lost_deals",
        "win_rate",
        "scored_open_deals",
        "unscored_open_deals",
        "overloaded",
    ]
    .map(String::from)
    .to_vec();
    for c in &currencies {
        columns.extend([
            format!("open_value_{c}"),
            format!("won_revenue_{c}"),
            format!("forecast_{c}"),
        ]);
    }
    columns.extend((1..=TREND_PERIODS).map(|k| format!("trend_won_deals_{k}")));
    columns.extend((1..=TREND_PERIODS).map(|k| format!("trend_win_rate_{k}")));
    let mut t = Table::new(columns);
    for (kind, r) in all {
        let mut row = vec![
            kind.to_owned(),
            r.name.clone(),
            cell(r.open_deals),
            cell(r.won_deals),
            cell(r.lost_deals),
            opt(r.win_rate),
            cell(r.scored_open_deals),
            cell(r.unscored_open_deals),
            opt(r.overloaded),
        ];
        for c in &currencies {
            row.extend([
                opt(r.open_value.get(c)),
                opt(r.won_revenue.get(c)),
                opt(r.forecast.get(c)),
            ]);
        }
        row.extend(r.trend.iter().map(|p| cell(p.won_deals)));
        row.extend(r.trend.iter().map(|p| opt(p.win_rate)));
        t.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::insights::snapshot::{sample, NameId, DAY_MS};

    /// One table the straightforward way: its own pass, groups in a hash map.
    fn recomputed_rows(
        snapshot: &Snapshot,
        window: Window,
        key: fn(&Deal) -> Option<NameId>,
    ) -> Vec<ResourceRow> {
        let periods: Vec<Window> = (0..TREND_PERIODS).rev().map(|k| window.shifted_back(k)).collect();
        let mut groups: HashMap<Option<NameId>, Acc> = HashMap::new();
        for d in &snapshot.deals {
            let period = (d.status.is_closed())
                .then_some(d.closed_at)
                .flatten()
                .and_then(|c| periods.iter().position(|w| w.contains(c)));
            let acc = groups.entry(key(d)).or_insert_with(Acc::with_periods);
            acc.add(d, d.open_at(window.end), period);
        }
        let mut by_name = ByName::new(&snapshot.names);
        for (k, acc) in groups {
            *by_name.entry(k, Acc::default) = acc;
        }
        rows(snapshot, window, by_name)
    }

    #[test]
    fn one_pass_for_both_tables_equals_one_pass_each() {
        let s = sample(5_000, 9);
        let start = 1_700_000_000_000_i64;
        for window in [
            Window {
                start: start + 300 * DAY_MS,
                end: start + 390 * DAY_MS,
            },
            Window {
                start: start + 10 * DAY_MS,
                end: start + 11 * DAY_MS,
            },
        ] {
            let report = resources(&s, window);
            assert_eq!(report.regions, recomputed_rows(&s, window, |d| d.region));
            let mut reps = recomputed_rows(&s, window, |d| d.owner);
            for r in reps
                .iter_mut()
                .filter(|r| r.name != crate::insights::snapshot::NONE_LABEL)
            {
                r.overloaded = report
                    .median_open_deals_per_rep
                    .map(|m| r.open_deals as f64 > OVERLOAD_FACTOR * m);
            }
            assert_eq!(report.reps, reps);
            if window.len() > 30 * DAY_MS {
                assert!(report.reps.iter().any(|r| r.won_deals > 0));
            }
        }
    }
}
