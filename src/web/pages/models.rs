//! Models (analyst): versions with status and headline metrics; per version the reliability
//! chart, the ROC curve and the factor effects; comparison of two versions; activation and
//! rollback; training runs with live progress; the last drift check.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{non_empty, CsrfForm};
use crate::auth::Role;
use crate::drift::psi::DriftLevel;
use crate::drift::DriftGauges;
use crate::i18n::{format, Lang};
use crate::lifecycle::gate::{GateDecision, GateOutcome};
use crate::lifecycle::registry::{activate_version, compare_versions, headline, load_verified};
use crate::lifecycle::runner::{TrainRequest, Trainer};
use crate::model::ModelArtifact;
use crate::serving::ActiveModel;
use crate::store::models::{self, ModelStatus};
use crate::store::training_runs::{self, CreateError, RunState};
use crate::store::Db;
use crate::web::charts::{self, Curve, Diverging};
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, see_other, url_encode, view, Nav, Ui};

/// One version in the list.
pub struct VersionRow {
    version: String,
    href: String,
    status: &'static str,
    active: bool,
    created: String,
    auc: String,
    brier: String,
    rows: String,
    activate_label: Option<&'static str>,
    activate_action: String,
}

/// One training run in the list.
pub struct RunRow {
    href: String,
    id: String,
    state: &'static str,
    created: String,
    version: String,
}

/// One feature's drift.
pub struct DriftRow {
    population: String,
    feature: String,
    psi: String,
    level: &'static str,
}

#[derive(Template)]
#[template(path = "web/models.html")]
struct ModelsPage {
    ui: Ui,
    versions: Vec<VersionRow>,
    runs: Vec<RunRow>,
    drift_at: Option<String>,
    drift_of: Option<String>,
    drift: Vec<DriftRow>,
    version_names: Vec<String>,
    notice: Option<&'static str>,
}

fn status_key(status: ModelStatus) -> &'static str {
    match status {
        ModelStatus::Candidate => "model.candidate",
        ModelStatus::Active => "model.active",
        ModelStatus::Retired => "model.retired",
    }
}

/// The button a version offers: none when active, a rollback when retired, else activation.
fn activate_label(status: ModelStatus, t: Text) -> Option<&'static str> {
    match status {
        ModelStatus::Active => None,
        ModelStatus::Retired => Some(t.get("model.rollback")),
        ModelStatus::Candidate => Some(t.get("model.activate")),
    }
}

fn run_state_key(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "run.queued",
        RunState::Running => "run.running",
        RunState::Succeeded => "run.succeeded",
        RunState::Failed => "run.failed",
        RunState::Unchanged => "run.unchanged",
    }
}

/// A training run's phase in the reader's language; a phase this build does not know is shown
/// as recorded.
fn phase_text(phase: &str, t: Text) -> String {
    let key = match phase {
        "queued" => "phase.queued",
        "loading" => "phase.loading",
        "cross_validation" => "phase.cross_validation",
        "holdout_fit" => "phase.holdout_fit",
        "final_fit" => "phase.final_fit",
        "gate" => "phase.gate",
        "done" => "phase.done",
        "failed" => "phase.failed",
        other => return other.replace('_', " "),
    };
    t.get(key).to_owned()
}

fn drift_key(level: Option<DriftLevel>) -> &'static str {
    match level {
        Some(DriftLevel::Ok) => "drift.ok",
        Some(DriftLevel::Watch) => "drift.watch",
        Some(DriftLevel::Alert) => "drift.alert",
        None => "drift.none",
    }
}

fn metric(value: Option<f64>, lang: Lang) -> String {
    value.map_or_else(|| "–".into(), |v| format::number(v, 3, lang))
}

/// Query of the list: a notice to show after an action.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

