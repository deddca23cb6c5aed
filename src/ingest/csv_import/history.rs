//! Import of a CRM's field history: a CSV of past changes `external_id,field,value,changed_at`
//! (Salesforce's opportunity field history and its kin), recorded in the deals' history with the
//! source `history-import`.
//!
//! The same rules as the other imports: the mapping renames columns (`[columns]`) and CRM field
//! names (`[field_names]`), reads dates with `date_format` and statuses through
//! `[status_values]`; each value is parsed exactly as the same field of a deal write; a bad row
//! is rejected with its line number; `strict` / `max_errors` check the whole file first (unknown
//! deals included) and write nothing when it fails; a change named twice in the file (same deal,
//! field and time) is rejected with both lines. The deals themselves are not changed: their
//! current fields stay what the last deal write said. Importing the same file again adds nothing.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Read;

use super::{
    check_rows_naming_deals, join_parser, open_source, parse_changed_at, record_rejection, spawn_parser,
    unknown_opportunity, ImportError, ImportOptions, ImportProgress, ImportSummary, ParsedBatches,
    RejectedRow, RowIdentity,
};
use crate::domain::history::{is_tracked_field, parse_field_value, TRACKED_FIELDS};
use crate::domain::{ExternalId, FieldMessage, ParseOptions, ValidationErrors};
use crate::i18n::format::NNBSP;
use crate::i18n::Localized;
use crate::ingest::mapping::ImportMapping;
use crate::store::history::{import_in, ImportedChange, ImportedOutcome};
use crate::store::Db;
use crate::tr;

/// The columns of a field history file, in the order the rows name them.
const COLUMNS: [&str; 4] = ["external_id", "field", "value", "changed_at"];

/// Where each column is in the file.
struct HistoryColumns {
    positions: [usize; 4],
    mapping: ImportMapping,
}

impl HistoryColumns {
    fn new(headers: &csv::StringRecord, mapping: &ImportMapping) -> Result<HistoryColumns, ImportError> {
        let mut positions = [0; 4];
        for (slot, name) in positions.iter_mut().zip(COLUMNS) {
            let header = mapping.header_of(name);
            *slot = headers.iter().position(|h| h.trim() == header).ok_or_else(|| {
                ImportError::Header(tr!(
                    "the field history file has no `{header}` column (expected \
                     external_id,field,value,changed_at, or names given in [columns])",
                    "le fichier d'historique n'a pas de colonne `{header}` (attendu{NNBSP}: \
                     external_id,field,value,changed_at, ou les noms donnés dans [columns])"
                ))
            })?;
        }
        Ok(HistoryColumns {
            positions,
            mapping: mapping.clone(),
        })
    }

    fn parse(&self, record: &csv::StringRecord, line: u64) -> Result<ImportedChange, RejectedRow> {
        let cell = |i: usize| record.get(self.positions[i]).unwrap_or("");
        let external_id = cell(0).trim();
        let shown = (!external_id.is_empty()).then(|| external_id.to_owned());
        let reject =
            |errors: ValidationErrors| RejectedRow::new(line, shown.clone(), errors.localized_summary());
        let mut errors = ValidationErrors::default();
        if let Err(message) = ExternalId::parse(external_id) {
            errors.push_known("external_id", message);
        }
        let crm_field = cell(1).trim();
        let field = self.mapping.history_field(crm_field);
        let options = ParseOptions {
            date_format: self.mapping.date_format.as_deref(),
            from_text: true,
        };
        let mut value = None;
        if crm_field.is_empty() {
            errors.push_known("field", FieldMessage::Required);
        } else if !is_tracked_field(field) {
            let fields = TRACKED_FIELDS.join(", ");
            errors.push_localized(
                "field",
                tr!(
                    "`{crm_field}` is not a field with a history ({fields}, attributes.<name>; \
                     or a CRM name given in [field_names])",
                    "`{crm_field}` n'est pas un champ historisé ({fields}, attributes.<nom>{NNBSP}; \
                     ou un nom CRM donné dans [field_names])"
                ),
            );
        } else {
            let raw = cell(2);
            let raw = if field == "status" {
                self.mapping.map_status(raw)
            } else {
                raw
            };
            match parse_field_value(field, raw, options) {
                Ok(v) => value = Some(v),
                Err(e) => errors.0.extend(e.0),
            }
        }
        let changed_at = match cell(3).trim() {
            "" => {
                errors.push_known("changed_at", FieldMessage::Required);
                None
            }
            text => match parse_changed_at(text, options.date_format) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        match (value, changed_at) {
            (Some(value), Some(changed_at)) if errors.is_empty() => Ok(ImportedChange {
                external_id: external_id.to_owned(),
                field: field.to_owned(),
                value,
                changed_at,
            }),
            _ => Err(reject(errors)),
        }
    }
}

/// A change's identity in its file: the deal, the field and the time.
impl RowIdentity for ImportedChange {
    fn hash_identity<H: Hasher>(&self, state: &mut H) {
        self.external_id.hash(state);
        self.field.hash(state);
        self.changed_at.timestamp_millis().hash(state);
    }

    fn shown_id(&self) -> Option<String> {
        Some(self.external_id.clone())
    }

    fn repeat_reason(&self, first_line: u64) -> Localized {
        let (id, field) = (&self.external_id, &self.field);
        let at = self.changed_at.to_rfc3339();
        tr!(
            "the change of `{field}` of opportunity `{id}` at {at} is already on line {first_line} of this file",
            "la modification de `{field}` de l'opportunité `{id}` à {at} figure déjà ligne {first_line} de ce fichier"
        )
    }
}

fn spawn_history_parser<R: Read + Send + 'static>(
    source: R,
    options: &ImportOptions,
) -> (tokio::task::JoinHandle<()>, ParsedBatches<ImportedChange>) {
    let mapping = options.mapping.clone();
    spawn_parser(
        source,
        options,
        move |headers| HistoryColumns::new(headers, &mapping),
        |columns: &HistoryColumns, record, line| columns.parse(record, line),
    )
}

