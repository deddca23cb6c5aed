//! Small helpers for SQL text built at run time (multi-row statements).

/// `($1,$2,…),($k,…)` for `rows` rows of `cols` placeholders each, numbered from `start + 1`.
pub(crate) fn values_placeholders(rows: usize, cols: usize, start: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&(start + r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// `$a,$b,…` for `n` placeholders numbered from `start + 1`.
pub(crate) fn list_placeholders(n: usize, start: usize) -> String {
    (0..n)
        .map(|i| format!("${}", start + i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(values_placeholders(2, 2, 0), "($1,$2),($3,$4)");
        assert_eq!(list_placeholders(3, 2), "$3,$4,$5");
    }
}
