//! `GET /v1/insights/competitors`: per competitor (the value of the configured competitor field)
//! and for the deals without one, the open, won and lost deals of a period, the win rate with its
//! 95 % Wilson interval, its trend over the last [`TREND_PERIODS`] periods, the deals lost to the
//! competitor (by loss reason), and where we win and lose against it: the win rate by sector and
//! by deal size band ([`SIZE_BANDS`]). Competitors with fewer than [`MIN_DEALS`] deals in the
//! period share one `(other)` row.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use utoipa::ToSchema;

use super::breakdown::{wilson, AttributeColumn, Field, MIN_DEALS, OTHER_LABEL};
use super::filter::DealFilter;
use super::period::{rfc3339, Window};
use super::snapshot::{ByName, Deal, NameId, Names, Snapshot, NONE_LABEL};
use super::stats::ratio;
use super::table::{cell, opt, Table};
use crate::domain::Status;

/// Periods in each trend: the window and the ones of equal length just before it.
pub const TREND_PERIODS: i64 = 4;

/// Deal size bands on the amount as recorded (whatever its currency): `(label, lower bound
/// inclusive, upper bound exclusive)`. Deals without an amount are in [`NONE_LABEL`].
pub const SIZE_BANDS: [(&str, f64, f64); 4] = [
    ("under 10k", 0.0, 10_000.0),
    ("10k-50k", 10_000.0, 50_000.0),
    ("50k-250k", 50_000.0, 250_000.0),
    ("250k and more", 250_000.0, f64::INFINITY),
];

/// The loss reason that means "lost to a competitor" when none is configured.
pub const DEFAULT_LOST_TO_COMPETITOR: &str = "competitor";

/// The band label of an amount (`None`: no amount; negative amounts are in the first band).
pub fn size_band(amount: Option<f64>) -> Option<&'static str> {
    let a = amount?;
    SIZE_BANDS
        .iter()
        .find(|(_, _, upper)| a < *upper)
        .map(|(label, _, _)| *label)
}

/// Where a field's values come from: a core field of the snapshot, or an attribute column read
/// for it (`None`: no deal has the attribute).
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    /// A core field (`sector`, `owner`…), by name.
    Core(&'static str),
    /// A custom attribute's column.
    Attribute(Option<&'a AttributeColumn>),
}

impl<'a> Values<'a> {
    /// The values of `field` (`column`: the attribute's column when `field` is an attribute).
    pub fn of(field: &Field, column: Option<&'a AttributeColumn>) -> Self {
        match field {
            Field::Core(name) => Values::Core(name),
            Field::Attribute(_) => Values::Attribute(column),
        }
    }

    /// The value of deal `i`, as an id of [`Values::names`].
    fn id(&self, i: usize, d: &Deal) -> Option<NameId> {
        match self {
            Values::Core(name) => match *name {
                "sector" => d.sector,
                "region" => d.region,
                "owner" => d.owner,
                "contact_role" => d.contact_role,
                "account" => d.account,
                "currency" => Some(d.currency),
                _ => None,
            },
            Values::Attribute(column) => column.and_then(|c| c.values.get(i).copied().flatten()),
        }
    }

    /// The names the ids of [`Values::id`] index: the snapshot's, or the column's.
    fn names<'s>(&self, snapshot: &'s Snapshot) -> &'s Names
    where
        'a: 's,
    {
        match self {
            Values::Core(_) => &snapshot.names,
            Values::Attribute(Some(column)) => &column.names,
            Values::Attribute(None) => &snapshot.names,
        }
    }
}

/// What the insight reads: the competitor field, and optionally the loss reason field.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// The competitor field as configured (`attr.competitor`).
    pub competitor_field: String,
    /// Its values.
    pub competitors: Values<'a>,
    /// The loss reason field and its values, when configured.
    pub loss_reasons: Option<(String, Values<'a>)>,
    /// The loss reason meaning "lost to a competitor" (compared ignoring case).
    pub lost_to_competitor: String,
}

/// Won and lost deals and the win rate with its 95 % Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WinRate {
    /// Sector, size band or period start, depending on the list.
    pub value: String,
    /// Won deals.
    pub won_deals: u64,
    /// Lost deals.
    pub lost_deals: u64,
    /// won / (won + lost); null when none closed.
    pub win_rate: Option<f64>,
    /// Lower bound of the 95 % Wilson interval; null when none closed.
    pub win_rate_low: Option<f64>,
    /// Upper bound of the 95 % Wilson interval; null when none closed.
    pub win_rate_high: Option<f64>,
}

