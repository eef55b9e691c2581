//! `stats.csv`: one row of demographics per MedDec note, for the worst-group score.
//!
//! Columns `SUBJECT_ID, HADM_ID, ROW_ID, ETHNICITY, LANGUAGE, GENDER`. The evaluator normalises
//! the values into the scored groups with the rules below (upper-cased and stripped first), and
//! skips rows whose three ids are not integers.

use super::{FormatError, python_int_str, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of `stats.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    /// MIMIC `SUBJECT_ID`.
    #[serde(rename = "SUBJECT_ID")]
    pub subject_id: String,
    /// MIMIC `HADM_ID`.
    #[serde(rename = "HADM_ID")]
    pub hadm_id: String,
    /// MIMIC `ROW_ID` of the note.
    #[serde(rename = "ROW_ID")]
    pub row_id: String,
    /// Ethnicity as MedDec maps it (`W`, `AA`, `Hisp.`, `Asian`, ...).
    #[serde(rename = "ETHNICITY")]
    pub ethnicity: String,
    /// `ENGL` or `Non-ENGL`.
    #[serde(rename = "LANGUAGE")]
    pub language: String,
    /// `M` or `F`.
    #[serde(rename = "GENDER")]
    pub gender: String,
}

/// Sex groups. `Other` is not scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Sex {
    /// `F` or `FEMALE`.
    Female,
    /// `M` or `MALE`.
    Male,
    /// Anything else.
    Other,
}

/// Race groups, all scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Race {
    /// `W` or containing `WHITE`.
    White,
    /// `AA` or containing `BLACK` or `AFRICAN`.
    AfricanAmerican,
    /// Starting with `HISP`.
    Hispanic,
    /// Containing `ASIAN`.
    Asian,
    /// Anything else.
    Other,
}

/// Language groups, both scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Language {
    /// `ENGL` or `ENGLISH`.
    English,
    /// Anything else, empty included.
    NonEnglish,
}

fn normalise(value: &str) -> String {
    value
        .to_uppercase()
        .trim_matches(crate::text::is_python_space)
        .to_string()
}

impl StatsRow {
    /// The `(SUBJECT_ID, HADM_ID, ROW_ID)` key, or `None` when an id is not an integer.
    pub fn key(&self) -> Option<(i64, i64, i64)> {
        Some((
            python_int_str(&self.subject_id)?,
            python_int_str(&self.hadm_id)?,
            python_int_str(&self.row_id)?,
        ))
    }

    /// The evaluator's sex group.
    pub fn sex(&self) -> Sex {
        match normalise(&self.gender).as_str() {
            "F" | "FEMALE" => Sex::Female,
            "M" | "MALE" => Sex::Male,
            _ => Sex::Other,
        }
    }

    /// The evaluator's race group (first rule that fires).
    pub fn race(&self) -> Race {
        let v = normalise(&self.ethnicity);
        if v == "W" || v.contains("WHITE") {
            Race::White
        } else if v == "AA" || v.contains("BLACK") || v.contains("AFRICAN") {
            Race::AfricanAmerican
        } else if v.starts_with("HISP") {
            Race::Hispanic
        } else if v.contains("ASIAN") {
            Race::Asian
        } else {
            Race::Other
        }
    }

    /// The evaluator's language group.
    pub fn language(&self) -> Language {
        match normalise(&self.language).as_str() {
            "ENGL" | "ENGLISH" => Language::English,
            _ => Language::NonEnglish,
        }
    }
}

/// The stats key of a document file name: basename, extension dropped, split on `_`, at least
/// three parts, `ROW_ID` read up to a `-`.
pub fn stats_key_of(file_name: &str) -> Option<(i64, i64, i64)> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = match base.rfind('.') {
        Some(dot) if dot > 0 => &base[..dot],
        _ => base,
    };
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() < 3 {
        return None;
    }
    let row = parts[2].split('-').next().unwrap_or("");
    Some((
        python_int_str(parts[0])?,
        python_int_str(parts[1])?,
        python_int_str(row)?,
    ))
}

/// Parses `stats.csv` text; `source` names it in errors.
pub fn parse_stats(text: &str, source: &str) -> Result<Vec<StatsRow>, FormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    reader
        .deserialize()
        .map(|row| row.map_err(|e| FormatError::csv(source, &e)))
        .collect()
}

/// Reads `stats.csv`.
pub fn read_stats(path: &Path) -> Result<Vec<StatsRow>, FormatError> {
    parse_stats(&super::read_utf8(path)?, &path.display().to_string())
}

/// `stats.csv` contents (`source` names the destination in errors).
pub fn stats_to_csv(rows: &[StatsRow], source: &str) -> Result<String, FormatError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .map_err(|e| FormatError::csv(source, &e))?;
    }
    let bytes = writer.into_inner().map_err(|e| FormatError::Csv {
        path: source.to_string(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| FormatError::Csv {
        path: source.to_string(),
        message: e.to_string(),
    })
}

/// Writes `stats.csv`.
pub fn write_stats(path: &Path, rows: &[StatsRow]) -> Result<(), FormatError> {
    let text = stats_to_csv(rows, &path.display().to_string())?;
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(eth: &str, lang: &str, gender: &str) -> StatsRow {
        StatsRow {
            subject_id: "1".into(),
            hadm_id: "2".into(),
            row_id: "3".into(),
            ethnicity: eth.into(),
            language: lang.into(),
            gender: gender.into(),
        }
    }

    #[test]
    fn evaluator_normalisation_rules() {
        assert_eq!(row("W", "ENGL", "F").race(), Race::White);
        assert_eq!(row("white - russian", "", "").race(), Race::White);
        assert_eq!(row("AA", "", "").race(), Race::AfricanAmerican);
        assert_eq!(
            row("BLACK/CAPE VERDEAN", "", "").race(),
            Race::AfricanAmerican
        );
        assert_eq!(row("Hisp.", "", "").race(), Race::Hispanic);
        assert_eq!(row("Asian", "", "").race(), Race::Asian);
        assert_eq!(row("UNABLE TO OBTAIN", "", "").race(), Race::Other);
        assert_eq!(row("", " engl ", "").language(), Language::English);
        assert_eq!(row("", "Non-ENGL", "").language(), Language::NonEnglish);
        assert_eq!(row("", "", "female").sex(), Sex::Female);
        assert_eq!(row("", "", "M").sex(), Sex::Male);
        assert_eq!(row("", "", "U").sex(), Sex::Other);
    }

    #[test]
    fn keys_from_rows_and_file_names() {
        assert_eq!(row("", "", "").key(), Some((1, 2, 3)));
        let mut bad = row("", "", "");
        bad.hadm_id = "NaN".into();
        assert_eq!(bad.key(), None);
        assert_eq!(
            stats_key_of("data/78_100536_1787.json"),
            Some((78, 100536, 1787))
        );
        assert_eq!(stats_key_of("78_100536_1787-2"), Some((78, 100536, 1787)));
        assert_eq!(stats_key_of("78_100536"), None);
    }

    #[test]
    fn csv_round_trip_and_errors() {
        let rows = vec![row("W", "ENGL", "F"), row("Hisp., x", "Non-ENGL", "M")];
        let dir = std::env::temp_dir().join(format!("lamar-stats-{}", std::process::id()));
        let path = dir.join("stats.csv");
        write_stats(&path, &rows).unwrap();
        assert_eq!(read_stats(&path).unwrap(), rows);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = parse_stats("SUBJECT_ID,HADM_ID\n1,2\n", "stats.csv").unwrap_err();
        assert!(err.to_string().starts_with("stats.csv: line 2"), "{err}");
    }
}
