//! Competitors (analyst): win rate against each competitor of the configured competitor field
//! and without one, its trend, what the deals lost against it were lost to, and the win rate
//! against it by sector and by deal size band.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::Role;
use crate::config::Settings;
use crate::i18n::{format, Lang};
use crate::insights::breakdown::Field;
use crate::insights::competitors::{self, CompetitorRow, CompetitorsReport, Setup, Values, WinRate};
use crate::insights::filter::DealFilter;
use crate::insights::InsightsCache;
use crate::store::Db;
use crate::web::charts::{self, Series};
use crate::web::error::{OrPage, PageError};
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, view, Nav, Ui};

/// Default window of the page: the last twelve months (four quarters of trend before it).
const DEFAULT_DAYS: i64 = 365;

/// The period.
#[derive(Debug, Default, Deserialize)]
pub struct CompetitorsQuery {
    from: Option<String>,
    to: Option<String>,
}

/// One competitor as shown.
pub struct Row {
    name: String,
    open: String,
    won: String,
    lost: String,
    win_rate: String,
    interval: String,
    trend: String,
    lost_to: String,
    reasons: String,
    sectors: String,
    sizes: String,
}

#[derive(Template)]
#[template(path = "web/competitors.html")]
struct CompetitorsPage {
    ui: Ui,
    from: String,
    to: String,
    /// The configured field, or `None` (the page says how to set it).
    field: Option<String>,
    /// The configured field when it is not a field (the page says so).
    bad_field: Option<String>,
    overall: String,
    other_note: String,
    bands_note: String,
    rows: Vec<Row>,
    chart: String,
}

/// `"61 % (12)"`: a win rate and the closed deals it rests on, for the segment lists.
fn segments(list: &[WinRate], lang: Lang) -> String {
    list.iter()
        .map(|s| {
            format!(
                "{} {} ({})",
                s.value,
                view::rate(s.win_rate, lang),
                format::count(s.won_deals + s.lost_deals, lang)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn row(r: &CompetitorRow, lang: Lang) -> Row {
    let interval = match (r.win_rate_low, r.win_rate_high) {
        (Some(lo), Some(hi)) => format!(
            "{}–{}",
            format::percent(lo, 0, lang),
            format::percent(hi, 0, lang)
        ),
        _ => "–".into(),
    };
    Row {
        name: r.competitor.clone(),
        open: format::count(r.open_deals, lang),
        won: format::count(r.won_deals, lang),
        lost: format::count(r.lost_deals, lang),
        win_rate: view::rate(r.win_rate, lang),
        interval,
        trend: r
            .trend
            .iter()
            .map(|p| view::rate(p.win_rate, lang))
            .collect::<Vec<_>>()
            .join(" → "),
        lost_to: r
            .lost_to_competitor
            .map_or_else(|| "–".into(), |n| format::count(n, lang)),
        reasons: r
            .loss_reasons
            .iter()
            .map(|(reason, n)| format!("{reason} {}", format::count(*n, lang)))
            .collect::<Vec<_>>()
            .join(" · "),
        sectors: segments(&r.by_sector, lang),
        sizes: segments(&r.by_size, lang),
    }
}

fn chart(report: &CompetitorsReport, t: Text) -> String {
    let lang = t.0;
    let names: Vec<String> = report.rows.iter().map(|r| r.competitor.clone()).collect();
    charts::bars_and_rates(
        t.get("competitors.chart"),
        &names,
        &[
            Series {
                label: t.get("kpi.won_deals").into(),
                class: "s-won",
                values: report.rows.iter().map(|r| r.won_deals as f64).collect(),
            },
            Series {
                label: t.get("kpi.lost_deals").into(),
                class: "s-lost",
                values: report.rows.iter().map(|r| r.lost_deals as f64).collect(),
            },
        ],
        &[Series {
            label: t.get("kpi.win_rate").into(),
            class: "s-rate",
            values: report
                .rows
                .iter()
                .map(|r| r.win_rate.unwrap_or(f64::NAN))
                .collect(),
        }],
        &|v| format::number(v, 0, lang),
        &|v| format::percent(v, 0, lang),
    )
}

/// `GET /competitors`: the last twelve months by default (`?from=&to=`).
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    settings: web::Data<Settings>,
    query: web::Query<CompetitorsQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let q = query.into_inner();
    let (from, to, window) = super::page_period(q.from, q.to, DEFAULT_DAYS, lang)?;
    let config = &settings.insights;
    let configured = config.competitor_field.clone();
    let field = configured.as_deref().and_then(Field::parse);
    let mut page = CompetitorsPage {
        ui: Ui::new(&viewer, &req, Nav::Competitors),
        from: from.clone(),
        to: to.clone(),
        field: configured.clone(),
        bad_field: configured.filter(|_| field.is_none()),
        overall: String::new(),
        other_note: String::new(),
        bands_note: String::new(),
        rows: Vec::new(),
        chart: String::new(),
    };
    let Some(field) = field else {
        return render(&req, lang, &page);
    };
    let reason_field = config.loss_reason_field.as_deref().and_then(Field::parse);
    let answer = cache.snapshot_or_recent(&db).await.or_page(lang)?;
    let snapshot = answer.snapshot.clone();
    let attribute = |f: &Field| match f {
        Field::Attribute(name) => Some(name.clone()),
        Field::Core(_) => None,
    };
    let competitor_column = match attribute(&field) {
        Some(name) => Some(cache.attribute(&db, &snapshot, &name).await.or_page(lang)?),
        None => None,
    };
    let reason_column = match reason_field.as_ref().and_then(attribute) {
        Some(name) => Some(cache.attribute(&db, &snapshot, &name).await.or_page(lang)?),
        None => None,
    };
    let lost_to = config
        .lost_to_competitor
        .clone()
        .unwrap_or_else(|| competitors::DEFAULT_LOST_TO_COMPETITOR.to_owned());
    let report = blocking(lang, move || {
        let setup = Setup {
            competitor_field: field.name(),
            competitors: Values::of(&field, competitor_column.as_deref()),
            loss_reasons: reason_field
                .as_ref()
                .map(|f| (f.name(), Values::of(f, reason_column.as_deref()))),
            lost_to_competitor: lost_to,
        };
        competitors::competitors(&snapshot, &setup, window, &DealFilter::default())
    })
    .await?;
    page.ui.note_stale(&answer);
    page.overall = format!(
        "{} ({} {} · {} {})",
        view::rate(report.overall.win_rate, lang),
        format::count(report.overall.won_deals, lang),
        t.get("kpi.won_deals").to_lowercase(),
        format::count(report.overall.lost_deals, lang),
        t.get("kpi.lost_deals").to_lowercase(),
    );
    page.other_note = format::count(report.other_threshold, lang);
    page.bands_note = report
        .size_bands
        .iter()
        .map(|b| b.band.clone())
        .collect::<Vec<_>>()
        .join(" · ");
    page.chart = chart(&report, t);
    page.rows = report.rows.iter().map(|r| row(r, lang)).collect();
    render(&req, lang, &page)
}
