//! Languages of API answers: scoring sentences and problems in English or French, chosen by
//! `Accept-Language` and overridden by `?lang=`.

use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, open_deal, signature_now, spawn_app, spawn_app_with, webhook_source, TestApp,
};
use crate::scoring::trained_app;

/// A slow, thinly worked deal with an end user: the model has levers and sentences for it.
fn weak_deal() -> Value {
    json!({"sector": "software", "contact_role": "end_user", "amount": 40000, "cycle_days": 30,
           "interaction_count": 3, "response_hours": 40.7})
}

fn content_language(response: &Response) -> String {
    response
        .headers()
        .get("content-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn score(app: &TestApp, query: &str, accept_language: &str) -> (String, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/score{query}")))
        .bearer_auth(&app.rep_key)
        .header("Accept-Language", accept_language)
        .json(&weak_deal())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let language = content_language(&response);
    (language, response.json().await.expect("json"))
}

fn sentences(result: &Value) -> Vec<String> {
    let mut out: Vec<String> = result["factors"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.extend(result["next_intervention"]["message"].as_str().map(str::to_owned));
    out
}

fn assert_french(result: &Value) {
    let next = result["next_intervention"]["message"].as_str().expect("a lever");
    assert!(next.contains("fait passer la probabilité de gain de"), "{next}");
    assert!(next.contains("\u{202F}%"), "French percentages: {next}");
    assert!(
        sentences(result)
            .iter()
            .all(|s| !s.contains(" of won deals") && !s.contains("lifts the")),
        "{result}"
    );
    let factors = result["factors"].as_array().expect("factors");
    assert!(
        factors.iter().any(|f| {
            let m = f["message"].as_str().unwrap_or("");
            m.contains("affaires gagnées") || m.contains("affaires clôturées")
        }),
        "{factors:?}"
    );
}

#[tokio::test]
async fn scoring_answers_in_the_language_asked_for_with_the_same_numbers() {
    let (app, _) = trained_app().await;

    let (en_language, en) = score(&app, "", "en-US,en;q=0.9").await;
    assert_eq!(en_language, "en");
    let en_next = en["next_intervention"]["message"].as_str().expect("a lever");
    assert!(en_next.contains("lifts the win probability from"), "{en_next}");

    let (fr_language, fr) = score(&app, "", "fr-FR,fr;q=0.9,en;q=0.5").await;
    assert_eq!(fr_language, "fr");
    assert_french(&fr);
    // Only words change: the numbers, the lever and the factors are the same.
    assert_eq!(fr["probability"], en["probability"]);
    assert_eq!(
        fr["next_intervention"]["feature"],
        en["next_intervention"]["feature"]
    );
    assert_eq!(
        fr["factors"].as_array().map(Vec::len),
        en["factors"].as_array().map(Vec::len)
    );
    // Displayed values keep 2–3 significant digits, as the pages do.
    let response_factor = fr["factors"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["feature"] == "response_hours"))
        .expect("response time is a factor");
    assert_eq!(response_factor["value"], "41 h");

    // ?lang= beats Accept-Language, both ways.
    let (language, overridden) = score(&app, "?lang=fr", "en").await;
    assert_eq!(language, "fr");
    assert_french(&overridden);
    let (language, english) = score(&app, "?lang=en", "fr").await;
    assert_eq!(language, "en");
    assert_eq!(
        english["next_intervention"]["message"],
        en["next_intervention"]["message"]
    );

    // A stored deal scored in French, and the priority list's interventions.
    let mut deal = open_deal("fr-1", "alice", "EMEA");
    deal["interaction_count"] = json!(1);
    deal["response_hours"] = json!(60);
    deal["contact_role"] = json!("end_user");
    assert_eq!(app.put_opportunity("fr-1", &deal).await.status(), 201);
    let response = app
        .client
        .get(app.url("/v1/opportunities/fr-1/score"))
        .bearer_auth(&app.rep_key)
        .header("Accept-Language", "fr")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(content_language(&response), "fr");
    let stored: Value = response.json().await.expect("json");
    assert_eq!(stored["external_id"], "fr-1");
    assert_french(&stored);
    let response = app
        .client
        .get(app.url("/v1/opportunities/priority?owner=alice&lang=fr"))
        .bearer_auth(&app.rep_key)
        .send()
        .await
        .expect("request");
    assert_eq!(content_language(&response), "fr");
    let list: Value = response.json().await.expect("json");
    let item = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["external_id"] == "fr-1"))
        .expect("the open deal is listed");
    let message = item["next_intervention"]["message"].as_str().expect("a lever");
    assert!(
        message.contains("fait passer la probabilité de gain de"),
        "{message}"
    );
}

