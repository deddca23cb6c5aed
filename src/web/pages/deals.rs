//! "My deals": open deals in priority order, filtered and paginated.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::non_empty;
use crate::config::Settings;
use crate::lifecycle::registry::active_model;
use crate::ranking::{self, PriorityQuery, Search, SearchRefused, SortKey};
use crate::scoring::{Focus, Grade};
use crate::serving::ActiveModel;
use crate::store::opportunities::ListFilter;
use crate::store::Db;
use crate::web::error::{OrPage, PageError, PageErrorKind};
use crate::web::session::Viewer;
use crate::web::{render, url_encode, view, Nav, Ui};

/// Rows per page.
pub const PAGE_SIZE: usize = 25;
/// Oldest list shown while a newer one is built after a write (the page says so).
const MAX_STALE: std::time::Duration = std::time::Duration::from_secs(300);

/// Filters of the list (every field optional; empty means "any").
#[derive(Debug, Default, Deserialize)]
pub struct DealsQuery {
    owner: Option<String>,
    region: Option<String>,
    sector: Option<String>,
    grade: Option<String>,
    focus: Option<String>,
    sort: Option<String>,
    search: Option<String>,
    page: Option<usize>,
}

/// One row as shown.
pub struct Row {
    href: String,
    name: String,
    account: String,
    owner: String,
    amount: String,
    expected_value: String,
    score: u8,
    grade: &'static str,
    grade_class: &'static str,
    trend_arrow: &'static str,
    trend: &'static str,
    focus: &'static str,
    next: String,
}

/// A filter's `<select>`: name, label key, options `(value, label, selected)`.
pub struct Select {
    name: &'static str,
    label: &'static str,
    options: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "web/deals.html")]
struct DealsPage {
    ui: Ui,
    selects: Vec<Select>,
    /// The search text as typed.
    search: String,
    /// This page as CSV (`/deals.csv` with the same query).
    csv: String,
    rows: Vec<Row>,
    /// The number of deals, as the language writes a count (`4,000`).
    total_text: String,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    /// "as of" time when the list predates the last write.
    stale_since: Option<String>,
}

const FOCUSES: [Focus; 4] = [
    Focus::Prioritize,
    Focus::Secure,
    Focus::Nurture,
    Focus::Deprioritize,
];

fn select(
    name: &'static str,
    label: &'static str,
    any: &str,
    values: Vec<(String, String)>,
    chosen: Option<&str>,
) -> Select {
    let mut options = vec![(String::new(), any.to_string(), chosen.is_none())];
    options.extend(values.into_iter().map(|(value, text)| {
        let selected = chosen == Some(value.as_str());
        (value, text, selected)
    }));
    Select { name, label, options }
}

/// The list a query asks for: its filters, read and checked, and the page wanted.
struct Listing {
    request: PriorityQuery,
    owner: Option<String>,
    region: Option<String>,
    sector: Option<String>,
    search: Option<String>,
    page: Option<usize>,
}

impl Listing {
    fn parse(q: DealsQuery, viewer: &Viewer) -> Result<Listing, PageError> {
        let lang = viewer.lang;
        let bad = |message: String| PageError::new(lang, PageErrorKind::BadInput(message));
        let grade = match non_empty(q.grade) {
            None => None,
            Some(g) => Some(Grade::parse(&g).ok_or_else(|| bad(format!("grade `{g}`: A, B, C or D")))?),
        };
        let focus = match non_empty(q.focus) {
            None => None,
            Some(f) => Some(FOCUSES.into_iter().find(|x| x.as_str() == f).ok_or_else(|| {
                bad(format!(
                    "focus `{f}`: prioritize, secure, nurture or deprioritize"
                ))
            })?),
        };
        let sort = match non_empty(q.sort) {
            None => SortKey::Value,
            Some(s) => {
                SortKey::parse(&s).ok_or_else(|| bad(format!("sort `{s}`: value, score or uplift")))?
            }
        };
        let search_text = non_empty(q.search.map(|s| s.trim().to_string()));
        let search = Search::parse(search_text.as_deref().unwrap_or_default()).map_err(|refused| {
            let max = Search::MAX_CHARS;
            bad(match refused {
                SearchRefused::TooLong => format!("search: at most {max} characters"),
                SearchRefused::ControlCharacter => "search: no control characters".into(),
            })
        })?;
        let (owner, region, sector) = (non_empty(q.owner), non_empty(q.region), non_empty(q.sector));
        Ok(Listing {
            request: PriorityQuery {
                filter: ListFilter {
                    owner: owner.clone(),
                    region: region.clone(),
                    sector: sector.clone(),
                    scope: viewer.scope.clone(),
                    ..ListFilter::default()
                },
                grade,
                focus,
                sort,
                search,
            },
            owner,
            region,
            sector,
            search: search_text,
            page: q.page,
        })
    }

