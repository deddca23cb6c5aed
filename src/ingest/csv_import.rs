//! Streaming CSV import of opportunities and activities (and, in `history`, of a CRM's field
//! history).
//!
//! A parser thread reads the CSV, validates each row through the same domain parser as the REST
//! API and hands batches of valid rows to the async writer over a bounded channel, so parsing
//! overlaps with database writes. Each batch is one transaction; a bad row is rejected with its
//! line number and never blocks the good ones, unless `strict` (or `max_errors`) is set — then the
//! file is checked completely first and nothing is written when it fails. Both kinds of file follow
//! the same rules.
//!
//! A record named twice in one file (the same opportunity id; the same activity of the same
//! opportunity) is a bad row: the first occurrence is imported, the later one is rejected with both
//! line numbers. Memory grows with the rows read only through that check, about 40 bytes a row
//! (a 128-bit hash of each row's key and its line).
//!
//! Lines may end with LF, CRLF or — for files saved by older spreadsheet software — CR alone.

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Read;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Connection;
use tokio::sync::mpsc;

use chrono::{DateTime, Utc};

use super::mapping::{self, ImportMapping};
use crate::domain::{
    bad_timestamp, in_accepted_years, parse_timestamp_with_format, Activity, ChangeSource, Opportunity,
    ParseOptions, Status, MAX_YEAR, MIN_YEAR,
};
use crate::domain::{FieldMessage, ValidationErrors};
use crate::i18n::format::{NBSP, NNBSP};
use crate::i18n::{Lang, Localized};
use crate::store::activities::{add_in, AddActivitiesError};
use crate::store::history::Provenance;
use crate::store::opportunities::{existing_ids, upsert_batch_in, UpsertOutcome};
use crate::store::Db;
use crate::tr;

mod history;

pub use history::import_history;

/// Most rejected rows listed one by one in a summary (all are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// The longest cycle a `cycle_days` column may give: a hundred years.
const MAX_CYCLE_DAYS: f64 = 36_500.0;

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Column mapping.
    pub mapping: ImportMapping,
    /// Check and count everything, write nothing.
    pub dry_run: bool,
    /// Any rejected row aborts the import before anything is written.
    pub strict: bool,
    /// More rejected rows than this aborts the import before anything is written.
    pub max_errors: Option<usize>,
    /// Rows per transaction (default 10,000: fewer commits, each an fsync on SQLite).
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mapping: ImportMapping::default(),
            dry_run: false,
            strict: false,
            max_errors: None,
            batch_size: 10_000,
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RejectedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// The row's external id, when it could be read.
    pub external_id: Option<String>,
    /// Why it was rejected (English here; [`ImportSummary::in_lang`] re-words it).
    pub reason: String,
    /// For a row that repeats a record already read from the same file: the line of that first
    /// occurrence (which was imported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// The reason in every language, when it has a translation (text from the CSV parser has
    /// none).
    #[serde(skip)]
    localized: Option<Box<Localized>>,
}

impl RejectedRow {
    /// A rejection whose reason is written in every language.
    pub fn new(line: u64, external_id: Option<String>, reason: Localized) -> Self {
        Self {
            line,
            external_id,
            reason: reason.get(Lang::En).to_owned(),
            duplicate_of: None,
            localized: Some(Box::new(reason)),
        }
    }

    /// A row that repeats the record first read on `first_line` of the same file.
    pub fn duplicate(line: u64, external_id: Option<String>, first_line: u64, reason: Localized) -> Self {
        Self {
            duplicate_of: Some(first_line),
            ..Self::new(line, external_id, reason)
        }
    }

    /// A rejection whose reason comes from a lower layer and is shown as written.
    pub fn untranslated(line: u64, external_id: Option<String>, reason: String) -> Self {
        Self {
            line,
            external_id,
            reason,
            duplicate_of: None,
            localized: None,
        }
    }

    /// The reason in every language (text from a lower layer is the same in each).
    pub fn localized_reason(&self) -> Localized {
        match &self.localized {
            Some(localized) => (**localized).clone(),
            None => Localized::new(self.reason.clone(), self.reason.clone()),
        }
    }

