//! Small helpers for SQL text built at run time (multi-row statements), and the column types the
//! row structs share.

use sqlx::any::{AnyRow, AnyTypeInfo};
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::{Any, AnyConnection, Database, FromRow, Type};

use crate::domain::Status;

/// A stored text the domain does not accept. Only this crate writes these columns, so it means a
/// damaged row: the read fails with a `ColumnDecode` error naming the column.
#[derive(Debug, thiserror::Error)]
#[error("bad {column} {value}")]
pub struct BadColumn {
    column: &'static str,
    value: String,
}

/// Reads a `status` column (`#[sqlx(try_from = "String")]` in the row structs).
impl TryFrom<String> for Status {
    type Error = BadColumn;

    fn try_from(value: String) -> Result<Self, BadColumn> {
        Status::parse(&value).ok_or(BadColumn {
            column: "status",
            value,
        })
    }
}

/// The `ColumnDecode` error of a column whose text the domain refuses.
pub(crate) fn bad_column(column: &str, source: impl Into<BoxDynError>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: source.into(),
    }
}

/// An optional `f64` to bind, whose NULL PostgreSQL sees as a `float8`.
///
/// sqlx 0.8.6's `Any` driver hands a `None::<f64>` to PostgreSQL as a *float4* NULL (its
/// `Real`/`Double` kinds are swapped when arguments are converted). A prepared statement keeps
/// the parameter types of its first execution, so a cached statement first run with a NULL
/// amount then refused every real amount ("incorrect binary data format"). A NULL bound through
/// this type takes the kind that reaches PostgreSQL as float8. The API test
/// `opportunities::missing_amounts_then_real_ones_are_stored` fails if an sqlx upgrade changes
/// that mapping.
pub(crate) struct OptionalF64(pub Option<f64>);

impl<'q> Encode<'q, Any> for OptionalF64 {
    fn encode_by_ref(&self, buf: &mut <Any as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        match self.0 {
            Some(value) => <f64 as Encode<'q, Any>>::encode_by_ref(&value, buf),
            None => <Option<f32> as Encode<'q, Any>>::encode_by_ref(&None, buf),
        }
    }
}

impl Type<Any> for OptionalF64 {
    fn type_info() -> AnyTypeInfo {
        <f64 as Type<Any>>::type_info()
    }
}

/// How bind parameters are written.
///
/// PostgreSQL needs `$1, $2, …`. SQLite accepts those too, but treats them as *named* parameters
/// and looks each name up with a linear scan when binding, which makes a statement with n
/// parameters cost O(n²): a 400-row insert (8,800 parameters) spent 85 % of an import in that
/// lookup. Plain `?` parameters are positional and bind in O(1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `?` (SQLite).
    Question,
    /// `$N` (PostgreSQL).
    Dollar,
}

impl Style {
    /// The style for the connection's backend.
    pub(crate) fn of(conn: &AnyConnection) -> Style {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Style::Question
        } else {
            Style::Dollar
        }
    }

    /// The style for a backend.
    pub(crate) fn for_backend(backend: super::Backend) -> Style {
        match backend {
            super::Backend::Sqlite => Style::Question,
            super::Backend::Postgres => Style::Dollar,
        }
    }

    fn push(self, out: &mut String, n: usize) {
        match self {
            Style::Question => out.push('?'),
            Style::Dollar => {
                out.push('$');
                out.push_str(&n.to_string());
            }
        }
    }
}

/// `($1,$2,…),($k,…)` (or `(?,?),…`) for `rows` rows of `cols` parameters each; the statement's
/// parameters must be exactly these, in order.
pub(crate) fn values_placeholders(style: Style, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            style.push(&mut out, r * cols + c + 1);
        }
        out.push(')');
    }
    out
}

/// `$1,$2,…` (or `?,?,…`) for `n` parameters; the statement's parameters must be exactly these.
pub(crate) fn list_placeholders(style: Style, n: usize) -> String {
    list_placeholders_from(style, 1, n)
}

/// `$first,…` (or `?,…`) for `n` parameters after `first - 1` earlier ones.
pub(crate) fn list_placeholders_from(style: Style, first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        style.push(&mut out, first + i);
    }
    out
}

/// Keys per `IN (…)` list in [`select_by_keys`].
const KEYS_PER_STATEMENT: usize = 400;

