//! Pipeline dashboard (analyst): KPI tiles against the previous period, the monthly trend
//! (won, lost, open; win rate), breakdowns by region, sector and rep, CSV of each table.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::non_empty;
use crate::auth::Role;
use crate::i18n::{format, Lang};
use crate::insights::filter::{DealFilter, FilterNames};
use crate::insights::period::Window;
use crate::insights::pipeline::{self, GroupBy, PipelineGroup, PipelineReport};
use crate::insights::snapshot::NameId;
use crate::insights::{InsightsCache, Snapshot};
use crate::store::Db;
use crate::web::charts::{self, Series};
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::memo::PageMemos;
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, url_encode, view, Nav, Ui};

/// Default window of the dashboard: the last twelve months, enough for a trend.
const DEFAULT_DAYS: i64 = 365;

/// Period and filters.
#[derive(Debug, Default, Deserialize, Clone)]
pub struct PipelineQuery {
    from: Option<String>,
    to: Option<String>,
    region: Option<String>,
    owner: Option<String>,
    sector: Option<String>,
    /// CSV only: `month` (default), `region`, `sector` or `owner`.
    table: Option<String>,
}

struct Parsed {
    window: Window,
    from: String,
    to: String,
    region: Option<String>,
    owner: Option<String>,
    sector: Option<String>,
}

fn parse(q: PipelineQuery, lang: Lang) -> Result<Parsed, PageError> {
    let (from, to, window) = super::page_period(q.from, q.to, DEFAULT_DAYS, lang)?;
    Ok(Parsed {
        window,
        from,
        to,
        region: non_empty(q.region),
        owner: non_empty(q.owner),
        sector: non_empty(q.sector),
    })
}

/// What the dashboard shows for one period and filter: the four reports and the filter choices.
#[derive(Debug)]
pub struct PipelineView {
    /// Monthly, by region, by sector, by owner.
    pub reports: [PipelineReport; 4],
    /// Owners, regions and sectors present in the data, sorted.
    pub facets: [Vec<String>; 3],
}

/// Distinct owners, regions and sectors of every deal (closed ones count: the dashboard covers
/// them), one pass over the snapshot.
fn facets(snapshot: &Snapshot) -> [Vec<String>; 3] {
    let mut ids: [std::collections::BTreeSet<NameId>; 3] = Default::default();
    for d in &snapshot.deals {
        for (set, id) in ids.iter_mut().zip([d.owner, d.region, d.sector]) {
            if let Some(id) = id {
                set.insert(id);
            }
        }
    }
    ids.map(|set| {
        let mut names: Vec<String> = set.into_iter().map(|id| snapshot.label(Some(id))).collect();
        names.sort();
        names
    })
}

fn report(snapshot: &Snapshot, p: &Parsed, group_by: GroupBy) -> PipelineReport {
    let names = FilterNames {
        region: p.region.as_deref(),
        owner: p.owner.as_deref(),
        sector: p.sector.as_deref(),
        contact_role: None,
    };
    pipeline::pipeline(snapshot, p.window, group_by, &DealFilter::new(snapshot, &names))
}

/// One KPI tile.
pub struct Tile {
    label: &'static str,
    value: String,
    change: String,
    direction: &'static str,
}

/// A breakdown table.
pub struct Breakdown {
    title: &'static str,
    csv: String,
    rows: Vec<BreakdownRow>,
}

/// One group of a breakdown.
pub struct BreakdownRow {
    key: String,
    won: String,
    lost: String,
    open: String,
    win_rate: String,
    revenue: String,
}

/// One line of the focus and grade shares: label, count, share of the scored open deals.
pub struct ShareRow {
    label: String,
    count: String,
    share: String,
}

/// Open deals per focus class (in working order) and per grade, from their latest stored scores.
fn shares(counts: &[(String, String, i64)], t: Text) -> (Vec<ShareRow>, Vec<ShareRow>) {
    let lang = t.0;
    let total: i64 = counts.iter().map(|(_, _, n)| *n).sum();
    let row = |label: String, n: i64| ShareRow {
        label,
        count: format::count(n.max(0) as u64, lang),
        share: format::percent(if total > 0 { n as f64 / total as f64 } else { 0.0 }, 0, lang),
    };
    let sum = |keep: &dyn Fn(&(String, String, i64)) -> bool| {
        counts.iter().filter(|c| keep(c)).map(|c| c.2).sum::<i64>()
    };
    let focus = ["prioritize", "secure", "nurture", "deprioritize"]
        .iter()
        .map(|f| row(t.get(&format!("focus.{f}")).to_owned(), sum(&|c| c.0 == *f)))
        .collect();
    let grades = ["A", "B", "C", "D"]
        .iter()
        .map(|g| row((*g).to_owned(), sum(&|c| c.1 == *g)))
        .collect();
    (focus, grades)
}

