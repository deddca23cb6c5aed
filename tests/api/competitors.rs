//! The competitors insight: every figure recomputed here with plain loops over the generated rows
//! (not the server's code path) and compared; the unset configuration, bad parameters, CSV, and
//! the page in both languages.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use dealscore::domain::{Opportunity, Status};
use serde_json::Value;

use crate::helpers::get_as_analyst as get;
use crate::helpers::import_generated as load;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use crate::web::Browser;

/// Z of a two-sided 95 % interval.
const Z: f64 = 1.959_963_984_540_054;

fn configured(app_settings: &mut dealscore::config::Settings) {
    app_settings.insights.competitor_field = Some("attr.competitor".into());
    app_settings.insights.loss_reason_field = Some("attr.loss_reason".into());
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("date")
}

fn attr(o: &Opportunity, name: &str) -> Option<String> {
    o.attributes.get(name).map(|v| v.to_text())
}

fn closed_in(o: &Opportunity, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    o.status != Status::Open && o.closed_at.is_some_and(|c| c >= start && c < end)
}

fn open_at(o: &Opportunity, t: DateTime<Utc>) -> bool {
    o.created_at.is_none_or(|c| c < t)
        && match o.status {
            Status::Open => true,
            _ => o.closed_at.is_some_and(|c| c >= t),
        }
}

/// The documented bands, written out again.
fn band(amount: Option<f64>) -> &'static str {
    match amount {
        None => "(none)",
        Some(a) if a < 10_000.0 => "under 10k",
        Some(a) if a < 50_000.0 => "10k-50k",
        Some(a) if a < 250_000.0 => "50k-250k",
        Some(_) => "250k and more",
    }
}

#[derive(Debug, Default, Clone)]
struct Expected {
    open: u64,
    won: u64,
    lost: u64,
    trend: [(u64, u64); 4],
    lost_to: u64,
    reasons: BTreeMap<String, u64>,
    sectors: BTreeMap<String, (u64, u64)>,
    sizes: BTreeMap<String, (u64, u64)>,
}

impl Expected {
    fn absorb(&mut self, other: &Expected) {
        self.open += other.open;
        self.won += other.won;
        self.lost += other.lost;
        for (a, b) in self.trend.iter_mut().zip(other.trend) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.lost_to += other.lost_to;
        for (k, n) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += n;
        }
        for (mine, theirs) in [
            (&mut self.sectors, &other.sectors),
            (&mut self.sizes, &other.sizes),
        ] {
            for (k, (w, l)) in theirs {
                let e = mine.entry(k.clone()).or_default();
                e.0 += w;
                e.1 += l;
            }
        }
    }
}

/// Per competitor label (`(none)`, `(other)` included), from the rows alone.
fn expected(deals: &[Opportunity], start: DateTime<Utc>, end: DateTime<Utc>) -> BTreeMap<String, Expected> {
    let len = end - start;
    let periods: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        (0..4).rev().map(|k| (start - len * k, end - len * k)).collect();
    let mut by: BTreeMap<Option<String>, Expected> = BTreeMap::new();
    for o in deals {
        let e = by.entry(attr(o, "competitor")).or_default();
        if open_at(o, end) {
            e.open += 1;
        }
        for (k, (a, b)) in periods.iter().enumerate() {
            if closed_in(o, *a, *b) {
                let won = o.status == Status::Won;
                if won {
                    e.trend[k].0 += 1;
                } else {
                    e.trend[k].1 += 1;
                }
            }
        }
        if !closed_in(o, start, end) {
            continue;
        }
        let won = o.status == Status::Won;
        let count = |pair: &mut (u64, u64)| {
            if won {
                pair.0 += 1
            } else {
                pair.1 += 1
            }
        };
        count(
            e.sectors
                .entry(o.sector.clone().unwrap_or("(none)".into()))
                .or_default(),
        );
        count(e.sizes.entry(band(o.amount).to_owned()).or_default());
        if won {
            e.won += 1;
        } else {
            e.lost += 1;
            let reason = attr(o, "loss_reason");
            if reason.as_deref() == Some("competitor") {
                e.lost_to += 1;
            }
            *e.reasons.entry(reason.unwrap_or("(none)".into())).or_default() += 1;
        }
    }
    let mut out = BTreeMap::new();
    let mut other = Expected::default();
    let mut rare = 0;
    for (k, e) in by {
        match k {
            None => {
                out.insert("(none)".to_owned(), e);
            }
            Some(_) if e.open + e.won + e.lost < 10 => {
                rare += 1;
                other.absorb(&e);
            }
            Some(name) => {
                out.insert(name, e);
            }
        }
    }
    if rare > 0 {
        out.insert("(other)".to_owned(), other);
    }
    out
}

