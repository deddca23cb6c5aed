//! The TOML mapping that adapts a CRM's CSV export to dealscore's fields.
//!
//! ```toml
//! delimiter = ";"                 # default ","
//! date_format = "%d/%m/%Y"        # tried before RFC 3339 and YYYY-MM-DD
//! ignore = ["Internal notes"]     # columns dropped (not kept as attributes)
//!
//! [columns]                       # dealscore field = "CSV header"
//! external_id = "Opportunity ID"
//! status = "Stage Outcome"
//! cycle_days = "Days to close"    # a cycle in days instead of a creation date
//!
//! [status_values]                 # "CSV value" = "open" | "won" | "lost"
//! "Closed Won" = "won"
//! Loss = "lost"
//!
//! [defaults]                      # used when a column is missing or a cell is empty
//! currency = "USD"
//!
//! [ids]                           # for exports without an id column
//! from_line = true                # external_id = prefix + line number
//! prefix = "crm-"
//!
//! [field_names]                   # field history imports: "CRM field name" = dealscore field
//! StageName = "stage"
//! "Close Date" = "closed_at"
//! ```
//! `[columns]` also names the `changed_at` column (when a deal import's changes took effect) and
//! the `field` and `value` columns of a field history import.
//! Every column that is neither mapped, a dealscore field name, nor ignored becomes a custom
//! attribute (numbers stay numbers).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::Status;
use crate::i18n::format::NNBSP;
use crate::i18n::{Lang, Localized};
use crate::tr;

/// Field names a CSV column can map to: the record fields, and `cycle_days`.
pub const FIELDS: [&str; 17] = {
    let record = crate::domain::RECORD_FIELDS;
    let mut fields = [CYCLE_DAYS; 17];
    let mut i = 0;
    while i < record.len() {
        fields[i] = record[i];
        i += 1;
    }
    fields
};

/// A column holding the deal's cycle in days ("Days to close", "Age"): for a won or lost deal
/// its length from creation to close, for an open deal its age so far. It is not stored: a row
/// without `created_at` gets the creation date it implies (`closed_at` − days for a closed deal,
/// the time of the import − days for an open one); a row with `created_at` keeps its dates.
pub const CYCLE_DAYS: &str = "cycle_days";

/// Columns besides the record fields that `[columns]` can name: when a change took effect (deal
/// and field history imports), and the field and value of a field history row.
pub const EXTRA_COLUMNS: [&str; 3] = ["changed_at", "field", "value"];

/// A parsed, validated mapping.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImportMapping {
    /// Single-byte field separator (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Extra date format (chrono pattern).
    #[serde(default)]
    pub date_format: Option<String>,
    /// Columns to drop.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// dealscore field → CSV header.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// CSV status value → dealscore status.
    #[serde(default)]
    pub status_values: BTreeMap<String, String>,
    /// Values for missing columns or empty cells.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Generated identifiers.
    #[serde(default)]
    pub ids: IdGeneration,
    /// Field history imports: CRM field name → dealscore field (`stage`, `attributes.tier`…).
    #[serde(default)]
    pub field_names: BTreeMap<String, String>,
}

/// How to make ids for exports without an id column.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdGeneration {
    /// Use `prefix` + the row's line number as `external_id`.
    #[serde(default)]
    pub from_line: bool,
    /// Prefix for generated ids.
    #[serde(default)]
    pub prefix: String,
}

/// Every problem found in a mapping file.
#[derive(Debug, thiserror::Error)]
#[error("invalid mapping: {}", .0.iter().map(|p| p.get(Lang::En)).collect::<Vec<_>>().join("; "))]
pub struct MappingError(pub Vec<Localized>);

impl ImportMapping {
    /// Parses and validates a TOML mapping, listing every problem.
    pub fn from_toml(text: &str) -> Result<ImportMapping, MappingError> {
        let mapping: ImportMapping = toml::from_str(text)
            .map_err(|e| MappingError(vec![tr!("invalid TOML: {e}", "TOML invalide{NNBSP}: {e}")]))?;
        mapping.validate()?;
        Ok(mapping)
    }

    fn validate(&self) -> Result<(), MappingError> {
        let mut problems = Vec::new();
        if let Some(d) = &self.delimiter {
            if d.len() != 1 {
                problems.push(tr!(
                    "delimiter must be a single byte, got {d:?}",
                    "delimiter doit être un seul octet, reçu{NNBSP}: {d:?}"
                ));
            }
        }
        for field in self.columns.keys() {
            if !FIELDS.contains(&field.as_str()) && !EXTRA_COLUMNS.contains(&field.as_str()) {
                let fields = [&FIELDS[..], &EXTRA_COLUMNS[..]].concat().join(", ");
                problems.push(tr!(
                    "[columns] `{field}` is not a dealscore field ({fields})",
                    "[columns] `{field}` n'est pas un champ de dealscore ({fields})"
                ));
            }
        }
        for field in self.defaults.keys() {
            if !FIELDS.contains(&field.as_str()) || field == "external_id" || field == CYCLE_DAYS {
                problems.push(tr!(
                    "[defaults] `{field}` is not a field that can have a default",
                    "[defaults] `{field}` n'est pas un champ qui peut avoir une valeur par défaut"
                ));
            }
        }
        for (raw, status) in &self.status_values {
            if Status::parse(status).is_none() {
                problems.push(tr!(
                    "[status_values] `{raw}` maps to `{status}`, not one of open, won, lost",
                    "[status_values] associe `{raw}` à `{status}`, qui n'est pas open, won ni lost"
                ));
            }
        }
        for (crm, field) in &self.field_names {
            if !crate::domain::history::is_tracked_field(field) {
                problems.push(tr!(
                    "[field_names] maps `{crm}` to `{field}`, which is not a field with a history \
                     (a deal field other than external_id, or attributes.<name>)",
                    "[field_names] associe `{crm}` à `{field}`, qui n'est pas un champ historisé \
                     (un champ d'opportunité autre que external_id, ou attributes.<nom>)"
                ));
            }
        }
        if self.ids.from_line && self.columns.contains_key("external_id") {
            problems.push(tr!(
                "[ids] from_line and [columns] external_id exclude each other",
                "[ids] from_line et [columns] external_id s'excluent"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError(problems))
        }
    }

    /// The separator byte.
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter
            .as_deref()
            .and_then(|d| d.bytes().next())
            .unwrap_or(b',')
    }

