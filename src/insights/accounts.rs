//! `GET /v1/insights/accounts`: customer value per account — deals, won revenue, average won deal
//! value, win rate, first and last deal dates, repeat-customer flag. All time; deals without an
//! account are left out.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::period::rfc3339;
use super::snapshot::{ByName, Snapshot};
use super::stats::{ratio, PerCurrency};
use super::table::{cell, opt, Table};
use crate::domain::Status;

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AccountRow {
    /// Account name.
    pub account: String,
    /// All its deals.
    pub deals: u64,
    /// Open deals.
    pub open_deals: u64,
    /// Won deals.
    pub won_deals: u64,
    /// Lost deals.
    pub lost_deals: u64,
    /// Won revenue per currency.
    pub won_revenue: BTreeMap<String, f64>,
    /// Mean won amount per currency (won deals with an amount).
    pub avg_won_deal_value: BTreeMap<String, f64>,
    /// won / (won + lost).
    pub win_rate: Option<f64>,
    /// Creation of its first deal (RFC 3339).
    pub first_deal_at: Option<String>,
    /// Creation of its latest deal (RFC 3339).
    pub last_deal_at: Option<String>,
    /// True from the second won deal on.
    pub repeat_customer: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AccountsReport {
    /// Accounts with at least one deal.
    pub accounts: u64,
    /// Share of accounts with a won deal that won again.
    pub repeat_rate: Option<f64>,
    /// The accounts, by won deals (most first), then name; at most `limit`.
    pub rows: Vec<AccountRow>,
}

#[derive(Debug, Default)]
struct Acc {
    deals: u64,
    open: u64,
    won: u64,
    lost: u64,
    money: PerCurrency,
    first: Option<i64>,
    last: Option<i64>,
}

/// Computes the report; `limit` caps the rows (the totals cover every account).
pub fn accounts(snapshot: &Snapshot, limit: usize) -> AccountsReport {
    // Indexed by account id rather than hashed: one hash per deal was most of the time.
    let mut groups: ByName<Acc> = ByName::new(&snapshot.names);
    for d in &snapshot.deals {
        let Some(account) = d.account else { continue };
        let acc = groups.entry(Some(account), Acc::default);
        acc.deals += 1;
        match d.status {
            Status::Open => acc.open += 1,
            Status::Won => {
                acc.won += 1;
                acc.money.add(d.currency, d.amount);
            }
            Status::Lost => acc.lost += 1,
        }
        if let Some(c) = d.created_at {
            acc.first = Some(acc.first.map_or(c, |f| f.min(c)));
            acc.last = Some(acc.last.map_or(c, |l| l.max(c)));
        }
    }
    let winners = groups.entries().filter(|(_, a)| a.won >= 1).count() as u64;
    let repeaters = groups.entries().filter(|(_, a)| a.won >= 2).count() as u64;
    let mut rows: Vec<AccountRow> = groups
        .into_entries()
        .map(|(account, a)| AccountRow {
            account: snapshot.label(account),
            deals: a.deals,
            open_deals: a.open,
            won_deals: a.won,
            lost_deals: a.lost,
            won_revenue: a.money.sums(snapshot),
            avg_won_deal_value: a.money.means(snapshot),
            win_rate: ratio(a.won, a.won + a.lost),
            first_deal_at: a.first.map(rfc3339),
            last_deal_at: a.last.map(rfc3339),
            repeat_customer: a.won >= 2,
        })
        .collect();
    let accounts = rows.len() as u64;
    rows.sort_by(|a, b| {
        b.won_deals
            .cmp(&a.won_deals)
            .then_with(|| a.account.cmp(&b.account))
    });
    rows.truncate(limit);
    AccountsReport {
        accounts,
        repeat_rate: ratio(repeaters, winners),
        rows,
    }
}

/// CSV: one row per account; money per currency.
pub fn table(report: &AccountsReport) -> Table {
    let mut currencies: Vec<String> = report
        .rows
        .iter()
        .flat_map(|r| r.won_revenue.keys().cloned())
        .collect();
    currencies.sort();
    currencies.dedup();
    let mut columns: Vec<String> = [
        "account",
        "deals",
        "open_deals",
        "won_deals",
        "lost_deals",
        "win_rate",
        "first_deal_at",
        "last_deal_at",
        "repeat_customer",
    ]
    .map(String::from)
    .to_vec();
    for c in &currencies {
        columns.extend([format!("won_revenue_{c}"), format!("avg_won_deal_value_{c}")]);
    }
    let mut t = Table::new(columns);
    for r in &report.rows {
        let mut row = vec![
            r.account.clone(),
            cell(r.deals),
            cell(r.open_deals),
            cell(r.won_deals),
            cell(r.lost_deals),
            opt(r.win_rate),
            opt(r.first_deal_at.as_ref()),
            opt(r.last_deal_at.as_ref()),
            cell(r.repeat_customer),
        ];
        for c in &currencies {
            row.extend([opt(r.won_revenue.get(c)), opt(r.avg_won_deal_value.get(c))]);
        }
        t.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::insights::snapshot::{sample, NameId};

    #[test]
    fn indexed_accounts_equal_hashed_ones() {
        let s = sample(3_000, 13);
        let full = accounts(&s, 100_000);
        // deals, open, won, lost, won money, first creation
        type Counts = (u64, u64, u64, u64, PerCurrency, Option<i64>);
        let mut hashed: HashMap<NameId, Counts> = HashMap::new();
        for d in s.deals.iter().filter(|d| d.account.is_some()) {
            let e = hashed.entry(d.account.unwrap_or_default()).or_default();
            e.0 += 1;
            match d.status {
                Status::Open => e.1 += 1,
                Status::Won => {
                    e.2 += 1;
                    e.4.add(d.currency, d.amount);
                }
                Status::Lost => e.3 += 1,
            }
            e.5 = match (e.5, d.created_at) {
                (Some(f), Some(c)) => Some(f.min(c)),
                (f, c) => f.or(c),
            };
        }
        assert_eq!(full.accounts, hashed.len() as u64);
        for row in &full.rows {
            let id = s.names.find(&row.account).unwrap_or_default();
            let (deals, open, won, lost, money, first) = &hashed[&id];
            assert_eq!(
                (row.deals, row.open_deals, row.won_deals, row.lost_deals),
                (*deals, *open, *won, *lost)
            );
            assert_eq!(row.won_revenue, money.sums(&s));
            assert_eq!(row.first_deal_at, first.map(rfc3339));
        }
        let top = accounts(&s, 5);
        assert_eq!((top.accounts, top.repeat_rate), (full.accounts, full.repeat_rate));
        assert_eq!(top.rows[..], full.rows[..5]);
    }
}
