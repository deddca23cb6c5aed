//! Sales Ops insights: pipeline KPIs, success factors, at-risk deals, resources, accounts,
//! breakdowns by any field and objectives — the dashboards as data (`docs/insights.md`).
//!
//! Every insight is a pure function over a [`snapshot::Snapshot`] of the opportunities, kept by
//! [`cache::InsightsCache`] and reloaded only when the data changed, and each renders as JSON
//! and as a flat [`table::Table`] for CSV. Money is never summed across currencies: every amount
//! figure is a map from currency to value.

pub mod accounts;
pub mod acquisition;
pub mod at_risk;
pub mod breakdown;
pub mod cache;
pub mod competitors;
pub mod customer_inputs;
pub mod customers;
pub mod filter;
pub mod objectives;
pub mod period;
pub mod pipeline;
pub mod resources;
pub mod snapshot;
pub mod stats;
pub mod success_factors;
pub mod table;

pub use cache::{CachedSnapshot, InsightsCache};
pub use snapshot::Snapshot;