impl WinRate {
    fn new(value: String, won: u64, lost: u64) -> Self {
        let interval = wilson(won, won + lost);
        WinRate {
            value,
            won_deals: won,
            lost_deals: lost,
            win_rate: ratio(won, won + lost),
            win_rate_low: interval.map(|i| i.0),
            win_rate_high: interval.map(|i| i.1),
        }
    }
}

/// One period of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrendPoint {
    /// Start (RFC 3339).
    pub from: String,
    /// End, exclusive (RFC 3339).
    pub to: String,
    /// Won deals closed in the period.
    pub won_deals: u64,
    /// Lost deals closed in the period.
    pub lost_deals: u64,
    /// won / (won + lost); null when none closed.
    pub win_rate: Option<f64>,
}

/// One competitor, `(none)` (no competitor recorded) or `(other)` (the rare ones together).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompetitorRow {
    /// The competitor.
    pub competitor: String,
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
    /// The last periods of the window's length, oldest first (the window is the last).
    pub trend: Vec<TrendPoint>,
    /// Lost deals whose loss reason says a competitor took them; null when no loss reason
    /// field is configured.
    pub lost_to_competitor: Option<u64>,
    /// Lost deals in the period per loss reason (`(none)`: no reason recorded); empty when no
    /// loss reason field is configured.
    pub loss_reasons: BTreeMap<String, u64>,
    /// Win rate per sector (`(none)`: no sector), sectors with a closed deal only, most closed
    /// deals first.
    pub by_sector: Vec<WinRate>,
    /// Win rate per size band, in band order, then `(none)` (no amount); bands with a closed
    /// deal only.
    pub by_size: Vec<WinRate>,
}

/// A size band's bounds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SizeBand {
    /// The label used in `by_size`.
    pub band: String,
    /// Lowest amount of the band (inclusive).
    pub from_amount: f64,
    /// Amount the band ends before (exclusive); null for the last band.
    pub to_amount: Option<f64>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompetitorsReport {
    /// The competitor field (`attr.competitor`).
    pub competitor_field: String,
    /// The loss reason field, when configured.
    pub loss_reason_field: Option<String>,
    /// The loss reason counted in `lost_to_competitor`.
    pub lost_to_competitor_reason: String,
    /// Period start (inclusive, RFC 3339).
    pub from: String,
    /// Period end (exclusive, RFC 3339).
    pub to: String,
    /// Competitors with fewer deals than this in the period are in the `(other)` row.
    pub other_threshold: u64,
    /// How many competitors the `(other)` row holds.
    pub other_values: u64,
    /// The size bands of `by_size`.
    pub size_bands: Vec<SizeBand>,
    /// Every deal of the period together (whatever its competitor).
    pub overall: WinRate,
    /// The competitors, by deals in the period (most first), then name; `(none)` and `(other)`
    /// last.
    pub rows: Vec<CompetitorRow>,
}

/// Counts of one row.
#[derive(Debug, Default)]
struct Acc {
    open: u64,
    won: u64,
    lost: u64,
    trend: [(u64, u64); TREND_PERIODS as usize],
    lost_to: u64,
    reasons: BTreeMap<Option<NameId>, u64>,
    sectors: HashMap<Option<NameId>, (u64, u64)>,
    sizes: BTreeMap<usize, (u64, u64)>,
}

impl Acc {
    fn deals(&self) -> u64 {
        self.open + self.won + self.lost
    }

    fn merge(&mut self, other: Acc) {
        self.open += other.open;
        self.won += other.won;
        self.lost += other.lost;
        for (mine, theirs) in self.trend.iter_mut().zip(other.trend) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        self.lost_to += other.lost_to;
        for (k, n) in other.reasons {
            *self.reasons.entry(k).or_default() += n;
        }
        for (k, (w, l)) in other.sectors {
            let mine = self.sectors.entry(k).or_default();
            mine.0 += w;
            mine.1 += l;
        }
        for (k, (w, l)) in other.sizes {
            let mine = self.sizes.entry(k).or_default();
            mine.0 += w;
            mine.1 += l;
        }
    }
}

