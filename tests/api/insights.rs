//! Insights: every figure is recomputed here in plain Rust over the generated rows (not the
//! server's code path) and compared; edge cases, CSV, cache freshness, validation and roles.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use dealscore::domain::{Opportunity, Status};
use serde_json::{json, Value};

use crate::helpers::get_as_analyst as get;
use crate::helpers::import_generated as load_generated;
use crate::helpers::{assert_problem, spawn_app, TestApp};

const CENT: f64 = 0.01;

fn ts(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("date")
}

// ---- the reference implementation: straightforward loops over `Opportunity` values ----

fn closed_in(o: &Opportunity, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    o.status != Status::Open && o.closed_at.is_some_and(|c| c >= start && c < end)
}

fn open_at(o: &Opportunity, t: DateTime<Utc>) -> bool {
    let created_before = o.created_at.is_none_or(|c| c < t);
    let still_open = match o.status {
        Status::Open => true,
        _ => o.closed_at.is_some_and(|c| c >= t),
    };
    created_before && still_open
}

#[derive(Debug, Default)]
struct Expected {
    open: u64,
    won: u64,
    lost: u64,
    won_revenue: BTreeMap<String, f64>,
    won_with_amount: BTreeMap<String, u64>,
    open_value: BTreeMap<String, f64>,
    cycle_days: Vec<f64>,
    accounts: BTreeSet<String>,
}

fn expected<'a>(
    deals: impl Iterator<Item = &'a Opportunity>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Expected {
    let mut e = Expected::default();
    for o in deals {
        let closed = closed_in(o, start, end);
        let open = open_at(o, end);
        if closed && o.status == Status::Won {
            e.won += 1;
            if let Some(a) = o.amount {
                *e.won_revenue.entry(o.currency.clone()).or_default() += a;
                *e.won_with_amount.entry(o.currency.clone()).or_default() += 1;
            } else {
                e.won_revenue.entry(o.currency.clone()).or_default();
            }
            if let (Some(c), Some(x)) = (o.created_at, o.closed_at) {
                e.cycle_days
                    .push((x - c).num_milliseconds() as f64 / 86_400_000.0);
            }
        }
        if closed && o.status == Status::Lost {
            e.lost += 1;
        }
        if open {
            e.open += 1;
            *e.open_value.entry(o.currency.clone()).or_default() += o.amount.unwrap_or(0.0);
        }
        if closed || open {
            if let Some(a) = &o.account {
                e.accounts.insert(a.clone());
            }
        }
    }
    e
}

fn assert_money(actual: &Value, expected: &BTreeMap<String, f64>, what: &str) {
    let actual: BTreeMap<String, f64> = serde_json::from_value(actual.clone()).expect("money map");
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: currencies"
    );
    for (c, v) in expected {
        assert!((actual[c] - v).abs() < CENT, "{what} {c}: {} vs {v}", actual[c]);
    }
}

fn assert_close(actual: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: expected null, got {actual}"),
        Some(v) => {
            let a = actual
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
            assert!((a - v).abs() < 1e-9 * v.abs().max(1.0), "{what}: {a} vs {v}");
        }
    }
}

fn assert_figures(f: &Value, e: &Expected, what: &str) {
    assert_eq!(f["open_deals"], e.open, "{what} open");
    assert_eq!(f["won_deals"], e.won, "{what} won");
    assert_eq!(f["lost_deals"], e.lost, "{what} lost");
    let closed = e.won + e.lost;
    assert_close(
        &f["win_rate"],
        (closed > 0).then(|| e.won as f64 / closed as f64),
        what,
    );
    assert_close(
        &f["loss_rate"],
        (closed > 0).then(|| e.lost as f64 / closed as f64),
        what,
    );
    assert_money(&f["won_revenue"], &e.won_revenue, what);
    assert_money(&f["open_pipeline_value"], &e.open_value, what);
    let means: BTreeMap<String, f64> = e
        .won_revenue
        .iter()
        .filter_map(|(c, s)| {
            let n = e.won_with_amount.get(c).copied().unwrap_or(0);
            (n > 0).then(|| (c.clone(), s / n as f64))
        })
        .collect();
    assert_money(&f["avg_won_deal_size"], &means, what);
    let cycle =
        (!e.cycle_days.is_empty()).then(|| e.cycle_days.iter().sum::<f64>() / e.cycle_days.len() as f64);
    assert_close(&f["avg_won_cycle_days"], cycle, what);
    assert_eq!(f["distinct_accounts"], e.accounts.len() as u64, "{what} accounts");
}

/// Quantile by full sort and linear interpolation (numpy's default).
fn sorted_quantile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

