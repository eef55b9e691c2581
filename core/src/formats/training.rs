//! A split's training rows built from the MedDec layout (the reference's `gt_to_tag`, what
//! `lamar tag` writes): for each document id, its gold file and raw text become a
//! [`TrainingRow`] whose `gold_span` is the text with inline tags; what had to be left out is
//! counted.

use super::FormatError;
use super::gold::{GoldDocument, SkipReason, read_gold_file};
use super::raw_text::{raw_text_path, read_raw_text};
use super::rows::{GoldOffset, TrainingRow};
use crate::codec::same_category_crossings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A split's training rows and what was left out on the way.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    /// One row per document, in the order of the ids given.
    pub rows: Vec<TrainingRow>,
    /// Annotations left out, per reason.
    pub skipped: BTreeMap<SkipReason, usize>,
    /// Pairs of crossing same-category spans (they read back nested after a round trip).
    pub crossings: usize,
    /// Documents skipped because their raw text file was missing: id and the path looked for.
    pub missing: Vec<(String, PathBuf)>,
}

/// The gold document of `id` in `path`: the one whose id it is, or the file's only document.
pub fn gold_of(path: &Path, id: &str) -> Result<GoldDocument, FormatError> {
    let docs = read_gold_file(path)?;
    let n = docs.len();
    let by_id = docs.iter().position(|d| d.id.as_deref() == Some(id));
    match (by_id, n) {
        (Some(i), _) => Ok(docs.into_iter().nth(i).expect("index in range")),
        (None, 1) => Ok(docs.into_iter().next().expect("one document")),
        _ => Err(FormatError::Invalid {
            path: path.display().to_string(),
            location: "the file".into(),
            message: format!("holds {n} documents, none with discharge_summary_id {id}"),
        }),
    }
}

/// Builds the rows of documents `ids` from `gold_dir/ID.json` and `raw_text_dir/ID.txt`. With
/// `skip_missing`, a document without raw text is skipped (and listed) instead of failing.
/// `on_document` is called after each id (for a progress bar).
pub fn training_set(
    gold_dir: &Path,
    raw_text_dir: &Path,
    ids: &[String],
    skip_missing: bool,
    mut on_document: impl FnMut(),
) -> Result<TrainingSet, FormatError> {
    let mut set = TrainingSet::default();
    for id in ids {
        on_document();
        let text_path = raw_text_path(raw_text_dir, id);
        if skip_missing && !text_path.exists() {
            set.missing.push((id.clone(), text_path));
            continue;
        }
        let text = read_raw_text(&text_path)?;
        let gold = gold_of(&gold_dir.join(format!("{id}.json")), id)?;
        let (row, left_out) = TrainingRow::from_gold(id, &text, &gold);
        for reason in left_out {
            *set.skipped.entry(reason).or_default() += 1;
        }
        let spans: Vec<_> = row
            .gold_offsets
            .iter()
            .filter_map(GoldOffset::span)
            .collect();
        set.crossings += same_category_crossings(&spans);
        set.rows.push(row);
    }
    Ok(set)
}