/// A filter's choices: `(value, selected)`.
pub struct FilterSelect {
    name: &'static str,
    label: &'static str,
    options: Vec<(String, bool)>,
}

#[derive(Template)]
#[template(path = "web/pipeline.html")]
struct PipelinePage {
    ui: Ui,
    from: String,
    to: String,
    selects: Vec<FilterSelect>,
    tiles: Vec<Tile>,
    trend_chart: String,
    breakdowns: Vec<Breakdown>,
    csv_month: String,
    /// (column heading, rows): focus classes, then grades.
    share_tables: Vec<(&'static str, Vec<ShareRow>)>,
}

/// Sums per currency; nothing at all reads as zero (a KPI tile is never blank).
fn money_map(values: &BTreeMap<String, f64>, lang: Lang) -> String {
    view::money_by_currency(values, lang).unwrap_or_else(|| format::money_whole(0.0, "EUR", lang))
}

fn money_change(values: &BTreeMap<String, f64>, lang: Lang) -> (String, &'static str) {
    let text = values
        .iter()
        .map(|(currency, v)| {
            let sign = if *v > 0.0 { "+" } else { "" };
            format!("{sign}{}", format::money_whole(*v, currency, lang))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    (text, view::direction(values.values().next().copied()))
}

fn tiles(total: &PipelineGroup, lang: Lang) -> Vec<Tile> {
    let t = Text(lang);
    let (won_change, won_dir) = money_change(&total.delta.won_revenue, lang);
    let (open_change, open_dir) = money_change(&total.delta.open_pipeline_value, lang);
    vec![
        Tile {
            label: t.get("kpi.won_revenue"),
            value: money_map(&total.current.won_revenue, lang),
            change: won_change,
            direction: won_dir,
        },
        Tile {
            label: t.get("kpi.open_pipeline"),
            value: money_map(&total.current.open_pipeline_value, lang),
            change: open_change,
            direction: open_dir,
        },
        Tile {
            label: t.get("kpi.win_rate"),
            value: view::rate(total.current.win_rate, lang),
            change: view::points(total.delta.win_rate, lang),
            direction: view::direction(total.delta.win_rate),
        },
        Tile {
            label: t.get("kpi.won_deals"),
            value: format::number(total.current.won_deals as f64, 0, lang),
            change: view::signed(total.delta.won_deals as f64, lang),
            direction: view::direction(Some(total.delta.won_deals as f64)),
        },
    ]
}

fn rows(report: &PipelineReport, lang: Lang) -> Vec<BreakdownRow> {
    report
        .groups
        .iter()
        .map(|g| BreakdownRow {
            key: g.key.clone(),
            won: format::count(g.current.won_deals, lang),
            lost: format::count(g.current.lost_deals, lang),
            open: format::count(g.current.open_deals, lang),
            win_rate: view::rate(g.current.win_rate, lang),
            revenue: money_map(&g.current.won_revenue, lang),
        })
        .collect()
}

fn query_of(p: &Parsed) -> Vec<String> {
    let mut kept = vec![
        format!("from={}", url_encode(&p.from)),
        format!("to={}", url_encode(&p.to)),
    ];
    for (name, value) in [("region", &p.region), ("owner", &p.owner), ("sector", &p.sector)] {
        if let Some(v) = value {
            kept.push(format!("{name}={}", url_encode(v)));
        }
    }
    kept
}

/// `GET /pipeline`.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    memos: web::Data<PageMemos>,
    query: web::Query<PipelineQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let p = parse(query.into_inner(), lang)?;
    let answer = cache.snapshot_or_recent(&db).await.or_page(lang)?;
    let snapshot = answer.snapshot.clone();
    let p = Arc::new(p);
    let key = query_of(&p).join("&");
    let reports = match memos.pipeline.get(&key, snapshot.stamp) {
        Some(hit) => hit,
        None => {
            let (p2, stamp) = (p.clone(), snapshot.stamp);
            let fresh = blocking(lang, move || PipelineView {
                reports: [GroupBy::Month, GroupBy::Region, GroupBy::Sector, GroupBy::Owner]
                    .map(|g| report(&snapshot, &p2, g)),
                facets: facets(&snapshot),
            })
            .await?;
            let fresh = Arc::new(fresh);
            memos.pipeline.put(key, stamp, fresh.clone());
            fresh
        }
    };
    let [monthly, by_region, by_sector, by_owner] = &reports.reports;
    let [owners, regions, sectors] = reports.facets.clone();
    let months: Vec<String> = monthly.groups.iter().map(|g| g.key.clone()).collect();
    let series = |label: &str, class: &'static str, get: fn(&PipelineGroup) -> f64| Series {
        label: label.to_string(),
        class,
        values: monthly.groups.iter().map(get).collect(),
    };
    let trend_chart = charts::bars_and_rates(
        t.get("pipeline.trend"),
        &months,
        &[
            series(t.get("kpi.won_deals"), "s-won", |g| g.current.won_deals as f64),
            series(t.get("kpi.lost_deals"), "s-lost", |g| g.current.lost_deals as f64),
            series(t.get("kpi.open_deals"), "s-open", |g| g.current.open_deals as f64),
        ],
        &[series(t.get("kpi.win_rate"), "s-rate", |g| {
            g.current.win_rate.unwrap_or(f64::NAN)
        })],
        &|v| format::number(v, 0, lang),
        &|v| format::percent(v, 0, lang),
    );
    let base = query_of(&p).join("&");
    let breakdown = |title: &'static str, table: &str, report: &PipelineReport| Breakdown {
        title: t.get(title),
        csv: format!("/pipeline.csv?{base}&table={table}"),
        rows: rows(report, lang),
    };
    let chosen = |values: Vec<String>, current: &Option<String>| {
        values
            .into_iter()
            .map(|v| {
                let selected = current.as_deref() == Some(v.as_str());
                (v, selected)
            })
            .collect::<Vec<_>>()
    };
    let counts = crate::store::insights::open_focus_grade_counts(&db)
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let (focus_shares, grade_shares) = shares(&counts, t);
    let mut ui = Ui::new(&viewer, &req, Nav::Pipeline);
    ui.note_stale(&answer);
    let page = PipelinePage {
        ui,
        from: p.from.clone(),
        to: p.to.clone(),
        selects: vec![
            FilterSelect {
                name: "region",
                label: "deals.region",
                options: chosen(regions, &p.region),
            },
            FilterSelect {
                name: "sector",
                label: "deals.sector",
                options: chosen(sectors, &p.sector),
            },
            FilterSelect {
                name: "owner",
                label: "deals.owner",
                options: chosen(owners, &p.owner),
            },
        ],
        tiles: tiles(&monthly.total, lang),
        trend_chart,
        breakdowns: vec![
            breakdown("pipeline.by_region", "region", by_region),
            breakdown("pipeline.by_sector", "sector", by_sector),
            breakdown("pipeline.by_owner", "owner", by_owner),
        ],
        csv_month: format!("/pipeline.csv?{base}&table=month"),
        share_tables: vec![
            (t.get("pipeline.focus"), focus_shares),
            (t.get("deals.grade"), grade_shares),
        ],
    };
    render(&req, lang, &page)
}

/// `GET /pipeline.csv`: one table of the dashboard (same period and filters) as CSV. Unlike the
/// page, which may show the previous snapshot with a note while a new one loads, an export is a
/// file people keep and pass on with no such note: it waits for a snapshot of every committed
/// write.
pub async fn csv(
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    query: web::Query<PipelineQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let q = query.into_inner();
    let table = non_empty(q.table.clone()).unwrap_or_else(|| "month".into());
    let group_by = GroupBy::parse(&table)
        .filter(|g| *g != GroupBy::Quarter)
        .ok_or_else(|| {
            PageError::new(
                lang,
                PageErrorKind::BadInput(format!("table `{table}`: month, region, sector or owner")),
            )
        })?;
    let p = parse(q, lang)?;
    let snapshot = cache.snapshot(&db).await.or_page(lang)?;
    let text = blocking(lang, move || {
        pipeline::table(&report(&snapshot, &p, group_by)).to_csv()
    })
    .await?
    .map_err(|e| PageError::internal(lang, e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"pipeline-{table}.csv\""),
        ))
        .body(text))
}