    /// The reason in `lang`.
    pub fn reason_in(&self, lang: Lang) -> &str {
        self.localized.as_ref().map_or(&self.reason, |l| l.get(lang))
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: u64,
    /// New records.
    pub inserted: u64,
    /// Existing records whose content changed.
    pub updated: u64,
    /// Existing records with identical content (not written).
    pub unchanged: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// The first rejected rows (up to 1000), with line numbers and reasons.
    pub rejected_rows: Vec<RejectedRow>,
    /// True when nothing was written on purpose.
    pub dry_run: bool,
}

impl ImportSummary {
    /// This summary with the rejection reasons in `lang`.
    pub fn in_lang(mut self, lang: Lang) -> ImportSummary {
        for row in &mut self.rejected_rows {
            row.reason = row.reason_in(lang).to_owned();
        }
        self
    }
}

/// Progress of an import.
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress {
    /// Bytes of the file consumed so far.
    pub bytes: u64,
    /// Rows consumed so far.
    pub rows: u64,
}

/// An import that could not run (as opposed to rows that were rejected).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read or is not CSV.
    #[error("cannot read the CSV: {0}")]
    Read(String),
    /// The header lacks a required column.
    #[error("{0}")]
    Header(Localized),
    /// `--strict` or `--max-errors` refused the file; nothing was written.
    #[error("{}", too_many_rejected(*rejected, limit))]
    TooManyRejected {
        /// Rows rejected.
        rejected: u64,
        /// Which limit applied.
        limit: Localized,
        /// The summary of the check pass.
        summary: Box<ImportSummary>,
    },
    /// The database failed; batches committed before the failure stay (re-running the import is
    /// safe: it is idempotent).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The refusal of an import with `rejected` bad rows over `limit`, in every language.
pub fn too_many_rejected(rejected: u64, limit: &Localized) -> Localized {
    Localized::from_fn(|lang| {
        let limit = limit.get(lang);
        match lang {
            Lang::En => format!("{rejected} row(s) rejected ({limit}); nothing was written"),
            Lang::Fr => format!("{rejected}{NBSP}ligne(s) rejetée(s) ({limit}){NNBSP}; rien n'a été écrit"),
        }
    })
}

/// Where a CSV column goes.
#[derive(Debug, Clone)]
enum Target {
    Field(&'static str),
    Attribute(String),
    /// When the row's changes took effect (recorded in the deals' history, not a field).
    ChangedAt,
    Ignore,
}

/// Header analysis shared by both passes.
struct RowReader {
    targets: Vec<Target>,
    mapping: ImportMapping,
    /// The end of an open deal's cycle read from a `cycle_days` column: one instant per file, so
    /// every row of it is dated alike.
    now: DateTime<Utc>,
}

impl RowReader {
    fn new(headers: &csv::StringRecord, mapping: &ImportMapping) -> Result<RowReader, ImportError> {
        let mut seen = HashSet::new();
        let mut targets = Vec::with_capacity(headers.len());
        for header in headers.iter() {
            let header = header.trim();
            if !seen.insert(header.to_owned()) {
                return Err(ImportError::Header(tr!(
                    "the header repeats the column `{header}`",
                    "l'en-tête répète la colonne `{header}`"
                )));
            }
            let target = if mapping.ignore.iter().any(|i| i == header) {
                Target::Ignore
            } else if header == mapping.header_of("changed_at") {
                Target::ChangedAt
            } else if let Some(field) = mapping.field_for_header(header) {
                Target::Field(field)
            } else if header.is_empty() {
                Target::Ignore
            } else {
                Target::Attribute(header.to_owned())
            };
            targets.push(target);
        }
        let has = |field: &str| {
            targets
                .iter()
                .any(|t| matches!(t, Target::Field(f) if *f == field))
        };
        if !has("external_id") && !mapping.ids.from_line {
            return Err(ImportError::Header(tr!(
                "the file has no `external_id` column: name it so, map one in [columns], or set [ids] \
                 from_line = true",
                "le fichier n'a pas de colonne `external_id`{NNBSP}: nommez-la ainsi, associez-en une dans \
                 [columns] ou indiquez [ids] from_line = true"
            )));
        }
        if !has("status") && !mapping.defaults.contains_key("status") {
            return Err(ImportError::Header(tr!(
                "the file has no `status` column: name it so, map one in [columns], or set a [defaults] status",
                "le fichier n'a pas de colonne `status`{NNBSP}: nommez-la ainsi, associez-en une dans [columns] \
                 ou donnez un status dans [defaults]"
            )));
        }
        for (field, header) in &mapping.columns {
            if !headers.iter().any(|h| h.trim() == header) && !mapping.defaults.contains_key(field) {
                return Err(ImportError::Header(tr!(
                    "[columns] maps `{field}` to `{header}`, but the file has no such column",
                    "[columns] associe `{field}` à `{header}`, mais le fichier n'a pas cette colonne"
                )));
            }
        }
        Ok(RowReader {
            targets,
            mapping: mapping.clone(),
            now: Utc::now(),
        })
    }

    /// A row of a deal import: the deal, and when its changes took effect when the file says.
    fn parse_row(&self, record: &csv::StringRecord, line: u64) -> Result<DealRow, RejectedRow> {
        let opportunity = self.parse(record, line)?;
        let cell = self
            .targets
            .iter()
            .zip(record.iter())
            .find(|(t, _)| matches!(t, Target::ChangedAt))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        let changed_at = match cell {
            None => None,
            Some(text) => Some(
                parse_changed_at(text, self.mapping.date_format.as_deref()).map_err(|errors| {
                    RejectedRow::new(
                        line,
                        Some(opportunity.external_id.to_string()),
                        errors.localized_summary(),
                    )
                })?,
            ),
        };
        Ok(DealRow {
            opportunity,
            changed_at,
        })
    }

