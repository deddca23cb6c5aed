//! `GET /v1/insights/customers`: acquisition cost, customer value, contract length, churn and
//! net revenue retention of a period. A customer is an account with a won deal. Every
//! definition and edge case is in docs/insights.md; a figure that cannot be computed is null
//! with a reason code, never 0.

use std::collections::BTreeMap;

use chrono::{DateTime, Months};
use serde::Serialize;
use utoipa::ToSchema;

use super::acquisition::spend_within;
use super::breakdown::AttributeColumn;
use super::period::{rfc3339, Window};
use super::snapshot::{ByName, NameId, Snapshot, DAY_MS};
use super::table::{cell, opt, Table};
use crate::domain::{parse_timestamp, to_epoch_ms, Status};
use crate::store::acquisition_costs::AcquisitionCost;

/// A renewal counts for a contract when it is won from this long before the contract's end…
pub const RENEWAL_LEAD_DAYS: i64 = 180;
/// …to this long after it. A contract that ended less than this long ago without a renewal is
/// still pending, not churned.
pub const RENEWAL_GRACE_DAYS: i64 = 90;
/// Longest contract length read from the months field (100 years).
pub const MAX_CONTRACT_MONTHS: u32 = 1_200;
/// Days per average month, to express a start/end contract in months.
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// Reason codes of null figures.
pub mod reason {
    /// No acquisition spend recorded for any period overlapping the window.
    pub const NO_SPEND: &str = "no_spend";
    /// No customer won its first deal in the window.
    pub const NO_NEW_CUSTOMERS: &str = "no_new_customers";
    /// No account had a won deal closed before the window's end.
    pub const NO_CUSTOMERS: &str = "no_customers";
    /// Neither `contract_end_field` nor `contract_months_field` is configured.
    pub const CONTRACT_FIELDS_UNSET: &str = "contract_fields_unset";
    /// `deal_type_field` is not configured, so renewals and upsells cannot be told apart.
    pub const DEAL_TYPE_FIELD_UNSET: &str = "deal_type_field_unset";
    /// No contract started in the window.
    pub const NO_CONTRACTS_STARTED: &str = "no_contracts_started";
    /// No customer had a contract ending in the window whose renewal is decided.
    pub const NO_CONTRACTS_ENDING: &str = "no_contracts_ending";
    /// The contracts ending in the window carry no amount.
    pub const NO_AMOUNTS: &str = "no_amounts";
}

/// The attribute columns the insight reads, as configured (`None`: field unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct Columns<'a> {
    /// `deal_type_field`.
    pub deal_type: Option<&'a AttributeColumn>,
    /// `contract_start_field`.
    pub contract_start: Option<&'a AttributeColumn>,
    /// `contract_end_field`.
    pub contract_end: Option<&'a AttributeColumn>,
    /// `contract_months_field`.
    pub contract_months: Option<&'a AttributeColumn>,
}

/// A money figure per currency, or null with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MoneyFigure {
    /// Per currency; null when it cannot be computed.
    pub value: Option<BTreeMap<String, f64>>,
    /// Why it is null (see docs/insights.md).
    pub reason: Option<String>,
}

/// A number, or null with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NumberFigure {
    /// The number; null when it cannot be computed.
    pub value: Option<f64>,
    /// Why it is null (see docs/insights.md).
    pub reason: Option<String>,
}

fn money(value: BTreeMap<String, f64>, missing: Option<&str>) -> MoneyFigure {
    match missing {
        Some(r) => MoneyFigure {
            value: None,
            reason: Some(r.to_owned()),
        },
        None => MoneyFigure {
            value: Some(value),
            reason: None,
        },
    }
}

fn number(value: Option<f64>, missing: &str) -> NumberFigure {
    NumberFigure {
        reason: value.is_none().then(|| missing.to_owned()),
        value,
    }
}

/// Acquisition in one region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RegionAcquisition {
    /// The region.
    pub region: String,
    /// Spend recorded for the region, per currency.
    pub spend: BTreeMap<String, f64>,
    /// Customers whose first won deal (in the window) is in the region.
    pub new_customers: u64,
    /// spend / new customers.
    pub avg_acquisition_cost: MoneyFigure,
}

