//! The customers insight and acquisition spend: every figure against a reference computed here
//! from the generated rows, the replace semantics of `PUT /v1/acquisition-costs`, 422s, and the
//! CSV import that writes nothing when one line is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use chrono::{DateTime, Duration, Months, TimeZone, Utc};
use dealscore::domain::{AttributeValue, Opportunity, Status};
use serde_json::{json, Value};

use crate::helpers::get_as_analyst as get;
use crate::helpers::import_generated as load;
use crate::helpers::{assert_problem, bin_path, spawn_app_with, won_deal, TestApp};

fn ts(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("date")
}

async fn customers_app(fields: bool) -> TestApp {
    spawn_app_with(|s| {
        if fields {
            s.insights.deal_type_field = Some("attr.deal_type".into());
            s.insights.contract_months_field = Some("attr.contract_months".into());
        }
    })
    .await
}

async fn put_costs(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url("/v1/acquisition-costs"))
        .bearer_auth(&app.analyst_key)
        .json(body)
        .send()
        .await
        .expect("request")
}

// ---- the reference: plain loops over the generated opportunities ----

fn text_attr<'a>(o: &'a Opportunity, name: &str) -> Option<&'a str> {
    match o.attributes.get(name)? {
        AttributeValue::Text(t) => Some(t.as_str()),
        AttributeValue::Number(_) => None,
    }
}

fn months_attr(o: &Opportunity) -> Option<u32> {
    match o.attributes.get("contract_months")? {
        AttributeValue::Number(n) => Some(*n as u32),
        AttributeValue::Text(t) => t.parse().ok(),
    }
}

#[derive(Debug, Default)]
struct Reference {
    customers: u64,
    new_customers: u64,
    new_by_region: BTreeMap<String, u64>,
    value: BTreeMap<String, f64>,
    contracts_started: u64,
    avg_months: Option<f64>,
    renewed: u64,
    churned: u64,
    pending: u64,
    base: BTreeMap<String, f64>,
    retained: BTreeMap<String, f64>,
}

fn reference(
    deals: &[Opportunity],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Reference {
    let mut r = Reference::default();
    let mut by_account: BTreeMap<&str, Vec<&Opportunity>> = BTreeMap::new();
    for o in deals {
        if let (Some(a), Status::Won, Some(_)) = (o.account.as_deref(), o.status, o.closed_at) {
            by_account.entry(a).or_default().push(o);
        }
    }
    let mut value_sum: BTreeMap<String, f64> = BTreeMap::new();
    let mut value_n: BTreeMap<String, u64> = BTreeMap::new();
    let mut months = Vec::new();
    for won in by_account.values() {
        let before_end: Vec<_> = won.iter().filter(|o| o.closed_at.unwrap() < end).collect();
        if !before_end.is_empty() {
            r.customers += 1;
            let currencies: BTreeSet<&str> = before_end.iter().map(|o| o.currency.as_str()).collect();
            for c in currencies {
                let sum: f64 = before_end
                    .iter()
                    .filter(|o| o.currency == c)
                    .map(|o| o.amount.unwrap())
                    .sum();
                *value_sum.entry(c.into()).or_default() += sum;
                *value_n.entry(c.into()).or_default() += 1;
            }
        }
        // The first win: the earliest close; the earlier row on a tie (rows are in id order).
        let first = won.iter().min_by_key(|o| o.closed_at.unwrap()).unwrap();
        if first.closed_at.unwrap() >= start && first.closed_at.unwrap() < end {
            r.new_customers += 1;
            *r.new_by_region.entry(first.region.clone().unwrap()).or_default() += 1;
        }
        let kind = |o: &Opportunity| text_attr(o, "deal_type").unwrap_or("new").to_owned();
        // (start, end, amount, currency) of each contract.
        let contracts: Vec<(DateTime<Utc>, DateTime<Utc>, f64, String)> = won
            .iter()
            .filter(|o| kind(o) != "upsell")
            .filter_map(|o| {
                let m = months_attr(o)?;
                let s = o.closed_at.unwrap();
                if s >= start && s < end {
                    months.push(f64::from(m));
                }
                Some((
                    s,
                    s.checked_add_months(Months::new(m))?,
                    o.amount.unwrap(),
                    o.currency.clone(),
                ))
            })
            .collect();
        let ending: Vec<_> = contracts.iter().filter(|c| c.1 >= start && c.1 < end).collect();
        if ending.is_empty() {
            continue;
        }
        let first_end = ending.iter().map(|c| c.1).min().unwrap();
        let last_end = ending.iter().map(|c| c.1).max().unwrap();
        let first_start = ending.iter().map(|c| c.0).min().unwrap();
        let renewals: Vec<_> = won
            .iter()
            .filter(|o| kind(o) == "renewal")
            .filter(|o| {
                let c = o.closed_at.unwrap();
                c >= first_end - Duration::days(180) && c <= last_end + Duration::days(90)
            })
            .collect();
        if renewals.is_empty() && last_end + Duration::days(90) > now {
            r.pending += 1;
            continue;
        }
        if renewals.is_empty() {
            r.churned += 1;
        } else {
            r.renewed += 1;
        }
        for c in &ending {
            *r.base.entry(c.3.clone()).or_default() += c.2;
        }
        let upsells = won.iter().filter(|o| kind(o) == "upsell").filter(|o| {
            let c = o.closed_at.unwrap();
            c >= first_start && c <= last_end
        });
        for o in renewals.into_iter().chain(upsells) {
            *r.retained.entry(o.currency.clone()).or_default() += o.amount.unwrap();
        }
    }
    r.value = value_sum
        .iter()
        .map(|(c, s)| (c.clone(), s / value_n[c] as f64))
        .collect();
    r.contracts_started = months.len() as u64;
    r.avg_months = (!months.is_empty()).then(|| months.iter().sum::<f64>() / months.len() as f64);
    r
}

fn close(actual: &Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {a} vs {expected}"
    );
}

