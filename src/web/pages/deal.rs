//! The deal page: score and grade, score history, factors, the next intervention, the deal's
//! measures beside the won-deal references, recent activities.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::config::Settings;
use crate::features::spec::{CoreField, Source};
use crate::features::{observe, Encoder};
use crate::i18n::{format, Lang};
use crate::lifecycle::registry::active_model;
use crate::model::ModelArtifact;
use crate::scoring::{score, Direction, RankBy, ScoringConfig};
use crate::serving::ActiveModel;
use crate::store::{activities, opportunities, scores, Db};
use crate::web::charts::{self, Diverging, Series};
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{render, view, Nav, Ui};

/// Most stored scores drawn in the history chart.
const HISTORY: i64 = 30;
/// Most activities listed.
const ACTIVITIES: usize = 10;

/// A factor line.
pub struct FactorRow {
    raises: bool,
    message: String,
}

/// An intervention as shown.
pub struct InterventionView {
    message: String,
    before: String,
    after: String,
    uplift: String,
}

/// One measure of the deal beside the references.
pub struct MeasureRow {
    label: &'static str,
    deal: String,
    won: String,
    lost: String,
}

/// One recorded score change and what moved it.
pub struct MoveRow {
    when: String,
    from: String,
    to: String,
    why: String,
}

/// One recent activity.
pub struct ActivityRow {
    when: String,
    kind: String,
    direction: String,
}

#[derive(Template)]
#[template(path = "web/deal.html")]
struct DealPage {
    ui: Ui,
    name: String,
    /// Account, owner, stage and amount, the ones the deal has.
    sub: String,
    score: u8,
    grade: &'static str,
    grade_class: &'static str,
    probability: String,
    trend_arrow: &'static str,
    trend: &'static str,
    focus: &'static str,
    focus_line: String,
    history_chart: String,
    moves: Vec<MoveRow>,
    factors_chart: String,
    factors: Vec<FactorRow>,
    next: Option<InterventionView>,
    alternatives: Vec<InterventionView>,
    measures: Vec<MeasureRow>,
    activities: Vec<ActivityRow>,
    model_version: String,
}

/// Most score changes listed under the history chart.
const MOVES: usize = 5;

/// The latest score changes (newest first), each with what moved it: the fields that changed,
/// the activities that happened, a new model.
fn moves(history: &[scores::ExplainedScore], lang: Lang) -> Vec<MoveRow> {
    let t = Text(lang);
    let shown = |s: &scores::StoredScore| format!("{} {}", s.grade, s.score);
    history
        .windows(2)
        .filter_map(|pair| {
            let (entry, before) = (&pair[0], &pair[1]);
            let moved = entry.since_previous.as_ref()?;
            let mut parts: Vec<String> = Vec::new();
            if !moved.fields.is_empty() {
                let names: Vec<String> = moved
                    .fields
                    .iter()
                    .map(|f| {
                        let feature = f.replacen(crate::domain::history::ATTRIBUTE_PREFIX, "attr.", 1);
                        crate::scoring::feature_name_label(&feature, lang)
                    })
                    .collect();
                parts.push(format::label_value(
                    t.get("deal.moved_fields"),
                    &names.join(", "),
                    lang,
                ));
            }
            if moved.activities > 0 {
                parts.push(format::label_value(
                    t.get("deal.moved_activities"),
                    &format::count(moved.activities, lang),
                    lang,
                ));
            }
            if moved.previous_model_version.is_some() {
                parts.push(format::label_value(
                    t.get("deal.moved_model"),
                    &entry.score.model_version,
                    lang,
                ));
            }
            if parts.is_empty() {
                parts.push(t.get("deal.moved_nothing").to_owned());
            }
            Some(MoveRow {
                when: format::timestamp_date(entry.score.scored_at, lang),
                from: shown(&before.score),
                to: shown(&entry.score),
                why: format::join_parts(&parts),
            })
        })
        .take(MOVES)
        .collect()
}

fn measure_label(source: &Source<'_>) -> Option<&'static str> {
    match source {
        Source::Core(CoreField::CycleDays) => Some("measure.cycle_days"),
        Source::Core(CoreField::InteractionCount) => Some("measure.interactions"),
        Source::Core(CoreField::ResponseHours) => Some("measure.response_hours"),
        _ => None,
    }
}

/// The deal's cycle, interactions and response time beside the won and lost medians of its
/// sector (or of all deals when the sector has too few won deals), as the model saw them.
fn measures(
    artifact: &ModelArtifact,
    opp: &crate::domain::Opportunity,
    config: &ScoringConfig,
    lang: Lang,
) -> Vec<MeasureRow> {
    let t = Text(lang);
    let now = Utc::now();
    let show = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format::number(v, 1, lang));
    artifact
        .features
        .features
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.encoder, Encoder::Numeric(_)))
        .filter_map(|(i, f)| {
            let label = measure_label(&f.def.source())?;
            let reference = artifact
                .success_factors
                .get(i)?
                .numeric
                .as_ref()?
                .for_sector(opp.sector.as_deref(), config.min_sector_won);
            Some(MeasureRow {
                label: t.get(label),
                deal: show(observe(f, opp, now).raw),
                won: show(reference.won.as_ref().map(|q| q.median)),
                lost: show(reference.lost.as_ref().map(|q| q.median)),
            })
        })
        .collect()
}

