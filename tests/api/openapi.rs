//! `/openapi.json` describes the server that serves it: every `$ref` resolves, and every
//! documented operation, sent a few representative bad requests, answers only the statuses and
//! media types it documents (the property-based run over the whole document is
//! `.ci/schemathesis`).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app_with, webhook_source, TestApp};

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi.json")
        .json()
        .await
        .expect("JSON document")
}

/// The value a JSON pointer (`#/components/schemas/Problem`) names in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_in_the_served_document_resolves() {
    let app = spawn_app_with(|_| {}).await;
    let doc = document(&app).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "{} references", refs.len());
    let broken: Vec<&str> = refs.into_iter().filter(|r| resolve(&doc, r).is_none()).collect();
    assert!(broken.is_empty(), "unresolvable: {broken:?}");
    // The problem shape every error answer points to, with its field-level member.
    let problem = &doc["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "detail", "errors"] {
        assert!(problem["properties"].get(member).is_some(), "{problem}");
    }
}

/// One request to send, and the operation it is for.
struct Probe {
    method: Method,
    path: String,
    key: Option<String>,
    body: Option<(&'static str, &'static str)>,
    what: &'static str,
}

/// The documented statuses of an operation, and the media types of each.
fn documented(operation: &Value) -> Vec<(String, Vec<String>)> {
    operation["responses"]
        .as_object()
        .expect("responses")
        .iter()
        .map(|(status, response)| {
            let types = response["content"]
                .as_object()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            (status.clone(), types)
        })
        .collect()
}

#[tokio::test]
async fn every_operation_answers_bad_requests_only_as_documented() {
    let app = spawn_app_with(|s| s.webhook_sources = vec![webhook_source("crm", &["whsec_doc"])]).await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (template, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            // Path parameters: an id nothing has, one no record can have (a NUL), and for the
            // webhook routes the configured source.
            let fill = |odd: bool| {
                let mut path = template.clone();
                for (name, value) in [
                    ("{source}", "crm"),
                    ("{id}", if odd { "%00" } else { "7" }),
                    ("{external_id}", if odd { "D%00" } else { "no-such-deal" }),
                    ("{version}", if odd { "m%00" } else { "no-such-version" }),
                ] {
                    path = path.replace(name, value);
                }
                path
            };
            let secured = operation.get("security").is_some();
            let has_body = operation.get("requestBody").is_some();
            let mut probes = vec![
                Probe {
                    method: method.clone(),
                    path: fill(false),
                    key: None,
                    body: None,
                    what: "no key",
                },
                Probe {
                    method: method.clone(),
                    path: format!("{}?no_such_parameter=1", fill(false)),
                    key: Some(app.admin_key.clone()),
                    body: has_body.then_some(("application/json", "{\"no\": ")),
                    what: "unknown parameter, body not JSON",
                },
                Probe {
                    method: method.clone(),
                    path: fill(true),
                    key: Some(app.rep_key.clone()),
                    body: has_body.then_some(("application/json", "[]")),
                    what: "rep key, odd id, array body",
                },
            ];
            if has_body {
                probes.push(Probe {
                    method: method.clone(),
                    path: fill(false),
                    key: Some(app.admin_key.clone()),
                    body: Some(("application/xml", "<deal/>")),
                    what: "XML body",
                });
            }
            for probe in probes {
                // Only bad requests: no key, bad bodies, ids nothing has (starting a training run
                // or a rescore with a good body is never sent).
                let mut request = app.client.request(probe.method.clone(), app.url(&probe.path));
                if let Some(key) = &probe.key {
                    request = request.bearer_auth(key);
                }
                if let Some((media_type, body)) = probe.body {
                    request = request.header("content-type", media_type).body(body);
                }
                let response = request.send().await.expect("request");
                let status = response.status().as_u16().to_string();
                let media_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
                let allowed = documented(operation);
                let entry = allowed.iter().find(|(s, _)| *s == status);
                let Some((_, types)) = entry else {
                    panic!(
                        "{} {template} ({}): {status} is not documented ({:?}): {}",
                        probe.method,
                        probe.what,
                        allowed.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
                        response.text().await.unwrap_or_default()
                    );
                };
                if let Some(media_type) = media_type.filter(|_| !types.is_empty()) {
                    assert!(
                        types.contains(&media_type),
                        "{} {template} ({}): {status} answered {media_type}, documented {types:?}",
                        probe.method,
                        probe.what
                    );
                }
                if secured && probe.key.is_none() {
                    assert_eq!(status, "401", "{} {template} needs a key", probe.method);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} requests checked");
}