    /// The creation date a `cycle_days` cell implies for `opp` (see [`mapping::CYCLE_DAYS`]):
    /// `Ok(None)` when the cell is empty or the row has its own `created_at`.
    fn created_from_cycle(
        &self,
        cell: Option<&str>,
        opp: Option<&Opportunity>,
    ) -> Result<Option<DateTime<Utc>>, Localized> {
        let Some(cell) = cell.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let field = mapping::CYCLE_DAYS;
        let days = match cell.parse::<f64>() {
            Ok(days) if days.is_finite() && (0.0..=MAX_CYCLE_DAYS).contains(&days) => days,
            _ => {
                return Err(tr!(
                    "{field}: `{cell}` is not a number of days between 0 and {MAX_CYCLE_DAYS}",
                    "{field}{NNBSP}: `{cell}` n'est pas un nombre de jours entre 0 et {MAX_CYCLE_DAYS}"
                ))
            }
        };
        let Some(opp) = opp.filter(|o| o.created_at.is_none()) else {
            return Ok(None);
        };
        let end = match opp.status {
            Status::Open => self.now,
            // A closed deal without closed_at is already refused by its own parse.
            Status::Won | Status::Lost => match opp.closed_at {
                Some(closed) => closed,
                None => return Ok(None),
            },
        };
        Ok(Some(
            end - chrono::Duration::milliseconds((days * 86_400_000.0).round() as i64),
        ))
    }

    fn parse(&self, record: &csv::StringRecord, line: u64) -> Result<Opportunity, RejectedRow> {
        let mut fields = Map::new();
        let mut attributes = Map::new();
        let mut cycle = None;
        for (target, value) in self.targets.iter().zip(record.iter()) {
            match target {
                Target::Field(mapping::CYCLE_DAYS) => cycle = Some(value),
                Target::Field("status") => {
                    fields.insert(
                        "status".into(),
                        Value::String(self.mapping.map_status(value).to_owned()),
                    );
                }
                Target::Field(field) => {
                    fields.insert((*field).into(), Value::String(value.to_owned()));
                }
                Target::Attribute(name) => {
                    attributes.insert(name.clone(), Value::String(value.to_owned()));
                }
                Target::ChangedAt | Target::Ignore => {}
            }
        }
        for (field, default) in &self.mapping.defaults {
            let empty = fields
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty());
            if empty {
                fields.insert(field.clone(), Value::String(default.clone()));
            }
        }
        if self.mapping.ids.from_line {
            fields.insert(
                "external_id".into(),
                Value::String(format!("{}{line}", self.mapping.ids.prefix)),
            );
        }
        if !attributes.is_empty() {
            fields.insert("attributes".into(), Value::Object(attributes));
        }
        let options = ParseOptions {
            date_format: self.mapping.date_format.as_deref(),
            from_text: true,
        };
        let parsed = Opportunity::parse(None, &fields, options);
        let created = self.created_from_cycle(cycle, parsed.as_ref().ok());
        let reason = match (parsed, created) {
            (Ok(mut opp), Ok(created)) => {
                if created.is_some() {
                    opp.created_at = created;
                }
                return Ok(opp);
            }
            (Ok(_), Err(cycle)) => cycle,
            (Err(errors), Ok(_)) => errors.localized_summary(),
            (Err(errors), Err(cycle)) => {
                let errors = errors.localized_summary();
                Localized::from_fn(|lang| format!("{}; {}", errors.get(lang), cycle.get(lang)))
            }
        };
        let external_id = fields
            .get("external_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Err(RejectedRow::new(line, external_id, reason))
    }
}

/// How far into a file its line endings are sniffed.
const SNIFF_BYTES: usize = 64 * 1024;

/// A source whose line endings the CSV reader understands: a file that ends its lines with CR
/// alone (classic Mac OS, some spreadsheet exports) is read as if they were LF, byte for byte, so
/// line numbers and progress stay right. Other files pass through untouched.
///
/// The kind of file is decided on its first 64 KiB: CRs and no LF there means CR-only. Rewriting
/// every CR is right for such a file, a CR inside a quoted cell included: there it is the line
/// break the cell holds.
struct LineEndings<R> {
    inner: R,
    /// The sniffed head, replayed before the rest of `inner`.
    head: Vec<u8>,
    /// How much of `head` has been handed out.
    head_pos: usize,
    /// `None` until the head has been read.
    cr_only: Option<bool>,
}

impl<R: Read> LineEndings<R> {
    fn new(inner: R) -> Self {
        LineEndings {
            inner,
            head: Vec::new(),
            head_pos: 0,
            cr_only: None,
        }
    }

    fn sniff(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        while self.head.len() < SNIFF_BYTES {
            match self.inner.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.head.contains(&b'\r') && !self.head.contains(&b'\n'))
    }
}

impl<R: Read> Read for LineEndings<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let cr_only = match self.cr_only {
            Some(known) => known,
            None => {
                let known = self.sniff()?;
                self.cr_only = Some(known);
                known
            }
        };
        let n = if self.head_pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            if self.head_pos == self.head.len() {
                self.head = Vec::new();
                self.head_pos = 0;
            }
            n
        } else {
            self.inner.read(buf)?
        };
        if cr_only {
            for byte in &mut buf[..n] {
                if *byte == b'\r' {
                    *byte = b'\n';
                }
            }
        }
        Ok(n)
    }
}

fn csv_reader<R: Read>(source: R, mapping: &ImportMapping) -> csv::Reader<LineEndings<R>> {
    csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter_byte())
        // Records end at '\n' only: with the default CRLF terminator the reader reports the line
        // before the real one for files with Windows line endings. A trailing '\r' is trimmed like
        // any other surrounding whitespace when the cell is parsed.
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(false)
        .trim(csv::Trim::None)
        .from_reader(LineEndings::new(source))
}

fn record_line(record: &csv::StringRecord) -> u64 {
    record.position().map(|p| p.line()).unwrap_or(0)
}