/// Index of the size band of an amount in `SIZE_BANDS`, or `SIZE_BANDS.len()` for no amount.
fn band_index(amount: Option<f64>) -> usize {
    size_band(amount)
        .and_then(|label| SIZE_BANDS.iter().position(|b| b.0 == label))
        .unwrap_or(SIZE_BANDS.len())
}

/// Computes the report over the deals of `window` that pass `filter`.
pub fn competitors(
    snapshot: &Snapshot,
    setup: &Setup<'_>,
    window: Window,
    filter: &DealFilter,
) -> CompetitorsReport {
    let periods: Vec<Window> = (0..TREND_PERIODS).rev().map(|k| window.shifted_back(k)).collect();
    let earliest = periods[0].start;
    let competitor_names = setup.competitors.names(snapshot);
    let mut groups: ByName<Acc> = ByName::new(competitor_names);
    // Which loss reasons say "competitor", decided once per reason rather than per deal.
    let lost_to = setup.lost_to_competitor.to_lowercase();
    let reason_names = setup.loss_reasons.as_ref().map(|(_, v)| v.names(snapshot));
    let lost_to_ids: Vec<bool> = reason_names.map_or_else(Vec::new, |names| {
        (0..names.len())
            .map(|id| names.name(id as NameId).to_lowercase() == lost_to)
            .collect()
    });
    let mut overall = (0u64, 0u64);
    for (i, d) in snapshot.deals.iter().enumerate() {
        if !filter.matches(d) {
            continue;
        }
        let open = d.open_at(window.end);
        let period = match (d.status.is_closed(), d.closed_at) {
            (true, Some(t)) if t >= earliest && t < window.end => periods.iter().position(|w| w.contains(t)),
            _ => None,
        };
        if !open && period.is_none() {
            continue;
        }
        let acc = groups.entry(setup.competitors.id(i, d), Acc::default);
        if open {
            acc.open += 1;
        }
        let Some(period) = period else { continue };
        let won = d.status == Status::Won;
        let point = &mut acc.trend[period];
        if won {
            point.0 += 1;
        } else {
            point.1 += 1;
        }
        // The window itself is the last trend period.
        if period + 1 != TREND_PERIODS as usize {
            continue;
        }
        let tally = |pair: &mut (u64, u64)| {
            if won {
                pair.0 += 1;
            } else {
                pair.1 += 1;
            }
        };
        tally(acc.sectors.entry(d.sector).or_default());
        tally(acc.sizes.entry(band_index(d.amount)).or_default());
        if won {
            acc.won += 1;
            overall.0 += 1;
            continue;
        }
        acc.lost += 1;
        overall.1 += 1;
        if let Some((_, reasons)) = &setup.loss_reasons {
            let reason = reasons.id(i, d);
            if reason.is_some_and(|r| lost_to_ids.get(r as usize) == Some(&true)) {
                acc.lost_to += 1;
            }
            *acc.reasons.entry(reason).or_default() += 1;
        }
    }
    let with_reasons = setup.loss_reasons.is_some();
    let row = |name: String, acc: Acc| {
        let interval = wilson(acc.won, acc.won + acc.lost);
        let mut by_sector: Vec<WinRate> = acc
            .sectors
            .into_iter()
            .map(|(k, (w, l))| WinRate::new(snapshot.label(k), w, l))
            .collect();
        by_sector.sort_by(|a, b| {
            let closed = |r: &WinRate| r.won_deals + r.lost_deals;
            closed(b).cmp(&closed(a)).then_with(|| a.value.cmp(&b.value))
        });
        CompetitorRow {
            competitor: name,
            open_deals: acc.open,
            won_deals: acc.won,
            lost_deals: acc.lost,
            win_rate: ratio(acc.won, acc.won + acc.lost),
            win_rate_low: interval.map(|i| i.0),
            win_rate_high: interval.map(|i| i.1),
            trend: acc
                .trend
                .iter()
                .zip(&periods)
                .map(|((w, l), p)| TrendPoint {
                    from: rfc3339(p.start),
                    to: rfc3339(p.end),
                    won_deals: *w,
                    lost_deals: *l,
                    win_rate: ratio(*w, w + l),
                })
                .collect(),
            lost_to_competitor: with_reasons.then_some(acc.lost_to),
            loss_reasons: acc
                .reasons
                .into_iter()
                .map(|(k, n)| {
                    let name = match (k, reason_names) {
                        (Some(id), Some(names)) => names.name(id).to_owned(),
                        _ => NONE_LABEL.to_owned(),
                    };
                    (name, n)
                })
                .collect(),
            by_sector,
            by_size: acc
                .sizes
                .into_iter()
                .map(|(b, (w, l))| {
                    let label = SIZE_BANDS.get(b).map_or(NONE_LABEL, |band| band.0);
                    WinRate::new(label.to_owned(), w, l)
                })
                .collect(),
        }
    };
    let mut rows = Vec::new();
    let mut none = None;
    let mut other = Acc::default();
    let mut other_values = 0u64;
    for (key, acc) in groups.into_entries() {
        match key {
            None => none = Some(acc),
            Some(_) if acc.deals() < MIN_DEALS => {
                other.merge(acc);
                other_values += 1;
            }
            Some(id) => rows.push(row(competitor_names.name(id).to_owned(), acc)),
        }
    }
    rows.sort_by(|a, b| {
        let deals = |r: &CompetitorRow| r.open_deals + r.won_deals + r.lost_deals;
        deals(b)
            .cmp(&deals(a))
            .then_with(|| a.competitor.cmp(&b.competitor))
    });
    if let Some(acc) = none {
        rows.push(row(NONE_LABEL.to_owned(), acc));
    }
    if other_values > 0 {
        rows.push(row(OTHER_LABEL.to_owned(), other));
    }
    CompetitorsReport {
        competitor_field: setup.competitor_field.clone(),
        loss_reason_field: setup.loss_reasons.as_ref().map(|(f, _)| f.clone()),
        lost_to_competitor_reason: setup.lost_to_competitor.clone(),
        from: rfc3339(window.start),
        to: rfc3339(window.end),
        other_threshold: MIN_DEALS,
        other_values,
        size_bands: SIZE_BANDS
            .iter()
            .map(|(band, lower, upper)| SizeBand {
                band: (*band).to_owned(),
                from_amount: *lower,
                to_amount: upper.is_finite().then_some(*upper),
            })
            .collect(),
        overall: WinRate::new(String::new(), overall.0, overall.1),
        rows,
    }
}

