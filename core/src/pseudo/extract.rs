//! Unlabeled discharge summaries from MIMIC-III's `NOTEEVENTS.csv` (`lamar-spec.md` §8.1), read
//! as a stream: the real file is about 4 GB of quoted, multi-line fields, and memory stays at
//! one record whatever its size.
//!
//! Kept: rows whose `CATEGORY` is `Discharge summary` and whose id is not one of the MedDec
//! documents to exclude; the id is the reference's `SUBJECT_ID_HADM_ID_ROW_ID`. A row lamar
//! cannot use (no `HADM_ID`, which makes the reference raise; an id that is not an integer; a
//! record with the wrong number of fields; text that is not UTF-8) is skipped and reported with
//! its line, never a crash.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Read;

/// One unlabeled note (a line of `unlabeled.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlabeledNote {
    /// `SUBJECT_ID_HADM_ID_ROW_ID`, as the reference and MedDec name documents.
    pub file_id: String,
    /// `DESCRIPTION` (`Report` or `Addendum`; the reference embeds reports only).
    pub description: String,
    /// The note.
    pub text: String,
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// The 1-based line where the record starts.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// What an extraction read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Records read (the header not counted).
    pub records: u64,
    /// Discharge summaries kept.
    pub kept: u64,
    /// Records of other categories.
    pub other_categories: u64,
    /// Discharge summaries left out because they are MedDec documents.
    pub excluded: u64,
    /// Records skipped as unusable: the first [`MAX_LISTED_SKIPS`] are listed.
    pub skipped: Vec<SkippedRow>,
    /// All skipped records, listed or not.
    pub skipped_count: u64,
}

/// Skipped rows listed one by one in [`ExtractReport::skipped`] (the rest are counted).
pub const MAX_LISTED_SKIPS: usize = 100;

