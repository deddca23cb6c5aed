//! Resources (analyst): per region and per rep — volume, results, trend, forecast against the
//! objectives of the current quarter, workload flags.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Utc};

use crate::auth::Role;
use crate::i18n::{format, Lang};
use crate::insights::resources::{self, ResourceRow};
use crate::insights::{objectives, period, InsightsCache};
use crate::store::{insights as store, Db};
use crate::web::charts::{self, Series};
use crate::web::error::{OrPage, PageError};
use crate::web::memo::PageMemos;
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, view, Nav, Ui};

/// One region or rep as shown.
pub struct Row {
    name: String,
    open: String,
    open_value: String,
    won: String,
    lost: String,
    win_rate: String,
    revenue: String,
    forecast: String,
    trend: String,
    overloaded: bool,
}

/// One objective of the quarter.
pub struct ObjectiveRow {
    scope: String,
    metric: String,
    target: String,
    actual: String,
    attainment: String,
    forecast: String,
}

#[derive(Template)]
#[template(path = "web/resources.html")]
struct ResourcesPage {
    ui: Ui,
    from: String,
    to: String,
    quarter: String,
    regions: Vec<Row>,
    reps: Vec<Row>,
    objectives: Vec<ObjectiveRow>,
    reps_chart: String,
}

fn money(values: &BTreeMap<String, f64>, lang: Lang) -> String {
    view::money_by_currency(values, lang).unwrap_or_else(|| "–".into())
}

fn row(r: &ResourceRow, lang: Lang) -> Row {
    // The win-rate arrow compares the last trend period with the one before.
    let rates: Vec<Option<f64>> = r.trend.iter().map(|p| p.win_rate).collect();
    let trend = match rates.as_slice() {
        [.., Some(a), Some(b)] if b > a => "▲",
        [.., Some(a), Some(b)] if b < a => "▼",
        [.., Some(_), Some(_)] => "▶",
        _ => "•",
    };
    Row {
        name: r.name.clone(),
        open: crate::i18n::format::count(r.open_deals, lang),
        open_value: money(&r.open_value, lang),
        won: crate::i18n::format::count(r.won_deals, lang),
        lost: crate::i18n::format::count(r.lost_deals, lang),
        win_rate: view::rate(r.win_rate, lang),
        revenue: money(&r.won_revenue, lang),
        forecast: money(&r.forecast, lang),
        trend: trend.into(),
        overloaded: r.overloaded == Some(true),
    }
}

/// `GET /resources`: the last 90 days, and the objectives of the current quarter.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    memos: web::Data<PageMemos>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let now = Utc::now();
    let window = period::window(None, None, now)
        .map_err(|(_, m)| PageError::internal(lang, anyhow::anyhow!("{m}")))?;
    let quarter = format!("{}-Q{}", now.year(), now.month0() / 3 + 1);
    let (label, quarter_window) = period::parse_period(&quarter)
        .ok_or_else(|| PageError::internal(lang, anyhow::anyhow!("bad quarter {quarter}")))?;
    let targets = store::objectives_of_period(&db, &label).await.or_page(lang)?;
    let answer = cache.snapshot_or_recent(&db).await.or_page(lang)?;
    let snapshot = answer.snapshot.clone();
    let key = format!("{}-{}", window.start, window.end);
    let cached = memos.resources.get(&key, snapshot.stamp);
    let stamp = snapshot.stamp;
    let (report, attainment) = blocking(lang, move || {
        let report = cached.unwrap_or_else(|| Arc::new(resources::resources(&snapshot, window)));
        (
            report,
            objectives::attainment(&snapshot, &label, quarter_window, targets),
        )
    })
    .await?;
    memos.resources.put(key, stamp, report.clone());
    let names: Vec<String> = report.reps.iter().map(|r| r.name.clone()).collect();
    let reps_chart = charts::bars_and_rates(
        t.get("resources.reps_chart"),
        &names,
        &[
            Series {
                label: t.get("kpi.open_deals").into(),
                class: "s-open",
                values: report.reps.iter().map(|r| r.open_deals as f64).collect(),
            },
            Series {
                label: t.get("kpi.won_deals").into(),
                class: "s-won",
                values: report.reps.iter().map(|r| r.won_deals as f64).collect(),
            },
        ],
        &[Series {
            label: t.get("kpi.win_rate").into(),
            class: "s-rate",
            values: report
                .reps
                .iter()
                .map(|r| r.win_rate.unwrap_or(f64::NAN))
                .collect(),
        }],
        &|v| format::number(v, 0, lang),
        &|v| format::percent(v, 0, lang),
    );
    let value = |metric: &str, v: f64, currency: Option<&str>| match (metric, currency) {
        ("won_revenue", Some(c)) => format::money_whole(v, c, lang),
        _ => format::number(v, 0, lang),
    };
    let mut ui = Ui::new(&viewer, &req, Nav::Resources);
    ui.note_stale(&answer);
    let page = ResourcesPage {
        ui,
        from: report.from.get(..10).unwrap_or_default().to_string(),
        to: report.to.get(..10).unwrap_or_default().to_string(),
        quarter,
        regions: report.regions.iter().map(|r| row(r, lang)).collect(),
        reps: report.reps.iter().map(|r| row(r, lang)).collect(),
        objectives: attainment
            .objectives
            .iter()
            .map(|a| {
                let o = &a.objective;
                let currency = o.currency.as_deref();
                ObjectiveRow {
                    scope: format!("{} {}", o.scope, o.name),
                    metric: o.metric.clone(),
                    target: value(&o.metric, o.target, currency),
                    actual: value(&o.metric, a.actual, currency),
                    attainment: format::percent(a.attainment, 0, lang),
                    forecast: value(&o.metric, a.forecast, currency),
                }
            })
            .collect(),
        reps_chart,
    };
    render(&req, lang, &page)
}
