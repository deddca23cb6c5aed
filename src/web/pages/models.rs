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
use crate::lifecycle::registry::{activate_version, compare_versions, headline, load_verified};
use crate::lifecycle::runner::{TrainRequest, Trainer};
use crate::serving::ActiveModel;
use crate::store::models::{self, ModelStatus};
use crate::store::training_runs::{self, CreateError, RunState};
use crate::store::Db;
use crate::web::charts::{self, Curve, Diverging};
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::session::Viewer;
use crate::web::text::Text;
use crate::web::{blocking, render, see_other, url_encode, Nav, Ui};

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
    }
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
    let last = gauges.last();
    let drift = last
        .iter()
        .flat_map(|report| {
            report.populations.iter().flat_map(move |p| {
                p.features.iter().map(move |f| DriftRow {
                    population: p.population.as_str().replace('_', " "),
                    feature: f.feature.clone(),
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
        drift_at: last.map(|r| format::timestamp(r.computed_at, lang)),
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
    metrics: Vec<MetricRow>,
    calibration_chart: String,
    roc_chart: Option<String>,
    effects: Vec<EffectChart>,
    activations: Vec<(String, String, String)>,
    activate_label: Option<&'static str>,
    activate_action: String,
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
        ("ROC AUC", |m| m.roc_auc),
        ("PR AUC", |m| m.pr_auc),
        ("Log loss", |m| m.log_loss),
        ("Brier", |m| m.brier),
        ("Top-decile lift", |m| m.top_decile_lift),
    ];
    let metrics = rows
        .iter()
        .map(|(name, get)| MetricRow {
            name,
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
    let effects = factors
        .iter()
        .map(|f| EffectChart {
            feature: f.feature.replace('_', " "),
            svg: charts::diverging(
                &format!("{} — {}", t.get("model.effects"), f.feature),
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
            ),
        })
        .collect();
    let page = ModelPage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        status: t.get(status_key(record.status)),
        created: format::timestamp(record.created_at, lang),
        train_rows: format::number(a.training.train_rows as f64, 0, lang),
        holdout_rows: format::number(a.training.holdout_rows as f64, 0, lang),
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

/// `POST /models/{version}/activate`.
pub async fn activate(
    viewer: Viewer,
    db: web::Data<Db>,
    serving: web::Data<ActiveModel>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Analyst)?;
    viewer.check_csrf(&form.csrf)?;
    activate_version(&db, &serving, &path.into_inner(), &viewer.name)
        .await
        .or_page(viewer.lang)?;
    Ok(see_other("/models?notice=activated"))
}

/// Query of the comparison.
#[derive(Debug, Default, Deserialize)]
pub struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

#[derive(Template)]
#[template(path = "web/compare.html")]
struct ComparePage {
    ui: Ui,
    a: String,
    b: String,
    holdout_of: String,
    rows: Vec<(String, String, String, String, &'static str)>,
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
    let rows = c
        .metrics
        .iter()
        .map(|m| {
            let better = (m.difference > 0.0) == m.higher_is_better && m.difference != 0.0;
            (
                m.metric.clone(),
                format::number(m.a, 3, lang),
                format::number(m.b, 3, lang),
                format!(
                    "{}{}",
                    if m.difference > 0.0 { "+" } else { "" },
                    format::number(m.difference, 3, lang)
                ),
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
    let page = ComparePage {
        ui: Ui::new(&viewer, &req, Nav::Models),
        a: c.a,
        b: c.b,
        holdout_of: c.holdout_of,
        rows,
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
        finished: matches!(run.state, RunState::Succeeded | RunState::Failed),
        phase: run.progress.phase.replace('_', " "),
        done: run.progress.done,
        total: run.progress.total.max(1),
        version: run.version,
        error: run.error,
        id: run.id,
    };
    render(&req, lang, &page)
}