#[tokio::test]
async fn pipeline_by_region_matches_an_independent_computation_over_the_generated_rows() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 3_000, 11).await;
    let (start, end) = (ts(2025, 7, 1), ts(2026, 1, 1));
    let prev_start = start - (end - start);
    let body = get(
        &app,
        "/v1/insights/pipeline?from=2025-07-01&to=2025-12-31&group_by=region",
    )
    .await;
    assert_figures(
        &body["total"]["current"],
        &expected(deals.iter(), start, end),
        "total",
    );
    assert_figures(
        &body["total"]["previous"],
        &expected(deals.iter(), prev_start, start),
        "total previous",
    );
    let regions: BTreeSet<String> = deals.iter().filter_map(|o| o.region.clone()).collect();
    let groups = body["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), regions.len(), "{body}");
    for g in groups {
        let region = g["key"].as_str().expect("key");
        let mine = || deals.iter().filter(|o| o.region.as_deref() == Some(region));
        assert_figures(&g["current"], &expected(mine(), start, end), region);
        assert_figures(&g["previous"], &expected(mine(), prev_start, start), region);
        let now = expected(mine(), start, end);
        let before = expected(mine(), prev_start, start);
        assert_eq!(g["delta"]["won_deals"], now.won as i64 - before.won as i64);
    }
    // A filter narrows the total to one region.
    let one = get(
        &app,
        "/v1/insights/pipeline?from=2025-07-01&to=2025-12-31&group_by=owner&region=DACH",
    )
    .await;
    let dach = || deals.iter().filter(|o| o.region.as_deref() == Some("DACH"));
    assert_figures(&one["total"]["current"], &expected(dach(), start, end), "DACH");
    let owners: u64 = one["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["current"]["won_deals"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(owners, expected(dach(), start, end).won);
}

#[tokio::test]
async fn pipeline_by_month_and_quarter_uses_calendar_buckets_and_the_bucket_before_as_previous() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 2_000, 5).await;
    let body = get(
        &app,
        "/v1/insights/pipeline?from=2025-04-01&to=2025-09-30&group_by=month",
    )
    .await;
    let groups = body["groups"].as_array().expect("groups");
    assert_eq!(
        groups
            .iter()
            .map(|g| g["key"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09"]
    );
    for (i, g) in groups.iter().enumerate() {
        let month = 4 + i as u32;
        let (start, end) = (ts(2025, month, 1), ts(2025, month + 1, 1));
        assert_figures(
            &g["current"],
            &expected(deals.iter(), start, end),
            &format!("month {month}"),
        );
        assert_figures(
            &g["previous"],
            &expected(deals.iter(), ts(2025, month - 1, 1), start),
            &format!("before {month}"),
        );
    }
    let quarters = get(
        &app,
        "/v1/insights/pipeline?from=2025-01-01&to=2025-12-31&group_by=quarter",
    )
    .await;
    let q3 = &quarters["groups"][2];
    assert_eq!(q3["key"], "2025-Q3");
    assert_figures(
        &q3["current"],
        &expected(deals.iter(), ts(2025, 7, 1), ts(2025, 10, 1)),
        "Q3",
    );
    assert_figures(
        &q3["previous"],
        &expected(deals.iter(), ts(2025, 4, 1), ts(2025, 7, 1)),
        "Q2",
    );
}

fn deal(
    id: &str,
    region: &str,
    status: &str,
    amount: Option<f64>,
    currency: &str,
    closed: Option<&str>,
) -> Value {
    let mut d = json!({
        "external_id": id, "account": format!("acct-{id}"), "sector": "retail", "region": region, "owner": "olga",
        "currency": currency, "status": status, "created_at": "2025-01-10", "interaction_count": 3, "response_hours": 4.0
    });
    if let Some(a) = amount {
        d["amount"] = json!(a);
    }
    if let Some(c) = closed {
        d["closed_at"] = json!(c);
    }
    d
}

async fn put_all(app: &TestApp, deals: &[Value]) {
    for d in deals {
        let response = app
            .put_opportunity(d["external_id"].as_str().expect("id"), d)
            .await;
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
}

#[tokio::test]
async fn edge_cases_empty_period_open_only_region_missing_amounts_and_mixed_currencies() {
    let app = spawn_app().await;
    put_all(
        &app,
        &[
            deal("o1", "Solo", "open", Some(100.0), "EUR", None),
            deal("o2", "Solo", "open", None, "EUR", None),
            deal("w1", "Mixed", "won", Some(1000.0), "EUR", Some("2025-03-05")),
            deal("w2", "Mixed", "won", Some(500.0), "GBP", Some("2025-03-06")),
            deal("w3", "Mixed", "won", None, "EUR", Some("2025-03-07")),
            deal("l1", "Mixed", "lost", Some(70.0), "USD", Some("2025-03-08")),
        ],
    )
    .await;
    let body = get(
        &app,
        "/v1/insights/pipeline?from=2025-03-01&to=2025-03-31&group_by=region",
    )
    .await;
    let group = |key: &str| {
        body["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|x| x["key"] == key))
            .cloned()
            .expect(key)
    };
    let solo = group("Solo")["current"].clone();
    assert_eq!(
        (solo["open_deals"].as_u64(), solo["won_deals"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(
        solo["win_rate"].is_null() && solo["loss_rate"].is_null() && solo["avg_won_cycle_days"].is_null()
    );
    assert_eq!(solo["open_pipeline_value"], json!({"EUR": 100.0}));
    assert_eq!(solo["open_deals_without_amount"], 1);
    let mixed = group("Mixed")["current"].clone();
    // Never summed across currencies; the deal without an amount is counted but not averaged.
    assert_eq!(mixed["won_revenue"], json!({"EUR": 1000.0, "GBP": 500.0}));
    assert_eq!(mixed["avg_won_deal_size"], json!({"EUR": 1000.0, "GBP": 500.0}));
    assert_eq!(
        (
            mixed["won_deals"].as_u64(),
            mixed["won_deals_without_amount"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_close(&mixed["win_rate"], Some(0.75), "mixed win rate");
    // An empty period: zero counts, absent rates, empty money; the previous period still shows.
    let empty = get(
        &app,
        "/v1/insights/pipeline?from=2024-01-01&to=2024-01-31&group_by=month",
    )
    .await;
    let f = &empty["groups"][0]["current"];
    assert_eq!(
        (f["won_deals"].as_u64(), f["open_deals"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(f["win_rate"].is_null());
    assert_eq!(f["won_revenue"], json!({}));
    // Accounts keep currencies apart too.
    let accounts = get(&app, "/v1/insights/accounts").await;
    assert_eq!(accounts["accounts"], 6);
    let w2 = accounts["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|a| a["account"] == "acct-w2"))
        .cloned()
        .expect("w2");
    assert_eq!(w2["won_revenue"], json!({"GBP": 500.0}));
}

#[tokio::test]
async fn a_write_is_seen_by_the_next_request_never_a_stale_cached_figure() {
    let app = spawn_app().await;
    put_all(
        &app,
        &[deal("w1", "North", "won", Some(10.0), "EUR", Some("2025-03-05"))],
    )
    .await;
    let path = "/v1/insights/pipeline?from=2025-03-01&to=2025-03-31&group_by=region";
    assert_eq!(get(&app, path).await["total"]["current"]["won_deals"], 1);
    // Served twice from the same snapshot, then a new deal, an update and a delete.
    assert_eq!(get(&app, path).await["total"]["current"]["won_deals"], 1);
    put_all(
        &app,
        &[deal("w2", "North", "won", Some(20.0), "EUR", Some("2025-03-06"))],
    )
    .await;
    assert_eq!(
        get(&app, path).await["total"]["current"]["won_revenue"],
        json!({"EUR": 30.0})
    );
    put_all(
        &app,
        &[deal("w2", "North", "lost", Some(20.0), "EUR", Some("2025-03-06"))],
    )
    .await;
    let f = get(&app, path).await["total"]["current"].clone();
    assert_eq!(
        (f["won_deals"].as_u64(), f["lost_deals"].as_u64()),
        (Some(1), Some(1))
    );
    let deleted = app
        .client
        .delete(app.url("/v1/opportunities/w2"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success());
    assert_eq!(get(&app, path).await["total"]["current"]["lost_deals"], 0);
    // A write straight to the database (another server, a SQL fix) is seen as well.
    sqlx::query("UPDATE opportunities SET amount = 99 WHERE external_id = 'w1'")
        .execute(&app.db.pool)
        .await
        .expect("update");
    assert_eq!(
        get(&app, path).await["total"]["current"]["won_revenue"],
        json!({"EUR": 99.0})
    );
    // A new score changes the forecast.
    put_all(&app, &[deal("o1", "North", "open", Some(1000.0), "EUR", None)]).await;
    let before = get(&app, "/v1/insights/resources?from=2025-03-01&to=2025-03-31").await;
    assert_eq!(before["regions"][0]["forecast"], json!({}));
    let id: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT id FROM opportunities WHERE external_id = 'o1'")
            .fetch_one(&app.db.pool)
            .await
            .expect("id"),
        "id",
    )
    .expect("id");
    let score = dealscore::store::scores::StoredScore {
        model_version: "m".into(),
        probability: 0.25,
        score: 25,
        grade: "C".into(),
        expected_value: Some(250.0),
        focus: "nurture".into(),
        scored_at: Utc::now(),
    };
    dealscore::store::scores::insert_batch(
        &app.db,
        &[dealscore::store::scores::NewScore {
            opportunity_id: id,
            score,
            deal_hash: None,
        }],
    )
    .await
    .expect("score");
    let after = get(&app, "/v1/insights/resources?from=2025-03-01&to=2025-03-31").await;
    assert_eq!(after["regions"][0]["forecast"], json!({"EUR": 250.0}));
    assert_eq!(after["regions"][0]["scored_open_deals"], 1);
}

#[tokio::test]
async fn success_factors_match_sorted_quantiles_of_the_generated_rows() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 2_000, 3).await;
    let body = get(&app, "/v1/insights/success-factors?sector=software").await;
    let software: Vec<&Opportunity> = deals
        .iter()
        .filter(|o| o.sector.as_deref() == Some("software") && o.status != Status::Open)
        .collect();
    let won = software.iter().filter(|o| o.status == Status::Won).count() as u64;
    assert_eq!(body["won_deals"], won);
    assert_eq!(body["lost_deals"], software.len() as u64 - won);
    for (i, name) in ["cycle_days", "interaction_count", "response_hours"]
        .iter()
        .enumerate()
    {
        let m = &body["measures"][i];
        assert_eq!(m["measure"], *name);
        for (outcome, status) in [("won", Status::Won), ("lost", Status::Lost)] {
            let values: Vec<f64> = software
                .iter()
                .filter(|o| o.status == status)
                .filter_map(|o| match *name {
                    "cycle_days" => {
                        Some((o.closed_at? - o.created_at?).num_milliseconds() as f64 / 86_400_000.0)
                    }
                    "interaction_count" => o.interaction_count.map(|n| n as f64),
                    _ => o.response_hours,
                })
                .collect();
            let d = &m[outcome];
            assert_eq!(d["count"], values.len() as u64);
            assert_close(
                &d["mean"],
                Some(values.iter().sum::<f64>() / values.len() as f64),
                name,
            );
            assert_close(&d["p25"], Some(sorted_quantile(&values, 0.25)), name);
            assert_close(&d["median"], Some(sorted_quantile(&values, 0.5)), name);
            assert_close(&d["p75"], Some(sorted_quantile(&values, 0.75)), name);
        }
    }
    // Win rate per contact role, within the sector.
    for r in body["by_contact_role"].as_array().expect("roles") {
        let role = r["level"].as_str().expect("level");
        let of_role: Vec<_> = software
            .iter()
            .filter(|o| o.contact_role.as_ref().map_or("(none)", |c| c.as_str()) == role)
            .collect();
        let w = of_role.iter().filter(|o| o.status == Status::Won).count();
        assert_eq!(
            (r["won"].as_u64(), r["lost"].as_u64()),
            (Some(w as u64), Some((of_role.len() - w) as u64))
        );
    }
    assert!(body["model"].is_null(), "no model is active");
}

#[tokio::test]
async fn accounts_and_resources_match_an_independent_computation() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 2_000, 9).await;
    let body = get(&app, "/v1/insights/accounts?limit=100000").await;
    let names: BTreeSet<&str> = deals.iter().filter_map(|o| o.account.as_deref()).collect();
    assert_eq!(body["accounts"], names.len() as u64);
    let mut winners = 0;
    let mut repeaters = 0;
    for row in body["rows"].as_array().expect("rows") {
        let name = row["account"].as_str().expect("name");
        let mine: Vec<&Opportunity> = deals
            .iter()
            .filter(|o| o.account.as_deref() == Some(name))
            .collect();
        let won: Vec<&&Opportunity> = mine.iter().filter(|o| o.status == Status::Won).collect();
        let lost = mine.iter().filter(|o| o.status == Status::Lost).count();
        assert_eq!(
            (row["deals"].as_u64(), row["won_deals"].as_u64()),
            (Some(mine.len() as u64), Some(won.len() as u64))
        );
        let mut revenue: BTreeMap<String, f64> = BTreeMap::new();
        for o in &won {
            *revenue.entry(o.currency.clone()).or_default() += o.amount.unwrap_or(0.0);
        }
        assert_money(&row["won_revenue"], &revenue, name);
        assert_close(
            &row["win_rate"],
            (won.len() + lost > 0).then(|| won.len() as f64 / (won.len() + lost) as f64),
            name,
        );
        let first = mine
            .iter()
            .filter_map(|o| o.created_at)
            .min()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        assert_eq!(row["first_deal_at"].as_str().map(String::from), first);
        assert_eq!(row["repeat_customer"], won.len() >= 2);
        winners += usize::from(!won.is_empty());
        repeaters += usize::from(won.len() >= 2);
    }
    assert_close(
        &body["repeat_rate"],
        Some(repeaters as f64 / winners as f64),
        "repeat rate",
    );

    let (start, end) = (ts(2025, 10, 1), ts(2026, 1, 1));
    let res = get(&app, "/v1/insights/resources?from=2025-10-01&to=2025-12-31").await;
    for row in res["regions"].as_array().expect("regions") {
        let region = row["name"].as_str().expect("name");
        let mine = || deals.iter().filter(|o| o.region.as_deref() == Some(region));
        let e = expected(mine(), start, end);
        assert_eq!(
            (row["open_deals"].as_u64(), row["won_deals"].as_u64()),
            (Some(e.open), Some(e.won)),
            "{region}"
        );
        assert_money(&row["won_revenue"], &e.won_revenue, region);
        let trend = row["trend"].as_array().expect("trend");
        assert_eq!(trend.len(), 4);
        let earliest = expected(mine(), start - (end - start) * 3, start - (end - start) * 2);
        assert_eq!(trend[0]["won_deals"], earliest.won, "{region} trend");
    }
    let reps = res["reps"].as_array().expect("reps");
    let loads: Vec<f64> = reps
        .iter()
        .map(|r| r["open_deals"].as_f64().unwrap_or(0.0))
        .collect();
    let median = sorted_quantile(&loads, 0.5);
    assert_close(&res["median_open_deals_per_rep"], Some(median), "median");
    for r in reps {
        assert_eq!(
            r["overloaded"],
            r["open_deals"].as_f64().unwrap_or(0.0) > 1.5 * median
        );
    }
}

#[tokio::test]
async fn at_risk_lists_open_deals_beyond_a_threshold_that_separates_lost_from_won_ranked_by_value() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 2_000, 21).await;
    let (status, body) = app
        .get_json(
            "/v1/insights/at-risk?as_of=2026-01-01&limit=500",
            &app.analyst_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let open = deals.iter().filter(|o| o.status == Status::Open).count() as u64;
    assert_eq!(body["open_deals"], open);
    let listed = body["deals"].as_array().expect("deals");
    assert!(!listed.is_empty() && listed.len() as u64 <= open.div_ceil(3));
    // The overall response-time threshold, recomputed from the closed deals.
    let closed: Vec<(f64, bool)> = deals
        .iter()
        .filter(|o| o.status != Status::Open)
        .filter_map(|o| Some((o.response_hours?, o.status == Status::Won)))
        .collect();
    let (threshold, beyond, within) = separating_threshold(&closed).expect("response time separates");
    assert!(beyond < within, "{beyond} {within}");
    let mut last = f64::INFINITY;
    let mut checked = 0;
    for d in listed {
        let stake = d["value_at_stake"].as_f64().unwrap_or(f64::NEG_INFINITY);
        assert!(stake <= last, "ranked by value at stake");
        last = stake;
        let signals = d["signals"].as_array().expect("signals");
        assert!(!signals.is_empty());
        for s in signals {
            assert!(s["value"].as_f64() > s["reference"].as_f64(), "{s}");
            assert!(
                s["win_rate_beyond"].as_f64() < s["win_rate_within"].as_f64(),
                "{s}"
            );
            if s["measure"] == "response_hours" {
                // The deal's sector's own threshold when it has 200 closed deals with a
                // response time, else the overall one.
                let sector = d["sector"].as_str();
                let mine: Vec<(f64, bool)> = deals
                    .iter()
                    .filter(|o| o.status != Status::Open && o.sector.as_deref() == sector)
                    .filter_map(|o| Some((o.response_hours?, o.status == Status::Won)))
                    .collect();
                let (expected, group) = match sector {
                    Some(name) if mine.len() >= 200 => {
                        (separating_threshold(&mine), format!("sector:{name}"))
                    }
                    _ => (Some((threshold, beyond, within)), "all".to_owned()),
                };
                let (t, b, w) = expected.expect("a signal comes from a separating threshold");
                assert_eq!(s["reference_group"], group.as_str(), "{s}");
                assert_close(&s["reference"], Some(t), "response threshold");
                assert_close(&s["win_rate_beyond"], Some(b), "won beyond");
                assert_close(&s["win_rate_within"], Some(w), "won within");
                checked += 1;
            }
        }
        assert!(d["recommended_intervention"].is_null(), "no model active");
    }
    assert!(checked > 0, "no response-time signal among the listed deals");
    let mine = app
        .get_json(
            "/v1/insights/at-risk?as_of=2026-01-01&owner=nobody",
            &app.analyst_key,
        )
        .await
        .1;
    assert_eq!(mine["open_deals"], 0);
    // A rep reaches it too, for their own deals (the scopes tests check which).
    let (status, _) = app
        .get_json("/v1/insights/at-risk?as_of=2026-01-01", &app.rep_key)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn every_insight_answers_csv_on_request() {
    let app = spawn_app().await;
    // Enough closed deals for at-risk thresholds to separate won from lost (none do at 500).
    load_generated(&app, 2_000, 2).await;
    let stored = app
        .client
        .put(app.url("/v1/objectives"))
        .bearer_auth(&app.analyst_key)
        .json(&json!({"objectives": [{"scope": "region", "name": "DACH", "period": "2025-Q4", "metric": "won_deals", "target": 10}]}))
        .send()
        .await
        .expect("put");
    assert_eq!(stored.status(), 200);
    for path in [
        "/v1/insights/pipeline?from=2025-10-01&to=2025-12-31&group_by=region",
        "/v1/insights/success-factors",
        "/v1/insights/at-risk?as_of=2026-01-01",
        "/v1/insights/resources?from=2025-10-01&to=2025-12-31",
        "/v1/insights/accounts",
        "/v1/insights/objectives?period=2025-Q4",
    ] {
        let json_body = get(&app, path).await;
        let separator = if path.contains('?') { '&' } else { '?' };
        for (url, accept) in [
            (format!("{path}{separator}format=csv"), "*/*"),
            (path.to_owned(), "text/csv"),
        ] {
            let response = app
                .client
                .get(app.url(&url))
                .bearer_auth(&app.analyst_key)
                .header("accept", accept)
                .send()
                .await
                .expect("csv");
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(
                response.headers()["content-type"],
                "text/csv; charset=utf-8",
                "{url}"
            );
            let text = response.text().await.expect("text");
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header = reader.headers().expect("header").clone();
            let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
            assert!(rows.iter().all(|r| r.len() == header.len()), "{url}");
            assert!(!rows.is_empty(), "{url}");
            if path.contains("objectives") {
                let actual = &rows[0][header.iter().position(|h| h == "actual").expect("actual")];
                assert_eq!(
                    actual.parse::<f64>().ok(),
                    json_body["objectives"][0]["actual"].as_f64()
                );
            }
            if path.contains("pipeline") {
                let won = &rows[0][header.iter().position(|h| h == "won_deals").expect("won_deals")];
                assert_eq!(
                    won.parse::<u64>().ok(),
                    json_body["total"]["current"]["won_deals"].as_u64()
                );
            }
        }
    }
}

#[tokio::test]
async fn objectives_report_attainment_gap_and_forecast_and_refuse_bad_input_whole() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 1_500, 4).await;
    let put = |body: Value| {
        let app = &app;
        async move {
            app.client
                .put(app.url("/v1/objectives"))
                .bearer_auth(&app.analyst_key)
                .json(&body)
                .send()
                .await
                .expect("put")
        }
    };
    // One bad item refuses the whole request, naming each bad field.
    let bad = put(json!({"objectives": [
        {"scope": "owner", "name": "anna.a", "period": "2025-Q4", "metric": "won_revenue", "currency": "EUR", "target": 1000},
        {"scope": "team", "name": "", "period": "2025-Q5", "metric": "won_revenue", "target": -1}
    ]}))
    .await;
    let problem = assert_problem(bad, 422, Some("objectives[1].scope")).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in [
        "objectives[1].name",
        "objectives[1].period",
        "objectives[1].currency",
        "objectives[1].target",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let none = get(&app, "/v1/insights/objectives?period=2025-Q4").await;
    assert_eq!(none["objectives"], json!([]), "nothing was written");

    let owner = deals.iter().find_map(|o| o.owner.clone()).expect("an owner");
    let ok = put(json!({"objectives": [
        {"scope": "owner", "name": owner, "period": "2025-q4", "metric": "won_revenue", "currency": "EUR", "target": 50000},
        {"scope": "region", "name": "DACH", "period": "2025-Q4", "metric": "won_deals", "target": 20}
    ]}))
    .await;
    assert_eq!(ok.status(), 200);
    // Replacing a target keeps one objective.
    let replaced = put(json!({"objectives": [{"scope": "region", "name": "DACH", "period": "2025-Q4", "metric": "won_deals", "target": 40}]})).await;
    assert_eq!(replaced.status(), 200);
    let body = get(&app, "/v1/insights/objectives?period=2025-Q4").await;
    let rows = body["objectives"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let (start, end) = (ts(2025, 10, 1), ts(2026, 1, 1));
    let won_in =
        |o: &&Opportunity| o.status == Status::Won && o.closed_at.is_some_and(|c| c >= start && c < end);
    let revenue: f64 = deals
        .iter()
        .filter(won_in)
        .filter(|o| o.owner.as_deref() == Some(owner.as_str()) && o.currency == "EUR")
        .filter_map(|o| o.amount)
        .sum();
    let dach = deals
        .iter()
        .filter(won_in)
        .filter(|o| o.region.as_deref() == Some("DACH"))
        .count() as f64;
    let region_row = rows.iter().find(|r| r["scope"] == "region").expect("region row");
    assert_close(&region_row["actual"], Some(dach), "DACH won deals");
    assert_close(&region_row["target"], Some(40.0), "replaced target");
    assert_close(&region_row["gap"], Some(40.0 - dach), "gap");
    assert_close(&region_row["attainment"], Some(dach / 40.0), "attainment");
    assert_eq!(region_row["forecast"], 0.0, "no scores, no forecast");
    let open_dach = deals
        .iter()
        .filter(|o| o.status == Status::Open && o.region.as_deref() == Some("DACH"))
        .count();
    assert_eq!(region_row["unscored_open_deals"], open_dach as u64);
    let owner_row = rows.iter().find(|r| r["scope"] == "owner").expect("owner row");
    assert!((owner_row["actual"].as_f64().unwrap_or(-1.0) - revenue).abs() < CENT);
    assert_eq!(owner_row["currency"], "EUR");
    let missing = app.get_json("/v1/insights/objectives", &app.analyst_key).await;
    assert_eq!(missing.0, 422);
}

#[tokio::test]
async fn bad_queries_are_problems_naming_the_field_and_roles_are_enforced() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/v1/insights/pipeline?group_by=week", "group_by"),
        ("/v1/insights/pipeline?from=2025-02-01&to=2025-01-01", "from"),
        ("/v1/insights/pipeline?to=yesterday", "to"),
        ("/v1/insights/resources?format=xml", "format"),
        ("/v1/insights/accounts?limit=0", "limit"),
        ("/v1/insights/objectives?period=2025-Q9", "period"),
        ("/v1/insights/breakdown", "by"),
        ("/v1/insights/breakdown?by=amount", "by"),
        ("/v1/insights/breakdown?by=attr.", "by"),
    ] {
        let response = app.get(path, &app.analyst_key).await;
        assert_problem(response, 422, Some(field)).await;
    }
    let typo = app
        .get("/v1/insights/pipeline?groupby=month", &app.analyst_key)
        .await;
    assert_problem(typo, 400, None).await;
    let at_risk = app.get("/v1/insights/at-risk?limit=501", &app.rep_key).await;
    assert_problem(at_risk, 422, Some("limit")).await;
    // Reps see the at-risk list but not the analyst dashboards; no key, no answer.
    let rep = app.get("/v1/insights/pipeline", &app.rep_key).await;
    assert_problem(rep, 403, None).await;
    let put = app
        .client
        .put(app.url("/v1/objectives"))
        .bearer_auth(&app.rep_key)
        .json(&json!({"objectives": []}))
        .send()
        .await
        .expect("request");
    assert_problem(put, 403, None).await;
    let anonymous = app
        .client
        .get(app.url("/v1/insights/at-risk"))
        .send()
        .await
        .expect("request");
    assert_problem(anonymous, 401, None).await;
    let empty_db = app.get_json("/v1/insights/pipeline", &app.analyst_key).await;
    assert_eq!(empty_db.0, 200, "an empty database answers zeros: {}", empty_db.1);
}

#[tokio::test]
async fn with_an_active_model_at_risk_deals_carry_an_intervention_and_success_factors_the_model_effects() {
    let app = spawn_app().await;
    load_generated(&app, 3_000, 13).await;
    let report = crate::helpers::train_cli(&app, &["--cv", "3"]);
    let version = report["artifact"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    crate::helpers::wait_for_model(&app, &version).await;
    let (status, at_risk) = app
        .get_json("/v1/insights/at-risk?as_of=2026-01-01&limit=10", &app.analyst_key)
        .await;
    assert_eq!(status, 200, "{at_risk}");
    assert_eq!(at_risk["model_version"], version.as_str());
    let deals = at_risk["deals"].as_array().expect("deals");
    assert!(!deals.is_empty());
    assert!(
        deals
            .iter()
            .any(|d| d["recommended_intervention"]["action"].is_string()),
        "{at_risk}"
    );
    let factors = get(&app, "/v1/insights/success-factors").await;
    assert_eq!(factors["model"]["version"], version.as_str());
    let model_factors = factors["model"]["factors"].as_array().expect("factors");
    assert!(
        model_factors.iter().any(|f| f["feature"] == "response_hours"),
        "{factors}"
    );
    let importances: Vec<f64> = model_factors
        .iter()
        .filter_map(|f| f["importance"].as_f64())
        .collect();
    assert!(
        importances.windows(2).all(|w| w[0] >= w[1]),
        "by decreasing importance"
    );
    // The breakdown by sector carries the model's effect of each sector it has a level for.
    let sector = model_factors
        .iter()
        .find(|f| f["feature"] == "sector")
        .expect("sector is a feature");
    let breakdown = get(
        &app,
        "/v1/insights/breakdown?by=sector&from=2000-01-01&to=2099-12-31",
    )
    .await;
    assert_eq!(breakdown["model_version"], version.as_str());
    assert_eq!(breakdown["model_feature"], true);
    let mut matched = 0;
    for row in breakdown["rows"].as_array().expect("rows") {
        let level = sector["levels"]
            .as_array()
            .expect("levels")
            .iter()
            .find(|l| l["level"] == row["value"]);
        match level {
            Some(l) if row["value"] != "(other)" => {
                assert_eq!(row["model_effect"]["coefficient"], l["coefficient"], "{row}");
                matched += 1;
            }
            _ => assert!(row["model_effect"].is_null(), "{row}"),
        }
    }
    assert!(matched > 0, "{breakdown}");
}

#[tokio::test]
async fn the_at_risk_records_read_at_once_are_the_ones_read_one_by_one() {
    use dealscore::store::opportunities;
    let app = spawn_app().await;
    // More than one statement's worth (400 ids per statement).
    let generated = load_generated(&app, 900, 21).await;
    let mut ids: Vec<&str> = generated.iter().map(|o| o.external_id.as_str()).collect();
    ids.push("no-such-deal");
    let found = opportunities::get_many(&app.db, &ids).await.expect("read");
    assert_eq!(found.len(), generated.len(), "unknown ids are left out");
    for o in &generated {
        let one = opportunities::get(&app.db, o.external_id.as_str())
            .await
            .expect("read")
            .expect("stored");
        let many = &found[o.external_id.as_str()];
        assert_eq!(many.id, one.id);
        assert_eq!(json!(many), json!(one));
    }
    assert!(opportunities::get_many(&app.db, &[])
        .await
        .expect("read")
        .is_empty());
}

#[tokio::test]
async fn the_change_stamp_moves_with_every_write_and_keeps_its_value_when_compacted() {
    use dealscore::store::insights::change_stamp;
    let app = spawn_app().await;
    let start = change_stamp(&app.db).await.expect("stamp");
    put_all(&app, &[deal("a", "North", "open", Some(1.0), "EUR", None)]).await;
    let after_put = change_stamp(&app.db).await.expect("stamp");
    assert!(after_put > start);
    sqlx::query("DELETE FROM opportunities WHERE external_id = 'a'")
        .execute(&app.db.pool)
        .await
        .expect("delete");
    let after_delete = change_stamp(&app.db).await.expect("stamp");
    assert!(after_delete > after_put);
    if app.db.backend == dealscore::store::Backend::Postgres {
        // Many writing statements leave many change rows; reading folds them into one row of the
        // same total, so the stamp does not move and later writes still move it.
        for i in 0..1_100 {
            sqlx::query("INSERT INTO insights_changes (weight) VALUES (1)")
                .execute(&app.db.pool)
                .await
                .expect("change row");
            if i == 0 {
                assert_eq!(change_stamp(&app.db).await.expect("stamp"), after_delete + 1);
            }
        }
        let before_compaction = change_stamp(&app.db).await.expect("stamp");
        assert_eq!(before_compaction, after_delete + 1_100);
        let rows: i64 = sqlx::Row::try_get(
            &sqlx::query("SELECT COUNT(*) AS n FROM insights_changes")
                .fetch_one(&app.db.pool)
                .await
                .expect("n"),
            "n",
        )
        .expect("n");
        assert_eq!(rows, 1, "compacted");
        assert_eq!(change_stamp(&app.db).await.expect("stamp"), before_compaction);
        put_all(&app, &[deal("b", "North", "open", Some(1.0), "EUR", None)]).await;
        assert!(change_stamp(&app.db).await.expect("stamp") > before_compaction);
    }
}

/// Per value: (open at the end, won, lost, EUR won revenue, won cycles, lost cycles).
type ValueFigures = (u64, u64, u64, f64, Vec<f64>, Vec<f64>);

fn median_of(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| sorted_quantile(values, 0.5))
}

#[tokio::test]
async fn breakdown_by_a_core_field_and_by_attributes_matches_an_independent_computation() {
    let app = spawn_app().await;
    let deals = load_generated(&app, 2_000, 11).await;
    let (start, end) = (ts(2000, 1, 1), ts(2100, 1, 1));
    let cycle =
        |o: &Opportunity| Some((o.closed_at? - o.created_at?).num_milliseconds() as f64 / 86_400_000.0);
    for by in ["sector", "owner", "attr.lead_source", "attr.competitors"] {
        let value_of = |o: &Opportunity| -> Option<String> {
            match by {
                "sector" => o.sector.clone(),
                "owner" => o.owner.clone(),
                _ => o.attributes.get(&by[5..]).map(|v| v.to_text()),
            }
        };
        let mut expected: BTreeMap<Option<String>, ValueFigures> = BTreeMap::new();
        for o in &deals {
            let e = expected.entry(value_of(o)).or_default();
            if open_at(o, end) {
                e.0 += 1;
            } else if closed_in(o, start, end) {
                if o.status == Status::Won {
                    e.1 += 1;
                    if o.currency == "EUR" {
                        e.3 += o.amount.unwrap_or(0.0);
                    }
                    e.4.extend(cycle(o));
                } else {
                    e.2 += 1;
                    e.5.extend(cycle(o));
                }
            }
        }
        let body = get(
            &app,
            &format!("/v1/insights/breakdown?by={by}&from=2000-01-01&to=2099-12-31"),
        )
        .await;
        assert_eq!(body["by"], by);
        assert_eq!(body["other_threshold"], 10);
        assert_eq!(body["model_feature"], false, "no model is active");
        let rows = body["rows"].as_array().expect("rows");
        let mut rare = 0;
        for (value, (open, won, lost, eur, won_cycles, lost_cycles)) in &expected {
            let label = value.as_deref().unwrap_or("(none)");
            if value.is_some() && open + won + lost < 10 {
                rare += 1;
                assert!(rows.iter().all(|r| r["value"] != label), "{by} {label} is rare");
                continue;
            }
            let r = rows
                .iter()
                .find(|r| r["value"] == label)
                .unwrap_or_else(|| panic!("{by} {label} missing"));
            let what = format!("{by}={label}");
            assert_eq!(
                (&r["open_deals"], &r["won_deals"], &r["lost_deals"]),
                (&json!(open), &json!(won), &json!(lost)),
                "{what}"
            );
            let closed = won + lost;
            let rate = (closed > 0).then(|| *won as f64 / closed as f64);
            assert_close(&r["win_rate"], rate, &what);
            // Wilson, written out: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
            let wilson = rate.map(|p| {
                let (n, z) = (closed as f64, 1.959_963_984_540_054_f64);
                let centre = p + z * z / (2.0 * n);
                let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
                let d = 1.0 + z * z / n;
                (((centre - half) / d).max(0.0), ((centre + half) / d).min(1.0))
            });
            assert_close(&r["win_rate_low"], wilson.map(|w| w.0), &what);
            assert_close(&r["win_rate_high"], wilson.map(|w| w.1), &what);
            let got_eur = r["won_revenue"]["EUR"].as_f64().unwrap_or(0.0);
            assert!((got_eur - eur).abs() < CENT, "{what}: {got_eur} vs {eur}");
            assert_close(&r["median_won_cycle_days"], median_of(won_cycles), &what);
            assert_close(&r["median_lost_cycle_days"], median_of(lost_cycles), &what);
        }
        assert_eq!(body["other_values"], rare, "{by}");
        assert_eq!(rows.iter().any(|r| r["value"] == "(other)"), rare > 0, "{by}");
    }
    // The generated competitors count is a number: values are its text.
    let body = get(
        &app,
        "/v1/insights/breakdown?by=attr.competitors&from=2000-01-01&to=2099-12-31",
    )
    .await;
    assert!(
        body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["value"] == "1"),
        "{body}"
    );
    // An attribute no deal has: every deal in `(none)`.
    let body = get(
        &app,
        "/v1/insights/breakdown?by=attr.nothing&from=2000-01-01&to=2099-12-31",
    )
    .await;
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["rows"][0]["value"], "(none)");
    // CSV: a header and a row per value.
    let csv = app
        .client
        .get(app.url("/v1/insights/breakdown?by=sector&from=2000-01-01&to=2099-12-31&format=csv"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    assert!(
        text.starts_with("by,value,open_deals,won_deals,lost_deals,win_rate,win_rate_low"),
        "{text}"
    );
    let rows = get(
        &app,
        "/v1/insights/breakdown?by=sector&from=2000-01-01&to=2099-12-31",
    )
    .await["rows"]
        .clone();
    assert_eq!(text.lines().count(), rows.as_array().map_or(0, Vec::len) + 1);
}

/// The threshold among the 50th, 55th, …, 95th percentiles of `closed` (value, won) with the
/// largest two-proportion z (at least 3, 30 deals a side) where beyond wins less; with the win
/// rates beyond and within. Written apart from the service's code, counting each side anew.
fn separating_threshold(closed: &[(f64, bool)]) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = closed.iter().map(|c| c.0).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let won = closed.iter().filter(|c| c.1).count() as f64;
    let mut best: Option<(f64, f64, f64, f64)> = None;
    for p in (50..=95).step_by(5) {
        let t = values[(n * p / 100).min(n - 1)];
        let (beyond, won_beyond) = closed
            .iter()
            .filter(|c| c.0 > t)
            .fold((0.0, 0.0), |(k, w), c| (k + 1.0, w + f64::from(u8::from(c.1))));
        let within = n as f64 - beyond;
        if beyond < 30.0 || within < 30.0 {
            continue;
        }
        let pooled = won / n as f64;
        let (rb, rw) = (won_beyond / beyond, (won - won_beyond) / within);
        let z = (rw - rb) / (pooled * (1.0 - pooled) * (1.0 / beyond + 1.0 / within)).sqrt();
        if z >= 3.0 && best.is_none_or(|b| z > b.0) {
            best = Some((z, t, rb, rw));
        }
    }
    best.map(|(_, t, rb, rw)| (t, rb, rw))
}