/// `GET /models`.
pub async fn list(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    gauges: web::Data<DriftGauges>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let stored = models::list_with_artifacts(&db).await.or_page(lang)?;
    let heads = blocking(lang, move || {
        stored
            .into_iter()
            .map(|(record, json)| (headline(&json), record))
            .collect::<Vec<_>>()
    })
    .await?;
    let versions: Vec<VersionRow> = heads
        .into_iter()
        .map(|(head, r)| VersionRow {
            href: format!("/models/{}", url_encode(&r.version)),
            activate_action: format!("/models/{}/activate", url_encode(&r.version)),
            activate_label: activate_label(r.status, t),
            status: t.get(status_key(r.status)),
            active: r.status == ModelStatus::Active,
            created: format::timestamp(r.created_at, lang),
            auc: metric(head.as_ref().map(|h| h.roc_auc), lang),
            brier: metric(head.as_ref().map(|h| h.brier), lang),
            rows: format::number(r.train_rows as f64, 0, lang),
            version: r.version,
        })
        .collect();
    let runs = training_runs::list(&db, 10)
        .await
        .or_page(lang)?
        .into_iter()
        .map(|r| RunRow {
            href: format!("/models/runs/{}", url_encode(&r.id)),
            state: t.get(run_state_key(r.state)),
            created: format::timestamp(r.created_at, lang),
            version: r.version.unwrap_or_default(),
            id: r.id,
        })
        .collect();
    // A check of another version (the one active before an activation on another server, until
    // its refresher catches up) is not shown as the active version's.
    let active = versions.iter().find(|v| v.active).map(|v| v.version.clone());
    let last = gauges
        .last()
        .filter(|r| Some(&r.model_version) == active.as_ref());
    let drift = last
        .iter()
        .flat_map(|report| {
            report.populations.iter().flat_map(move |p| {
                p.features.iter().map(move |f| DriftRow {
                    population: t.get(&format!("drift.pop.{}", p.population.as_str())).to_owned(),
                    feature: crate::scoring::feature_name_label(&f.feature, lang),
                    psi: metric(f.psi, lang),
                    level: t.get(drift_key(f.level)),
                })
            })
        })
        .collect();
    let notice = match query.notice.as_deref() {
        Some("activated") => Some(t.get("model.activated")),
        _ => None,
    };
    let page = ModelsPage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        version_names: versions.iter().map(|v| v.version.clone()).collect(),
        versions,
        runs,
        drift_at: last.as_ref().map(|r| format::timestamp(r.computed_at, lang)),
        drift_of: last.map(|r| r.model_version.clone()),
        drift,
        notice,
    };
    render(&req, lang, &page)
}

/// One metric of a version.
pub struct MetricRow {
    name: &'static str,
    holdout: String,
    baseline: String,
}

/// A backtest as shown: the headline figures, then calibration by age at the instant.
pub struct BacktestView {
    as_of: String,
    summary: String,
    figures: Vec<(&'static str, String)>,
    bands: Vec<(String, String, String, String)>,
}

/// The backtests of a version, figures written for `lang`.
fn backtest_views(a: &ModelArtifact, lang: Lang) -> Vec<BacktestView> {
    let t = Text(lang);
    let figure =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "–".to_owned(), |v| format::number(v, digits, lang));
    let share = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| view::probability(v, lang));
    a.backtests
        .iter()
        .map(|b| BacktestView {
            as_of: format::timestamp_date(b.as_of, lang),
            summary: format::join_parts(&[
                format::label_value(
                    t.get("backtest.open_deals"),
                    &format::count(b.open_deals as u64, lang),
                    lang,
                ),
                format::label_value(t.get("backtest.won"), &format::count(b.won as u64, lang), lang),
                format::label_value(
                    t.get("backtest.with_history"),
                    &format::count(b.with_history as u64, lang),
                    lang,
                ),
            ]),
            figures: vec![
                (t.get("metric.roc_auc"), figure(b.roc_auc, 3)),
                (t.get("metric.brier"), figure(b.brier, 3)),
                (t.get("backtest.mean_probability"), share(b.mean_probability)),
                (t.get("backtest.win_rate"), share(b.win_rate)),
            ],
            bands: b
                .by_age
                .iter()
                .filter(|band| band.deals > 0)
                .map(|band| {
                    let ages = match band.to_days {
                        Some(to) => format!("{}–{to}", band.from_days),
                        None => format!("{}+", band.from_days),
                    };
                    (
                        ages,
                        format::count(band.deals as u64, lang),
                        share(band.mean_probability),
                        share(band.win_rate),
                    )
                })
                .collect(),
        })
        .collect()
}

/// A feature's effects chart.
pub struct EffectChart {
    feature: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "web/model.html")]
struct ModelPage {
    ui: Ui,
    version: String,
    status: &'static str,
    created: String,
    train_rows: String,
    holdout_rows: String,
    backtests: Vec<BacktestView>,
    /// Where grades cut with this model, in a sentence.
    grade_cuts: String,
    metrics: Vec<MetricRow>,
    calibration_chart: String,
    roc_chart: Option<String>,
    effects: Vec<EffectChart>,
    activations: Vec<(String, String, String)>,
    activate_label: Option<&'static str>,
    activate_action: String,
}

