//! `GET /v1/insights/pipeline`: won revenue, open pipeline, volumes, rates, cycle length and
//! accounts per group, against the previous period.
//!
//! Won and lost deals count in the period of their `closed_at`; open deals are those open at the
//! end of the period (created before it, and still open or closed later). Money is per currency.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::period::{rfc3339, Calendar, Window};
use super::snapshot::{Deal, NameId, Snapshot};
use super::stats::{ratio, PerCurrency};
use super::table::{cell, opt, Table};
use crate::domain::Status;

/// How groups are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Calendar months overlapping the window.
    Month,
    /// Calendar quarters overlapping the window.
    Quarter,
    /// Region.
    Region,
    /// Owner (rep).
    Owner,
    /// Sector.
    Sector,
}

impl GroupBy {
    /// Parses `month`, `quarter`, `region`, `owner` or `sector`.
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "month" => Some(GroupBy::Month),
            "quarter" => Some(GroupBy::Quarter),
            "region" => Some(GroupBy::Region),
            "owner" => Some(GroupBy::Owner),
            "sector" => Some(GroupBy::Sector),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Month => "month",
            GroupBy::Quarter => "quarter",
            GroupBy::Region => "region",
            GroupBy::Owner => "owner",
            GroupBy::Sector => "sector",
        }
    }
}

/// The figures of one group over one period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    /// Deals open at the end of the period.
    pub open_deals: u64,
    /// Deals won within the period.
    pub won_deals: u64,
    /// Deals lost within the period.
    pub lost_deals: u64,
    /// won / (won + lost); absent when nothing closed.
    pub win_rate: Option<f64>,
    /// lost / (won + lost); absent when nothing closed.
    pub loss_rate: Option<f64>,
    /// Sum of won amounts, per currency.
    pub won_revenue: BTreeMap<String, f64>,
    /// Sum of the amounts of the open deals, per currency.
    pub open_pipeline_value: BTreeMap<String, f64>,
    /// Mean won amount, per currency (won deals with an amount).
    pub avg_won_deal_size: BTreeMap<String, f64>,
    /// Mean `closed_at − created_at` of won deals, in days.
    pub avg_won_cycle_days: Option<f64>,
    /// Distinct accounts among the won, lost and open deals counted.
    pub distinct_accounts: u64,
    /// Won deals without an amount (counted, not summed).
    pub won_deals_without_amount: u64,
    /// Open deals without an amount (counted, not summed).
    pub open_deals_without_amount: u64,
}

/// Current minus previous; money per currency (a currency missing on one side counts as 0).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delta {
    /// Change in open deals.
    pub open_deals: i64,
    /// Change in won deals.
    pub won_deals: i64,
    /// Change in lost deals.
    pub lost_deals: i64,
    /// Change in win rate (absent unless both exist).
    pub win_rate: Option<f64>,
    /// Change in loss rate (absent unless both exist).
    pub loss_rate: Option<f64>,
    /// Change in won revenue, per currency.
    pub won_revenue: BTreeMap<String, f64>,
    /// Change in open pipeline value, per currency.
    pub open_pipeline_value: BTreeMap<String, f64>,
    /// Change in mean won cycle (absent unless both exist).
    pub avg_won_cycle_days: Option<f64>,
    /// Change in distinct accounts.
    pub distinct_accounts: i64,
}

/// One group: its figures, the previous period's and the change.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PipelineGroup {
    /// Region, owner or sector name (`(none)` for deals without one), or `2026-03` / `2026-Q1`.
    pub key: String,
    /// Start of the group's period (RFC 3339).
    pub from: String,
    /// End of the group's period, exclusive (RFC 3339).
    pub to: String,
    /// This period.
    pub current: Figures,
    /// The period of equal length just before (the previous month or quarter for time groups).
    pub previous: Figures,
    /// current − previous.
    pub delta: Delta,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PipelineReport {
    /// `month`, `quarter`, `region`, `owner` or `sector`.
    pub group_by: String,
    /// Window start (RFC 3339).
    pub from: String,
    /// Window end, exclusive (RFC 3339).
    pub to: String,
    /// Every deal of the window (filters applied), against the previous window.
    pub total: PipelineGroup,
    /// One entry per group: time order, or by name with `(none)` last.
    pub groups: Vec<PipelineGroup>,
}

#[derive(Debug, Default)]
struct Acc {
    open: u64,
    won: u64,
    lost: u64,
    cycle_sum: f64,
    cycle_n: u64,
    accounts: HashSet<NameId>,
    won_money: PerCurrency,
    open_money: PerCurrency,
}