fn read_error(e: csv::Error) -> ImportError {
    ImportError::Read(e.to_string())
}

/// A batch handed from the parser thread to the writer.
struct Batch<T> {
    rows: Vec<(u64, T)>,
    rejected: Vec<RejectedRow>,
    progress: ImportProgress,
}

impl<T> Batch<T> {
    /// Hands over the rows gathered so far and starts an empty batch.
    fn take(&mut self, capacity: usize, progress: ImportProgress) -> Batch<T> {
        std::mem::replace(
            self,
            Batch {
                rows: Vec::with_capacity(capacity),
                rejected: Vec::new(),
                progress,
            },
        )
    }
}

impl ImportSummary {
    /// Counts a batch's rows and records its rejected ones (the valid rows stay in the batch).
    fn absorb_rejections<T>(&mut self, batch: &mut Batch<T>) {
        self.rows += (batch.rows.len() + batch.rejected.len()) as u64;
        for rejected in std::mem::take(&mut batch.rejected) {
            record_rejection(self, rejected);
        }
    }
}

fn record_rejection(summary: &mut ImportSummary, row: RejectedRow) {
    summary.rejected += 1;
    if summary.rejected_rows.len() < MAX_LISTED_REJECTIONS {
        summary.rejected_rows.push(row);
    }
}

/// What identifies a row within one file: a later row with the same identity repeats a record
/// already read, and is rejected.
trait RowIdentity {
    /// Feeds the row's identity to `state`.
    fn hash_identity<H: Hasher>(&self, state: &mut H);
    /// The id shown with a rejection of this row.
    fn shown_id(&self) -> Option<String>;
    /// Why this row, a repeat of the one on `first_line`, is rejected.
    fn repeat_reason(&self, first_line: u64) -> Localized;
}

impl RowIdentity for Opportunity {
    fn hash_identity<H: Hasher>(&self, state: &mut H) {
        self.external_id.as_str().hash(state);
    }

    fn shown_id(&self) -> Option<String> {
        Some(self.external_id.as_str().to_owned())
    }

    fn repeat_reason(&self, first_line: u64) -> Localized {
        let id = self.external_id.as_str();
        tr!(
            "opportunity `{id}` is already on line {first_line} of this file",
            "l'opportunité `{id}` figure déjà ligne {first_line} de ce fichier"
        )
    }
}

/// A row of a deal import: the deal and, when the file has a `changed_at` column, when its
/// changes took effect.
struct DealRow {
    opportunity: Opportunity,
    changed_at: Option<DateTime<Utc>>,
}

impl RowIdentity for DealRow {
    fn hash_identity<H: Hasher>(&self, state: &mut H) {
        self.opportunity.hash_identity(state);
    }

    fn shown_id(&self) -> Option<String> {
        self.opportunity.shown_id()
    }

    fn repeat_reason(&self, first_line: u64) -> Localized {
        self.opportunity.repeat_reason(first_line)
    }
}

/// Reads a `changed_at` cell: a timestamp like any other (the mapping's `date_format` first).
fn parse_changed_at(text: &str, date_format: Option<&str>) -> Result<DateTime<Utc>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if text.chars().any(char::is_control) {
        errors.push_known("changed_at", FieldMessage::ControlCharacters);
        return Err(errors);
    }
    match parse_timestamp_with_format(text, date_format) {
        Ok(t) if in_accepted_years(t) => Ok(t),
        Ok(_) => {
            errors.push_known(
                "changed_at",
                FieldMessage::YearOutOfRange {
                    min: MIN_YEAR,
                    max: MAX_YEAR,
                },
            );
            Err(errors)
        }
        Err(_) => {
            errors.push_known("changed_at", bad_timestamp(text, date_format));
            Err(errors)
        }
    }
}

/// An activity row: the opportunity it belongs to, and the activity. Its identity is the one the
/// database deduplicates on (the CRM id, or else kind, direction and time) within its opportunity.
impl RowIdentity for (String, Activity) {
    fn hash_identity<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.dedup_key().hash(state);
    }

    fn shown_id(&self) -> Option<String> {
        Some(self.0.clone())
    }

    fn repeat_reason(&self, first_line: u64) -> Localized {
        let opportunity = &self.0;
        match &self.1.id {
            Some(id) => tr!(
                "activity `{id}` of opportunity `{opportunity}` is already on line {first_line} of this file",
                "l'activité `{id}` de l'opportunité `{opportunity}` figure déjà ligne {first_line} de ce fichier"
            ),
            None => tr!(
                "the same activity (kind, direction and time) of opportunity `{opportunity}` is already on \
                 line {first_line} of this file",
                "la même activité (type, sens et heure) de l'opportunité `{opportunity}` figure déjà ligne \
                 {first_line} de ce fichier"
            ),
        }
    }
}

/// The rows read so far, by identity: a 128-bit hash of each row's key and the line it was on.
/// Two independently keyed SipHashes make a collision between different keys out of reach, and
/// keep the memory per row small and independent of the key's length.
struct SeenRows {
    keys: (RandomState, RandomState),
    first_line: HashMap<u128, u64>,
}

impl SeenRows {
    fn new() -> Self {
        SeenRows {
            keys: (RandomState::new(), RandomState::new()),
            first_line: HashMap::new(),
        }
    }

