//! The stylesheet and the small script, compiled into the binary.

use actix_web::http::header;
use actix_web::HttpResponse;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

/// `GET /assets/app.css`.
pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /assets/app.js`.
pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
