//! Sales process (analyst): won vs lost reference measures per sector or contact role as
//! charts, win rates per level, and the at-risk list.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::non_empty;
use crate::auth::Role;
use crate::domain::{to_epoch_ms, Status};
use crate::i18n::{format, Lang};
use crate::insights::filter::{DealFilter, FilterNames};
use crate::insights::snapshot::{NameId, Snapshot};
use crate::insights::stats::{ratio, Distribution};
use crate::insights::success_factors::{measure, MEASURES};
use crate::insights::{at_risk, InsightsCache};
use crate::store::Db;
use crate::web::charts::{self, Series};
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::memo::PageMemos;
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, url_encode, view, Nav, Ui};

/// Rows of the at-risk list.
const AT_RISK_ROWS: usize = 25;
/// Levels drawn per chart (the most frequent); the rest are summed in no chart.
const MAX_LEVELS: usize = 12;

/// Which dimension the charts compare.
#[derive(Debug, Default, Deserialize)]
pub struct ProcessQuery {
    /// `sector` (default) or `contact_role`.
    by: Option<String>,
    /// Only this owner in the at-risk list.
    owner: Option<String>,
}

/// Won/lost medians of every measure for one level.
#[derive(Debug)]
pub struct LevelMeasures {
    level: String,
    closed: u64,
    won: u64,
    medians: [(Option<f64>, Option<f64>); 3],
}

/// One pass over the closed deals, grouped by sector or contact role.
fn by_level(snapshot: &Snapshot, by_role: bool) -> Vec<LevelMeasures> {
    type Values = [(Vec<f64>, Vec<f64>); 3];
    let mut groups: BTreeMap<Option<NameId>, (u64, u64, Values)> = BTreeMap::new();
    for d in snapshot.deals.iter().filter(|d| d.status != Status::Open) {
        let key = if by_role { d.contact_role } else { d.sector };
        let entry = groups.entry(key).or_default();
        entry.0 += 1;
        let won = d.status == Status::Won;
        if won {
            entry.1 += 1;
        }
        for (slot, name) in entry.2.iter_mut().zip(MEASURES) {
            if let Some(v) = measure(d, name) {
                if won {
                    slot.0.push(v);
                } else {
                    slot.1.push(v);
                }
            }
        }
    }
    let mut levels: Vec<LevelMeasures> = groups
        .into_iter()
        .map(|(key, (closed, won, mut values))| {
            let median = |v: &mut Vec<f64>| Distribution::of(v).map(|d| d.median);
            LevelMeasures {
                level: snapshot.label(key),
                closed,
                won,
                medians: [0, 1, 2].map(|i| {
                    let (w, l) = &mut values[i];
                    (median(w), median(l))
                }),
            }
        })
        .collect();
    levels.sort_by(|a, b| b.closed.cmp(&a.closed).then_with(|| a.level.cmp(&b.level)));
    levels.truncate(MAX_LEVELS);
    levels
}

/// A measure's chart.
pub struct MeasureChart {
    title: &'static str,
    svg: String,
}

/// One level's win rate.
pub struct LevelRow {
    level: String,
    closed: String,
    win_rate: String,
}

/// One at-risk deal.
pub struct RiskRow {
    href: String,
    name: String,
    owner: String,
    value: String,
    signals: String,
}

#[derive(Template)]
#[template(path = "web/process.html")]
struct ProcessPage {
    ui: Ui,
    by_role: bool,
    charts: Vec<MeasureChart>,
    win_rates: Vec<LevelRow>,
    win_rate_chart: String,
    open_deals: String,
    at_risk_deals: String,
    risks: Vec<RiskRow>,
}

const MEASURE_KEYS: [&str; 3] = [
    "measure.cycle_days",
    "measure.interactions",
    "measure.response_hours",
];

fn signal_text(t: Text, s: &at_risk::Signal, lang: Lang) -> String {
    let (value, reference) = (
        format::quantity(s.value, lang),
        format::quantity(s.reference, lang),
    );
    // Which closed deals the threshold comes from: the deal's sector's, or all of them.
    let group = match s.reference_group.strip_prefix("sector:") {
        Some(sector) => format!("{} {sector}", t.get("risk.closed_sector")),
        None => t.get("risk.closed_all").to_owned(),
    };
    let (measure, unit) = match s.measure.as_str() {
        "response_hours" => ("risk.response_hours", "h"),
        "days_since_last_interaction" => ("risk.silence", t.get("risk.days")),
        _ => ("risk.age", t.get("risk.days")),
    };
    // "Response time: 40 h, above 12 h (closed deals in software above it: 9% won, 31% below)".
    format!(
        "{}{}{value}\u{A0}{unit}, {} {reference}\u{A0}{unit} ({group} {}{}{} {}, {} {})",
        t.get(measure),
        t.colon(),
        t.get("risk.above"),
        t.get("risk.above_it"),
        t.colon(),
        format::percent(s.win_rate_beyond, 0, lang),
        t.get("risk.won"),
        format::percent(s.win_rate_within, 0, lang),
        t.get("risk.below"),
    )
}