#[tokio::test]
async fn problems_are_worded_in_french_and_keep_their_type() {
    let app = spawn_app().await;

    // 401: French title and detail, same type, the challenge header kept.
    let ask = |lang: &'static str| {
        app.client
            .get(app.url("/v1/opportunities"))
            .header("Accept-Language", lang)
            .send()
    };
    let english = ask("en").await.expect("request");
    assert_eq!(content_language(&english), "en");
    let english = assert_problem(english, 401, None).await;
    assert_eq!(english["title"], "Authentication required");
    let french = ask("fr-CA,fr;q=0.9").await.expect("request");
    assert_eq!(content_language(&french), "fr");
    assert_eq!(
        french.headers().get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let french = assert_problem(french, 401, None).await;
    assert_eq!(french["type"], english["type"]);
    assert_eq!(french["title"], "Authentification requise");
    assert_eq!(french["detail"], "envoyez `Authorization: Bearer <clé d'API>`");

    // 422: the summary and the field messages in French, field names unchanged.
    let response = app
        .client
        .put(app.url("/v1/opportunities/bad-1?lang=fr"))
        .bearer_auth(&app.analyst_key)
        .header("Accept-Language", "en")
        .json(&json!({"amount": -5, "status": "won", "created_at": "yesterday"}))
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 422, Some("amount")).await;
    assert_eq!(body["type"], "https://dealscore.dev/problems/validation");
    assert_eq!(body["title"], "Données invalides");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(body["detail"], format!("{} champs sont invalides", errors.len()));
    let message = |field: &str| {
        errors
            .iter()
            .find(|e| e["field"] == field)
            .and_then(|e| e["message"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(message("amount"), "doit être positif ou nul");
    assert_eq!(message("closed_at"), "est obligatoire quand le statut est won");
    assert!(message("created_at").starts_with("`yesterday` n'est pas un horodatage"));

    // 404 for an unknown route and 503 without a model.
    let response = app
        .client
        .get(app.url("/v1/nowhere"))
        .header("Accept-Language", "fr")
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 404, None).await;
    assert_eq!(body["type"], "https://dealscore.dev/problems/not-found");
    assert_eq!(body["detail"], "aucune route pour GET /v1/nowhere");
    let response = app
        .client
        .post(app.url("/v1/score?lang=fr"))
        .bearer_auth(&app.rep_key)
        .json(&weak_deal())
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 503, None).await;
    assert_eq!(body["type"], "https://dealscore.dev/problems/no-active-model");
    assert_eq!(body["title"], "Service indisponible");
    assert!(body["detail"]
        .as_str()
        .unwrap_or("")
        .starts_with("aucun modèle n'est encore actif"));
}

#[tokio::test]
async fn free_text_problems_imports_and_webhook_answers_are_french_too() {
    let app = spawn_app_with(|s| s.webhook_sources = vec![webhook_source("crm", &["whsec_fr"])]).await;
    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .bearer_auth(&app.analyst_key)
            .header("Accept-Language", "fr")
            .send()
    };

    // 404 naming what is missing, 400 for a bad parameter: French, same types.
    let body = assert_problem(get("/v1/opportunities/D-404").await.expect("request"), 404, None).await;
    assert_eq!(body["detail"], "aucune opportunité `D-404`");
    let body = assert_problem(
        get("/v1/opportunities?limit=0").await.expect("request"),
        400,
        None,
    )
    .await;
    assert_eq!(body["type"], "https://dealscore.dev/problems/invalid-query");
    assert_eq!(body["detail"], "limit doit être compris entre 1 et 1000");
    let body = assert_problem(
        get("/v1/opportunities?status=maybe").await.expect("request"),
        400,
        None,
    )
    .await;
    assert_eq!(body["detail"], "le statut `maybe` n'est pas open, won ni lost");
    // Insights field errors.
    let body = assert_problem(
        get("/v1/insights/pipeline?from=demain").await.expect("request"),
        422,
        Some("from"),
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("`demain` n'est ni une date")),
        "{body}"
    );
    // The same request in English is unchanged.
    let english = app
        .client
        .get(app.url("/v1/opportunities/D-404"))
        .bearer_auth(&app.analyst_key)
        .send()
        .await
        .expect("request");
    assert_eq!(
        assert_problem(english, 404, None).await["detail"],
        "no opportunity `D-404`"
    );

    // CSV import: the reason of each rejected row.
    let csv = "external_id,status,amount,created_at\nC-1,open,-3,2026-01-05\nC-2,open,10,2026-01-05\n";
    let response = app
        .client
        .post(app.url("/v1/imports?lang=fr"))
        .bearer_auth(&app.analyst_key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.expect("summary");
    assert_eq!(summary["inserted"], 1, "{summary}");
    assert_eq!(
        summary["rejected_rows"][0]["reason"],
        "amount\u{202F}: doit être positif ou nul"
    );
    // A header problem is a French field error.
    let response = app
        .client
        .post(app.url("/v1/imports?lang=fr"))
        .bearer_auth(&app.analyst_key)
        .header("content-type", "text/csv")
        .body("name,amount\nx,1\n")
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 422, Some("header")).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("le fichier n'a pas de colonne `external_id`")),
        "{body}"
    );

    // Webhooks: a refused signature, and the field errors of a rejected event inside a batch.
    let event = r#"{"id":"e1","type":"opportunity.upserted","occurred_at":"2026-01-05T10:00:00Z","data":{"external_id":"W-1","status":"open","created_at":"2026-01-05"}}"#;
    let response = app
        .client
        .post(app.url("/v1/webhooks/crm?lang=fr"))
        .header("content-type", "application/json")
        .header("Dealscore-Signature", signature_now("not-the-secret", event))
        .body(event)
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 401, None).await;
    assert_eq!(body["detail"], "la signature ne correspond pas");
    let batch = format!(
        r#"{{"events":[{event},{{"id":"e2","type":"opportunity.exploded","occurred_at":"2026-01-05T10:00:00Z","data":{{}}}}]}}"#
    );
    let response = app
        .client
        .post(app.url("/v1/webhooks/crm?lang=fr"))
        .header("content-type", "application/json")
        .header("Dealscore-Signature", signature_now("whsec_fr", &batch))
        .body(batch.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 207);
    let answer: Value = response.json().await.expect("batch answer");
    let rejected = &answer["events"][1];
    assert_eq!(rejected["status"], "rejected", "{answer}");
    assert!(
        rejected["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("type d'événement `opportunity.exploded` inconnu")),
        "{answer}"
    );
    assert!(
        rejected["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("type\u{202F}: type d'événement")),
        "{answer}"
    );
}
