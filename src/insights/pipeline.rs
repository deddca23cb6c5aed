//! `GET /v1/insights/pipeline`: won revenue, open pipeline, volumes, rates, cycle length and
//! accounts per group, against the previous period.
//!
//! Won and lost deals count in the period of their `closed_at`; open deals are those open at the
//! end of the period (created before it, and still open or closed later). Money is per currency.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::filter::DealFilter;
use super::period::{rfc3339, Calendar, Window};
use super::snapshot::{ByName, Deal, NameId, NameSet, Snapshot};
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
    accounts: NameSet,
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

/// How a deal counts in a window: closed within it, open at its end (or both, or neither).
#[derive(Debug, Clone, Copy)]
struct Counted {
    closed: bool,
    open: bool,
}

impl Counted {
    fn new(d: &Deal, window: Window) -> Counted {
        Counted {
            closed: d.closed_within(window.start, window.end),
            open: d.open_at(window.end),
        }
    }

    /// Adds `d` to the group `acc` gives when it counts; `acc` makes the group on first use, so
    /// groups without such deals do not appear.
    fn add<'a>(self, d: &Deal, acc: impl FnOnce() -> &'a mut Acc) {
        if self.closed || self.open {
            let acc = acc();
            if self.closed {
                acc.add_closed(d);
            }
            if self.open {
                acc.add_open(d);
            }
        }
    }
}

/// The calendar buckets of a report, from the one before the first (the first one's
/// "previous") to the last, and their bounds, so that placing an instant is a search among a
/// few bounds instead of a date conversion per deal.
#[derive(Debug)]
struct Buckets {
    calendar: Calendar,
    /// The bucket before the first.
    base: i64,
    /// The last bucket.
    last: i64,
    /// Start of each bucket from `base` to `last`, then the end of `last`.
    bounds: Vec<i64>,
}

impl Buckets {
    fn new(calendar: Calendar, window: Window) -> Buckets {
        let base = calendar.bucket(window.start) - 1;
        let last = calendar.bucket(window.end - 1);
        let mut bounds: Vec<i64> = (base..=last).map(|b| calendar.window(b).start).collect();
        bounds.push(calendar.window(last).end);
        Buckets {
            calendar,
            base,
            last,
            bounds,
        }
    }

    /// The bucket of `t`, except that every instant before `base` gives `base - 1` and every
    /// instant after `last` gives `last + 1`: [`add_to_calendar`] treats all buckets outside the
    /// range alike, so it needs no more.
    fn of(&self, t: i64) -> i64 {
        // Outside chrono's range `Calendar::bucket` falls back to 1970; keep that exactly.
        let representable = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_millis()
            ..=chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();
        let (Some(&first), Some(&end)) = (self.bounds.first(), self.bounds.last()) else {
            return self.calendar.bucket(t);
        };
        if !representable.contains(&t) {
            self.calendar.bucket(t).clamp(self.base - 1, self.last + 1)
        } else if t < first {
            self.base - 1
        } else if t >= end {
            self.last + 1
        } else {
            // bounds[i] <= t < bounds[i + 1]: bucket base + i.
            self.base + self.bounds.partition_point(|&b| b <= t) as i64 - 1
        }
    }
}

/// The groups of the report, filled during the single pass over the deals.
enum Groups {
    /// Calendar buckets; `accs[i]` is bucket `base + i` (see [`add_to_calendar`]).
    Calendar { buckets: Buckets, accs: Vec<Acc> },
    /// By region, owner or sector: this window and the previous one.
    Keyed {
        key: fn(&Deal) -> Option<NameId>,
        now: ByName<Acc>,
        before: ByName<Acc>,
    },
}

