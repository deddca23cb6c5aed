//! Customers (analyst): acquisition cost, customer value, contract length, churn and net
//! revenue retention over a period, the last 365 days by default (docs/insights.md).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::Role;
use crate::config::Settings;
use crate::domain::to_epoch_ms;
use crate::i18n::{format, Lang};
use crate::insights::customer_inputs::{basis, CustomerColumns};
use crate::insights::customers::{self, MoneyFigure, NumberFigure};
use crate::insights::period::{self};
use crate::insights::InsightsCache;
use crate::store::{acquisition_costs, Db};
use crate::web::error::{OrPage, PageError};
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, view, Nav, Ui};

/// Days the page covers by default, up to the end of today.
const WINDOW_DAYS: i64 = 365;

/// The period (`from`, `to`: dates, both included).
#[derive(Debug, Default, Deserialize)]
pub struct CustomersQuery {
    from: Option<String>,
    to: Option<String>,
}

/// One figure as shown: its name, its value or why it has none, and a count beside it.
pub struct Figure {
    name: &'static str,
    value: String,
    note: String,
}

/// Acquisition in one region, as shown.
pub struct RegionRow {
    region: String,
    spend: String,
    new_customers: String,
    cost: String,
}

#[derive(Template)]
#[template(path = "web/customers.html")]
struct CustomersPage {
    ui: Ui,
    from: String,
    to: String,
    figures: Vec<Figure>,
    regions: Vec<RegionRow>,
}

fn money_text(f: &MoneyFigure, t: Text, lang: Lang) -> String {
    match &f.value {
        Some(v) => view::money_by_currency(v, lang).unwrap_or_else(|| "–".into()),
        None => reason_text(f.reason.as_deref(), t),
    }
}

fn reason_text(reason: Option<&str>, t: Text) -> String {
    let key = match reason {
        Some(customers::reason::NO_SPEND) => "customers.why.no_spend",
        Some(customers::reason::NO_NEW_CUSTOMERS) => "customers.why.no_new_customers",
        Some(customers::reason::NO_CUSTOMERS) => "customers.why.no_customers",
        Some(customers::reason::CONTRACT_FIELDS_UNSET) => "customers.why.contract_fields_unset",
        Some(customers::reason::DEAL_TYPE_FIELD_UNSET) => "customers.why.deal_type_field_unset",
        Some(customers::reason::NO_CONTRACTS_STARTED) => "customers.why.no_contracts_started",
        Some(customers::reason::NO_CONTRACTS_ENDING) => "customers.why.no_contracts_ending",
        _ => "customers.why.no_amounts",
    };
    format!("– ({})", t.get(key))
}

fn number_text(f: &NumberFigure, t: Text, shown: impl Fn(f64) -> String) -> String {
    f.value.map_or_else(|| reason_text(f.reason.as_deref(), t), shown)
}

fn ratios(values: &Option<BTreeMap<String, f64>>, lang: Lang) -> Option<String> {
    let values = values.as_ref()?;
    let parts: Vec<String> = values
        .iter()
        .map(|(c, v)| format!("{c} {}", format::percent(*v, 0, lang)))
        .collect();
    (!parts.is_empty()).then(|| format::join_parts(&parts))
}

/// `GET /customers`: the customer figures of the last 365 days by default (`?from=&to=`).
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    settings: web::Data<Settings>,
    query: web::Query<CustomersQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let now = Utc::now();
    let q = query.into_inner();
    // WINDOW_DAYS days, today included.
    let (_, _, window) = super::page_period(q.from, q.to, WINDOW_DAYS - 1, lang)?;
    let answer = cache.snapshot_or_recent(&db).await.or_page(lang)?;
    let snapshot = answer.snapshot.clone();
    let columns = CustomerColumns::read(&db, &cache, &snapshot, &settings.insights)
        .await
        .or_page(lang)?;
    let costs = acquisition_costs::overlapping(&db, window.start, window.end)
        .await
        .or_page(lang)?;
    let at = to_epoch_ms(now);
    let fields = settings.insights.clone();
    let r = blocking(lang, move || {
        let basis = basis(&snapshot, &fields, &columns);
        customers::report(&snapshot, &basis, &costs, window, at)
    })
    .await?;
    let count = |n: u64| format::count(n, lang);
    let figures = vec![
        Figure {
            name: "customers.acquisition_cost",
            value: money_text(&r.avg_acquisition_cost, t, lang),
            note: format!("{} {}", count(r.new_customers), t.get("customers.new_customers")),
        },
        Figure {
            name: "customers.customer_value",
            value: money_text(&r.avg_customer_value, t, lang),
            note: format!("{} {}", count(r.customers), t.get("customers.customers")),
        },
        Figure {
            name: "customers.contract_length",
            value: number_text(&r.avg_contract_months, t, |m| {
                format!("{} {}", format::number(m, 1, lang), t.get("customers.months"))
            }),
            note: format!(
                "{} {}",
                count(r.contracts_started),
                t.get("customers.contracts_started")
            ),
        },
        Figure {
            name: "customers.churn_rate",
            value: number_text(&r.churn_rate, t, |v| format::percent(v, 1, lang)),
            note: format!(
                "{} / {} {}",
                count(r.churned_customers),
                count(r.customers_with_contract_ending),
                t.get("customers.contracts_ending")
            ),
        },
        Figure {
            name: "customers.nrr",
            value: ratios(&r.net_revenue_retention.value, lang)
                .unwrap_or_else(|| reason_text(r.net_revenue_retention.reason.as_deref(), t)),
            note: format!("{} {}", count(r.pending_customers), t.get("customers.pending")),
        },
    ];
    let regions = r
        .acquisition_by_region
        .iter()
        .map(|g| RegionRow {
            region: g.region.clone(),
            spend: view::money_by_currency(&g.spend, lang).unwrap_or_else(|| "–".into()),
            new_customers: count(g.new_customers),
            cost: money_text(&g.avg_acquisition_cost, t, lang),
        })
        .collect();
    let mut ui = Ui::new(&viewer, &req, Nav::Customers);
    ui.note_stale(&answer);
    let page = CustomersPage {
        ui,
        from: r.from.get(..10).unwrap_or_default().to_string(),
        to: period::rfc3339(window.end - 1)
            .get(..10)
            .unwrap_or_default()
            .to_string(),
        figures,
        regions,
    };
    render(&req, lang, &page)
}