    /// The line `row`'s record was first read on; `None` (and `line` is remembered) when it is new.
    fn first_line_of<T: RowIdentity>(&mut self, row: &T, line: u64) -> Option<u64> {
        let mut a = self.keys.0.build_hasher();
        let mut b = self.keys.1.build_hasher();
        row.hash_identity(&mut a);
        row.hash_identity(&mut b);
        let key = (u128::from(a.finish()) << 64) | u128::from(b.finish());
        match self.first_line.entry(key) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

fn csv_row_error(e: &csv::Error) -> RejectedRow {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => RejectedRow::new(
            line,
            None,
            tr!(
                "the row has {len} fields, the header has {expected_len}",
                "la ligne a {len}{NBSP}champs, l'en-tête en a {expected_len}"
            ),
        ),
        csv::ErrorKind::Utf8 { .. } => RejectedRow::new(
            line,
            None,
            tr!("the row is not valid UTF-8", "la ligne n'est pas en UTF-8 valide"),
        ),
        _ => RejectedRow::untranslated(line, None, e.to_string()),
    }
}

/// Parser thread body: streams batches of parsed rows, each record once (a repeat is rejected).
fn parse_pass<R: Read, K, T, M, P>(
    source: R,
    batch_size: usize,
    mapping: &ImportMapping,
    make_reader: M,
    parse: P,
    tx: mpsc::Sender<Result<Batch<T>, ImportError>>,
) where
    T: RowIdentity,
    M: FnOnce(&csv::StringRecord) -> Result<K, ImportError>,
    P: Fn(&K, &csv::StringRecord, u64) -> Result<T, RejectedRow>,
{
    let mut reader = csv_reader(source, mapping);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let _ = tx.blocking_send(Err(read_error(e)));
            return;
        }
    };
    let kind = match make_reader(&headers) {
        Ok(k) => k,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let batch_size = batch_size.max(1);
    let mut batch = Batch {
        rows: Vec::with_capacity(batch_size),
        rejected: Vec::new(),
        progress: ImportProgress { bytes: 0, rows: 0 },
    };
    let mut seen = SeenRows::new();
    let mut record = csv::StringRecord::new();
    let mut rows_read = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                rows_read += 1;
                let line = record_line(&record);
                match parse(&kind, &record, line) {
                    // A batch therefore never holds a record twice, which a multi-row upsert
                    // could not apply (PostgreSQL refuses to update a row twice in one statement).
                    Ok(item) => match seen.first_line_of(&item, line) {
                        None => batch.rows.push((line, item)),
                        Some(first) => batch.rejected.push(RejectedRow::duplicate(
                            line,
                            item.shown_id(),
                            first,
                            item.repeat_reason(first),
                        )),
                    },
                    Err(rejected) => batch.rejected.push(rejected),
                }
            }
            Ok(false) => break,
            Err(e) => batch.rejected.push(csv_row_error(&e)),
        }
        if batch.rows.len() >= batch_size {
            let progress = ImportProgress {
                bytes: reader.position().byte(),
                rows: rows_read,
            };
            batch.progress = progress;
            let full = batch.take(batch_size, progress);
            if tx.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    batch.progress = ImportProgress {
        bytes: reader.position().byte(),
        rows: rows_read,
    };
    let _ = tx.blocking_send(Ok(batch));
}

/// Batches of parsed rows, as the parser thread hands them over.
type ParsedBatches<T> = mpsc::Receiver<Result<Batch<T>, ImportError>>;

/// Starts [`parse_pass`] over `source` on a blocking thread.
fn spawn_parser<R, K, T, M, P>(
    source: R,
    options: &ImportOptions,
    make_reader: M,
    parse: P,
) -> (tokio::task::JoinHandle<()>, ParsedBatches<T>)
where
    R: Read + Send + 'static,
    T: RowIdentity + Send + 'static,
    M: FnOnce(&csv::StringRecord) -> Result<K, ImportError> + Send + 'static,
    P: Fn(&K, &csv::StringRecord, u64) -> Result<T, RejectedRow> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(2);
    let (batch_size, mapping) = (options.batch_size, options.mapping.clone());
    let parser =
        tokio::task::spawn_blocking(move || parse_pass(source, batch_size, &mapping, make_reader, parse, tx));
    (parser, rx)
}

async fn join_parser(parser: tokio::task::JoinHandle<()>) -> Result<(), ImportError> {
    parser
        .await
        .map_err(|e| ImportError::Read(format!("parser failed: {e}")))
}

fn spawn_opportunity_parser<R: Read + Send + 'static>(
    source: R,
    options: &ImportOptions,
) -> (tokio::task::JoinHandle<()>, ParsedBatches<DealRow>) {
    let mapping = options.mapping.clone();
    spawn_parser(
        source,
        options,
        move |headers| RowReader::new(headers, &mapping),
        |reader: &RowReader, record, line| reader.parse_row(record, line),
    )
}

fn spawn_activity_parser<R: Read + Send + 'static>(
    source: R,
    options: &ImportOptions,
) -> (tokio::task::JoinHandle<()>, ParsedBatches<(String, Activity)>) {
    let date_format = options.mapping.date_format.clone();
    spawn_parser(
        source,
        options,
        ActivityColumns::new,
        move |columns: &ActivityColumns, record, line| columns.parse(record, line, date_format.as_deref()),
    )
}