/// "Grade cut points (quartiles of the 4,000 deals open at training): A ≥ 31 %, B ≥ 22 %, C ≥ 15 %".
fn grade_cuts_text(cuts: Option<&crate::model::cuts::CutPoints>, t: Text) -> String {
    let lang = t.0;
    let Some(cuts) = cuts else {
        return format!(
            "{}{}{}",
            t.get("model.grade_cuts"),
            t.colon(),
            t.get("model.grade_cuts_fixed")
        );
    };
    let basis = match cuts.basis.as_str() {
        "open" => t.get("model.grade_cuts_open"),
        _ => t.get("model.grade_cuts_holdout"),
    };
    let [a, b, c] = crate::scoring::cuts::grade_probabilities(cuts);
    format!(
        "{} ({basis}, {}){}A ≥ {}, B ≥ {}, C ≥ {}",
        t.get("model.grade_cuts"),
        format::count(cuts.deals as u64, lang),
        t.colon(),
        format::percent(a, 0, lang),
        format::percent(b, 0, lang),
        format::percent(c, 0, lang),
    )
}

/// `GET /models/{version}`.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let t = Text(lang);
    let version = path.into_inner();
    let (record, a) = load_verified(&db, &version).await.or_page(lang)?;
    let activations = models::activations(&db, Some(&version), 20).await.or_page(lang)?;
    let (h, b) = (&a.holdout_metrics, &a.baseline_metrics);
    type Get = fn(&crate::model::Metrics) -> f64;
    let rows: [(&str, Get); 5] = [
        ("metric.roc_auc", |m| m.roc_auc),
        ("metric.pr_auc", |m| m.pr_auc),
        ("metric.log_loss", |m| m.log_loss),
        ("metric.brier", |m| m.brier),
        ("metric.top_decile_lift", |m| m.top_decile_lift),
    ];
    let metrics = rows
        .iter()
        .map(|(key, get)| MetricRow {
            name: t.get(key),
            holdout: format::number(get(h), 3, lang),
            baseline: format::number(get(b), 3, lang),
        })
        .collect();
    let calibration: Vec<(f64, f64)> = h
        .calibration
        .iter()
        .filter_map(|bin| Some((bin.mean_predicted?, bin.observed_win_rate?)))
        .collect();
    let calibration_chart = charts::unit_square(
        t.get("model.calibration"),
        t.get("model.predicted"),
        t.get("model.observed"),
        &[Curve {
            name: t.get("model.holdout").to_string(),
            class: "s-score",
            points: calibration,
        }],
        true,
        &|v| format::number(v, 2, lang),
    );
    let roc_chart = (!h.roc_curve.is_empty()).then(|| {
        charts::unit_square(
            t.get("model.roc"),
            t.get("model.fpr"),
            t.get("model.tpr"),
            &[Curve {
                name: t.get("model.holdout").to_string(),
                class: "s-score",
                points: h.roc_curve.iter().map(|p| (p.fpr, p.tpr)).collect(),
            }],
            false,
            &|v| format::number(v, 2, lang),
        )
    });
    let mut factors: Vec<&crate::model::SuccessFactor> = a.success_factors.iter().collect();
    factors.sort_by(|x, y| y.importance.total_cmp(&x.importance));
    // One scale for every factor, so a level's bar length compares across charts.
    let scale = factors
        .iter()
        .flat_map(|f| f.levels.iter().map(|l| l.coefficient.abs()))
        .filter(|c| c.is_finite())
        .fold(0.0, f64::max);
    let effects = factors
        .iter()
        .map(|f| EffectChart {
            feature: crate::scoring::feature_name_label(&f.feature, lang),
            svg: charts::diverging_on_scale(
                &format!(
                    "{} — {}",
                    t.get("model.effects"),
                    crate::scoring::feature_name_label(&f.feature, lang)
                ),
                &f.levels
                    .iter()
                    .map(|l| Diverging {
                        label: l.level.clone(),
                        value: l.coefficient,
                        value_text: format!("×{}", format::number(l.odds_ratio, 2, lang)),
                    })
                    .collect::<Vec<_>>(),
                t.get("deal.raises"),
                t.get("deal.lowers"),
                scale,
            ),
        })
        .collect();
    let page = ModelPage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        status: t.get(status_key(record.status)),
        created: format::timestamp(record.created_at, lang),
        train_rows: format::number(a.training.train_rows as f64, 0, lang),
        holdout_rows: format::number(a.training.holdout_rows as f64, 0, lang),
        backtests: backtest_views(&a, lang),
        grade_cuts: grade_cuts_text(a.cut_points.as_ref(), t),
        metrics,
        calibration_chart,
        roc_chart,
        effects,
        activations: activations
            .into_iter()
            .map(|x| (format::timestamp(x.activated_at, lang), x.activated_by, x.reason))
            .collect(),
        activate_label: activate_label(record.status, t),
        activate_action: format!("/models/{}/activate", url_encode(&version)),
        version,
    };
    render(&req, lang, &page)
}

