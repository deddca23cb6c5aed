//! Owners and scopes: a rep key reads, scores and lists only its owner's deals, a manager key
//! its team's (a list of owners or a region), analyst and admin keys every deal. A deal outside
//! the caller's scope answers the same 404 as an unknown one.

use dealscore::auth::{generate_key, hash_key};
use dealscore::store::api_keys;
use dealscore::store::scope::Scope;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, open_deal, spawn_app, TestApp};
use crate::scoring::trained_app;

/// Creates a key with `role` and `scope`; returns the secret.
async fn key(app: &TestApp, name: &str, role: &str, scope: Scope) -> String {
    let key = generate_key();
    api_keys::insert_scoped(&app.db, name, role, &hash_key(&key), &scope)
        .await
        .expect("key");
    key
}

/// Five open deals: ana has two in Zeta, bo one in Zeta, cy one in Eta, and one has no owner.
async fn seed(app: &TestApp) {
    for (id, owner, region) in [
        ("S-A1", "scope-ana", "Zeta"),
        ("S-A2", "scope-ana", "Zeta"),
        ("S-B1", "scope-bo", "Zeta"),
        ("S-C1", "scope-cy", "Eta"),
    ] {
        let response = app.put_opportunity(id, &open_deal(id, owner, region)).await;
        assert!(response.status().is_success(), "{id}");
    }
    let mut ownerless = open_deal("S-N1", "x", "Zeta");
    ownerless.as_object_mut().expect("object").remove("owner");
    assert!(app
        .put_opportunity("S-N1", &ownerless)
        .await
        .status()
        .is_success());
}