/// Spend of one channel (the deals carry no channel, so no cost per customer).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChannelSpend {
    /// The channel.
    pub channel: String,
    /// Spend per currency.
    pub spend: BTreeMap<String, f64>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomersReport {
    /// Window start (RFC 3339).
    pub from: String,
    /// Window end, exclusive (RFC 3339).
    pub to: String,
    /// Accounts with a won deal closed before `to`.
    pub customers: u64,
    /// Accounts whose first won deal closed in the window.
    pub new_customers: u64,
    /// Acquisition spend of the window per currency (periods overlapping it pro rata).
    pub acquisition_spend: BTreeMap<String, f64>,
    /// spend / new customers, per currency.
    pub avg_acquisition_cost: MoneyFigure,
    /// The same per region, for spend recorded per region.
    pub acquisition_by_region: Vec<RegionAcquisition>,
    /// Spend recorded per channel.
    pub spend_by_channel: Vec<ChannelSpend>,
    /// Lifetime (to `to`) won revenue per customer, per currency.
    pub avg_customer_value: MoneyFigure,
    /// Contracts (won new business or renewals with a known length) starting in the window.
    pub contracts_started: u64,
    /// Their mean length in months.
    pub avg_contract_months: NumberFigure,
    /// Customers with a contract ending in the window whose renewal is decided.
    pub customers_with_contract_ending: u64,
    /// Among them, those that won a renewal.
    pub renewed_customers: u64,
    /// Among them, those that did not: churned.
    pub churned_customers: u64,
    /// Customers with a contract ending in the window, no renewal yet, and the grace period not
    /// over: left out of the churn rate and retention.
    pub pending_customers: u64,
    /// churned / customers with a contract ending.
    pub churn_rate: NumberFigure,
    /// Amounts of the contracts ending (the retention base), per currency.
    pub retention_base: BTreeMap<String, f64>,
    /// Renewal and upsell amounts won by the same customers, per currency.
    pub retained_revenue: BTreeMap<String, f64>,
    /// retained / base, per currency.
    pub net_revenue_retention: MoneyFigure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// New business (also any value other than renewal or upsell, and a missing one).
    New,
    Renewal,
    Upsell,
}

fn kind_of(text: &str) -> Kind {
    match text.trim().to_ascii_lowercase().as_str() {
        "renewal" => Kind::Renewal,
        "upsell" => Kind::Upsell,
        _ => Kind::New,
    }
}

/// Per name of a column, its parsed value (each distinct text parsed once).
fn parsed<T>(column: Option<&AttributeColumn>, parse: impl Fn(&str) -> Option<T>) -> Vec<Option<T>> {
    column.map_or_else(Vec::new, |c| {
        (0..c.names.len())
            .map(|i| parse(c.names.name(i as NameId)))
            .collect()
    })
}

fn value_at<T: Copy>(column: Option<&AttributeColumn>, parsed: &[Option<T>], at: usize) -> Option<T> {
    let id = column?.values.get(at).copied().flatten()?;
    parsed.get(id as usize).copied().flatten()
}

/// A won deal that starts a contract.
#[derive(Debug, Clone, Copy)]
struct Contract {
    start: i64,
    end: i64,
    months: f64,
    amount: Option<f64>,
    currency: NameId,
}

/// A won renewal or upsell.
#[derive(Debug, Clone, Copy)]
struct Follow {
    closed: i64,
    amount: Option<f64>,
    currency: NameId,
    kind: Kind,
}

#[derive(Debug, Default)]
struct Customer {
    /// First won deal: (close, region).
    first_win: Option<(i64, Option<NameId>)>,
    /// Won deals with an amount: (close, currency, amount).
    wins: Vec<(i64, NameId, f64)>,
    contracts: Vec<Contract>,
    follows: Vec<Follow>,
}

fn add(map: &mut BTreeMap<String, f64>, key: &str, amount: f64) {
    *map.entry(key.to_owned()).or_insert(0.0) += amount;
}