    /// The dealscore field a CSV header feeds, if any.
    pub fn field_for_header(&self, header: &str) -> Option<&'static str> {
        if let Some((field, _)) = self.columns.iter().find(|(_, h)| h.as_str() == header) {
            return FIELDS.iter().copied().find(|f| f == field);
        }
        // A header named like a field feeds it unless that field is mapped from another column.
        FIELDS
            .iter()
            .copied()
            .find(|f| *f == header && !self.columns.contains_key(*f))
    }

    /// The CSV header of a column: the one `[columns]` maps `name` to, else `name` itself.
    pub fn header_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.columns.get(name).map_or(name, String::as_str)
    }

    /// The dealscore field a field history row names: through `[field_names]` (exact, then
    /// case-insensitive), else the name as written.
    pub fn history_field<'a>(&'a self, crm_name: &'a str) -> &'a str {
        let name = crm_name.trim();
        if let Some(field) = self.field_names.get(name) {
            return field;
        }
        self.field_names
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(name, |(_, v)| v.as_str())
    }

    /// Maps a raw status value through `[status_values]` (exact, then case-insensitive).
    pub fn map_status<'a>(&'a self, raw: &'a str) -> &'a str {
        let raw_trimmed = raw.trim();
        if let Some(v) = self.status_values.get(raw_trimmed) {
            return v;
        }
        self.status_values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(raw_trimmed))
            .map(|(_, v)| v.as_str())
            .unwrap_or(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_mapping() {
        let m = ImportMapping::from_toml(
            r#"
            delimiter = ";"
            date_format = "%d/%m/%Y"
            ignore = ["Notes"]
            [columns]
            external_id = "Deal"
            status = "Outcome"
            [status_values]
            "Closed Won" = "won"
            Loss = "lost"
            [defaults]
            currency = "USD"
            "#,
        )
        .unwrap();
        assert_eq!(m.delimiter_byte(), b';');
        assert_eq!(m.field_for_header("Deal"), Some("external_id"));
        assert_eq!(m.field_for_header("external_id"), None);
        assert_eq!(m.field_for_header("amount"), Some("amount"));
        assert_eq!(m.map_status("closed won"), "won");
        assert_eq!(m.map_status("Open"), "Open");
    }

    #[test]
    fn lists_every_problem() {
        let err = ImportMapping::from_toml(
            r#"
            delimiter = ";;"
            [columns]
            colour = "C"
            [status_values]
            Won = "yes"
            "#,
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn history_columns_and_field_names_are_mapped_and_checked() {
        let m = ImportMapping::from_toml(
            r#"
            [columns]
            external_id = "OpportunityId"
            field = "Field"
            value = "NewValue"
            changed_at = "CreatedDate"
            [field_names]
            StageName = "stage"
            Tier__c = "attributes.tier"
            "#,
        )
        .unwrap();
        assert_eq!(m.header_of("value"), "NewValue");
        assert_eq!(m.header_of("status"), "status");
        assert_eq!(m.history_field("StageName"), "stage");
        assert_eq!(m.history_field("stagename"), "stage");
        assert_eq!(m.history_field("tier__c"), "attributes.tier");
        assert_eq!(m.history_field("amount"), "amount");
        assert_eq!(
            m.field_for_header("CreatedDate"),
            None,
            "changed_at is not a deal field"
        );
        let err = ImportMapping::from_toml("[field_names]\nStageName = \"stages\"\nId = \"external_id\"\n")
            .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn a_cycle_column_maps_to_cycle_days_but_has_no_default() {
        let m = ImportMapping::from_toml("[columns]\ncycle_days = \"Days to close\"\n").unwrap();
        assert_eq!(m.field_for_header("Days to close"), Some(CYCLE_DAYS));
        assert_eq!(
            ImportMapping::default().field_for_header("cycle_days"),
            Some(CYCLE_DAYS)
        );
        let err = ImportMapping::from_toml("[defaults]\ncycle_days = \"30\"\n").unwrap_err();
        assert!(err.to_string().contains("cycle_days"), "{err}");
    }

    #[test]
    fn unknown_sections_are_refused() {
        assert!(ImportMapping::from_toml("[colums]\nx = 1\n").is_err());
    }
}
