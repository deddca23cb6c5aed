//! Getting CRM data in: CSV import with a column mapping (CLI and HTTP share it), and signed CRM
//! webhooks (reusing the same mapping).

pub mod csv_import;
pub mod mapping;
pub mod signature;
pub mod webhook;

pub use csv_import::{
    import_activities, import_history, import_opportunities, read_opportunities, ImportOptions,
    ImportSummary, RejectedRow,
};
pub use mapping::{ImportMapping, MappingError};