fn money(actual: &Value, expected: &BTreeMap<String, f64>, what: &str) {
    let map = actual
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a map: {actual}"));
    assert_eq!(
        map.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: currencies"
    );
    for (c, v) in expected {
        close(&map[c], *v, &format!("{what} {c}"));
    }
}

#[tokio::test]
async fn customer_figures_match_an_independent_computation_over_the_generated_rows() {
    let app = customers_app(true).await;
    let deals = load(&app, 3_000, 21).await;
    // Quarterly spend per region in 2025, and a month of 2024 that only half overlaps nothing.
    let regions = ["DACH", "EMEA-North", "APAC"];
    let mut costs = Vec::new();
    for (q, amount) in [
        ("2025-Q1", 9_000.0),
        ("2025-Q2", 12_000.0),
        ("2025-Q3", 6_000.0),
        ("2025-Q4", 3_000.0),
    ] {
        for (i, region) in regions.iter().enumerate() {
            costs.push(
                json!({"period": q, "region": region, "currency": "EUR", "amount": amount * (i + 1) as f64}),
            );
        }
    }
    let response = put_costs(&app, &json!({ "costs": costs })).await;
    assert_eq!(response.status(), 200);

    // Mid-May to the end of the year: Q2 counts pro rata (47 of its 91 days).
    let (start, end) = (ts(2025, 5, 15), ts(2026, 1, 1));
    let body = get(&app, "/v1/insights/customers?from=2025-05-15&to=2025-12-31").await;
    let r = reference(&deals, start, end, Utc::now());
    assert!(r.new_customers > 0 && r.churned > 0 && r.renewed > 0, "{r:?}");
    assert!(
        !r.retained.is_empty(),
        "renewals and upsells carry amounts: {r:?}"
    );

    let q2_share = 47.0 / 91.0;
    let region_spend = |i: usize| (12_000.0 * q2_share + 6_000.0 + 3_000.0) * (i + 1) as f64;
    let spend: f64 = (0..3).map(region_spend).sum();
    money(
        &body["acquisition_spend"],
        &[("EUR".to_owned(), spend)].into(),
        "spend",
    );
    assert_eq!(body["new_customers"], r.new_customers);
    money(
        &body["avg_acquisition_cost"]["value"],
        &[("EUR".to_owned(), spend / r.new_customers as f64)].into(),
        "acquisition cost",
    );
    let by_region = body["acquisition_by_region"].as_array().expect("regions");
    assert_eq!(by_region.len(), 3);
    for g in by_region {
        let name = g["region"].as_str().expect("region");
        let i = regions.iter().position(|r| *r == name).expect("a region given");
        let new = r.new_by_region.get(name).copied().unwrap_or(0);
        assert_eq!(g["new_customers"], new, "{name}");
        if new == 0 {
            assert_eq!(g["avg_acquisition_cost"]["reason"], "no_new_customers");
        } else {
            money(
                &g["avg_acquisition_cost"]["value"],
                &[("EUR".to_owned(), region_spend(i) / new as f64)].into(),
                name,
            );
        }
    }
    assert_eq!(body["customers"], r.customers);
    money(&body["avg_customer_value"]["value"], &r.value, "customer value");
    assert_eq!(body["contracts_started"], r.contracts_started);
    close(
        &body["avg_contract_months"]["value"],
        r.avg_months.expect("contracts"),
        "contract months",
    );
    assert_eq!(
        (
            &body["renewed_customers"],
            &body["churned_customers"],
            &body["pending_customers"]
        ),
        (&json!(r.renewed), &json!(r.churned), &json!(r.pending))
    );
    close(
        &body["churn_rate"]["value"],
        r.churned as f64 / (r.churned + r.renewed) as f64,
        "churn rate",
    );
    assert!(body["churn_rate"]["reason"].is_null());
    money(&body["retention_base"], &r.base, "retention base");
    money(&body["retained_revenue"], &r.retained, "retained");
    let nrr: BTreeMap<String, f64> = r
        .base
        .iter()
        .map(|(c, b)| (c.clone(), r.retained.get(c).copied().unwrap_or(0.0) / b))
        .collect();
    money(
        &body["net_revenue_retention"]["value"],
        &nrr,
        "net revenue retention",
    );

    // The same figures as CSV, one row per figure.
    let csv = app
        .client
        .get(app.url("/v1/insights/customers?from=2025-05-15&to=2025-12-31&format=csv"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("text");
    assert!(csv.starts_with("figure,region,currency,value,reason\n"), "{csv}");
    assert!(
        csv.contains(&format!("new_customers,,,{},", r.new_customers)),
        "{csv}"
    );
    assert!(csv.contains("churn_rate,,,0."), "{csv}");

    // The page shows the same period's figures, in both languages; a bad date is refused.
    let mut analyst = crate::web::Browser::new(&app);
    analyst.sign_in(&app.analyst_key).await;
    let (status, _, page) = analyst
        .get("/customers?from=2025-05-15&to=2025-12-31&lang=en")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("{} new customers", r.new_customers)),
        "{page}"
    );
    assert!(
        page.contains("value=\"2025-05-15\"") && page.contains("value=\"2025-12-31\""),
        "{page}"
    );
    let (status, _, page) = analyst
        .get("/customers?from=2025-05-15&to=2025-12-31&lang=fr")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("{} nouveaux clients", r.new_customers)),
        "{page}"
    );
    let (status, _, page) = analyst.get("/customers?from=2025-13-01").await;
    assert_eq!(status, 400, "{page}");

    // A write is seen by the next request: a new account won in the window, on a renewal
    // contract of 12 months.
    let mut deal = won_deal("X-1");
    deal["account"] = json!("Brand New Ltd");
    deal["closed_at"] = json!("2025-06-01");
    deal["attributes"] = json!({"deal_type": "new", "contract_months": 12});
    let response = app.put_opportunity("X-1", &deal).await;
    assert!(response.status().is_success(), "{}", response.status());
    let after = get(&app, "/v1/insights/customers?from=2025-05-15&to=2025-12-31").await;
    assert_eq!(after["new_customers"], r.new_customers + 1);
    assert_eq!(after["contracts_started"], r.contracts_started + 1);
}

