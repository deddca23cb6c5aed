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

use chrono::{Duration, Utc};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::insights::period::{self, Window};
use crate::web::error::{PageError, PageErrorKind};

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

/// The period of a page's `from` and `to` dates (both included): from `default_days` before
/// today to today where one is missing. A bad date is the reader's to fix (a 400 page naming it).
pub fn page_period(
    from: Option<String>,
    to: Option<String>,
    default_days: i64,
    lang: Lang,
) -> Result<(String, String, Window), PageError> {
    let now = Utc::now();
    let today = now.date_naive();
    let from = non_empty(from).unwrap_or_else(|| (today - Duration::days(default_days)).to_string());
    let to = non_empty(to).unwrap_or_else(|| today.to_string());
    let window = period::window(Some(&from), Some(&to), now).map_err(|(field, message)| {
        PageError::new(
            lang,
            PageErrorKind::BadInput(format!("{field}: {}", message.get(lang))),
        )
    })?;
    Ok((from, to, window))
}