/// `POST /models/{version}/activate`: activates, then checks the new version's drift so the
/// models page does not go on showing the previous version's.
pub async fn activate(
    viewer: Viewer,
    db: web::Data<Db>,
    serving: web::Data<ActiveModel>,
    gauges: web::Data<DriftGauges>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    viewer.check_csrf(&form.csrf)?;
    activate_version(&db, &serving, &path.into_inner(), &viewer.name)
        .await
        .or_page(viewer.lang)?;
    // The activation stands whatever the check gives; a model without a profile clears the gauges.
    if let Err(e) = gauges.refresh(&db, &serving).await {
        tracing::warn!(error = %e, "drift check after activation failed");
    }
    Ok(see_other("/models?notice=activated"))
}

/// Query of the comparison.
#[derive(Debug, Default, Deserialize)]
pub struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

/// One success factor's importance in both versions.
pub struct FactorCompareRow {
    feature: String,
    a: String,
    b: String,
    difference: String,
}

#[derive(Template)]
#[template(path = "web/compare.html")]
struct ComparePage {
    ui: Ui,
    a: String,
    b: String,
    holdout_of: String,
    rows: Vec<(String, String, String, String, &'static str)>,
    factors: Vec<FactorCompareRow>,
}

/// A signed difference with three decimals (`+0.012`).
fn signed_metric(value: f64, lang: Lang) -> String {
    format!(
        "{}{}",
        if value > 0.0 { "+" } else { "" },
        format::number(value, 3, lang)
    )
}

/// `GET /models/compare?a=&b=`.
pub async fn compare(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    query: web::Query<CompareQuery>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let q = query.into_inner();
    let (Some(a), Some(b)) = (non_empty(q.a), non_empty(q.b)) else {
        return Err(PageError::new(
            lang,
            PageErrorKind::BadInput(Text(lang).get("model.pick_two").into()),
        ));
    };
    let c = compare_versions(&db, &a, &b).await.or_page(lang)?;
    let t = Text(lang);
    let rows = c
        .metrics
        .iter()
        .map(|m| {
            let better = (m.difference > 0.0) == m.higher_is_better && m.difference != 0.0;
            (
                t.get(&format!("metric.{}", m.metric)).to_owned(),
                format::number(m.a, 3, lang),
                format::number(m.b, 3, lang),
                signed_metric(m.difference, lang),
                if m.difference == 0.0 {
                    "flat"
                } else if better {
                    "up"
                } else {
                    "down"
                },
            )
        })
        .collect();
    let mut factors: Vec<&crate::lifecycle::compare::FactorDiff> = c.factors.iter().collect();
    // Largest change first; factors only one version uses after those.
    factors.sort_by(|x, y| {
        let size = |f: &crate::lifecycle::compare::FactorDiff| f.difference.map_or(-1.0, f64::abs);
        size(y).total_cmp(&size(x))
    });
    let factors = factors
        .into_iter()
        .map(|f| FactorCompareRow {
            feature: crate::scoring::feature_name_label(&f.feature, lang),
            a: metric(f.a, lang),
            b: metric(f.b, lang),
            difference: f
                .difference
                .map_or_else(|| "–".into(), |d| signed_metric(d, lang)),
        })
        .collect();
    let page = ComparePage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        a: c.a,
        b: c.b,
        holdout_of: c.holdout_of,
        rows,
        factors,
    };
    render(&req, lang, &page)
}

/// The training form.
#[derive(Debug, Deserialize)]
pub struct TrainForm {
    #[serde(default)]
    csrf: String,
    since: Option<String>,
    until: Option<String>,
    force: Option<String>,
}