/// Computes the pipeline report in one pass over the deals: the totals of both windows and the
/// groups together, each deal added to its accumulators in id order (so money sums add up in
/// the same order as one pass per figure would).
pub fn pipeline(
    snapshot: &Snapshot,
    window: Window,
    group_by: GroupBy,
    filter: &DealFilter,
) -> PipelineReport {
    let previous_window = window.previous();
    let calendar = |calendar: Calendar| {
        let buckets = Buckets::new(calendar, window);
        let accs = (buckets.base..=buckets.last).map(|_| Acc::default()).collect();
        Groups::Calendar { buckets, accs }
    };
    let keyed = |key: fn(&Deal) -> Option<NameId>| Groups::Keyed {
        key,
        now: ByName::new(&snapshot.names),
        before: ByName::new(&snapshot.names),
    };
    let mut groups = match group_by {
        GroupBy::Month => calendar(Calendar::Month),
        GroupBy::Quarter => calendar(Calendar::Quarter),
        GroupBy::Region => keyed(|d| d.region),
        GroupBy::Owner => keyed(|d| d.owner),
        GroupBy::Sector => keyed(|d| d.sector),
    };
    let (mut total_now, mut total_before) = (Acc::default(), Acc::default());
    for d in snapshot.deals.iter().filter(|d| filter.matches(d)) {
        let (now, before) = (Counted::new(d, window), Counted::new(d, previous_window));
        now.add(d, || &mut total_now);
        before.add(d, || &mut total_before);
        match &mut groups {
            Groups::Calendar { buckets, accs } => add_to_calendar(accs, buckets, d),
            Groups::Keyed {
                key,
                now: now_groups,
                before: before_groups,
            } => {
                let k = key(d);
                now.add(d, || now_groups.entry(k, Acc::default));
                before.add(d, || before_groups.entry(k, Acc::default));
            }
        }
    }
    let total = group(snapshot, "total".into(), window, &total_now, &total_before);
    let groups = match groups {
        Groups::Calendar { buckets, accs } => (buckets.base + 1..=buckets.last)
            .map(|b| {
                let i = (b - buckets.base) as usize;
                let calendar = buckets.calendar;
                group(
                    snapshot,
                    calendar.label(b),
                    calendar.window(b),
                    &accs[i],
                    &accs[i - 1],
                )
            })
            .collect(),
        Groups::Keyed { now, before, .. } => {
            let mut keys: Vec<Option<NameId>> =
                now.entries().chain(before.entries()).map(|(k, _)| k).collect();
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
                        now.get(k).unwrap_or(&empty),
                        before.get(k).unwrap_or(&empty),
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

/// Each closed deal lands in the bucket of its `closed_at`; each deal is open at the end of
/// every bucket from the one it was created in to the one before it closed.
fn add_to_calendar(accs: &mut [Acc], buckets: &Buckets, d: &Deal) {
    let (base, last) = (buckets.base, buckets.last);
    if d.status.is_closed() {
        if let Some(closed) = d.closed_at {
            let b = buckets.of(closed);
            if (base..=last).contains(&b) {
                accs[(b - base) as usize].add_closed(d);
            }
        }
    }
    let from = d.created_at.map_or(base, |c| buckets.of(c).max(base));
    let to = match d.status {
        Status::Open => last,
        Status::Won | Status::Lost => match d.closed_at {
            Some(closed) => (buckets.of(closed) - 1).min(last),
            None => return,
        },
    };
    for b in from..=to {
        accs[(b - base) as usize].add_open(d);
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::insights::filter::FilterNames;
    use crate::insights::snapshot::{sample, DAY_MS};

    fn accumulate_window<'a>(
        deals: impl Iterator<Item = &'a Deal>,
        window: Window,
        key: impl Fn(&Deal) -> Option<NameId>,
    ) -> HashMap<Option<NameId>, Acc> {
        let mut groups: HashMap<Option<NameId>, Acc> = HashMap::new();
        for d in deals {
            Counted::new(d, window).add(d, || groups.entry(key(d)).or_default());
        }
        groups
    }

    /// The straightforward version: one pass per window and grouping, groups in hash maps
    /// (what `pipeline` did before the single pass).
    fn recomputed(
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
            GroupBy::Month | GroupBy::Quarter => {
                let calendar = if group_by == GroupBy::Month {
                    Calendar::Month
                } else {
                    Calendar::Quarter
                };
                let first = calendar.bucket(window.start);
                let last = calendar.bucket(window.end - 1);
                let base = first - 1;
                let mut accs: Vec<Acc> = (base..=last).map(|_| Acc::default()).collect();
                for d in matching() {
                    if d.status.is_closed() {
                        if let Some(closed) = d.closed_at {
                            let b = calendar.bucket(closed);
                            if (base..=last).contains(&b) {
                                accs[(b - base) as usize].add_closed(d);
                            }
                        }
                    }
                    let from = d.created_at.map_or(base, |c| calendar.bucket(c).max(base));
                    let to = match (d.status, d.closed_at) {
                        (Status::Open, _) => last,
                        (_, Some(closed)) => (calendar.bucket(closed) - 1).min(last),
                        (_, None) => continue,
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
            _ => {
                let key = move |d: &Deal| match group_by {
                    GroupBy::Region => d.region,
                    GroupBy::Owner => d.owner,
                    _ => d.sector,
                };
                let now = accumulate_window(matching(), window, key);
                let before = accumulate_window(matching(), previous_window, key);
                let mut keys: Vec<Option<NameId>> = now.keys().chain(before.keys()).copied().collect();
                keys.sort_by_key(|k| (k.is_none(), k.map(|k| snapshot.names.name(k).to_owned())));
                keys.dedup();
                let empty = Acc::default();
                keys.into_iter()
                    .map(|k| {
                        let (n, b) = (now.get(&k).unwrap_or(&empty), before.get(&k).unwrap_or(&empty));
                        group(snapshot, snapshot.label(k), window, n, b)
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

    #[test]
    fn buckets_place_instants_like_the_calendar() {
        let start = 1_700_000_000_000_i64;
        for calendar in [Calendar::Month, Calendar::Quarter] {
            let window = Window {
                start: start + 40 * DAY_MS,
                end: start + 250 * DAY_MS + 1,
            };
            let buckets = Buckets::new(calendar, window);
            let range = buckets.base - 1..=buckets.last + 1;
            let mut t = start - 200 * DAY_MS;
            while t < start + 500 * DAY_MS {
                // Each bound itself and the instants around it.
                for t in [t, t - 1, t + 1] {
                    let exact = calendar.bucket(t).clamp(*range.start(), *range.end());
                    assert_eq!(buckets.of(t), exact, "{calendar:?} {t}");
                }
                t += DAY_MS / 3 + 1;
            }
            for &b in &buckets.bounds {
                assert_eq!(buckets.of(b), calendar.bucket(b));
                assert_eq!(
                    buckets.of(b - 1),
                    calendar.bucket(b - 1).clamp(*range.start(), *range.end())
                );
            }
            assert_eq!(
                buckets.of(i64::MAX),
                calendar.bucket(i64::MAX).clamp(*range.start(), *range.end())
            );
        }
    }

    #[test]
    fn one_pass_equals_a_pass_per_window_and_grouping() {
        let s = sample(5_000, 5);
        let start = 1_700_000_000_000_i64;
        let windows = [
            Window {
                start: start + 200 * DAY_MS,
                end: start + 290 * DAY_MS,
            },
            Window {
                start: start + 30 * DAY_MS + 5,
                end: start + 700 * DAY_MS,
            },
            Window {
                start: start - 100 * DAY_MS,
                end: start - 10 * DAY_MS,
            },
        ];
        let filters = [
            FilterNames::default(),
            FilterNames {
                region: Some("EMEA"),
                owner: Some("bob"),
                ..FilterNames::default()
            },
            FilterNames {
                sector: Some("unknown sector"),
                ..FilterNames::default()
            },
        ];
        let by = [
            GroupBy::Month,
            GroupBy::Quarter,
            GroupBy::Region,
            GroupBy::Owner,
            GroupBy::Sector,
        ];
        for window in windows {
            for names in &filters {
                let filter = DealFilter::new(&s, names);
                for group_by in by {
                    let expected = recomputed(&s, window, group_by, &filter);
                    assert_eq!(
                        pipeline(&s, window, group_by, &filter),
                        expected,
                        "{window:?} {group_by:?}"
                    );
                }
            }
        }
        let all = pipeline(&s, windows[1], GroupBy::Owner, &DealFilter::default());
        assert!(all.total.current.distinct_accounts > 10 && all.groups.len() > 5);
    }
}
