//! The flat table every insight also renders as, for CSV (`?format=csv` or `Accept: text/csv`).

use crate::domain::spreadsheet;

/// A header and rows of cells; absent values are empty cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// RFC 4180 CSV text with a header line; cells a spreadsheet would evaluate are escaped
    /// ([`spreadsheet::csv_cell`]).
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        spreadsheet::write_record(&mut writer, &self.columns)?;
        for row in &self.rows {
            spreadsheet::write_record(&mut writer, row)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A cell from a displayable value.
pub fn cell(value: impl std::fmt::Display) -> String {
    value.to_string()
}

/// A cell from an optional value (empty when absent).
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut t = Table::new(["name", "value"]);
        t.push(vec!["Acme, Inc.".into(), opt(Some(1.5))]);
        t.push(vec!["plain".into(), opt::<f64>(None)]);
        assert_eq!(t.to_csv().unwrap(), "name,value\n\"Acme, Inc.\",1.5\nplain,\n");
    }

    #[test]
    fn csv_cells_never_reach_a_spreadsheet_as_formulas() {
        let mut t = Table::new(["account", "gap"]);
        t.push(vec!["=HYPERLINK(\"https://evil.example\")".into(), cell(-600.5)]);
        assert_eq!(
            t.to_csv().unwrap(),
            "account,gap\n\"'=HYPERLINK(\"\"https://evil.example\"\")\",-600.5\n"
        );
    }
}
