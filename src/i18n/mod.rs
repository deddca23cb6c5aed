//! Languages: English and French for pages and API messages.
//!
//! The language of a request is, in order: a `lang` query parameter (`?lang=fr`), then the
//! `dealscore_lang` cookie the web UI's switch sets, then the best `Accept-Language` match,
//! then English. Numbers, money and dates are formatted per language by [`format`].

pub mod format;

use std::fmt;

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

/// Cookie that remembers the language picked with the web UI's switch.
pub const LANG_COOKIE: &str = "dealscore_lang";

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every supported language, default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 primary tag (`en`, `fr`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language's own name, for a language switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    /// Parses a language tag (`fr`, `fr-CA`, `EN_gb`); only the primary subtag counts.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The supported language an `Accept-Language` header prefers, if any: the highest
    /// `q` wins, ties go to the earlier entry, `q=0` means "not this one".
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .unwrap_or(1.0);
            let Some(lang) = Lang::parse(tag) else { continue };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The language of a request (see the module documentation for the order).
    pub fn of_request(req: &HttpRequest) -> Lang {
        let from_query = req.query_string().split('&').find_map(|pair| {
            let value = pair.strip_prefix("lang=")?;
            Lang::parse(value)
        });
        from_query
            .or_else(|| req.cookie(LANG_COOKIE).and_then(|c| Lang::parse(c.value())))
            .or_else(|| {
                req.headers()
                    .get(actix_web::http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or_default()
    }
}

/// A message written in every supported language: the form of the one-off messages (a problem
/// detail or field message used at one place), built with [`tr!`](crate::tr) beside the English
/// so the two are reviewed together. Messages used in many places are enums instead
/// (`FieldMessage`, `KnownDetail`), which build one of these with [`Localized::from_fn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    en: String,
    fr: String,
}

impl Localized {
    /// A message from its English and French texts.
    pub fn new(en: impl Into<String>, fr: impl Into<String>) -> Self {
        Self {
            en: en.into(),
            fr: fr.into(),
        }
    }

    /// A message from a function that writes it in any language.
    pub fn from_fn(text: impl Fn(Lang) -> String) -> Self {
        Self {
            en: text(Lang::En),
            fr: text(Lang::Fr),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Fr => &self.fr,
        }
    }
}

/// English, as logged.
impl fmt::Display for Localized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.en)
    }
}

/// A [`Localized`] message from an English and a French format string, each with the same
/// captured variables: `tr!("no opportunity `{id}`", "aucune opportunité `{id}`")`. French
/// typography: a narrow no-break space before `:` `;` `?` `!` (`{NNBSP}`), from [`format`].
#[macro_export]
macro_rules! tr {
    ($en:literal, $fr:literal $(,)?) => {
        $crate::i18n::Localized::new(format!($en), format!($fr))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn localized_messages_capture_their_variables_in_every_language() {
        let id = "D-42";
        let message = crate::tr!("no opportunity `{id}`", "aucune opportunité `{id}`");
        assert_eq!(message.get(Lang::En), "no opportunity `D-42`");
        assert_eq!(message.get(Lang::Fr), "aucune opportunité `D-42`");
        assert_eq!(message.to_string(), "no opportunity `D-42`");
    }

    #[test]
    fn accept_language_picks_the_highest_supported_quality() {
        assert_eq!(
            Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("de-DE, en;q=0.5, fr;q=0.7"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_accept_language("en-GB, fr"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de, es"), None);
        assert_eq!(Lang::from_accept_language(""), None);
        assert_eq!(Lang::from_accept_language("fr;q=abc"), None);
    }

    #[test]
    fn query_beats_cookie_beats_header() {
        let req = TestRequest::default()
            .uri("/?page=2&lang=fr")
            .insert_header(("Accept-Language", "en"))
            .to_http_request();
        assert_eq!(Lang::of_request(&req), Lang::Fr);
        let req = TestRequest::default()
            .cookie(actix_web::cookie::Cookie::new(LANG_COOKIE, "en"))
            .insert_header(("Accept-Language", "fr"))
            .to_http_request();
        assert_eq!(Lang::of_request(&req), Lang::En);
        let req = TestRequest::default()
            .insert_header(("Accept-Language", "fr-CA"))
            .to_http_request();
        assert_eq!(Lang::of_request(&req), Lang::Fr);
        let req = TestRequest::default().uri("/?lang=xx").to_http_request();
        assert_eq!(Lang::of_request(&req), Lang::En);
    }
}