/// Why an extraction stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The header lacks a column.
    #[error("the header has no {0} column (is this MIMIC-III's NOTEEVENTS.csv?)")]
    MissingColumn(&'static str),
    /// Reading failed (not a malformed record: those are skipped).
    #[error("line {line}: {message}")]
    Read {
        /// The line where reading stopped.
        line: u64,
        /// What the reader said.
        message: String,
    },
    /// The consumer of the notes failed (for example, writing the output).
    #[error("writing the notes: {0}")]
    Write(#[source] std::io::Error),
}

/// The columns the extraction reads.
const COLUMNS: [&str; 6] = [
    "ROW_ID",
    "SUBJECT_ID",
    "HADM_ID",
    "CATEGORY",
    "DESCRIPTION",
    "TEXT",
];

/// An id column's value as an integer: digits, or a number with a zero fraction (`123.0`, as
/// pandas writes integer columns with missing values), like the reference's `int(...)`.
fn integer(value: &str) -> Option<u64> {
    let value = value.trim();
    let whole = match value.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => value,
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

/// Reads `NOTEEVENTS.csv` from `input`, gives every kept note to `emit` in file order, and
/// reports what it read. `exclude` holds the MedDec document ids to leave out.
pub fn extract_notes(
    input: impl Read,
    exclude: &HashSet<String>,
    mut emit: impl FnMut(UnlabeledNote) -> std::io::Result<()>,
) -> Result<ExtractReport, ExtractError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let header = reader
        .byte_headers()
        .map_err(|e| ExtractError::Read {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let mut at = [0usize; 6];
    for (slot, name) in at.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or(ExtractError::MissingColumn(name))?;
    }
    let [row_id, subject_id, hadm_id, category, description, text] = at;
    let mut report = ExtractReport::default();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(ExtractError::Read {
                    line,
                    message: e.to_string(),
                });
            }
        }
        report.records += 1;
        let line = record.position().map_or(line, |p| p.line());
        let mut skip = |reason: String| {
            report.skipped_count += 1;
            if report.skipped.len() < MAX_LISTED_SKIPS {
                report.skipped.push(SkippedRow { line, reason });
            }
        };
        if record.len() != header.len() {
            skip(format!(
                "{} fields where the header has {}",
                record.len(),
                header.len()
            ));
            continue;
        }
        if &record[category] != b"Discharge summary" {
            report.other_categories += 1;
            continue;
        }
        let field = |k: usize| std::str::from_utf8(&record[k]);
        let ids = [
            ("SUBJECT_ID", subject_id),
            ("HADM_ID", hadm_id),
            ("ROW_ID", row_id),
        ]
        .map(|(name, k)| match field(k) {
            Ok(v) if v.trim().is_empty() => Err(format!("no {name}")),
            Ok(v) => integer(v).ok_or_else(|| format!("{name} {v:?} is not an integer")),
            Err(_) => Err(format!("{name} is not UTF-8")),
        });
        let (subject, admission, row) = match ids {
            [Ok(s), Ok(h), Ok(r)] => (s, h, r),
            [Err(e), _, _] | [_, Err(e), _] | [_, _, Err(e)] => {
                skip(e);
                continue;
            }
        };
        let file_id = format!("{subject}_{admission}_{row}");
        if exclude.contains(&file_id) {
            report.excluded += 1;
            continue;
        }
        let (Ok(description), Ok(text)) = (field(description), field(text)) else {
            skip("DESCRIPTION or TEXT is not UTF-8".into());
            continue;
        };
        emit(UnlabeledNote {
            file_id,
            description: description.to_string(),
            text: text.to_string(),
        })
        .map_err(ExtractError::Write)?;
        report.kept += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "\"ROW_ID\",\"SUBJECT_ID\",\"HADM_ID\",\"CHARTDATE\",\"CHARTTIME\",\
                          \"STORETIME\",\"CATEGORY\",\"DESCRIPTION\",\"CGID\",\"ISERROR\",\"TEXT\"\n";

    fn run(body: &str, exclude: &[&str]) -> (Vec<UnlabeledNote>, ExtractReport) {
        let exclude = exclude.iter().map(|s| s.to_string()).collect();
        let mut notes = Vec::new();
        let report = extract_notes(format!("{HEADER}{body}").as_bytes(), &exclude, |n| {
            notes.push(n);
            Ok(())
        })
        .unwrap();
        (notes, report)
    }

    #[test]
    fn keeps_discharge_summaries_with_multi_line_text_and_reports_the_rest_by_line() {
        let body = "\
174,22532,167853,2151-08-04,,,\"Discharge summary\",\"Report\",,,\"Admission Date:\n\"\"quoted\"\" line\n, end\"
175,13702,107527,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"excluded note\"
176,13702,,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"no admission\"
177,13702,167118.0,2119-05-25,,,\"Discharge summary\",\"Addendum\",,,\"addendum\"
178,1,2,2100-01-01,,,\"Nursing\",\"Report\",,,\"a nursing note\"
179,1,2,oops
180,x1,2,2100-01-01,,,\"Discharge summary\",\"Report\",,,\"bad id\"
";
        let (notes, report) = run(body, &["13702_107527_175"]);
        let ids: Vec<&str> = notes.iter().map(|n| n.file_id.as_str()).collect();
        assert_eq!(ids, ["22532_167853_174", "13702_167118_177"]);
        assert_eq!(notes[0].text, "Admission Date:\n\"quoted\" line\n, end");
        assert_eq!(notes[1].description, "Addendum");
        assert_eq!(
            (
                report.records,
                report.kept,
                report.other_categories,
                report.excluded
            ),
            (7, 2, 1, 1)
        );
        assert_eq!(report.skipped_count, 3);
        let skipped: Vec<(u64, &str)> = report
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                (6, "no HADM_ID"),
                (9, "4 fields where the header has 11"),
                (10, "SUBJECT_ID \"x1\" is not an integer"),
            ]
        );
    }

    #[test]
    fn a_file_without_the_columns_is_refused() {
        let err = extract_notes("a,b\n1,2\n".as_bytes(), &HashSet::new(), |_| Ok(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the header has no ROW_ID column (is this MIMIC-III's NOTEEVENTS.csv?)"
        );
    }

    #[test]
    fn ids_are_integers_as_the_reference_reads_them() {
        assert_eq!(integer("163353"), Some(163353));
        assert_eq!(integer("163353.0"), Some(163353));
        assert_eq!(integer(" 7 "), Some(7));
        for bad in ["", "1.5", "-3", "1e3", "abc", "."] {
            assert_eq!(integer(bad), None, "{bad}");
        }
    }
}