impl Acc {
    fn add_closed(&mut self, d: &Deal) {
        match d.status {
            Status::Won => {
                self.won += 1;
                self.won_money.add(d.currency, d.amount);
                if let Some(days) = d.cycle_days() {
                    self.cycle_sum += days;
                    self.cycle_n += 1;
                }
            }
            Status::Lost => self.lost += 1,
            Status::Open => return,
        }
        self.accounts.extend(d.account);
    }

    fn add_open(&mut self, d: &Deal) {
        self.open += 1;
        self.open_money.add(d.currency, d.amount);
        self.accounts.extend(d.account);
    }

    fn figures(&self, snapshot: &Snapshot) -> Figures {
        let closed = self.won + self.lost;
        Figures {
            open_deals: self.open,
            won_deals: self.won,
            lost_deals: self.lost,
            win_rate: ratio(self.won, closed),
            loss_rate: ratio(self.lost, closed),
            won_revenue: self.won_money.sums(snapshot),
            open_pipeline_value: self.open_money.sums(snapshot),
            avg_won_deal_size: self.won_money.means(snapshot),
            avg_won_cycle_days: (self.cycle_n > 0).then(|| self.cycle_sum / self.cycle_n as f64),
            distinct_accounts: self.accounts.len() as u64,
            won_deals_without_amount: self.won_money.without_amount(),
            open_deals_without_amount: self.open_money.without_amount(),
        }
    }
}

fn money_delta(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    a.keys()
        .chain(b.keys())
        .map(|c| {
            let now = a.get(c).copied().unwrap_or(0.0);
            let before = b.get(c).copied().unwrap_or(0.0);
            (c.clone(), now - before)
        })
        .collect()
}

fn both(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

fn delta(a: &Figures, b: &Figures) -> Delta {
    let diff = |x: u64, y: u64| x as i64 - y as i64;
    Delta {
        open_deals: diff(a.open_deals, b.open_deals),
        won_deals: diff(a.won_deals, b.won_deals),
        lost_deals: diff(a.lost_deals, b.lost_deals),
        win_rate: both(a.win_rate, b.win_rate),
        loss_rate: both(a.loss_rate, b.loss_rate),
        won_revenue: money_delta(&a.won_revenue, &b.won_revenue),
        open_pipeline_value: money_delta(&a.open_pipeline_value, &b.open_pipeline_value),
        avg_won_cycle_days: both(a.avg_won_cycle_days, b.avg_won_cycle_days),
        distinct_accounts: diff(a.distinct_accounts, b.distinct_accounts),
    }
}

fn group(snapshot: &Snapshot, key: String, window: Window, current: &Acc, previous: &Acc) -> PipelineGroup {
    let current = current.figures(snapshot);
    let previous = previous.figures(snapshot);
    PipelineGroup {
        key,
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        delta: delta(&current, &previous),
        current,
        previous,
    }
}

/// Accumulates the deals closed within `window` and those open at its end.
fn accumulate_window<'a>(
    deals: impl Iterator<Item = &'a Deal>,
    window: Window,
    key: impl Fn(&Deal) -> Option<NameId>,
) -> HashMap<Option<NameId>, Acc> {
    let mut groups: HashMap<Option<NameId>, Acc> = HashMap::new();
    for d in deals {
        let closed = d.closed_within(window.start, window.end);
        let open = d.open_at(window.end);
        if closed || open {
            let acc = groups.entry(key(d)).or_default();
            if closed {
                acc.add_closed(d);
            }
            if open {
                acc.add_open(d);
            }
        }
    }
    groups
}

/// Computes the pipeline report.
pub fn pipeline(
    snapshot: &Snapshot,
    window: Window,
    group_by: GroupBy,
    filter: &DealFilter,
) -> PipelineReport {
    let matching = || snapshot.deals.iter().filter(|d| filter.matches(d));
    let previous_window = window.previous();
    let mut totals_now = accumulate_window(matching(), window, |_| None);
    let mut totals_before = accumulate_window(matching(), previous_window, |_| None);
    let total = group(
        snapshot,
        "total".into(),
        window,
        &totals_now.remove(&None).unwrap_or_default(),
        &totals_before.remove(&None).unwrap_or_default(),
    );
    let groups = match group_by {
        GroupBy::Month => by_calendar(snapshot, matching(), window, Calendar::Month),
        GroupBy::Quarter => by_calendar(snapshot, matching(), window, Calendar::Quarter),
        GroupBy::Region | GroupBy::Owner | GroupBy::Sector => {
            let key = move |d: &Deal| match group_by {
                GroupBy::Region => d.region,
                GroupBy::Owner => d.owner,
                _ => d.sector,
            };
            let now = accumulate_window(matching(), window, key);
            let before = accumulate_window(matching(), previous_window, key);
            let mut keys: Vec<Option<NameId>> = now.keys().chain(before.keys()).copied().collect();
            keys.sort_by(|a, b| match (a, b) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => snapshot.names.name(*x).cmp(snapshot.names.name(*y)),
            });
            keys.dedup();
            let empty = Acc::default();
            keys.into_iter()
                .map(|k| {
                    group(
                        snapshot,
                        snapshot.label(k),
                        window,
                        now.get(&k).unwrap_or(&empty),
                        before.get(&k).unwrap_or(&empty),
                    )
                })
                .collect()
        }
    };
    PipelineReport {
        group_by: group_by.as_str().into(),
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        total,
        groups,
    }
}