/// CSV in long form: per competitor, one `all` line with its totals, then one line per trend
/// `period` (value: its start), `sector`, `size` band and `loss_reason` (lost deals only).
pub fn table(report: &CompetitorsReport) -> Table {
    let mut t = Table::new([
        "competitor",
        "breakdown",
        "value",
        "open_deals",
        "won_deals",
        "lost_deals",
        "win_rate",
        "win_rate_low",
        "win_rate_high",
        "lost_to_competitor",
    ]);
    for r in &report.rows {
        t.push(vec![
            r.competitor.clone(),
            "all".into(),
            String::new(),
            cell(r.open_deals),
            cell(r.won_deals),
            cell(r.lost_deals),
            opt(r.win_rate),
            opt(r.win_rate_low),
            opt(r.win_rate_high),
            opt(r.lost_to_competitor),
        ]);
        for p in &r.trend {
            t.push(vec![
                r.competitor.clone(),
                "period".into(),
                p.from.clone(),
                String::new(),
                cell(p.won_deals),
                cell(p.lost_deals),
                opt(p.win_rate),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for (kind, list) in [("sector", &r.by_sector), ("size", &r.by_size)] {
            for s in list {
                t.push(vec![
                    r.competitor.clone(),
                    kind.into(),
                    s.value.clone(),
                    String::new(),
                    cell(s.won_deals),
                    cell(s.lost_deals),
                    opt(s.win_rate),
                    opt(s.win_rate_low),
                    opt(s.win_rate_high),
                    String::new(),
                ]);
            }
        }
        for (reason, n) in &r.loss_reasons {
            t.push(vec![
                r.competitor.clone(),
                "loss_reason".into(),
                reason.clone(),
                String::new(),
                String::new(),
                cell(n),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::snapshot::{sample, DAY_MS};

    const START: i64 = 1_700_000_000_000;

    #[test]
    fn size_bands_cover_every_amount_once() {
        assert_eq!(size_band(None), None);
        assert_eq!(size_band(Some(-5.0)), Some("under 10k"));
        assert_eq!(size_band(Some(9_999.99)), Some("under 10k"));
        assert_eq!(size_band(Some(10_000.0)), Some("10k-50k"));
        assert_eq!(size_band(Some(50_000.0)), Some("50k-250k"));
        assert_eq!(size_band(Some(250_000.0)), Some("250k and more"));
        assert_eq!(size_band(Some(f64::MAX)), Some("250k and more"));
    }

    /// With a core field as the "competitor" (region in the sample), rows count like plain
    /// passes, the trend's last period is the window, and rare values fall into `(other)`.
    #[test]
    fn counts_trend_and_segments_match_plain_passes() {
        let s = sample(4_000, 9);
        let window = Window {
            start: START + 300 * DAY_MS,
            end: START + 400 * DAY_MS,
        };
        let setup = Setup {
            competitor_field: "region".into(),
            competitors: Values::Core("region"),
            loss_reasons: Some(("owner".into(), Values::Core("owner"))),
            lost_to_competitor: "ANN".into(),
        };
        let report = competitors(&s, &setup, window, &DealFilter::default());
        assert_eq!(
            report.rows.last().map(|r| r.competitor.as_str()),
            Some(NONE_LABEL)
        );
        for r in &report.rows {
            let region = (r.competitor != NONE_LABEL).then_some(r.competitor.as_str());
            let of = |d: &&Deal| d.region.map(|i| s.names.name(i)) == region;
            let closed: Vec<&Deal> = s
                .deals
                .iter()
                .filter(of)
                .filter(|d| d.closed_within(window.start, window.end))
                .collect();
            let won = closed.iter().filter(|d| d.status == Status::Won).count() as u64;
            assert_eq!((r.won_deals, r.lost_deals), (won, closed.len() as u64 - won));
            let last = r.trend.last().unwrap();
            assert_eq!((last.won_deals, last.lost_deals), (r.won_deals, r.lost_deals));
            let first = window.shifted_back(3);
            let early = s
                .deals
                .iter()
                .filter(of)
                .filter(|d| d.closed_within(first.start, first.end))
                .count() as u64;
            assert_eq!(r.trend[0].won_deals + r.trend[0].lost_deals, early);
            let by_sector: u64 = r.by_sector.iter().map(|x| x.won_deals + x.lost_deals).sum();
            let by_size: u64 = r.by_size.iter().map(|x| x.won_deals + x.lost_deals).sum();
            assert_eq!((by_sector, by_size), (closed.len() as u64, closed.len() as u64));
            let ann = closed
                .iter()
                .filter(|d| d.status == Status::Lost && d.owner.map(|o| s.names.name(o)) == Some("ann"))
                .count() as u64;
            assert_eq!(r.lost_to_competitor, Some(ann), "compared ignoring case");
            assert_eq!(r.loss_reasons.values().sum::<u64>(), r.lost_deals);
        }
        let csv = table(&report).to_csv().unwrap();
        assert!(csv.starts_with("competitor,breakdown,value,"), "{csv}");
    }

    #[test]
    fn without_a_loss_reason_field_lost_to_is_null_and_rare_values_are_other() {
        let s = sample(300, 4);
        let pairs: Vec<(i64, String)> = s
            .deals
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id, if i % 100 == 0 { "Rare" } else { "Big" }.to_owned()))
            .collect();
        let column = AttributeColumn::aligned(&s, pairs);
        let setup = Setup {
            competitor_field: "attr.competitor".into(),
            competitors: Values::Attribute(Some(&column)),
            loss_reasons: None,
            lost_to_competitor: DEFAULT_LOST_TO_COMPETITOR.into(),
        };
        let window = Window {
            start: 0,
            end: START + 2_000 * DAY_MS,
        };
        let report = competitors(&s, &setup, window, &DealFilter::default());
        let names: Vec<&str> = report.rows.iter().map(|r| r.competitor.as_str()).collect();
        assert_eq!(names, ["Big", OTHER_LABEL]);
        assert_eq!(report.other_values, 1);
        assert!(report
            .rows
            .iter()
            .all(|r| r.lost_to_competitor.is_none() && r.loss_reasons.is_empty()));
        let total: u64 = report.rows.iter().map(|r| r.won_deals + r.lost_deals).sum();
        assert_eq!(total, report.overall.won_deals + report.overall.lost_deals);
    }
}