/// Imports a field history CSV (`external_id,field,value,changed_at`, renamed by the mapping's
/// `[columns]`) into the deals' history. `inserted` counts the changes recorded, `unchanged` those
/// an earlier import already recorded; a row naming an unknown deal is rejected. `strict` and
/// `max_errors` work as for the other imports, unknown deals included.
pub async fn import_history<R, F>(
    db: &Db,
    open: F,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportSummary, ImportError>
where
    R: Read + Send + 'static,
    F: Fn() -> std::io::Result<R> + Send + Sync + 'static,
{
    check_rows_naming_deals(
        db,
        options,
        || Ok(spawn_history_parser(open_source(&open)?, options)),
        |change: &ImportedChange| change.external_id.as_str(),
    )
    .await?;
    let (parser, mut rx) = spawn_history_parser(open_source(&open)?, options);
    let mut summary = ImportSummary {
        dry_run: options.dry_run,
        ..Default::default()
    };
    while let Some(batch) = rx.recv().await {
        let mut batch = batch?;
        summary.absorb_rejections(&mut batch);
        if !batch.rows.is_empty() {
            // In file order within each deal, deals in id order.
            let mut by_deal: BTreeMap<&str, Vec<&(u64, ImportedChange)>> = BTreeMap::new();
            for row in &batch.rows {
                by_deal.entry(row.1.external_id.as_str()).or_default().push(row);
            }
            let ordered: Vec<&(u64, ImportedChange)> = by_deal.into_values().flatten().collect();
            let changes: Vec<ImportedChange> = ordered.iter().map(|(_, c)| c.clone()).collect();
            let mut txn = db.begin_write().await?;
            let outcomes = import_in(&mut txn, &changes).await?;
            if options.dry_run {
                txn.rollback().await?;
            } else {
                txn.commit().await?;
            }
            for ((line, change), outcome) in ordered.iter().map(|r| (r.0, &r.1)).zip(outcomes) {
                match outcome {
                    ImportedOutcome::Added => summary.inserted += 1,
                    ImportedOutcome::AlreadyRecorded => summary.unchanged += 1,
                    // Under `strict` the check pass found every deal; one deleted since then is
                    // still rejected here.
                    ImportedOutcome::UnknownDeal => {
                        record_rejection(&mut summary, unknown_opportunity(line, &change.external_id))
                    }
                }
            }
        }
        progress(batch.progress);
    }
    join_parser(parser).await?;
    summary.rejected_rows.sort_by_key(|r| r.line);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn columns(header: &str, mapping: &ImportMapping) -> HistoryColumns {
        let headers = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        HistoryColumns::new(&headers, mapping).unwrap()
    }

    fn row(cells: &str) -> csv::StringRecord {
        csv::StringRecord::from(cells.split(',').collect::<Vec<_>>())
    }

    #[test]
    fn rows_are_read_through_the_mapping_and_the_domain_parsers() {
        let mapping = ImportMapping::from_toml(
            r#"
            date_format = "%d/%m/%Y"
            [columns]
            external_id = "OpportunityId"
            field = "Field"
            value = "NewValue"
            changed_at = "CreatedDate"
            [field_names]
            StageName = "stage"
            [status_values]
            "Closed Won" = "won"
            "#,
        )
        .unwrap();
        let c = columns("CreatedDate,OpportunityId,Field,NewValue", &mapping);
        let stage = c.parse(&row("02/03/2025,D-1,StageName,Proposal"), 2).unwrap();
        assert_eq!(stage.field, "stage");
        assert_eq!(stage.value, Some(json!("Proposal")));
        assert_eq!(stage.changed_at.to_rfc3339(), "2025-03-02T00:00:00+00:00");
        let status = c.parse(&row("02/03/2025,D-1,status,Closed Won"), 3).unwrap();
        assert_eq!(status.value, Some(json!("won")));
        let cleared = c.parse(&row("02/03/2025,D-1,amount,"), 4).unwrap();
        assert_eq!(cleared.value, None);
        let bad = c.parse(&row("2025-13-40,D-1,amount,-3"), 5).unwrap_err();
        assert_eq!(bad.line, 5);
        assert!(bad.reason.contains("amount"), "{}", bad.reason);
        assert!(bad.reason.contains("changed_at"), "{}", bad.reason);
        let unknown = c.parse(&row("02/03/2025,D-1,Colour,red"), 6).unwrap_err();
        assert!(
            unknown.reason.contains("`Colour` is not a field with a history"),
            "{}",
            unknown.reason
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let headers = csv::StringRecord::from(vec!["external_id", "field", "value"]);
        let Err(ImportError::Header(message)) = HistoryColumns::new(&headers, &ImportMapping::default())
        else {
            panic!("a file without changed_at is refused");
        };
        assert!(message.get(crate::i18n::Lang::En).contains("`changed_at`"));
    }

    #[test]
    fn repeats_are_the_same_deal_field_and_time() {
        let c = columns("external_id,field,value,changed_at", &ImportMapping::default());
        let a = c.parse(&row("D-1,stage,A,2025-01-01"), 2).unwrap();
        let b = c.parse(&row("D-1,stage,B,2025-01-01T00:00:00Z"), 3).unwrap();
        let hash = |x: &ImportedChange| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            x.hash_identity(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        let later = c.parse(&row("D-1,stage,B,2025-01-02"), 4).unwrap();
        assert_ne!(hash(&a), hash(&later));
        let _: &Value = a.value.as_ref().unwrap();
    }
}