/// The most rejected rows `options` allow before the file is refused, when a limit applies.
fn rejection_limit(options: &ImportOptions) -> Option<usize> {
    if options.strict {
        Some(0)
    } else {
        options.max_errors
    }
}

/// Refuses the file when its check pass rejected more rows than `options` allow.
fn refuse_over_limit(mut summary: ImportSummary, options: &ImportOptions) -> Result<(), ImportError> {
    let Some(limit) = rejection_limit(options) else {
        return Ok(());
    };
    if summary.rejected <= limit as u64 {
        return Ok(());
    }
    summary.rejected_rows.sort_by_key(|r| r.line);
    Err(ImportError::TooManyRejected {
        rejected: summary.rejected,
        limit: if options.strict {
            tr!("--strict allows none", "--strict n'en permet aucune")
        } else {
            tr!("--max-errors allows {limit}", "--max-errors en permet {limit}")
        },
        summary: Box::new(summary),
    })
}

fn open_source<R>(open: &dyn Fn() -> std::io::Result<R>) -> Result<R, ImportError> {
    open().map_err(|e| ImportError::Read(e.to_string()))
}

/// Imports opportunities from the CSV that `open` yields (called twice when a check pass is
/// needed). `progress` is called after each batch.
pub async fn import_opportunities<R, F>(
    db: &Db,
    open: F,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportSummary, ImportError>
where
    R: Read + Send + 'static,
    F: Fn() -> std::io::Result<R> + Send + Sync + 'static,
{
    if rejection_limit(options).is_some() {
        // Check pass: every rejection the import would make, before anything is written.
        let (parser, mut batches) = spawn_opportunity_parser(open_source(&open)?, options);
        let mut checked = ImportSummary::default();
        while let Some(batch) = batches.recv().await {
            checked.absorb_rejections(&mut batch?);
        }
        join_parser(parser).await?;
        refuse_over_limit(checked, options)?;
    }
    let (parser, mut rx) = spawn_opportunity_parser(open_source(&open)?, options);
    let mut summary = ImportSummary {
        dry_run: options.dry_run,
        ..Default::default()
    };
    let mut conn = db.bulk_connection().await?;
    while let Some(batch) = rx.recv().await {
        let mut batch = batch?;
        summary.absorb_rejections(&mut batch);
        if !batch.rows.is_empty() {
            let (opps, provenance): (Vec<Opportunity>, Vec<Provenance>) = batch
                .rows
                .into_iter()
                .map(|(_, row)| {
                    let provenance = Provenance {
                        source: ChangeSource::Import,
                        changed_at: row.changed_at,
                    };
                    (row.opportunity, provenance)
                })
                .unzip();
            let mut txn = db.begin_write_on(&mut conn).await?;
            let outcomes = upsert_batch_in(&mut txn, &opps, &provenance).await?;
            if options.dry_run {
                txn.rollback().await?;
            } else {
                txn.commit().await?;
            }
            for outcome in outcomes {
                match outcome {
                    UpsertOutcome::Inserted => summary.inserted += 1,
                    UpsertOutcome::Updated => summary.updated += 1,
                    UpsertOutcome::Unchanged => summary.unchanged += 1,
                }
            }
        }
        progress(batch.progress);
    }
    // Closed, not returned to the pool (see `Db::bulk_connection`); a failed close loses nothing.
    let _ = conn.close().await;
    join_parser(parser).await?;
    summary.rejected_rows.sort_by_key(|r| r.line);
    Ok(summary)
}

/// Column positions in an activities CSV (`opportunity_id,id,kind,direction,occurred_at`).
struct ActivityColumns {
    positions: BTreeMap<&'static str, usize>,
}

impl ActivityColumns {
    fn new(headers: &csv::StringRecord) -> Result<ActivityColumns, ImportError> {
        let mut positions = BTreeMap::new();
        for name in ["opportunity_id", "id", "kind", "direction", "occurred_at"] {
            if let Some(i) = headers.iter().position(|h| h.trim() == name) {
                positions.insert(name, i);
            }
        }
        for required in ["opportunity_id", "kind", "direction", "occurred_at"] {
            if !positions.contains_key(required) {
                return Err(ImportError::Header(tr!(
                    "the activities file has no `{required}` column (expected \
                     opportunity_id,id,kind,direction,occurred_at)",
                    "le fichier d'activités n'a pas de colonne `{required}` (attendu{NNBSP}: \
                     opportunity_id,id,kind,direction,occurred_at)"
                )));
            }
        }
        Ok(ActivityColumns { positions })
    }

    fn parse(
        &self,
        record: &csv::StringRecord,
        line: u64,
        date_format: Option<&str>,
    ) -> Result<(String, Activity), RejectedRow> {
        let cell = |name: &str| {
            self.positions
                .get(name)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
        };
        let opportunity_id = cell("opportunity_id").trim().to_owned();
        let mut fields = Map::new();
        for name in ["id", "kind", "direction", "occurred_at"] {
            if self.positions.contains_key(name) {
                fields.insert(name.into(), Value::String(cell(name).to_owned()));
            }
        }
        let reject = |reason: Localized| {
            RejectedRow::new(
                line,
                (!opportunity_id.is_empty()).then(|| opportunity_id.clone()),
                reason,
            )
        };
        if opportunity_id.is_empty() {
            let mut missing = ValidationErrors::default();
            missing.push_known("opportunity_id", FieldMessage::Required);
            return Err(reject(missing.localized_summary()));
        }
        let activity =
            Activity::parse(&fields, "", date_format).map_err(|e| reject(e.localized_summary()))?;
        Ok((opportunity_id, activity))
    }
}

fn unknown_opportunity(line: u64, opportunity_id: &str) -> RejectedRow {
    RejectedRow::new(
        line,
        Some(opportunity_id.to_owned()),
        tr!(
            "opportunity `{opportunity_id}` does not exist",
            "l'opportunité `{opportunity_id}` n'existe pas"
        ),
    )
}

/// Rejects the rows whose deal (named by `deal_of`) is not stored, as the import would (a read:
/// nothing is written).
async fn reject_unknown_deals<T>(
    db: &Db,
    rows: &[(u64, T)],
    deal_of: impl Fn(&T) -> &str,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let ids: BTreeSet<&str> = rows.iter().map(|(_, row)| deal_of(row)).collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let stored = existing_ids(db, &ids).await?;
    for (line, row) in rows {
        let id = deal_of(row);
        if !stored.contains(id) {
            record_rejection(summary, unknown_opportunity(*line, id));
        }
    }
    Ok(())
}

/// The check pass of `strict` and `max_errors` for a file whose rows each name a stored deal:
/// reads the whole file through `parse` (parse errors and unknown deals both count) and refuses
/// it before anything is written when the rejections pass the limit. Without a limit it reads
/// nothing.
async fn check_rows_naming_deals<T>(
    db: &Db,
    options: &ImportOptions,
    parse: impl FnOnce() -> Result<(tokio::task::JoinHandle<()>, ParsedBatches<T>), ImportError>,
    deal_of: impl Fn(&T) -> &str,
) -> Result<(), ImportError> {
    if rejection_limit(options).is_none() {
        return Ok(());
    }
    let (parser, mut batches) = parse()?;
    let mut checked = ImportSummary::default();
    while let Some(batch) = batches.recv().await {
        let mut batch = batch?;
        checked.absorb_rejections(&mut batch);
        reject_unknown_deals(db, &batch.rows, &deal_of, &mut checked).await?;
    }
    join_parser(parser).await?;
    refuse_over_limit(checked, options)
}

/// Imports activities (CSV `opportunity_id,id,kind,direction,occurred_at`) and refreshes the
/// derived measures of the opportunities they belong to. Rows naming an unknown opportunity are
/// rejected. Re-importing the same file adds nothing (`unchanged` counts the rows already stored).
/// `strict` and `max_errors` work as for [`import_opportunities`]: the check pass also looks the
/// opportunities up, so a row naming an unknown one refuses the file before anything is written.
pub async fn import_activities<R, F>(
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
        || Ok(spawn_activity_parser(open_source(&open)?, options)),
        |(opportunity_id, _)| opportunity_id,
    )
    .await?;
    let (parser, mut rx) = spawn_activity_parser(open_source(&open)?, options);
    let mut summary = ImportSummary {
        dry_run: options.dry_run,
        ..Default::default()
    };
    while let Some(batch) = rx.recv().await {
        let mut batch = batch?;
        summary.absorb_rejections(&mut batch);
        // Group by opportunity, keeping file order within each group.
        let mut groups: BTreeMap<String, Vec<(u64, Activity)>> = BTreeMap::new();
        for (line, (opportunity_id, activity)) in batch.rows {
            groups.entry(opportunity_id).or_default().push((line, activity));
        }
        let mut txn = db.begin_write().await?;
        for (opportunity_id, rows) in groups {
            let activities: Vec<Activity> = rows.iter().map(|(_, a)| a.clone()).collect();
            match add_in(&mut txn, &opportunity_id, &activities).await {
                Ok(added) => {
                    summary.inserted += added.added as u64;
                    summary.unchanged += added.duplicates as u64;
                }
                // Under `strict` the check pass found every opportunity; one deleted since then
                // is still rejected here, row by row.
                Err(AddActivitiesError::UnknownOpportunity(_)) => {
                    for (line, _) in rows {
                        record_rejection(&mut summary, unknown_opportunity(line, &opportunity_id));
                    }
                }
                Err(AddActivitiesError::Db(e)) => return Err(e.into()),
            }
        }
        if options.dry_run {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        progress(batch.progress);
    }
    join_parser(parser).await?;
    summary.rejected_rows.sort_by_key(|r| r.line);
    Ok(summary)
}

/// Streams a CSV row by row: `visit` gets the header, each raw record and its parse result
/// (same format and mapping as [`import_opportunities`]). Used by batch scoring, which writes each
/// input row back with its result.
pub fn for_each_row<R: Read>(
    source: R,
    mapping: &ImportMapping,
    mut visit: impl FnMut(
        &csv::StringRecord,
        &csv::StringRecord,
        Result<Opportunity, RejectedRow>,
    ) -> std::io::Result<()>,
) -> Result<(), ImportError> {
    let mut reader = csv_reader(source, mapping);
    let headers = reader.headers().map_err(read_error)?.clone();
    let rows = RowReader::new(&headers, mapping)?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let parsed = rows.parse(&record, record_line(&record));
                visit(&headers, &record, parsed).map_err(|e| ImportError::Read(e.to_string()))?;
            }
            Ok(false) => break,
            Err(e) => {
                let empty = csv::StringRecord::new();
                visit(&headers, &empty, Err(csv_row_error(&e)))
                    .map_err(|e| ImportError::Read(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Reads every valid opportunity of a CSV into memory (for training straight from a file), with
/// the rows that were rejected. Same format and mapping as [`import_opportunities`].
pub fn read_opportunities<R: Read>(
    source: R,
    mapping: &ImportMapping,
) -> Result<(Vec<Opportunity>, ImportSummary), ImportError> {
    let mut reader = csv_reader(source, mapping);
    let headers = reader.headers().map_err(read_error)?.clone();
    let rows = RowReader::new(&headers, mapping)?;
    let mut summary = ImportSummary {
        dry_run: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                summary.rows += 1;
                match rows.parse(&record, record_line(&record)) {
                    Ok(opp) => out.push(opp),
                    Err(rejected) => record_rejection(&mut summary, rejected),
                }
            }
            Ok(false) => break,
            Err(e) => {
                summary.rows += 1;
                record_rejection(&mut summary, csv_row_error(&e));
            }
        }
    }
    summary.inserted = out.len() as u64;
    Ok((out, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_to_close_column_dates_the_cycle_of_rows_without_a_creation_date() {
        let mapping = ImportMapping::from_toml("[columns]\ncycle_days = \"Days to close\"\n").unwrap();
        let csv = "external_id,status,closed_at,created_at,Days to close\n\
                   won,won,2026-03-31,,30\n\
                   open,open,,,12.5\n\
                   dated,lost,2026-03-31,2026-03-01,90\n\
                   none,open,,,\n\
                   bad,open,,,-3\n\
                   worse,maybe,,,soon\n";
        let (deals, summary) = read_opportunities(csv.as_bytes(), &mapping).unwrap();
        let by_id = |id: &str| deals.iter().find(|d| d.external_id.as_ref() == id).unwrap();
        let now = Utc::now();
        let won = by_id("won");
        assert_eq!(won.cycle_days(now), Some(30.0));
        assert_eq!(won.created_at.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        let open = by_id("open").cycle_days(now).unwrap();
        assert!((open - 12.5).abs() < 0.01, "{open}");
        // The row's own dates win over the column.
        assert_eq!(by_id("dated").cycle_days(now), Some(30.0));
        assert_eq!(by_id("none").created_at, None);
        assert_eq!(summary.rejected, 2);
        let reasons: Vec<&str> = summary.rejected_rows.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("cycle_days: `-3`"), "{reasons:?}");
        // Every problem of a row is reported, the cycle's with the others.
        assert!(
            reasons[1].contains("status") && reasons[1].contains("`soon`"),
            "{reasons:?}"
        );
    }

    #[test]
    fn reads_the_salvirt_dataset_with_its_shipped_mapping() {
        let mapping_text = std::fs::read_to_string("training/examples/salvirt-mapping.toml").unwrap();
        let mapping = ImportMapping::from_toml(&mapping_text).unwrap();
        let file = std::fs::File::open("tests/data/salvirt_b2b.csv").unwrap();
        let (opps, summary) = read_opportunities(file, &mapping).unwrap();
        assert_eq!(summary.rejected, 0, "{:?}", summary.rejected_rows);
        assert_eq!(opps.len(), 448);
        let won = opps
            .iter()
            .filter(|o| o.status == crate::domain::Status::Won)
            .count();
        assert_eq!(won, 227);
        assert_eq!(opps[0].external_id, "salvirt-2");
        assert_eq!(opps[0].attributes.len(), 22);
    }

    #[test]
    fn line_numbers_are_right_for_windows_unix_and_cr_only_line_endings() {
        for text in [
            "external_id,status,amount\na,open,1\nb,open,-1\n",
            "external_id,status,amount\r\na,open,1\r\nb,open,-1\r\n",
            "external_id,status,amount\ra,open,1\rb,open,-1\r",
        ] {
            let (opps, summary) = read_opportunities(text.as_bytes(), &ImportMapping::default()).unwrap();
            assert_eq!(opps.len(), 1);
            assert_eq!(summary.rejected_rows[0].line, 3, "{text:?}");
        }
    }

    #[test]
    fn a_cr_only_file_longer_than_the_sniffed_head_is_read_whole() {
        let mut text = String::from("external_id,status,amount\r");
        let rows = SNIFF_BYTES / 10;
        for i in 0..rows {
            text.push_str(&format!("r{i:05},open,1\r"));
        }
        text.push_str("last,open,-1");
        let (opps, summary) = read_opportunities(text.as_bytes(), &ImportMapping::default()).unwrap();
        assert_eq!(opps.len(), rows);
        assert_eq!(opps[rows - 1].external_id.as_str(), format!("r{:05}", rows - 1));
        assert_eq!(summary.rejected_rows[0].line, rows as u64 + 2);
    }

    #[test]
    fn a_row_with_a_repeated_header_column_is_refused() {
        let err = read_opportunities(
            "external_id,status,status\n".as_bytes(),
            &ImportMapping::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("repeats"));
    }
}