    /// The query string of this list without its page (`owner=ana&sort=score`).
    fn query(&self) -> Vec<String> {
        let r = &self.request;
        let sort = (r.sort != SortKey::Value).then(|| r.sort.as_str().to_string());
        [
            ("owner", self.owner.clone()),
            ("region", self.region.clone()),
            ("sector", self.sector.clone()),
            ("grade", r.grade.map(|g| g.as_str().to_string())),
            ("focus", r.focus.map(|f| f.as_str().to_string())),
            ("sort", sort),
            ("search", self.search.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name}={}", url_encode(&v))))
        .collect()
    }

    /// The number of pages of `total` deals and the page shown (the last one when asked past
    /// it).
    fn page_of(&self, total: usize) -> (usize, usize) {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        (self.page.unwrap_or(1).clamp(1, pages), pages)
    }
}

/// The scored list of the viewer's language: fresh, or a recent one while a new one is built.
pub(super) async fn scored(
    viewer: &Viewer,
    db: &Db,
    holder: &ActiveModel,
    settings: &Settings,
    cache: &ranking::PriorityCache,
) -> Result<ranking::MaybeStale, PageError> {
    let lang = viewer.lang;
    let model = active_model(holder).or_page(lang)?;
    cache
        .scored_or_recent(db, model, &settings.scoring, lang, MAX_STALE)
        .await
        .or_page(lang)
}

/// `GET /deals`.
pub async fn list(
    req: HttpRequest,
    viewer: Viewer,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    cache: web::Data<ranking::PriorityCache>,
    query: web::Query<DealsQuery>,
) -> Result<HttpResponse, PageError> {
    let lang = viewer.lang;
    let t = crate::web::text::Text(lang);
    let listing = Listing::parse(query.into_inner(), &viewer)?;
    let answer = scored(&viewer, &db, &holder, &settings, &cache).await?;
    let scored = answer.list.clone();
    let items = ranking::ranked(&scored, &listing.request);
    // The filter choices of a rep or manager come from their own deals only: the names of other
    // owners, regions and sectors are not theirs to see.
    let [owners, regions, sectors] = if viewer.scope.is_limited() {
        ranking::facets_of(
            scored
                .items
                .iter()
                .filter(|i| viewer.scope.admits(i.owner.as_deref(), i.region.as_deref())),
        )
    } else {
        scored.facets.clone()
    };
    let total = items.len();
    let (page, pages) = listing.page_of(total);
    let rows = items
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|i| {
            let (trend_arrow, trend_key) = view::trend(i.trend);
            Row {
                href: format!("/deals/{}", url_encode(&i.external_id)),
                name: i.name.clone().unwrap_or_else(|| i.external_id.clone()),
                account: i.account.clone().unwrap_or_default(),
                owner: i.owner.clone().unwrap_or_default(),
                amount: view::money(i.amount, &i.currency, lang),
                expected_value: view::money(i.expected_value, &i.currency, lang),
                score: i.score,
                grade: i.grade.as_str(),
                grade_class: view::grade_class(i.grade),
                trend_arrow,
                trend: t.get(trend_key),
                focus: t.get(view::focus_key(i.focus)),
                next: i
                    .next_intervention
                    .as_ref()
                    .map(|n| n.message.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let plain = |v: Vec<String>| v.into_iter().map(|x| (x.clone(), x)).collect::<Vec<_>>();
    let (grade, focus, sort) = (listing.request.grade, listing.request.focus, listing.request.sort);
    let selects = vec![
        select(
            "owner",
            "deals.owner",
            t.get("filter.any"),
            plain(owners),
            listing.owner.as_deref(),
        ),
        select(
            "region",
            "deals.region",
            t.get("filter.any"),
            plain(regions),
            listing.region.as_deref(),
        ),
        select(
            "sector",
            "deals.sector",
            t.get("filter.any"),
            plain(sectors),
            listing.sector.as_deref(),
        ),
        select(
            "grade",
            "deals.grade",
            t.get("filter.any"),
            ["A", "B", "C", "D"]
                .iter()
                .map(|g| (g.to_string(), g.to_string()))
                .collect(),
            grade.map(|g| g.as_str()),
        ),
        select(
            "focus",
            "deals.focus",
            t.get("filter.any"),
            FOCUSES
                .iter()
                .map(|f| (f.as_str().to_string(), t.get(view::focus_key(*f)).to_string()))
                .collect(),
            focus.map(|f| f.as_str()),
        ),
        select(
            "sort",
            "deals.sort",
            t.get("deals.sort_value"),
            vec![
                ("score".into(), t.get("deals.sort_score").into()),
                ("uplift".into(), t.get("deals.sort_uplift").into()),
            ],
            (sort != SortKey::Value).then_some(sort.as_str()),
        ),
    ];
    let kept = listing.query();
    let link = |path: &str, p: usize| {
        let mut parts = kept.clone();
        parts.push(format!("page={p}"));
        format!("{path}?{}", parts.join("&"))
    };
    let page_view = DealsPage {
        ui: Ui::new(&viewer, &req, Nav::Deals),
        selects,
        search: listing.search.clone().unwrap_or_default(),
        csv: link("/deals.csv", page),
        rows,
        total_text: crate::i18n::format::count(total as u64, lang),
        page,
        pages,
        prev: (page > 1).then(|| link("/deals", page - 1)),
        next: (page < pages).then(|| link("/deals", page + 1)),
        stale_since: answer
            .stale
            .then(|| crate::i18n::format::timestamp(scored.built_at, lang)),
    };
    render(&req, lang, &page_view)
}

/// `GET /deals.csv`: the rows `GET /deals` shows for the same query (filters, search, sort and
/// page), as CSV.
pub async fn csv(
    viewer: Viewer,
    db: web::Data<Db>,
    holder: web::Data<ActiveModel>,
    settings: web::Data<Settings>,
    cache: web::Data<ranking::PriorityCache>,
    query: web::Query<DealsQuery>,
) -> Result<HttpResponse, PageError> {
    let lang = viewer.lang;
    let listing = Listing::parse(query.into_inner(), &viewer)?;
    let answer = scored(&viewer, &db, &holder, &settings, &cache).await?;
    let items = ranking::ranked(&answer.list, &listing.request);
    let (page, _) = listing.page_of(items.len());
    let shown: Vec<&ranking::PriorityItem> = items
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let text = ranking::table(&shown)
        .to_csv()
        .map_err(|e| PageError::internal(lang, e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"deals-page-{page}.csv\""),
        ))
        .insert_header(("Content-Language", lang.code()))
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::web::text::Text;

    fn ui(lang: Lang) -> Ui {
        Ui {
            t: Text(lang),
            viewer: "ana <rep>".into(),
            analyst: false,
            manager: false,
            csrf: "tok".into(),
            nav: Nav::Deals,
            languages: vec![("en", "English", "/deals?lang=en".into(), lang == Lang::En)],
            stale_since: None,
        }
    }

    fn row(name: &str) -> Row {
        Row {
            href: "/deals/D-1".into(),
            name: name.into(),
            account: "Acme".into(),
            owner: "ana".into(),
            amount: "12\u{202F}500\u{A0}€".into(),
            expected_value: "9\u{202F}000\u{A0}€".into(),
            score: 72,
            grade: "A",
            grade_class: "grade grade-a",
            trend_arrow: "▲",
            trend: "en hausse",
            focus: "Sécuriser",
            next: "Répondre au prospect sous 4 h".into(),
        }
    }

    #[test]
    fn the_list_renders_escaped_in_the_readers_language_without_analyst_links() {
        let page = DealsPage {
            ui: ui(Lang::Fr),
            selects: vec![select(
                "grade",
                "deals.grade",
                "Tous",
                vec![("A".into(), "A".into())],
                Some("A"),
            )],
            search: "acme".into(),
            csv: "/deals.csv?search=acme&page=1".into(),
            rows: vec![row("<script>alert(1)</script>")],
            total_text: "1".into(),
            page: 1,
            pages: 1,
            prev: None,
            next: None,
            stale_since: None,
        };
        let html = page.render().expect("render");
        assert!(html.contains("<html lang=\"fr\">") && html.contains("<h1>Mes affaires</h1>"));
        assert!(!html.contains("<script>alert"), "deal names are escaped");
        assert!(html.contains("alert(1)"), "the name is still shown");
        assert!(html.contains("ana ") && !html.contains("ana <rep>"));
        assert!(html.contains("<option value=\"A\" selected>"));
        assert!(html.contains("12\u{202F}500\u{A0}€"), "no noise decimals");
        assert!(
            html.contains(">A</span> 72"),
            "the grade is a letter, not only a colour"
        );
        assert!(!html.contains("href=\"/models\""), "no analyst entries for a rep");
        assert!(!html.contains("rel=\"next\""), "one page: no next link");
        assert!(html.contains("value=\"acme\""), "the search is kept in its box");
        assert!(
            html.replace("&#38;", "&")
                .contains("href=\"/deals.csv?search=acme&page=1\""),
            "the export of this very page"
        );
        assert!(html.contains("Valeur attendue") && html.contains("9\u{202F}000\u{A0}€"));
    }

    #[test]
    fn an_empty_list_says_so() {
        let page = DealsPage {
            ui: ui(Lang::En),
            selects: Vec::new(),
            search: String::new(),
            csv: "/deals.csv?page=1".into(),
            rows: Vec::new(),
            total_text: "0".into(),
            page: 1,
            pages: 1,
            prev: None,
            next: None,
            stale_since: None,
        };
        let html = page.render().expect("render");
        assert!(html.contains("No open deal matches these filters."));
        assert!(!html.contains("<table class=\"deals\">"));
    }
}
