use crate::helpers::{assert_problem, open_deal, spawn_app};

#[tokio::test]
async fn v1_needs_a_bearer_key() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/v1/opportunities")).send().await.unwrap();
    assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_problem(response, 401, None).await;
    let response = app
        .client
        .get(app.url("/v1/opportunities"))
        .bearer_auth("ds_not_a_key")
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, None).await;
    let response = app
        .client
        .get(app.url("/v1/opportunities"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, None).await;
}

#[tokio::test]
async fn roles_are_enforced_per_route() {
    let app = spawn_app().await;
    // rep reads but cannot write
    let (status, _) = app.get_json("/v1/opportunities", &app.rep_key).await;
    assert_eq!(status, 200);
    let response = app
        .client
        .put(app.url("/v1/opportunities/x1"))
        .bearer_auth(&app.rep_key)
        .json(&open_deal("x1", "alice", "EMEA"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 403, None).await;
    assert!(body["detail"].as_str().unwrap().contains("analyst"));
    // analyst and admin write
    for key in [&app.analyst_key, &app.admin_key] {
        let response = app
            .client
            .put(app.url("/v1/opportunities/x1"))
            .bearer_auth(key)
            .json(&open_deal("x1", "alice", "EMEA"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    // imports are analyst-only
    let response = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.rep_key)
        .header("content-type", "text/csv")
        .body("external_id,status\nz,open\n")
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, None).await;
    assert_eq!(app.count_opportunities().await, 1);
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = spawn_app().await;
    assert!(dealscore::store::api_keys::revoke(&app.db, "test-rep")
        .await
        .unwrap());
    let response = app
        .client
        .get(app.url("/v1/opportunities"))
        .bearer_auth(&app.rep_key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, None).await;
}
