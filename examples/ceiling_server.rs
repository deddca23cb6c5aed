//! The throughput ceiling for `POST /v1/score` benchmarks: a minimal actix-web handler that reads
//! the same JSON body and returns a constant, on the same machine. See BENCHMARKS.md.
//!
//! `cargo run --release --example ceiling_server -- 127.0.0.1:18090 [ANSWER_FILE]`
//!
//! With `ANSWER_FILE` the constant is that file's bytes — a real score answer, say — so the
//! ceiling pays the same transport cost (kernel copies, the client reading it) as the server it
//! is compared with, and the difference left is the server's own work.

use actix_web::{post, web, App, HttpResponse, HttpServer};

/// A small answer of the score's shape, used when no file is given.
const SMALL_ANSWER: &str = r#"{"probability":0.5,"score":50,"grade":"B"}"#;

#[post("/v1/score")]
async fn constant(_body: web::Json<serde_json::Value>, answer: web::Data<web::Bytes>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(answer.get_ref().clone())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let answer = match args.next() {
        Some(path) => web::Bytes::from(std::fs::read(path)?),
        None => web::Bytes::from_static(SMALL_ANSWER.as_bytes()),
    };
    let answer = web::Data::new(answer);
    HttpServer::new(move || App::new().app_data(answer.clone()).service(constant))
        .bind(bind)?
        .run()
        .await
}