/// `GET /process`.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    cache: web::Data<InsightsCache>,
    memos: web::Data<PageMemos>,
    query: web::Query<ProcessQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let q = query.into_inner();
    let by_role = match non_empty(q.by).as_deref() {
        None | Some("sector") => false,
        Some("contact_role") => true,
        Some(other) => {
            return Err(PageError::new(
                lang,
                PageErrorKind::BadInput(format!("by `{other}`: sector or contact_role")),
            ))
        }
    };
    let owner = non_empty(q.owner);
    let answer = cache.snapshot_or_recent(&db).await.or_page(lang)?;
    let snapshot = answer.snapshot.clone();
    let now = to_epoch_ms(Utc::now());
    let key = format!("{by_role}|{}", owner.as_deref().unwrap_or(""));
    let stamp = snapshot.stamp;
    let computed = match memos.process.get(&key, stamp) {
        Some(hit) => hit,
        None => {
            let fresh = blocking(lang, move || {
                let names = FilterNames {
                    owner: owner.as_deref(),
                    ..FilterNames::default()
                };
                let risk = snapshot.at_risk(&DealFilter::new(&snapshot, &names), now, AT_RISK_ROWS);
                (by_level(&snapshot, by_role), risk)
            })
            .await?;
            let fresh = Arc::new(fresh);
            memos.process.put(key, stamp, fresh.clone());
            fresh
        }
    };
    let (levels, risk) = (&computed.0, &computed.1);
    let x: Vec<String> = levels.iter().map(|l| l.level.replace('_', " ")).collect();
    let charts = MEASURE_KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let series = |label: &str, class: &'static str, won: bool| Series {
                label: label.to_string(),
                class,
                values: levels
                    .iter()
                    .map(|l| {
                        let (w, lo) = l.medians[i];
                        (if won { w } else { lo }).unwrap_or(f64::NAN)
                    })
                    .collect(),
            };
            MeasureChart {
                title: t.get(key),
                svg: charts::bars_and_rates(
                    t.get(key),
                    &x,
                    &[
                        series(t.get("deal.won_median"), "s-won", true),
                        series(t.get("deal.lost_median"), "s-lost", false),
                    ],
                    &[],
                    &|v| format::number(v, 0, lang),
                    &|v| format::percent(v, 0, lang),
                ),
            }
        })
        .collect();
    let win_rate_chart = charts::bars_and_rates(
        t.get("kpi.win_rate"),
        &x,
        &[Series {
            label: t.get("kpi.win_rate").into(),
            class: "s-rate",
            values: levels
                .iter()
                .map(|l| ratio(l.won, l.closed).unwrap_or(f64::NAN))
                .collect(),
        }],
        &[],
        &|v| format::percent(v, 0, lang),
        &|v| format::percent(v, 0, lang),
    );
    let mut ui = Ui::new(&viewer, &req, Nav::Process);
    ui.note_stale(&answer);
    let page = ProcessPage {
        ui,
        by_role,
        charts,
        win_rates: levels
            .iter()
            .map(|l| LevelRow {
                level: l.level.replace('_', " "),
                closed: crate::i18n::format::count(l.closed, lang),
                win_rate: view::rate(ratio(l.won, l.closed), lang),
            })
            .collect(),
        win_rate_chart,
        open_deals: crate::i18n::format::count(risk.open_deals, lang),
        at_risk_deals: crate::i18n::format::count(risk.at_risk_deals, lang),
        risks: risk
            .deals
            .iter()
            .map(|d| RiskRow {
                href: format!("/deals/{}", url_encode(&d.external_id)),
                name: d.external_id.clone(),
                owner: d.owner.clone().unwrap_or_default(),
                value: view::money(d.value_at_stake, &d.currency, lang),
                signals: d
                    .signals
                    .iter()
                    .map(|s| signal_text(t, s, lang))
                    .collect::<Vec<_>>()
                    .join(" · "),
            })
            .collect(),
    };
    render(&req, lang, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_says_its_value_its_threshold_and_how_closed_deals_beyond_it_ended() {
        let signal = |measure: &str, value: f64, reference: f64, group: &str| at_risk::Signal {
            measure: measure.into(),
            value,
            reference,
            reference_group: group.into(),
            win_rate_beyond: 0.091,
            win_rate_within: 0.3125,
            closed_beyond: 240,
        };
        let response = signal("response_hours", 40.4, 11.96, "sector:software");
        assert_eq!(
            signal_text(Text(Lang::En), &response, Lang::En),
            "Response time: 40\u{A0}h, above 12\u{A0}h (closed deals in software above it: 9% won, \
             31% below)"
        );
        assert_eq!(
            signal_text(Text(Lang::Fr), &response, Lang::Fr),
            "Délai de réponse\u{202F}: 40\u{A0}h, au-dessus de 12\u{A0}h (affaires clôturées du secteur \
             software au-delà\u{202F}: 9\u{202F}% gagnées, 31\u{202F}% en deçà)"
        );
        let age = signal("age_days", 1234.0, 95.2, "all");
        assert_eq!(
            signal_text(Text(Lang::En), &age, Lang::En),
            "Open for: 1,234\u{A0}days, above 95\u{A0}days (closed deals above it: 9% won, 31% below)"
        );
        let silence = signal("days_since_last_interaction", 9.46, 4.0, "all");
        assert_eq!(
            signal_text(Text(Lang::Fr), &silence, Lang::Fr),
            "Sans interaction\u{202F}: 9,5\u{A0}jours, au-dessus de 4\u{A0}jours (affaires clôturées \
             au-delà\u{202F}: 9\u{202F}% gagnées, 31\u{202F}% en deçà)"
        );
    }
}