/// The rows of a lookup by many keys, one statement per 400 keys. `select(lead, list)` writes
/// the statement: `lead` is the placeholder of `leading` (empty without one) and `list` the
/// placeholders of a chunk of keys, bound after it. Cached on SQLite; planned per execution on
/// PostgreSQL, where a plan cached while a table was still empty keeps scanning it sequentially
/// as it grows (measured: 1 s per 400-key lookup at 280k rows).
pub(crate) async fn select_by_keys<R>(
    conn: &mut AnyConnection,
    leading: Option<&str>,
    keys: &[&str],
    select: impl Fn(&str, &str) -> String,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let style = Style::of(conn);
    let (lead, first) = match (leading, style) {
        (None, _) => (String::new(), 1),
        (Some(_), Style::Question) => ("?".to_owned(), 2),
        (Some(_), Style::Dollar) => ("$1".to_owned(), 2),
    };
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = select(&lead, &list_placeholders_from(style, first, chunk.len()));
        let mut query = sqlx::query_as(&sql).persistent(style == Style::Question);
        if let Some(value) = leading {
            query = query.bind(value.to_owned());
        }
        for key in chunk {
            query = query.bind((*key).to_owned());
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// The rows of one statement that aggregates them into one JSON array (of arrays, one per row):
/// PostgreSQL aggregates no row to NULL, SQLite to `[]`, both read as no rows.
/// A text that is not such an array is a [`bad_column`] named `column`.
pub(crate) fn json_rows<R: serde::de::DeserializeOwned>(
    column: &str,
    json: Option<&str>,
) -> Result<Vec<R>, sqlx::Error> {
    match json {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| bad_column(column, e.to_string())),
    }
}

/// The rows of a lookup by many row ids (`keys`), each statement answering its rows as **one** JSON array
/// (of arrays, one per row) in one text column: `select(list)` writes the statement for a chunk of
/// 400 keys' placeholders, as `json_group_array(json_array(…))` on SQLite and
/// `json_agg(json_build_array(…))::text` on PostgreSQL. Through sqlx's `Any` driver each row
/// costs a copy of every value, a hand-over between threads and a conversion; one value per
/// statement does not (docs/performance.md, "Training job"). A statement without rows may
/// answer NULL (PostgreSQL's `json_agg`) or `[]`. Texts keep every character; only integers and
/// texts should travel this way (SQLite's JSON writes a REAL with 15 digits).
pub(crate) async fn json_rows_by_keys<R>(
    conn: &mut AnyConnection,
    keys: &[i64],
    select: impl Fn(&str) -> String,
) -> Result<Vec<R>, sqlx::Error>
where
    R: serde::de::DeserializeOwned,
{
    let style = Style::of(conn);
    let mut rows = Vec::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = select(&list_placeholders(style, chunk.len()));
        let mut query = sqlx::query_scalar::<_, Option<String>>(&sql).persistent(style == Style::Question);
        for key in chunk {
            query = query.bind(*key);
        }
        let json = query.fetch_one(&mut *conn).await?;
        rows.extend(json_rows::<R>("json", json.as_deref())?);
    }
    Ok(rows)
}

/// The newest rows of a per-source log table (`webhook_events`, `webhook_outbox`), optionally with
/// one status. `table` and `columns` are constants of the calling module, never user input.
pub(crate) async fn recent_for_source<R>(
    db: &super::Db,
    table: &str,
    columns: &str,
    source: &str,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let status_clause = if status.is_some() { " AND status = $2" } else { "" };
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE source = $1{status_clause} ORDER BY id DESC LIMIT {limit}"
    );
    let mut query = sqlx::query_as(&sql).bind(source.to_owned());
    if let Some(status) = status {
        query = query.bind(status.to_owned());
    }
    query.fetch_all(&db.pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(values_placeholders(Style::Dollar, 2, 2), "($1,$2),($3,$4)");
        assert_eq!(values_placeholders(Style::Question, 2, 2), "(?,?),(?,?)");
        assert_eq!(list_placeholders(Style::Dollar, 3), "$1,$2,$3");
        assert_eq!(list_placeholders(Style::Question, 2), "?,?");
        assert_eq!(list_placeholders_from(Style::Dollar, 2, 2), "$2,$3");
    }
}
