//! The lists reps and managers work from: the priority list searched, walked with a cursor past
//! 500 deals and exported as CSV (API and page), and a manager's view of the team's reps.

use std::collections::BTreeSet;

use dealscore::auth::{generate_key, hash_key};
use dealscore::store::api_keys;
use dealscore::store::scope::Scope;
use serde_json::{json, Value};

use crate::helpers::{open_deal, TestApp};
use crate::scoring::trained_app;
use crate::web::Browser;

/// A key with `role` and `scope`; its secret.
async fn key(app: &TestApp, name: &str, role: &str, scope: Scope) -> String {
    let key = generate_key();
    api_keys::insert_scoped(&app.db, name, role, &hash_key(&key), &scope)
        .await
        .expect("key");
    key
}

/// `GET path` with `key`: status, headers, body text.
async fn get(app: &TestApp, path: &str, key: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// Rows of a CSV text, header first.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv record").iter().map(str::to_string).collect())
        .collect()
}

/// The external ids of the deal links of a `/deals` page, in order.
fn screen_ids(html: &str) -> Vec<String> {
    html.split("<a href=\"/deals/")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("\" class=\"deal-link\"")
                .map(|(id, _)| id.to_string())
        })
        .collect()
}

/// Every open deal's id, through the opportunities list.
async fn open_ids(app: &TestApp) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut path = "/v1/opportunities?status=open&limit=1000".to_string();
    loop {
        let (status, page) = app.get_json(&path, &app.analyst_key).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            ids.insert(item["external_id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/opportunities?status=open&limit=1000&cursor={cursor}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn the_priority_list_is_searched_walked_past_500_and_exported_as_csv() {
    let (app, _) = trained_app().await;
    let mut evil = open_deal("L-EVIL", "list-ana", "Zeta");
    evil["name"] = json!("=HYPERLINK(\"https://evil.example\",\"Open\")");
    evil["account"] = json!("Formula Works Ltd");
    evil["amount"] = json!(12500);
    assert!(app.put_opportunity("L-EVIL", &evil).await.status().is_success());

    // The cursor walks the whole list, in order, each deal once.
    let mut walked: Vec<Value> = Vec::new();
    let mut path = "/v1/opportunities/priority?limit=500".to_string();
    let mut pages = 0;
    loop {
        let (status, headers, body) = get(&app, &path, &app.analyst_key).await;
        assert_eq!(status, 200, "{body}");
        let items: Vec<Value> = serde_json::from_str(&body).expect("json");
        walked.extend(items);
        pages += 1;
        let Some(cursor) = headers.get("next-cursor").and_then(|v| v.to_str().ok()) else {
            assert!(headers.get("link").is_none(), "no next link on the last page");
            break;
        };
        let link = headers["link"].to_str().expect("link");
        assert!(
            link.starts_with("</v1/opportunities/priority?limit=500&cursor=")
                && link.ends_with(">; rel=\"next\""),
            "{link}"
        );
        path = format!("/v1/opportunities/priority?limit=500&cursor={cursor}");
    }
    let ids: Vec<String> = walked
        .iter()
        .map(|i| i["external_id"].as_str().expect("id").to_string())
        .collect();
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert!(
        ids.len() > 500 && pages >= 2,
        "{} deals in {pages} pages",
        ids.len()
    );
    assert_eq!(distinct.len(), ids.len(), "no deal twice");
    assert_eq!(distinct, open_ids(&app).await, "every open deal");
    let values: Vec<f64> = walked
        .iter()
        .map(|i| i["expected_value"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] >= w[1]),
        "highest expected value first"
    );
    // A cursor belongs to its sort; garbage is a 400.
    let (_, headers, _) = get(&app, "/v1/opportunities/priority?limit=5", &app.analyst_key).await;
    let cursor = headers["next-cursor"].to_str().expect("cursor").to_string();
    for bad in [
        format!("/v1/opportunities/priority?sort=score&cursor={cursor}"),
        "/v1/opportunities/priority?cursor=v00zz".to_string(),
    ] {
        let (status, _, body) = get(&app, &bad, &app.analyst_key).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Search by account or name, ignoring case; bounds are 400s.
    let (status, found) = app
        .get_json(
            "/v1/opportunities/priority?search=formula%20WORKS",
            &app.analyst_key,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["external_id"], "L-EVIL");
    let (_, by_name) = app
        .get_json("/v1/opportunities/priority?search=hyperlink", &app.analyst_key)
        .await;
    assert_eq!(by_name[0]["external_id"], "L-EVIL", "{by_name}");
    for bad in [format!("search={}", "x".repeat(201)), "search=a%0Ab".to_string()] {
        let (status, _) = app
            .get_json(&format!("/v1/opportunities/priority?{bad}"), &app.analyst_key)
            .await;
        assert_eq!(status, 400, "{bad}");
    }

    // CSV: the same page as JSON, formulas escaped, by `format=csv` or `Accept: text/csv`.
    let (status, headers, text) = get(
        &app,
        "/v1/opportunities/priority?search=formula&format=csv",
        &app.analyst_key,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let rows = csv_rows(&text);
    assert_eq!(rows[0][..3], ["external_id", "name", "account"]);
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[1][1], "'=HYPERLINK(\"https://evil.example\",\"Open\")");
    let (_, _, json_page) = get(
        &app,
        "/v1/opportunities/priority?limit=30&sort=score",
        &app.analyst_key,
    )
    .await;
    let json_ids: Vec<String> = serde_json::from_str::<Vec<Value>>(&json_page)
        .expect("json")
        .iter()
        .map(|i| i["external_id"].as_str().expect("id").to_string())
        .collect();
    let response = app
        .client
        .get(app.url("/v1/opportunities/priority?limit=30&sort=score"))
        .bearer_auth(&app.analyst_key)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers().contains_key("next-cursor"));
    let csv_ids: Vec<String> = csv_rows(&response.text().await.expect("body"))
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(csv_ids, json_ids);
    let (status, _) = app
        .get_json("/v1/opportunities/priority?format=xml", &app.analyst_key)
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_deals_page_searches_shows_expected_value_and_exports_what_it_shows() {
    let (app, _) = trained_app().await;
    let mut evil = open_deal("L-EVIL", "list-ana", "Zeta");
    evil["name"] = json!("@SUM(1+1)");
    evil["account"] = json!("Formula Works Ltd");
    assert!(app.put_opportunity("L-EVIL", &evil).await.status().is_success());
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.analyst_key).await;

    // A second page of a sorted list: the CSV holds exactly its rows, in its order.
    let (status, _, html) = browser.get("/deals?sort=score&page=2").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Expected value"),
        "the column the list is sorted by"
    );
    let shown = screen_ids(&html);
    assert_eq!(shown.len(), 25);
    let unescaped = html.replace("&#38;", "&").replace("&amp;", "&");
    assert!(
        unescaped.contains("href=\"/deals.csv?sort=score&page=2\""),
        "{html}"
    );
    let (status, _, text) = browser.get("/deals.csv?sort=score&page=2").await;
    assert_eq!(status, 200, "{text}");
    let exported: Vec<String> = csv_rows(&text)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(exported, shown);

    // Search, in French too; the export of a search escapes formulas.
    let (status, _, html) = browser.get("/deals?search=formula+works&lang=fr").await;
    assert_eq!(status, 200);
    assert_eq!(screen_ids(&html), ["L-EVIL"]);
    assert!(html.contains("Valeur attendue") && html.contains("value=\"formula works\""));
    let (_, _, text) = browser.get("/deals.csv?search=formula+works&page=1").await;
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[1][1], "'@SUM(1+1)");
    let (status, _, _) = browser.get(&format!("/deals?search={}", "x".repeat(201))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_manager_sees_their_teams_reps_and_only_their_lists() {
    let (app, _) = trained_app().await;
    for (id, owner, region) in [
        ("L-A1", "team-ana", "Zeta"),
        ("L-A2", "team-ana", "Zeta"),
        ("L-B1", "team-bo", "Zeta"),
        ("L-C1", "team-cy", "Eta"),
    ] {
        let response = app.put_opportunity(id, &open_deal(id, owner, region)).await;
        assert!(response.status().is_success(), "{id}");
    }
    let manager = key(
        &app,
        "lead",
        "manager",
        Scope::Owners(vec!["team-ana".into(), "team-bo".into(), "team-dee".into()]),
    )
    .await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&manager).await;
    let (status, _, html) = browser.get("/team").await;
    assert_eq!(status, 200, "{html}");
    for rep in ["team-ana", "team-bo", "team-dee"] {
        assert!(
            html.contains(&format!("href=\"/deals?owner={rep}\"")),
            "{rep}: {html}"
        );
    }
    assert!(!html.contains("team-cy"), "another team's rep");
    assert!(
        html.contains("id=\"team-open\">3<"),
        "three open deals in the team: {html}"
    );
    assert!(
        html.contains("href=\"/team\""),
        "the team entry in the navigation"
    );
    // Each rep's list, and its export, hold that rep's deals only.
    let (_, _, list) = browser.get("/deals?owner=team-ana").await;
    let mut listed = screen_ids(&list);
    listed.sort();
    assert_eq!(listed, ["L-A1", "L-A2"]);
    let (_, _, text) = browser.get("/deals.csv").await;
    let owners: BTreeSet<String> = csv_rows(&text)
        .into_iter()
        .skip(1)
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from(["team-ana".to_string(), "team-bo".to_string()])
    );
    let (_, _, other) = browser.get("/deals.csv?owner=team-cy").await;
    assert_eq!(
        csv_rows(&other).len(),
        1,
        "a filter never widens the scope: {other}"
    );

    // A rep has no team page; an analyst sees every rep.
    let rep = key(&app, "ana", "rep", Scope::Owners(vec!["team-ana".into()])).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&rep).await;
    let (status, _, html) = browser.get("/team").await;
    assert_eq!(status, 403);
    assert!(!html.contains("href=\"/team\""), "no team entry for a rep");
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.analyst_key).await;
    let (status, _, html) = browser.get("/team?lang=fr").await;
    assert_eq!(status, 200);
    assert!(html.contains("team-cy") && html.contains("Équipe"));
}