/// What every window's report reads, built once per snapshot and configuration: each
/// customer's won deals, contracts, renewals and upsells (a pass over every deal); a report then
/// walks the customers only.
#[derive(Debug)]
pub struct Basis {
    customers: Vec<Customer>,
    contracts_known: bool,
    deal_type_known: bool,
}

impl Basis {
    /// Reads every won deal of `snapshot` with `columns`.
    pub fn new(snapshot: &Snapshot, columns: Columns<'_>) -> Basis {
        let kinds = parsed(columns.deal_type, |t| Some(kind_of(t)));
        let date = |t: &str| parse_timestamp(t).ok().map(to_epoch_ms);
        let starts = parsed(columns.contract_start, date);
        let ends = parsed(columns.contract_end, date);
        let months = parsed(columns.contract_months, |t| {
            let m: f64 = t.trim().parse().ok()?;
            (m.fract() == 0.0 && m >= 1.0 && m <= f64::from(MAX_CONTRACT_MONTHS)).then_some(m as u32)
        });
        let mut by_account: ByName<Customer> = ByName::new(&snapshot.names);
        for (at, d) in snapshot.deals.iter().enumerate() {
            let (Some(account), Status::Won, Some(closed)) = (d.account, d.status, d.closed_at) else {
                continue;
            };
            let c = by_account.entry(Some(account), Customer::default);
            if c.first_win.is_none_or(|(first, _)| closed < first) {
                c.first_win = Some((closed, d.region));
            }
            if let Some(a) = d.amount {
                c.wins.push((closed, d.currency, a));
            }
            let kind = value_at(columns.deal_type, &kinds, at).unwrap_or(Kind::New);
            if kind != Kind::New {
                c.follows.push(Follow {
                    closed,
                    amount: d.amount,
                    currency: d.currency,
                    kind,
                });
            }
            if kind == Kind::Upsell {
                continue;
            }
            let start = value_at(columns.contract_start, &starts, at).unwrap_or(closed);
            let end_given = value_at(columns.contract_end, &ends, at);
            let months_given = value_at(columns.contract_months, &months, at);
            let end = end_given.or_else(|| {
                let start = DateTime::from_timestamp_millis(start)?;
                start
                    .checked_add_months(Months::new(months_given?))
                    .map(to_epoch_ms)
            });
            let Some(end) = end.filter(|e| *e > start) else {
                continue;
            };
            let months = match months_given {
                Some(m) if end_given.is_none() => f64::from(m),
                _ => (end - start) as f64 / (DAYS_PER_MONTH * DAY_MS as f64),
            };
            c.contracts.push(Contract {
                start,
                end,
                months,
                amount: d.amount,
                currency: d.currency,
            });
        }
        Basis {
            customers: by_account.into_entries().map(|(_, c)| c).collect(),
            contracts_known: columns.contract_end.is_some() || columns.contract_months.is_some(),
            deal_type_known: columns.deal_type.is_some(),
        }
    }
}

/// Computes the report for `window` from scratch (with a basis built for this call only).
pub fn customers(
    snapshot: &Snapshot,
    columns: Columns<'_>,
    costs: &[AcquisitionCost],
    window: Window,
    now: i64,
) -> CustomersReport {
    report(snapshot, &Basis::new(snapshot, columns), costs, window, now)
}

