//! The problems each route can answer, as OpenAPI responses built from the code table
//! ([`crate::error::Code`]): a route names the groups of codes it can answer, and every status
//! among them becomes one `application/problem+json` response whose description lists the
//! problem `type`s it may carry. A route therefore never spells out statuses by hand, and a
//! status shared by two groups (400 for a bad query and for a malformed body, 503 for a busy
//! database and for a missing model) is one response listing both.
//!
//! ```text
//! problems!(GetProblems: AUTH, NOT_FOUND);
//! #[utoipa::path(get, path = "/v1/x/{id}", responses((status = 200, body = X), GetProblems))]
//! ```

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::error::Code;
use crate::i18n::Lang;

/// The media type of every problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every route behind an API key: no, unknown or revoked key (401), a role too low or a rep or
/// manager key without an owner (403), and the key lookup waiting too long for the database
/// (503 `database-busy`).
pub const AUTH: &[Code] = &[
    Code::Unauthorized,
    Code::Forbidden,
    Code::KeyWithoutOwner,
    Code::DatabaseBusy,
];

/// Routes that read the database without an API key (the webhook receiver).
pub const DATABASE: &[Code] = &[Code::DatabaseBusy];

/// Routes with query parameters: a value of the wrong type or out of range, or (on the routes
/// that say so) an unknown parameter.
pub const QUERY: &[Code] = &[Code::InvalidQuery];

/// Routes reading a JSON body: not JSON (400), over the size limit (413), not sent as
/// `application/json` (415).
pub const JSON_BODY: &[Code] = &[
    Code::MalformedBody,
    Code::PayloadTooLarge,
    Code::UnsupportedMediaType,
];

/// Routes reading a body as JSON whatever its media type: not JSON (400).
pub const MALFORMED_BODY: &[Code] = &[Code::MalformedBody];

/// Routes that name a stored resource.
pub const NOT_FOUND: &[Code] = &[Code::NotFound];

/// Routes whose input is checked field by field (422 with `errors`).
pub const VALIDATION: &[Code] = &[Code::Validation];

/// Routes refused while the resource is in a conflicting state.
pub const CONFLICT: &[Code] = &[Code::Conflict];

/// Routes that need a setting the server may lack (409 `not-configured`).
pub const NOT_CONFIGURED: &[Code] = &[Code::NotConfigured];

/// Routes that need the serving model.
pub const MODEL: &[Code] = &[Code::NoActiveModel, Code::ActiveModelInvalid];

/// Routes whose writes go through the store's group commit, which refuses new work while the
/// server shuts down.
pub const GROUP_COMMIT: &[Code] = &[Code::ShuttingDown];

/// The codes of `groups`, each once, by status.
pub fn by_status(groups: &[&[Code]]) -> BTreeMap<u16, Vec<Code>> {
    let mut statuses: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
    for &code in groups.iter().flat_map(|group| group.iter()) {
        let codes = statuses.entry(code.status().as_u16()).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    statuses
}

/// One OpenAPI response per status of `groups`: `application/problem+json` with the `Problem`
/// schema, described by the problem types it may carry.
pub fn responses(groups: &[&[Code]]) -> BTreeMap<String, RefOr<Response>> {
    by_status(groups)
        .into_iter()
        .map(|(status, codes)| {
            let kinds = codes
                .iter()
                .map(|c| format!("`{}` ({})", c.slug(), c.title(Lang::En)))
                .collect::<Vec<_>>()
                .join(", ");
            let response = ResponseBuilder::new()
                .description(format!("RFC 9457 problem; `type` ends with {kinds}"))
                .content(
                    PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares a type whose OpenAPI responses are the problems of the given groups, for the
/// `responses(...)` of a `#[utoipa::path]`.
macro_rules! problems {
    ($name:ident: $($group:ident),+ $(,)?) => {
        #[doc = concat!("The problems of a route: ", $(stringify!($group), " "),+)]
        struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                use $crate::api::problems::*;
                responses(&[$($group),+])
            }
        }
    };
}

pub(crate) use problems;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_shared_by_two_groups_is_one_response_listing_both() {
        let statuses = by_status(&[AUTH, QUERY, JSON_BODY, MODEL, AUTH]);
        assert_eq!(
            statuses.keys().copied().collect::<Vec<_>>(),
            [400, 401, 403, 413, 415, 503]
        );
        assert_eq!(statuses[&400], [Code::InvalidQuery, Code::MalformedBody]);
        assert_eq!(
            statuses[&503],
            [Code::DatabaseBusy, Code::NoActiveModel, Code::ActiveModelInvalid]
        );
        let built = responses(&[AUTH]);
        let RefOr::T(forbidden) = &built["403"] else {
            panic!("not inline")
        };
        assert!(forbidden.description.contains("`key-without-owner`"));
        assert!(forbidden.content.contains_key(PROBLEM_JSON));
    }
}
