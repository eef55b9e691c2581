//! Split files: one document id per line.
//!
//! The official MedDec split files list bare ids (`28930_135966_25322`); LAMAR's own scripts
//! expect `id.json`. lamar accepts both: lines are stripped, empty lines skipped, a trailing
//! `.json` removed (as the reference evaluator's `removesuffix('.json')`).

use super::{FormatError, read_utf8, write_atomic};
use std::path::Path;

/// Parses the text of a split file into ids, in file order.
pub fn parse_split(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.trim_matches(crate::text::is_python_space))
        .filter(|line| !line.is_empty())
        .map(|line| line.strip_suffix(".json").unwrap_or(line).to_string())
        .collect()
}

/// Reads a split file.
pub fn read_split(path: &Path) -> Result<Vec<String>, FormatError> {
    Ok(parse_split(&read_utf8(path)?))
}

/// Writes a split file with bare ids, as the official repository does.
pub fn write_split(path: &Path, ids: &[String]) -> Result<(), FormatError> {
    let mut text = ids.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_and_without_extension() {
        let ids = parse_split("1_2_3\r\n  4_5_6.json \n\n7_8_9.json.json\n");
        assert_eq!(ids, vec!["1_2_3", "4_5_6", "7_8_9.json"]);
    }
}