/// The external ids of a list answer (`items` of a page, or a bare array), sorted, keeping
/// only this test's deals (a trained app holds generated ones too).
fn ids(body: &Value) -> Vec<String> {
    let items = body.get("items").unwrap_or(body);
    let list = items.get("deals").unwrap_or(items);
    let mut out: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["external_id"].as_str())
                .filter(|id| id.starts_with("S-"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A deal outside the scope and an unknown deal answer the same problem (the id aside).
async fn assert_hidden(app: &TestApp, key: &str, path_of: impl Fn(&str) -> String) {
    let hidden = app
        .client
        .get(app.url(&path_of("S-C1")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let hidden = assert_problem(hidden, 404, None).await;
    let unknown = app
        .client
        .get(app.url(&path_of("S-ZZ")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let unknown = assert_problem(unknown, 404, None).await;
    assert_eq!(hidden["type"], unknown["type"]);
    assert_eq!(hidden["title"], unknown["title"]);
    assert_eq!(
        hidden["detail"].as_str().unwrap().replace("S-C1", "?"),
        unknown["detail"].as_str().unwrap().replace("S-ZZ", "?")
    );
}

#[tokio::test]
async fn a_rep_lists_reads_and_scores_only_their_own_deals() {
    let (app, _) = trained_app().await;
    seed(&app).await;
    let ana = key(&app, "ana", "rep", Scope::Owners(vec!["scope-ana".into()])).await;

    let (status, page) = app.get_json("/v1/opportunities?limit=1000", &ana).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "only ana's deals at all"
    );
    assert_eq!(ids(&page), ["S-A1", "S-A2"]);
    // A filter narrows the scope but never widens it.
    let (_, other) = app.get_json("/v1/opportunities?owner=scope-cy", &ana).await;
    assert_eq!(ids(&other), Vec::<String>::new());

    let (status, ranked) = app.get_json("/v1/opportunities/priority?limit=500", &ana).await;
    assert_eq!(status, 200, "{ranked}");
    assert_eq!(ranked.as_array().unwrap().len(), 2, "{ranked}");
    assert_eq!(ids(&ranked), ["S-A1", "S-A2"]);
    let (_, widened) = app
        .get_json("/v1/opportunities/priority?owner=scope-bo", &ana)
        .await;
    assert_eq!(widened, json!([]));

    let (status, risky) = app
        .get_json("/v1/insights/at-risk?as_of=2026-01-01&limit=500", &ana)
        .await;
    assert_eq!(status, 200, "{risky}");
    assert_eq!(risky["open_deals"], 2, "{risky}");
    assert!(risky["deals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["owner"] == "scope-ana"));

    let (status, own) = app.get_json("/v1/opportunities/S-A1", &ana).await;
    assert_eq!((status, own["owner"].clone()), (200, json!("scope-ana")));
    let (status, scored) = app.get_json("/v1/opportunities/S-A1/score", &ana).await;
    assert_eq!(status, 200, "{scored}");
    assert!(!scored["history"].as_array().unwrap().is_empty());
    let (status, _) = app.get_json("/v1/opportunities/S-A1/activities", &ana).await;
    assert_eq!(status, 200);

    assert_hidden(&app, &ana, |id| format!("/v1/opportunities/{id}")).await;
    assert_hidden(&app, &ana, |id| format!("/v1/opportunities/{id}/score")).await;
    assert_hidden(&app, &ana, |id| format!("/v1/opportunities/{id}/activities")).await;
    // The refused read of another's score recorded nothing in that deal's history.
    let (_, theirs) = app
        .get_json("/v1/opportunities/S-C1/score", &app.analyst_key)
        .await;
    assert_eq!(theirs["history"].as_array().unwrap().len(), 1, "{theirs}");
}

#[tokio::test]
async fn a_reps_pages_hold_only_their_deals_and_end_where_they_do() {
    let app = spawn_app().await;
    seed(&app).await;
    let ana = key(&app, "ana", "rep", Scope::Owners(vec!["scope-ana".into()])).await;
    let (_, first) = app.get_json("/v1/opportunities?limit=1", &ana).await;
    assert_eq!(ids(&first), ["S-A1"]);
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, second) = app
        .get_json(&format!("/v1/opportunities?limit=1&cursor={cursor}"), &ana)
        .await;
    assert_eq!(ids(&second), ["S-A2"]);
    assert!(second["next_cursor"].is_null(), "{second}");
}

#[tokio::test]
async fn a_manager_sees_their_team_by_owners_or_by_region() {
    let app = spawn_app().await;
    seed(&app).await;
    let team = key(
        &app,
        "lead",
        "manager",
        Scope::Owners(vec!["scope-ana".into(), "scope-cy".into()]),
    )
    .await;
    let (status, page) = app.get_json("/v1/opportunities", &team).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["S-A1", "S-A2", "S-C1"]);
    let (status, _) = app.get_json("/v1/opportunities/S-C1", &team).await;
    assert_eq!(status, 200);
    let (status, _) = app.get_json("/v1/opportunities/S-B1", &team).await;
    assert_eq!(status, 404);
    let (_, risky) = app.get_json("/v1/insights/at-risk?as_of=2026-01-01", &team).await;
    assert_eq!(risky["open_deals"], 3, "{risky}");

    let zeta = key(&app, "zeta-lead", "manager", Scope::Region("Zeta".into())).await;
    let (_, page) = app.get_json("/v1/opportunities", &zeta).await;
    assert_eq!(ids(&page), ["S-A1", "S-A2", "S-B1", "S-N1"]);
    let (status, _) = app.get_json("/v1/opportunities/S-C1", &zeta).await;
    assert_eq!(status, 404);
    let (_, risky) = app.get_json("/v1/insights/at-risk?as_of=2026-01-01", &zeta).await;
    assert_eq!(risky["open_deals"], 4, "{risky}");

    // A manager reads but does not write, like a rep.
    let response = app
        .client
        .put(app.url("/v1/opportunities/S-A1"))
        .bearer_auth(&team)
        .json(&open_deal("S-A1", "scope-ana", "Zeta"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, None).await;
}

#[tokio::test]
async fn analysts_see_every_deal_and_ownerless_rep_keys_are_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let (_, page) = app.get_json("/v1/opportunities", &app.analyst_key).await;
    assert_eq!(ids(&page), ["S-A1", "S-A2", "S-B1", "S-C1", "S-N1"]);
    let (_, page) = app.get_json("/v1/opportunities", &app.admin_key).await;
    assert_eq!(ids(&page).len(), 5);

    for (name, role) in [("old-rep", "rep"), ("old-manager", "manager")] {
        let ownerless = key(&app, name, role, Scope::All).await;
        let response = app
            .client
            .get(app.url("/v1/opportunities"))
            .bearer_auth(&ownerless)
            .send()
            .await
            .unwrap();
        let body = assert_problem(response, 403, None).await;
        assert_eq!(body["type"], "https://dealscore.dev/problems/key-without-owner");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(name) && detail.contains("no owner"), "{detail}");
        assert!(
            detail.contains("--owner") && detail.contains("docs/operations.md"),
            "{detail}"
        );
    }
}