/// Computes the report for `window` on a `basis` of `snapshot`; `now` decides which renewals are
/// still pending.
pub fn report(
    snapshot: &Snapshot,
    basis: &Basis,
    costs: &[AcquisitionCost],
    window: Window,
    now: i64,
) -> CustomersReport {
    let name = |id: NameId| snapshot.names.name(id);
    let lead = RENEWAL_LEAD_DAYS * DAY_MS;
    let grace = RENEWAL_GRACE_DAYS * DAY_MS;
    let mut r = Tally::default();
    for c in &basis.customers {
        let Some((first_close, first_region)) = c.first_win else {
            continue;
        };
        if first_close < window.end {
            r.customers += 1;
            let mut revenue: BTreeMap<NameId, f64> = BTreeMap::new();
            for (closed, currency, amount) in &c.wins {
                if *closed < window.end {
                    *revenue.entry(*currency).or_insert(0.0) += amount;
                }
            }
            for (cur, v) in revenue {
                let e = r.value.entry(name(cur).to_owned()).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        if window.contains(first_close) {
            r.new_customers += 1;
            if let Some(region) = first_region {
                *r.new_by_region.entry(name(region).to_owned()).or_insert(0) += 1;
            }
        }
        for k in c.contracts.iter().filter(|k| window.contains(k.start)) {
            r.contracts_started += 1;
            r.months_sum += k.months;
        }
        let ending: Vec<&Contract> = c.contracts.iter().filter(|k| window.contains(k.end)).collect();
        let (Some(first_end), Some(last_end), Some(first_start)) = (
            ending.iter().map(|k| k.end).min(),
            ending.iter().map(|k| k.end).max(),
            ending.iter().map(|k| k.start).min(),
        ) else {
            continue;
        };
        let renewals = c.follows.iter().filter(|f| {
            f.kind == Kind::Renewal && f.closed >= first_end - lead && f.closed <= last_end + grace
        });
        let renewed = renewals.clone().next().is_some();
        if !renewed && last_end + grace > now {
            r.pending += 1;
            continue;
        }
        if renewed {
            r.renewed += 1;
        } else {
            r.churned += 1;
        }
        for k in &ending {
            if let Some(a) = k.amount {
                add(&mut r.base, name(k.currency), a);
            }
        }
        let upsells = c
            .follows
            .iter()
            .filter(|f| f.kind == Kind::Upsell && f.closed >= first_start && f.closed <= last_end);
        for f in renewals.chain(upsells) {
            if let Some(a) = f.amount {
                add(&mut r.retained, name(f.currency), a);
            }
        }
    }
    r.report(costs, window, basis.deal_type_known, basis.contracts_known)
}

#[derive(Debug, Default)]
struct Tally {
    customers: u64,
    /// Per currency: revenue sum and customers with revenue in it.
    value: BTreeMap<String, (f64, u64)>,
    new_customers: u64,
    new_by_region: BTreeMap<String, u64>,
    contracts_started: u64,
    months_sum: f64,
    renewed: u64,
    churned: u64,
    pending: u64,
    base: BTreeMap<String, f64>,
    retained: BTreeMap<String, f64>,
}

impl Tally {
    fn report(
        self,
        costs: &[AcquisitionCost],
        window: Window,
        deal_type_known: bool,
        contracts_known: bool,
    ) -> CustomersReport {
        let spend = spend_within(costs, window);
        let per_customer = |spend: &BTreeMap<String, f64>, customers: u64| {
            let missing = if spend.is_empty() {
                Some(reason::NO_SPEND)
            } else if customers == 0 {
                Some(reason::NO_NEW_CUSTOMERS)
            } else {
                None
            };
            let value = spend
                .iter()
                .map(|(c, s)| (c.clone(), s / customers as f64))
                .collect();
            money(value, missing)
        };
        let mut regions: BTreeMap<&str, Vec<&AcquisitionCost>> = BTreeMap::new();
        let mut channels: BTreeMap<&str, Vec<&AcquisitionCost>> = BTreeMap::new();
        for c in costs {
            if let Some(region) = &c.region {
                regions.entry(region).or_default().push(c);
            } else if let Some(channel) = &c.channel {
                channels.entry(channel).or_default().push(c);
            }
        }
        let acquisition_by_region = regions
            .into_iter()
            .map(|(region, rows)| {
                let spend = spend_within(rows, window);
                let new_customers = self.new_by_region.get(region).copied().unwrap_or(0);
                RegionAcquisition {
                    region: region.to_owned(),
                    avg_acquisition_cost: per_customer(&spend, new_customers),
                    spend,
                    new_customers,
                }
            })
            .filter(|r| !r.spend.is_empty())
            .collect();
        let spend_by_channel = channels
            .into_iter()
            .map(|(channel, rows)| ChannelSpend {
                channel: channel.to_owned(),
                spend: spend_within(rows, window),
            })
            .filter(|c| !c.spend.is_empty())
            .collect();
        let avg_customer_value = money(
            self.value
                .iter()
                .map(|(c, (sum, n))| (c.clone(), sum / *n as f64))
                .collect(),
            (self.customers == 0).then_some(reason::NO_CUSTOMERS),
        );
        let avg_contract_months = if !contracts_known {
            number(None, reason::CONTRACT_FIELDS_UNSET)
        } else {
            number(
                (self.contracts_started > 0).then(|| self.months_sum / self.contracts_started as f64),
                reason::NO_CONTRACTS_STARTED,
            )
        };
        let decided = self.renewed + self.churned;
        let renewal_missing = if !contracts_known {
            Some(reason::CONTRACT_FIELDS_UNSET)
        } else if !deal_type_known {
            Some(reason::DEAL_TYPE_FIELD_UNSET)
        } else if decided == 0 {
            Some(reason::NO_CONTRACTS_ENDING)
        } else {
            None
        };
        let churn_rate = match renewal_missing {
            Some(r) => number(None, r),
            None => number(Some(self.churned as f64 / decided as f64), ""),
        };
        let nrr_missing = renewal_missing.or(self.base.is_empty().then_some(reason::NO_AMOUNTS));
        let nrr = self
            .base
            .iter()
            .filter(|(_, b)| **b > 0.0)
            .map(|(c, b)| (c.clone(), self.retained.get(c).copied().unwrap_or(0.0) / b))
            .collect();
        CustomersReport {
            from: rfc3339(window.start),
            to: rfc3339(window.end),
            customers: self.customers,
            new_customers: self.new_customers,
            avg_acquisition_cost: per_customer(&spend, self.new_customers),
            acquisition_spend: spend,
            acquisition_by_region,
            spend_by_channel,
            avg_customer_value,
            contracts_started: self.contracts_started,
            avg_contract_months,
            customers_with_contract_ending: decided,
            renewed_customers: self.renewed,
            churned_customers: self.churned,
            pending_customers: self.pending,
            churn_rate,
            net_revenue_retention: money(nrr, nrr_missing),
            retention_base: self.base,
            retained_revenue: self.retained,
        }
    }
}

/// CSV: one row per figure (and per currency or region), with its value or the reason it has
/// none.
pub fn table(r: &CustomersReport) -> Table {
    let mut t = Table::new(["figure", "region", "currency", "value", "reason"]);
    let push =
        |t: &mut Table, figure: &str, region: &str, currency: &str, value: String, why: Option<&String>| {
            t.push(vec![
                figure.to_owned(),
                region.to_owned(),
                currency.to_owned(),
                value,
                opt(why),
            ]);
        };
    let money_rows = |t: &mut Table, figure: &str, region: &str, f: &MoneyFigure| match &f.value {
        Some(values) => {
            for (c, v) in values {
                push(t, figure, region, c, cell(v), None);
            }
        }
        None => push(t, figure, region, "", String::new(), f.reason.as_ref()),
    };
    push(&mut t, "customers", "", "", cell(r.customers), None);
    push(&mut t, "new_customers", "", "", cell(r.new_customers), None);
    for (c, v) in &r.acquisition_spend {
        push(&mut t, "acquisition_spend", "", c, cell(v), None);
    }
    money_rows(&mut t, "avg_acquisition_cost", "", &r.avg_acquisition_cost);
    for g in &r.acquisition_by_region {
        money_rows(&mut t, "avg_acquisition_cost", &g.region, &g.avg_acquisition_cost);
    }
    money_rows(&mut t, "avg_customer_value", "", &r.avg_customer_value);
    money_rows(&mut t, "net_revenue_retention", "", &r.net_revenue_retention);
    for (figure, f) in [
        ("avg_contract_months", &r.avg_contract_months),
        ("churn_rate", &r.churn_rate),
    ] {
        push(&mut t, figure, "", "", opt(f.value), f.reason.as_ref());
    }
    for (figure, n) in [
        ("contracts_started", r.contracts_started),
        ("customers_with_contract_ending", r.customers_with_contract_ending),
        ("renewed_customers", r.renewed_customers),
        ("churned_customers", r.churned_customers),
        ("pending_customers", r.pending_customers),
    ] {
        push(&mut t, figure, "", "", cell(n), None);
    }
    t
}
