//! End to end in headless Chromium through WebDriver (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`): a rep signs in, filters the priority list and opens a deal; an
//! analyst reads the pipeline in French and activates an older model; a rep is refused the
//! models page. A screenshot of each page goes to `$DEALSCORE_SCREENSHOTS` (default
//! `target/screenshots`), which CI keeps.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::TestApp;
use crate::web::app_with_two_versions;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
        "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver \
         (.ci/run installs them)"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-US"]
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("connect to chromedriver")
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("DEALSCORE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshots folder");
    dir
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn sign_in(client: &Client, app: &TestApp, key: &str) {
    client.goto(&app.url("/login")).await.expect("login page");
    client
        .find(Locator::Id("api_key"))
        .await
        .expect("key field")
        .send_keys(key)
        .await
        .expect("type key");
    client
        .find(Locator::Id("sign-in"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    client
        .wait()
        .for_url(&url::Url::parse(&app.url("/deals")).expect("url"))
        .await
        .expect("signed in, on /deals");
}

/// The owner with the most open deals, and how many.
async fn busiest_owner(app: &TestApp) -> (String, i64) {
    sqlx::query_as(
        "SELECT owner, COUNT(*) AS n FROM opportunities WHERE status = 'open' AND owner IS NOT NULL \
         GROUP BY owner ORDER BY n DESC, owner LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("an owner with open deals")
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

#[tokio::test]
#[ignore = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); \
            .ci/run installs them and runs it: cargo test --test api browser -- --include-ignored"]
async fn a_rep_and_an_analyst_work_through_the_ui_in_a_real_browser() {
    let (app, older, _newer) = app_with_two_versions().await;
    let driver = start_driver().await;

    // A rep: their own deals only in priority order, a filter, a deal with its factors chart
    // and intervention. The rep owns the most open deals of the generated history.
    let (owner, own_open) = busiest_owner(&app).await;
    let rep_key = dealscore::auth::generate_key();
    dealscore::store::api_keys::insert_scoped(
        &app.db,
        "browser-rep",
        "rep",
        &dealscore::auth::hash_key(&rep_key),
        &dealscore::store::scope::Scope::Owners(vec![owner.clone()]),
    )
    .await
    .expect("rep key");
    let rep = browser(&driver).await;
    sign_in(&rep, &app, &rep_key).await;
    assert_eq!(text_of(&rep, "h1").await, "My deals");
    shoot(&rep, "deals").await;
    let before = text_of(&rep, "#deal-count").await;
    assert!(
        before.ends_with(&format!(" {own_open}")),
        "{before}: the rep's {own_open} open deals, no other"
    );
    let owners = rep.find_all(Locator::Css("td .sub")).await.expect("owner cells");
    assert!(!owners.is_empty());
    for cell in owners {
        assert_eq!(
            cell.text().await.expect("owner"),
            owner,
            "only the rep's deals are listed"
        );
    }
    rep.find(Locator::Id("filter-focus"))
        .await
        .expect("focus filter")
        .select_by_value("prioritize")
        .await
        .expect("choose a focus");
    // app.js submits on change; the Apply button is there without JavaScript.
    rep.wait()
        .for_url(
            &url::Url::parse(&app.url("/deals?search=&owner=&region=&sector=&grade=&focus=prioritize&sort="))
                .expect("url"),
        )
        .await
        .expect("filtered list");
    let after = text_of(&rep, "#deal-count").await;
    assert_ne!(before, after, "the focus filter narrows the list");
    shoot(&rep, "deals-filtered").await;
    rep.find(Locator::Css("a.deal-link"))
        .await
        .expect("a deal")
        .click()
        .await
        .expect("open deal");
    rep.wait()
        .for_element(Locator::Id("deal-score"))
        .await
        .expect("deal page");
    let factors = rep
        .find(Locator::Css("#factors svg.chart"))
        .await
        .expect("factors chart");
    assert!(!factors
        .find_all(Locator::Css("rect.raises, rect.lowers"))
        .await
        .expect("bars")
        .is_empty());
    let next = rep
        .find(Locator::Css("#next-h + p"))
        .await
        .expect("intervention")
        .text()
        .await
        .expect("text");
    assert!(!next.trim().is_empty());
    shoot(&rep, "deal").await;
    rep.goto(&app.url("/models")).await.expect("models");
    assert_eq!(text_of(&rep, "h1").await, "Not available for your role");
    shoot(&rep, "models-refused").await;
    rep.close().await.expect("close");

    // An analyst: pipeline in French, then activate the older model version.
    let analyst = browser(&driver).await;
    sign_in(&analyst, &app, &app.analyst_key).await;
    analyst.goto(&app.url("/pipeline")).await.expect("pipeline");
    shoot(&analyst, "pipeline").await;
    analyst
        .find(Locator::Css("a[hreflang=fr]"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("switch to French");
    analyst
        .wait()
        .for_element(Locator::Css("html[lang=fr]"))
        .await
        .expect("French page");
    let tiles = text_of(&analyst, ".tiles").await;
    assert!(tiles.contains("Taux de gain"), "{tiles}");
    // One sum per currency; the euro one is written the French way: thousands grouped by a
    // narrow no-break space, the symbol after the number (WebDriver reports the no-break space
    // before it as a plain space).
    let revenue = text_of(&analyst, ".tile .kpi-value").await;
    let euros = revenue
        .split(" · ")
        .find(|part| part.ends_with('€'))
        .unwrap_or_else(|| panic!("a euro amount in {revenue:?}"));
    assert!(
        euros.contains('\u{202f}') && !euros.contains(',') && !euros.starts_with('€'),
        "French amount: {euros:?}"
    );
    shoot(&analyst, "pipeline-fr").await;
    for page in ["process", "resources"] {
        analyst.goto(&app.url(&format!("/{page}"))).await.expect("page");
        analyst.find(Locator::Css("svg.chart")).await.expect("a chart");
        shoot(&analyst, page).await;
    }
    analyst.goto(&app.url("/models")).await.expect("models");
    shoot(&analyst, "models").await;
    analyst
        .find(Locator::Css(&format!(
            "tr[data-version='{older}'] button.activate"
        )))
        .await
        .expect("activate button of the older version")
        .click()
        .await
        .expect("activate");
    analyst
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("notice");
    let badge = text_of(&analyst, &format!("tr[data-version='{older}'] .status")).await;
    assert_eq!(badge, "actif", "the older version is active now (page in French)");
    let (_, active) = app.get_json("/v1/models/active", &app.analyst_key).await;
    assert_eq!(active["version"], older.as_str());
    analyst
        .goto(&app.url(&format!("/models/{older}")))
        .await
        .expect("model page");
    analyst
        .find(Locator::Css("svg.chart"))
        .await
        .expect("calibration chart");
    shoot(&analyst, "model").await;
    analyst.close().await.expect("close");
}

/// What breaks a page's layout, measured in the browser: the page scrolling sideways, a table
/// wider than its card that the card does not scroll, a chart much narrower than its card.
const LAYOUT_PROBLEMS: &str = r#"
const problems = [];
const root = document.documentElement;
if (root.scrollWidth > window.innerWidth + 1) {
  problems.push(`the page is ${root.scrollWidth}px wide in a ${window.innerWidth}px window`);
}
for (const table of document.querySelectorAll('table')) {
  const card = table.closest('.card, .table-wrap');
  if (!card) { problems.push('a table outside any card'); continue; }
  const style = getComputedStyle(card);
  const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
  if (table.getBoundingClientRect().width > card.clientWidth + 1 && !scrolls) {
    problems.push(`a ${Math.round(table.getBoundingClientRect().width)}px table cut by a ${card.clientWidth}px card`);
  }
}
for (const svg of document.querySelectorAll('svg.chart')) {
  const holder = svg.closest('.card');
  if (!holder) continue;
  const style = getComputedStyle(holder);
  const inner = holder.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const width = svg.getBoundingClientRect().width;
  if (width < 0.9 * inner) {
    problems.push(`a ${Math.round(width)}px chart in a ${Math.round(inner)}px card`);
  }
}
return problems;
"#;

/// Every page, in English and French, at a desktop (1,280 px) and a phone (375 px) width: the
/// page never scrolls sideways, tables fit their cards or scroll inside them, charts take their
/// card's width. A screenshot of each goes with the others.
#[tokio::test]
#[ignore = "needs Debian's chromium and chromium-driver (installed by .ci/run)"]
async fn every_page_fits_its_cards_in_both_languages_at_desktop_and_phone_widths() {
    let (app, older, newer) = app_with_two_versions().await;
    let (_, deals) = app
        .get_json("/v1/opportunities?status=open&limit=1", &app.analyst_key)
        .await;
    let deal = deals["items"][0]["external_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an open deal: {deals}"))
        .to_owned();
    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &app, &app.analyst_key).await;
    let pages = [
        ("deals", "/deals".to_owned()),
        ("team", "/team".to_owned()),
        ("deal", format!("/deals/{deal}")),
        ("pipeline", "/pipeline".to_owned()),
        ("process", "/process".to_owned()),
        ("resources", "/resources".to_owned()),
        // The generated history's last year, when its renewals and churn fall.
        ("customers", "/customers?from=2025-01-01&to=2025-12-31".to_owned()),
        // The generated history ends on 2026-01-01: its last year, with a full trend before it.
        (
            "competitors",
            "/competitors?from=2025-01-01&to=2025-12-31".to_owned(),
        ),
        ("models", "/models".to_owned()),
        ("model", format!("/models/{newer}")),
        ("compare", format!("/models/compare?a={older}&b={newer}")),
    ];
    let mut problems = Vec::new();
    for (width, height) in [(1280u32, 1000u32), (375, 812)] {
        client.set_window_size(width, height).await.expect("window size");
        for lang in ["en", "fr"] {
            for (name, path) in &pages {
                let separator = if path.contains('?') { '&' } else { '?' };
                client
                    .goto(&app.url(&format!("{path}{separator}lang={lang}")))
                    .await
                    .expect("page");
                client
                    .wait()
                    .for_element(Locator::Css(&format!("html[lang={lang}]")))
                    .await
                    .expect("the page in its language");
                let found = client
                    .execute(LAYOUT_PROBLEMS, vec![])
                    .await
                    .expect("layout script");
                for problem in found.as_array().into_iter().flatten() {
                    problems.push(format!(
                        "{name} ({lang}, {width}px): {}",
                        problem.as_str().unwrap_or_default()
                    ));
                }
                shoot(&client, &format!("{name}-{lang}-{width}")).await;
            }
        }
    }
    client.close().await.expect("close");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
