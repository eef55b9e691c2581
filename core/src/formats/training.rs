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

/// Why a row's tagged copy cannot be a training target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaggedRowError {
    /// A tag-shaped token that names no category.
    #[error("gold_span holds {0} tag(s) that name no category (the nine are e.g. <drug_decision>)")]
    UnknownTags(usize),
    /// Tags that are opened and never closed, or closed and never opened.
    #[error("gold_span has {unclosed} unclosed and {unmatched} unmatched closing tag(s)")]
    Unbalanced {
        /// Opening tags left open.
        unclosed: usize,
        /// Closing tags without an opening one.
        unmatched: usize,
    },
    /// The tagged copy, tags removed, is not the raw text.
    #[error(
        "gold_span without its tags differs from raw_text at character {at} \
         (raw_text has {raw:?}, gold_span {tagged:?})"
    )]
    TextDiffers {
        /// First code point where they differ.
        at: usize,
        /// A few characters of the raw text from there.
        raw: String,
        /// A few characters of the untagged copy from there.
        tagged: String,
    },
}

/// Checks that `row.gold_span` is `row.raw_text` with balanced category tags inserted and
/// nothing else, as `lamar tag` writes it: a model trained on anything else would learn to
/// rewrite the note or to write tags the decoder drops.
pub fn check_tagged_row(row: &super::rows::TrainingRow) -> Result<(), TaggedRowError> {
    let parsed = crate::codec::parse_tagged(&row.gold_span);
    let d = &parsed.diagnostics;
    if d.unknown_tags > 0 {
        return Err(TaggedRowError::UnknownTags(d.unknown_tags));
    }
    if !d.unclosed.is_empty() || d.unmatched_closes > 0 {
        return Err(TaggedRowError::Unbalanced {
            unclosed: d.unclosed.len(),
            unmatched: d.unmatched_closes,
        });
    }
    let (raw, plain): (Vec<char>, Vec<char>) = (
        row.raw_text.chars().collect(),
        parsed.plain.chars().collect(),
    );
    if raw == plain {
        return Ok(());
    }
    let at = raw.iter().zip(&plain).take_while(|(a, b)| a == b).count();
    let excerpt = |s: &[char]| s[at..].iter().take(20).collect::<String>();
    Err(TaggedRowError::TextDiffers {
        at,
        raw: excerpt(&raw),
        tagged: excerpt(&plain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::rows::TrainingRow;

    fn row(raw: &str, tagged: &str) -> TrainingRow {
        TrainingRow {
            file_id: "d".into(),
            raw_text: raw.into(),
            gold_span: tagged.into(),
            gold_offsets: vec![],
        }
    }

    #[test]
    fn a_tagged_copy_must_be_the_text_with_category_tags() {
        let raw = "Start lasix. Check K.";
        assert_eq!(
            check_tagged_row(&row(
                raw,
                "<drug_decision>Start lasix</drug_decision>. Check K."
            )),
            Ok(())
        );
        assert_eq!(
            check_tagged_row(&row(raw, "<drug>Start lasix</drug>. Check K.")),
            Err(TaggedRowError::UnknownTags(2))
        );
        assert_eq!(
            check_tagged_row(&row(raw, "<drug_decision>Start lasix. Check K.")),
            Err(TaggedRowError::Unbalanced {
                unclosed: 1,
                unmatched: 0
            })
        );
        let err = check_tagged_row(&row(
            raw,
            "Start <gather_info>lasix</gather_info>! Check K.",
        ))
        .unwrap_err();
        assert_eq!(
            err,
            TaggedRowError::TextDiffers {
                at: 11,
                raw: ". Check K.".into(),
                tagged: "! Check K.".into()
            }
        );
        assert!(err.to_string().contains("character 11"), "{err}");
    }
}