/// A factor's value as the chart shows it: a contact role by its name in the reader's language,
/// anything else as the factor's sentence writes it.
fn factor_value(f: &crate::scoring::Factor, deal: &crate::domain::Deal, lang: Lang) -> String {
    match f.feature.as_str() {
        "contact_role" => crate::scoring::level_label(&f.feature, &f.value, lang),
        // An amount means little without its currency.
        "amount" => deal
            .amount
            .map_or_else(|| f.value.clone(), |a| format::money(a, &deal.currency, lang)),
        _ => f.value.clone(),
    }
}

/// `GET /deals/{external_id}`.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lang = viewer.lang;
    let t = Text(lang);
    let external_id = path.into_inner();
    // Another owner's deal is "not found", like an unknown id: its existence is not told.
    let stored = opportunities::get_in_scope(&db, &external_id, &viewer.scope)
        .await
        .or_page(lang)?
        .ok_or_else(|| {
            PageError::new(
                lang,
                PageErrorKind::NotFound(format!("{} `{external_id}`", t.get("deal.none"))),
            )
        })?;
    let model = active_model(&holder).or_page(lang)?;
    let explained = scores::history_explained(&db, stored.id, HISTORY)
        .await
        .or_page(lang)?;
    let moves = moves(&explained, lang);
    let mut history: Vec<scores::StoredScore> = explained.into_iter().map(|e| e.score).collect();
    history.reverse();
    let previous = history.last().map(|s| s.score.clamp(0, 100) as u8);
    let config = settings.scoring.clone();
    let opp = stored.opportunity;
    let result = score(
        &model,
        &config,
        &opp,
        Utc::now(),
        previous,
        RankBy::Probability,
        lang,
    );
    let mut recent = activities::list_for(&db, &external_id).await.or_page(lang)?;
    recent.sort_by_key(|a| std::cmp::Reverse(a.occurred_at));
    recent.truncate(ACTIVITIES);

    let mut labels: Vec<String> = history
        .iter()
        .map(|s| format::timestamp_date(s.scored_at, lang))
        .collect();
    let mut values: Vec<f64> = history.iter().map(|s| s.score as f64).collect();
    labels.push(t.get("deal.now").to_string());
    values.push(f64::from(result.score));
    let history_chart = charts::line(
        t.get("deal.history"),
        &labels,
        &Series {
            label: t.get("deal.score").into(),
            class: "s-score",
            values,
        },
        100.0,
        &|v| format::number(v, 0, lang),
    );
    let bars: Vec<Diverging> = result
        .factors
        .iter()
        .map(|f| Diverging {
            label: format::label_value(
                &crate::scoring::feature_name_label(&f.feature, lang),
                &factor_value(f, &opp, lang),
                lang,
            ),
            value: f.contribution,
            value_text: format!(
                "{}{}",
                if f.contribution >= 0.0 { "+" } else { "" },
                format::number(f.contribution, 2, lang)
            ),
        })
        .collect();
    let factors_chart = charts::diverging(
        t.get("deal.factors"),
        &bars,
        t.get("deal.raises"),
        t.get("deal.lowers"),
    );
    let intervention = |i: &crate::scoring::Intervention| InterventionView {
        message: i.message.clone(),
        before: view::probability(result.probability, lang),
        after: view::probability(i.probability_after, lang),
        uplift: view::points(Some(i.uplift), lang),
    };
    let (trend_arrow, trend_key) = view::trend(result.trend);
    let focus = t.get(view::focus_key(result.focus));
    let page = DealPage {
        ui: Ui::new(&viewer, &req, Nav::Deals),
        name: opp.name.clone().unwrap_or_else(|| opp.external_id.to_string()),
        sub: format::join_parts(&[
            opp.account.clone().unwrap_or_default(),
            opp.owner.clone().unwrap_or_default(),
            opp.stage.clone().unwrap_or_default(),
            opp.amount
                .map(|a| format::money(a, &opp.currency, lang))
                .unwrap_or_default(),
        ]),
        focus_line: format::label_value(t.get("deals.focus"), focus, lang),
        score: result.score,
        grade: result.grade.as_str(),
        grade_class: view::grade_class(result.grade),
        probability: view::probability(result.probability, lang),
        trend_arrow,
        trend: t.get(trend_key),
        focus,
        history_chart,
        moves,
        factors_chart,
        factors: result
            .factors
            .iter()
            .map(|f| FactorRow {
                raises: f.direction == Direction::Raises,
                message: f.message.clone(),
            })
            .collect(),
        next: result.next_intervention.as_ref().map(intervention),
        alternatives: result.alternatives.iter().map(intervention).collect(),
        measures: measures(&model, &opp, &config, lang),
        activities: recent
            .iter()
            .map(|a| ActivityRow {
                when: format::timestamp(a.occurred_at, lang),
                kind: t.get(&format!("activity.{}", a.kind.as_str())).to_string(),
                direction: t.get(&format!("activity.{}", a.direction.as_str())).to_string(),
            })
            .collect(),
        model_version: result.model_version.clone(),
    };
    render(&req, lang, &page)
}
