//! CSV cells that a spreadsheet opens as text, never as a formula (OWASP "CSV injection").
//!
//! Exports carry text that came from outside (account and deal names, owners, the rows of a
//! file to score). Excel, LibreOffice and Google Sheets evaluate a cell that starts with `=`,
//! `+`, `-` or `@` (and strip a leading TAB or CR before doing so), so an account named
//! `=HYPERLINK("https://evil.example","Open")` would reach the analyst's sheet as a live link.
//! OWASP's rule: prefix such a cell with a single quote, which spreadsheets show as text; the
//! CSV writer then quotes the cell as RFC 4180 requires. A cell that is a plain number (`-1250.5`,
//! `+3`, `1e-3`) is left as it is: it evaluates to itself, and a negative amount or gap must stay
//! a number in the sheet.
//!
//! Every CSV export writes its records through [`write_record`], so no writer can forget it.

use std::borrow::Cow;

/// First characters that make a spreadsheet read a cell as a formula.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `value` as a cell a spreadsheet shows as text: prefixed with `'` when it starts with
/// `= + - @`, TAB or CR and is not a plain decimal number; unchanged otherwise.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some(first) if FORMULA_TRIGGERS.contains(&first) && !is_plain_number(value) => {
            Cow::Owned(format!("'{value}"))
        }
        _ => Cow::Borrowed(value),
    }
}

/// Writes one record, each cell passed through [`csv_cell`].
pub fn write_record<W, I, S>(writer: &mut csv::Writer<W>, cells: I) -> csv::Result<()>
where
    W: std::io::Write,
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for value in cells {
        writer.write_field(csv_cell(value.as_ref()).as_bytes())?;
    }
    // An empty iterator ends the record whose fields were written one by one.
    writer.write_record(std::iter::empty::<&[u8]>())
}

/// A decimal number with an optional sign and exponent (`-12`, `+0.5`, `.5`, `3.`, `1e-3`), as
/// spreadsheets and Rust's float formatting write them. `inf` and `NaN` are not: they are words.
fn is_plain_number(text: &str) -> bool {
    fn unsigned(t: &str) -> &str {
        t.strip_prefix(['+', '-']).unwrap_or(t)
    }
    fn digits(t: &str) -> bool {
        t.bytes().all(|b| b.is_ascii_digit())
    }
    let (mantissa, exponent) = match unsigned(text).split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(unsigned(e))),
        None => (unsigned(text), None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    !(whole.is_empty() && fraction.is_empty())
        && digits(whole)
        && digits(fraction)
        && exponent.is_none_or(|e| !e.is_empty() && digits(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_prefixed_with_a_quote() {
        for (value, cell) in [
            (
                "=HYPERLINK(\"https://evil.example\",\"x\")",
                "'=HYPERLINK(\"https://evil.example\",\"x\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("-", "'-"),
            ("+", "'+"),
            ("-inf", "'-inf"),
            ("-NaN", "'-NaN"),
            ("-1e", "'-1e"),
            ("-.", "'-."),
            ("-1.2.3", "'-1.2.3"),
            ("-0x10", "'-0x10"),
            ("-1 ", "'-1 "),
        ] {
            assert_eq!(csv_cell(value), cell, "{value:?}");
        }
    }

    #[test]
    fn numbers_and_ordinary_text_are_left_alone() {
        for value in [
            "-1250.5",
            "-3",
            "+3",
            "-.5",
            "-3.",
            "1e-3",
            "-1.5E+10",
            "0",
            "12",
            "Acme, Inc.",
            "anna.a",
            "",
            "a=b",
            " =1",
            "'quoted",
            "Zoé",
        ] {
            assert!(matches!(csv_cell(value), Cow::Borrowed(_)), "{value:?}");
        }
    }

    #[test]
    fn records_are_escaped_then_quoted_as_rfc_4180_requires() {
        let mut writer = csv::Writer::from_writer(Vec::new());
        write_record(&mut writer, ["name", "gap"]).expect("header");
        write_record(&mut writer, ["=1+1,\"x\"", "-600"]).expect("row");
        write_record(&mut writer, vec![String::from("@a"), String::from("b")]).expect("owned cells");
        let bytes = writer.into_inner().expect("flush");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "name,gap\n\"'=1+1,\"\"x\"\"\",-600\n'@a,b\n"
        );
    }
}
