//! "Team": a manager's reps, each with the size, expected value and grades of their open-deal
//! list and a link to it.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::Role;
use crate::config::Settings;
use crate::i18n::format;
use crate::ranking::{self, OwnerSummary};
use crate::serving::ActiveModel;
use crate::store::scope::Scope;
use crate::store::Db;
use crate::web::error::PageError;
use crate::web::session::Viewer;
use crate::web::{render, url_encode, view, Nav, Ui};

/// One rep (or the team's total) as shown.
pub struct RepRow {
    name: String,
    /// Their list (`/deals?owner=…`); none for the total.
    href: Option<String>,
    open: String,
    expected_value: String,
    grades: [String; 4],
    prioritize: String,
}

#[derive(Template)]
#[template(path = "web/team.html")]
struct TeamPage {
    ui: Ui,
    reps: Vec<RepRow>,
    total: RepRow,
    stale_since: Option<String>,
}

fn row(summary: &OwnerSummary, name: String, href: Option<String>, lang: crate::i18n::Lang) -> RepRow {
    let n = |v: usize| format::count(v as u64, lang);
    RepRow {
        name,
        href,
        open: n(summary.open),
        expected_value: view::money_by_currency(&summary.expected_value, lang).unwrap_or_else(|| "–".into()),
        grades: summary.grades.map(n),
        prioritize: n(summary.prioritize),
    }
}

/// `GET /team`: for managers (their team: the owners of their key, or their region) and
/// analysts (every rep). A rep is shown the "not for your role" page.
pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    cache: web::Data<ranking::PriorityCache>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Role::Manager)?;
    let lang = viewer.lang;
    let t = crate::web::text::Text(lang);
    let answer = super::deals::scored(&viewer, &db, &holder, &settings, &cache).await?;
    let members: &[String] = match &viewer.scope {
        Scope::Owners(names) => names,
        Scope::All | Scope::Region(_) => &[],
    };
    let admitted = answer
        .list
        .items
        .iter()
        .filter(|i| viewer.scope.admits(i.owner.as_deref(), i.region.as_deref()));
    let (reps, total) = ranking::by_owner(admitted, members);
    let page = TeamPage {
        ui: Ui::new(&viewer, &req, Nav::Team),
        reps: reps
            .iter()
            .map(|r| {
                let href = format!("/deals?owner={}", url_encode(&r.owner));
                row(r, r.owner.clone(), Some(href), lang)
            })
            .collect(),
        total: row(&total, t.get("team.total").to_string(), None, lang),
        stale_since: answer
            .stale
            .then(|| format::timestamp(answer.list.built_at, lang)),
    };
    render(&req, lang, &page)
}
