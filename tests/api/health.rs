use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn health_ready_metrics_and_docs_are_public() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn every_response_echoes_a_request_id() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = response.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert!(!id.is_empty());
}

#[tokio::test]
async fn metrics_count_requests_per_route_pattern_not_per_id() {
    let app = spawn_app().await;
    for id in ["a", "b", "c"] {
        app.get_opportunity(id).await;
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"route="/v1/opportunities/{external_id}",status="404"} 3"#),
        "{text}"
    );
    assert!(text.contains("dealscore_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn openapi_is_3_1_and_lists_the_routes() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/opportunities/{external_id}",
        "/v1/opportunities",
        "/v1/imports",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_are_problems() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_problem(response, 404, None).await;
}