/// One pass: each closed deal lands in the bucket of its `closed_at`; each deal is open at the
/// end of every bucket from the one it was created in to the one before it closed.
fn by_calendar<'a>(
    snapshot: &Snapshot,
    deals: impl Iterator<Item = &'a Deal>,
    window: Window,
    calendar: Calendar,
) -> Vec<PipelineGroup> {
    let first = calendar.bucket(window.start);
    let last = calendar.bucket(window.end - 1);
    // One bucket before the first, as the first one's "previous".
    let base = first - 1;
    let mut accs: Vec<Acc> = (base..=last).map(|_| Acc::default()).collect();
    for d in deals {
        if d.status.is_closed() {
            if let Some(closed) = d.closed_at {
                let b = calendar.bucket(closed);
                if (base..=last).contains(&b) {
                    accs[(b - base) as usize].add_closed(d);
                }
            }
        }
        let from = d.created_at.map_or(base, |c| calendar.bucket(c).max(base));
        let to = match d.status {
            Status::Open => last,
            Status::Won | Status::Lost => match d.closed_at {
                Some(closed) => (calendar.bucket(closed) - 1).min(last),
                None => continue,
            },
        };
        for b in from..=to {
            accs[(b - base) as usize].add_open(d);
        }
    }
    (first..=last)
        .map(|b| {
            let i = (b - base) as usize;
            group(
                snapshot,
                calendar.label(b),
                calendar.window(b),
                &accs[i],
                &accs[i - 1],
            )
        })
        .collect()
}

/// The report as CSV rows: one per group (the total first); money columns per currency.
pub fn table(report: &PipelineReport) -> Table {
    let all = std::iter::once(&report.total).chain(&report.groups);
    let mut currencies: Vec<String> = all
        .clone()
        .flat_map(|g| {
            [&g.current, &g.previous]
                .into_iter()
                .flat_map(|f| f.won_revenue.keys().chain(f.open_pipeline_value.keys()).cloned())
        })
        .collect();
    currencies.sort();
    currencies.dedup();
    let mut columns: Vec<String> = vec!["group_by".into(), "key".into(), "from".into(), "to".into()];
    let counts = [
        "open_deals",
        "won_deals",
        "lost_deals",
        "win_rate",
        "loss_rate",
        "avg_won_cycle_days",
        "distinct_accounts",
        "won_deals_without_amount",
        "open_deals_without_amount",
    ];
    for side in ["", "previous_"] {
        columns.extend(counts.iter().map(|c| format!("{side}{c}")));
        for c in &currencies {
            columns.push(format!("{side}won_revenue_{c}"));
            columns.push(format!("{side}open_pipeline_value_{c}"));
            columns.push(format!("{side}avg_won_deal_size_{c}"));
        }
    }
    let mut t = Table::new(columns);
    for g in all {
        let mut row = vec![
            report.group_by.clone(),
            g.key.clone(),
            g.from.clone(),
            g.to.clone(),
        ];
        for f in [&g.current, &g.previous] {
            row.extend([
                cell(f.open_deals),
                cell(f.won_deals),
                cell(f.lost_deals),
                opt(f.win_rate),
                opt(f.loss_rate),
                opt(f.avg_won_cycle_days),
                cell(f.distinct_accounts),
                cell(f.won_deals_without_amount),
                cell(f.open_deals_without_amount),
            ]);
            for c in &currencies {
                row.push(opt(f.won_revenue.get(c)));
                row.push(opt(f.open_pipeline_value.get(c)));
                row.push(opt(f.avg_won_deal_size.get(c)));
            }
        }
        t.push(row);
    }
    t
}
