//! Parsed, validated domain types ("parse, don't validate").
//!
//! Everything that enters dealscore — REST bodies, CSV rows, webhook events — is turned into these
//! types at the edge; the rest of the code never sees unvalidated input.

mod activity;
pub mod currency;
pub mod history;
mod opportunity;
pub mod spreadsheet;
mod time;
mod validation;

#[cfg(test)]
pub(crate) use activity::NO_ACTIVITIES;
pub use activity::{
    derive_interactions, Activity, ActivityDirection, ActivityInput, ActivityKind, DerivedInteractions,
    Touch, Touching,
};
pub use history::{ChangeSource, FieldChange, Previous};
pub use opportunity::{
    AttributeValue, ContactRole, Deal, ExternalId, Opportunity, OpportunityInput, ParseOptions, Status,
    DEFAULT_CURRENCY, MAX_AMOUNT, MAX_EXTERNAL_ID_LEN, RECORD_FIELDS,
};
pub use time::{
    bad_timestamp, from_epoch_ms, in_accepted_years, parse_timestamp, parse_timestamp_with_format,
    to_epoch_ms, MAX_YEAR, MIN_YEAR,
};
pub use validation::{FieldError, FieldMessage, JsonKind, ValidationErrors};