/// `POST /models/train`: starts a run and shows its progress.
pub async fn train(
    viewer: Viewer,
    trainer: web::Data<Trainer>,
    form: web::Form<TrainForm>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    viewer.check_csrf(&form.csrf)?;
    let lang = viewer.lang;
    let form = form.into_inner();
    let request = TrainRequest {
        since: non_empty(form.since),
        until: non_empty(form.until),
        force: form.force.is_some(),
        ..TrainRequest::default()
    };
    let plan = request.plan().or_page(lang)?;
    let trainer: Arc<Trainer> = trainer.into_inner();
    match trainer.submit(plan, "web", &viewer.name).await {
        Ok(run) => Ok(see_other(&format!("/models/runs/{}", url_encode(&run.id)))),
        Err(CreateError::Busy(id)) => Ok(see_other(&format!("/models/runs/{}", url_encode(&id)))),
        Err(CreateError::Db(e)) => Err(PageError::from_api(lang, e.into())),
    }
}

#[derive(Template)]
#[template(path = "web/run.html")]
struct RunPage {
    ui: Ui,
    id: String,
    state: &'static str,
    finished: bool,
    phase: String,
    done: i64,
    total: i64,
    version: Option<String>,
    error: Option<String>,
    gate: Option<GateView>,
}

/// The promotion gate's decision on a run, as the run page shows it.
pub struct GateView {
    outcome: &'static str,
    held: bool,
    /// `(label, value)` of each figure the decision was based on.
    figures: Vec<(&'static str, String)>,
}

fn gate_view(decision: &GateDecision, t: Text) -> GateView {
    let lang = t.0;
    let outcome = match decision.outcome {
        GateOutcome::FirstModel => "gate.first_model",
        GateOutcome::Activated => "gate.activated",
        GateOutcome::Held => "gate.held",
        GateOutcome::Forced => "gate.forced",
    };
    let mut figures = vec![(
        t.get("gate.candidate_auc"),
        format::number(decision.candidate_auc, 3, lang),
    )];
    if let Some(auc) = decision.active_auc {
        figures.push((t.get("gate.active_auc"), format::number(auc, 3, lang)));
        figures.push((
            t.get("gate.tolerance"),
            format::number(decision.auc_tolerance, 3, lang),
        ));
    }
    if let Some(age) = decision.active_age_days {
        figures.push((t.get("gate.active_age"), format::quantity(age, lang)));
        figures.push((
            t.get("gate.max_age"),
            format::quantity(decision.max_age_days, lang),
        ));
    }
    figures.push((
        t.get("model.holdout_rows"),
        format::count(decision.holdout_rows as u64, lang),
    ));
    // When both backtests judged the same deals, they decided: shown first.
    if let Some(b) = &decision.backtest {
        let backtest = [
            (t.get("gate.basis"), t.get("gate.basis_backtest").to_owned()),
            (
                t.get("gate.backtest_as_of"),
                format::date(b.as_of.date_naive(), lang),
            ),
            (
                t.get("gate.backtest_deals"),
                format::count(b.open_deals as u64, lang),
            ),
            (
                t.get("gate.candidate_backtest_auc"),
                format::number(b.candidate_auc, 3, lang),
            ),
            (
                t.get("gate.active_backtest_auc"),
                format::number(b.active_auc, 3, lang),
            ),
        ];
        figures.splice(0..0, backtest);
    }
    GateView {
        outcome: t.get(outcome),
        held: decision.outcome == GateOutcome::Held,
        figures,
    }
}

/// `GET /models/runs/{id}`: refreshes itself while the run is queued or running.
pub async fn run(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    let lang = viewer.lang;
    let id = path.into_inner();
    let run = training_runs::get(&db, &id).await.or_page(lang)?.ok_or_else(|| {
        PageError::new(
            lang,
            PageErrorKind::NotFound(format!("{} `{id}`", Text(lang).get("run.none"))),
        )
    })?;
    let page = RunPage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        state: Text(lang).get(run_state_key(run.state)),
        finished: matches!(
            run.state,
            RunState::Succeeded | RunState::Failed | RunState::Unchanged
        ),
        phase: phase_text(&run.progress.phase, Text(lang)),
        done: run.progress.done,
        total: run.progress.total.max(1),
        version: run.version,
        error: run.error,
        // A decision this build cannot read is left out rather than failing the page.
        gate: run
            .gate
            .and_then(|g| serde_json::from_value::<GateDecision>(g).ok())
            .map(|g| gate_view(&g, Text(lang))),
        id: run.id,
    };
    render(&req, lang, &page)
}