fn rate(won: u64, lost: u64) -> Option<f64> {
    (won + lost > 0).then(|| won as f64 / (won + lost) as f64)
}

/// (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n), clipped to [0, 1].
fn wilson(won: u64, lost: u64) -> Option<(f64, f64)> {
    let p = rate(won, lost)?;
    let n = (won + lost) as f64;
    let centre = p + Z * Z / (2.0 * n);
    let half = Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt();
    let d = 1.0 + Z * Z / n;
    Some((((centre - half) / d).max(0.0), ((centre + half) / d).min(1.0)))
}

fn close(actual: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: {actual} should be null"),
        Some(e) => {
            let a = actual
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
            assert!((a - e).abs() < 1e-9, "{what}: {a} vs {e}");
        }
    }
}

fn segments(list: &Value) -> BTreeMap<String, (u64, u64)> {
    list.as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            let (w, l) = (
                s["won_deals"].as_u64().unwrap_or(0),
                s["lost_deals"].as_u64().unwrap_or(0),
            );
            close(&s["win_rate"], rate(w, l), "segment rate");
            close(&s["win_rate_low"], wilson(w, l).map(|x| x.0), "segment low");
            (s["value"].as_str().unwrap_or_default().to_owned(), (w, l))
        })
        .collect()
}

fn check(body: &Value, want: &BTreeMap<String, Expected>) {
    let rows = body["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["competitor"].as_str()).collect();
    let mut want_names: Vec<&str> = want.keys().map(String::as_str).collect();
    want_names.sort();
    let mut got_names = names.clone();
    got_names.sort();
    assert_eq!(got_names, want_names, "{body}");
    for r in rows {
        let name = r["competitor"].as_str().unwrap_or_default();
        let e = &want[name];
        assert_eq!(
            (
                r["open_deals"].as_u64(),
                r["won_deals"].as_u64(),
                r["lost_deals"].as_u64()
            ),
            (Some(e.open), Some(e.won), Some(e.lost)),
            "{name}"
        );
        close(&r["win_rate"], rate(e.won, e.lost), name);
        close(&r["win_rate_low"], wilson(e.won, e.lost).map(|w| w.0), name);
        close(&r["win_rate_high"], wilson(e.won, e.lost).map(|w| w.1), name);
        let trend = r["trend"].as_array().expect("trend");
        assert_eq!(trend.len(), 4);
        for (point, (w, l)) in trend.iter().zip(e.trend) {
            assert_eq!(
                (point["won_deals"].as_u64(), point["lost_deals"].as_u64()),
                (Some(w), Some(l)),
                "{name}"
            );
            close(&point["win_rate"], rate(w, l), name);
        }
        assert_eq!(r["lost_to_competitor"].as_u64(), Some(e.lost_to), "{name}");
        let reasons: BTreeMap<String, u64> =
            serde_json::from_value(r["loss_reasons"].clone()).expect("reasons");
        assert_eq!(reasons, e.reasons, "{name}");
        assert_eq!(segments(&r["by_sector"]), e.sectors, "{name} sectors");
        assert_eq!(segments(&r["by_size"]), e.sizes, "{name} sizes");
    }
}

#[tokio::test]
async fn competitors_match_an_independent_computation_over_the_generated_rows() {
    let app = spawn_app_with(configured).await;
    let deals = load(&app, 3_000, 5).await;
    let (start, end) = (day(2025, 10, 3), day(2026, 1, 1));
    let body = get(&app, "/v1/insights/competitors?from=2025-10-03&to=2025-12-31").await;
    assert_eq!(body["competitor_field"], "attr.competitor");
    assert_eq!(body["loss_reason_field"], "attr.loss_reason");
    assert_eq!(body["other_threshold"], 10);
    let want = expected(&deals, start, end);
    assert!(
        want.contains_key("(other)"),
        "the rare generated competitors are grouped"
    );
    assert!(want.len() >= 6, "{want:?}");
    check(&body, &want);
    // Most deals first, `(none)` and `(other)` last.
    let rows = body["rows"].as_array().expect("rows");
    let tail: Vec<&str> = rows[rows.len() - 2..]
        .iter()
        .filter_map(|r| r["competitor"].as_str())
        .collect();
    assert_eq!(tail, ["(none)", "(other)"]);
    let total = |r: &Value| {
        ["open_deals", "won_deals", "lost_deals"]
            .iter()
            .map(|k| r[k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(rows[..rows.len() - 2]
        .windows(2)
        .all(|w| total(&w[0]) >= total(&w[1])));
    let overall = &body["overall"];
    let (won, lost) = want.values().fold((0, 0), |a, e| (a.0 + e.won, a.1 + e.lost));
    assert_eq!(
        (overall["won_deals"].as_u64(), overall["lost_deals"].as_u64()),
        (Some(won), Some(lost))
    );
    // The generated competitors differ in strength, visibly so over a year.
    let year = get(&app, "/v1/insights/competitors?from=2025-01-01&to=2025-12-31").await;
    let rate_of = |name: &str| {
        year["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["competitor"] == name))
            .and_then(|r| r["win_rate"].as_f64())
            .unwrap_or_else(|| panic!("{name} in {year}"))
    };
    assert!(rate_of("Quantix") < rate_of("Brightlane"), "{year}");

    // Filters: the same computation over the deals of one region.
    let dach: Vec<Opportunity> = deals
        .iter()
        .filter(|o| o.region.as_deref() == Some("DACH"))
        .cloned()
        .collect();
    let body = get(
        &app,
        "/v1/insights/competitors?from=2025-10-03&to=2025-12-31&region=DACH",
    )
    .await;
    check(&body, &expected(&dach, start, end));
    // An unknown filter value: no deal, every figure empty, nothing made up.
    let body = get(
        &app,
        "/v1/insights/competitors?from=2025-10-03&to=2025-12-31&sector=nowhere",
    )
    .await;
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(0), "{body}");
    assert!(body["overall"]["win_rate"].is_null());

    // CSV: a line per competitor, trend period, sector, size band and loss reason.
    let csv = app
        .client
        .get(app.url("/v1/insights/competitors?from=2025-10-03&to=2025-12-31&format=csv"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    assert!(
        text.starts_with("competitor,breakdown,value,open_deals,won_deals,lost_deals,win_rate,win_rate_low,win_rate_high,lost_to_competitor\n"),
        "{text}"
    );
    let lines: usize = want
        .values()
        .map(|e| 1 + 4 + e.sectors.len() + e.sizes.len() + e.reasons.len())
        .sum();
    assert_eq!(text.lines().count(), lines + 1);
    let quantix_all = text
        .lines()
        .find(|l| l.starts_with("Quantix,all,"))
        .expect("a Quantix line");
    let e = &want["Quantix"];
    assert!(
        quantix_all.starts_with(&format!("Quantix,all,,{},{},{},", e.open, e.won, e.lost)),
        "{quantix_all}"
    );
}

#[tokio::test]
async fn without_a_loss_reason_field_lost_to_is_null_and_windows_without_deals_are_null_not_zero() {
    let app = spawn_app_with(|s| s.insights.competitor_field = Some("attr.competitor".into())).await;
    load(&app, 600, 2).await;
    let body = get(&app, "/v1/insights/competitors?from=2025-06-01&to=2025-12-31").await;
    assert!(body["loss_reason_field"].is_null());
    let rows = body["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    for r in rows {
        assert!(r["lost_to_competitor"].is_null(), "{r}");
        assert_eq!(r["loss_reasons"], serde_json::json!({}));
    }
    // Years before the history: no closed deal, so rates are null, never 0.
    let empty = get(&app, "/v1/insights/competitors?from=2010-01-01&to=2010-03-31").await;
    assert_eq!(empty["rows"].as_array().map(Vec::len), Some(0));
    assert!(empty["overall"]["win_rate"].is_null() && empty["overall"]["win_rate_low"].is_null());
    // The oldest trend periods of a recent window fall before the history: null rates.
    let recent = get(&app, "/v1/insights/competitors?from=2025-01-01&to=2025-12-31").await;
    let first = &recent["rows"][0]["trend"][0];
    assert_eq!(first["won_deals"], 0);
    assert!(first["win_rate"].is_null(), "{first}");
}

#[tokio::test]
async fn an_unset_or_wrong_competitor_field_is_a_409_saying_how_to_configure_it_and_the_page_says_so() {
    let app = spawn_app().await;
    let response = app.get("/v1/insights/competitors", &app.analyst_key).await;
    let body = assert_problem(response, 409, None).await;
    assert_eq!(body["type"], "https://dealscore.dev/problems/not-configured");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("competitor_field") && detail.contains("[insights]"),
        "{detail}"
    );
    let french = app
        .get("/v1/insights/competitors?lang=fr", &app.analyst_key)
        .await;
    let body = assert_problem(french, 409, None).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("aucun champ concurrent"),
        "{body}"
    );
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.analyst_key).await;
    for (lang, words) in [
        ("en", "No competitor field configured"),
        ("fr", "Aucun champ concurrent configuré"),
    ] {
        let (status, _, page) = browser.get(&format!("/competitors?lang={lang}")).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(words) && page.contains("competitor_field"),
            "{page}"
        );
    }

    let wrong = spawn_app_with(|s| s.insights.competitor_field = Some("amount".into())).await;
    let response = wrong
        .client
        .get(wrong.url("/v1/insights/competitors"))
        .bearer_auth(&wrong.analyst_key)
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 409, None).await;
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("`amount`"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_competitor_queries_are_422s_naming_the_field_and_reps_are_refused() {
    let app = spawn_app_with(configured).await;
    for (query, field) in [
        ("from=nope", "from"),
        ("to=2025-13-01", "to"),
        ("from=2025-02-01&to=2025-01-01", "from"),
        ("format=xml", "format"),
    ] {
        let response = app
            .get(&format!("/v1/insights/competitors?{query}"), &app.analyst_key)
            .await;
        assert_problem(response, 422, Some(field)).await;
    }
    let typo = app
        .get("/v1/insights/competitors?regoin=DACH", &app.analyst_key)
        .await;
    assert_problem(typo, 400, None).await;
    let rep = app.get("/v1/insights/competitors", &app.rep_key).await;
    assert_problem(rep, 403, None).await;
}

#[tokio::test]
async fn the_competitors_page_shows_each_competitor_in_both_languages() {
    let app = spawn_app_with(configured).await;
    let deals = load(&app, 1_500, 3).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.analyst_key).await;
    let named = deals
        .iter()
        .filter(|o| o.closed_at.is_some_and(|c| c >= day(2025, 1, 1)))
        .filter(|o| attr(o, "competitor").as_deref() == Some("Quantix"))
        .count();
    assert!(named > 0, "the page has a competitor to show");
    // The API reads a snapshot as new as the import (the page may show the one before it while
    // the new one loads, saying so).
    get(&app, "/v1/insights/competitors").await;
    for (lang, title, nav) in [
        ("en", "<h1>Competitors</h1>", "Competitors</a>"),
        ("fr", "<h1>Concurrents</h1>", "Concurrents</a>"),
    ] {
        let (status, _, page) = browser
            .get(&format!("/competitors?from=2025-01-01&to=2025-12-31&lang={lang}"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(title) && page.contains(nav), "{page}");
        assert!(page.contains("Quantix") && page.contains("(none)"), "{page}");
        assert!(page.contains("<svg"), "a chart");
        assert!(!page.contains("not-configured"));
    }
    let (status, _, page) = browser.get("/competitors?from=nope").await;
    assert_eq!(status, 400, "{page}");
}
