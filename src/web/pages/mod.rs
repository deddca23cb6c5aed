//! One file per page (or group of pages). Handlers are thin: parse the query, call the library,
//! shape the view, render.

pub mod assets;
pub mod auth;
pub mod competitors;
pub mod customers;
pub mod deal;
pub mod deals;
pub mod models;
pub mod pipeline;
pub mod process;
pub mod resources;
pub mod team;

use serde::Deserialize;

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's token.
    #[serde(default)]
    pub csrf: String,
}

/// Empty query values mean "no filter".
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}