#[tokio::test]
async fn without_fields_or_spend_each_figure_is_null_with_its_reason_never_zero() {
    let app = customers_app(false).await;
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-12-31").await;
    for (figure, reason) in [
        ("avg_acquisition_cost", "no_spend"),
        ("avg_customer_value", "no_customers"),
        ("avg_contract_months", "contract_fields_unset"),
        ("churn_rate", "contract_fields_unset"),
        ("net_revenue_retention", "contract_fields_unset"),
    ] {
        assert!(body[figure]["value"].is_null(), "{figure}: {body}");
        assert_eq!(body[figure]["reason"], reason, "{figure}");
    }
    load(&app, 600, 3).await;
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-12-31").await;
    assert!(body["avg_customer_value"]["value"].is_object(), "{body}");
    assert_eq!(body["avg_acquisition_cost"]["reason"], "no_spend");
    // Spend, but in a window where nobody became a customer.
    let response = put_costs(
        &app,
        &json!({"costs": [{"period": "2020", "currency": "EUR", "amount": 100}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = get(&app, "/v1/insights/customers?from=2020-01-01&to=2020-12-31").await;
    assert_eq!(body["avg_acquisition_cost"]["reason"], "no_new_customers");
    assert_eq!(body["acquisition_spend"]["EUR"], 100.0);
}

#[tokio::test]
async fn a_deal_type_field_alone_is_not_enough_for_churn_and_a_contract_field_alone_neither() {
    let app =
        spawn_app_with(|s| s.insights.contract_months_field = Some("attr.contract_months".into())).await;
    load(&app, 600, 4).await;
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-12-31").await;
    assert!(body["avg_contract_months"]["value"].is_number(), "{body}");
    assert_eq!(body["churn_rate"]["reason"], "deal_type_field_unset");
    assert_eq!(body["net_revenue_retention"]["reason"], "deal_type_field_unset");
}

#[tokio::test]
async fn acquisition_costs_replace_whole_periods_and_bad_input_is_refused_whole() {
    let app = customers_app(true).await;
    let first = json!({"costs": [
        {"period": "2025-Q1", "region": "DACH", "currency": "EUR", "amount": 100},
        {"period": "2025-Q1", "region": "APAC", "currency": "EUR", "amount": 50},
        {"period": "2025-Q2", "currency": "EUR", "amount": 70},
    ]});
    let response = put_costs(&app, &first).await;
    assert_eq!(response.status(), 200);
    let stored: Value = response.json().await.expect("json");
    assert_eq!(
        (stored["stored"].as_u64(), stored["replaced"].as_u64()),
        (Some(3), Some(0))
    );
    // The same body again: same table.
    let again: Value = put_costs(&app, &first).await.json().await.expect("json");
    assert_eq!(
        (again["stored"].as_u64(), again["replaced"].as_u64()),
        (Some(3), Some(3))
    );
    let spend = |b: &Value| b["acquisition_spend"]["EUR"].as_f64();
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-06-30").await;
    assert_eq!(spend(&body), Some(220.0));
    // Q1 given again as one total: its region rows go, Q2 stays.
    let response = put_costs(
        &app,
        &json!({"costs": [{"period": "2025-q1", "currency": "eur", "amount": 10}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-06-30").await;
    assert_eq!(spend(&body), Some(80.0));
    assert_eq!(body["acquisition_by_region"], json!([]));

    let bad = json!({"costs": [
        {"period": "2025-Q5", "currency": "EUR", "amount": 1},
        {"period": "2025-Q2", "region": "=HYPERLINK(1)", "currency": "EUR", "amount": 1},
        {"period": "2025-Q2", "currency": "EURO", "amount": -5},
    ]});
    let problem = assert_problem(put_costs(&app, &bad).await, 422, Some("costs[0].period")).await;
    let text = problem.to_string();
    for field in ["costs[1].region", "costs[2].currency", "costs[2].amount"] {
        assert!(text.contains(field), "{field}: {text}");
    }
    assert_problem(put_costs(&app, &json!({"costs": []})).await, 422, Some("costs")).await;
    let mixed = json!({"costs": [
        {"period": "2025-06", "currency": "EUR", "amount": 1},
        {"period": "2025-06", "channel": "events", "currency": "EUR", "amount": 1},
    ]});
    assert_problem(put_costs(&app, &mixed).await, 422, Some("costs[1]")).await;
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-06-30").await;
    assert_eq!(spend(&body), Some(80.0), "nothing of a refused body is written");

    let (status, _) = app
        .get_json(
            "/v1/insights/customers?from=2025-07-01&to=2025-01-01",
            &app.analyst_key,
        )
        .await;
    assert_eq!(status, 422);
    let response = app
        .client
        .get(app.url("/v1/insights/customers?from=soon"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("request");
    assert_problem(response, 422, Some("from")).await;
    let response = app
        .client
        .put(app.url("/v1/acquisition-costs"))
        .bearer_auth(&app.rep_key)
        .json(&first)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn the_acquisition_cost_import_writes_everything_or_nothing() {
    let app = customers_app(true).await;
    let dir = tempfile::tempdir().expect("dir");
    let run = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        Command::new(bin_path())
            .args(["import", "--acquisition-costs", path.to_str().expect("path")])
            .env("DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dealscore")
    };
    let bad = run(
        "bad.csv",
        "period,channel,currency,amount\n2025-Q1,events,EUR,100\n2025-Q2,@SUM(A1),EUR,5\n2025-Q3,web,EUR,lots\n",
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("line 3: channel") && stderr.contains("line 4: amount"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(
        body["acquisition_spend"],
        json!({}),
        "the good first line was not written either"
    );

    let good = run(
        "good.csv",
        "period,channel,currency,amount\n2025-Q1,events,EUR,100\n2025-Q1,web,EUR,50\n2025-Q2,events,USD,20\n",
    );
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let body = get(&app, "/v1/insights/customers?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(body["acquisition_spend"], json!({"EUR": 150.0, "USD": 20.0}));
    let channels: Vec<&str> = body["spend_by_channel"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channel"].as_str())
        .collect();
    assert_eq!(channels, ["events", "web"]);
}
