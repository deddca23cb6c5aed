//! The throughput ceiling for `POST /v1/score` benchmarks: a minimal actix-web handler that reads
//! the same JSON body and returns a constant, on the same machine. See BENCHMARKS.md.
//!
//! `cargo run --release --example ceiling_server -- 127.0.0.1:18090`

use actix_web::{post, web, App, HttpResponse, HttpServer};

#[post("/v1/score")]
async fn constant(_body: web::Json<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"probability":0.5,"score":50,"grade":"B"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    HttpServer::new(|| App::new().service(constant))
        .bind(bind)?
        .run()
        .await
}
