//! A whole file of model outputs decoded at once (what `lamar offsets` and the pipeline do):
//! every row's tagged text placed in its document's raw text with [`decode()`], totals of how
//! spans were placed and why others were dropped, and the dropped spans as CSV.

use super::decode::{DecodeOptions, DroppedSpan, decision_text, decode};
use crate::formats::FormatError;
use crate::formats::predictions::{PredictedSpan, PredictionFile};
use crate::formats::rows::ModelOutputRow;
use crate::text::{CharIndex, prefix_chars};
use std::collections::{BTreeMap, HashMap};

/// Totals over a decoded file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodeTally {
    /// Placed spans per alignment method.
    pub placed: BTreeMap<String, usize>,
    /// Dropped spans per reason.
    pub dropped: BTreeMap<String, usize>,
    /// Tags left open.
    pub unclosed: usize,
    /// Closing tags without an open tag.
    pub unmatched_closes: usize,
    /// Tag-shaped tokens that are not category tags.
    pub unknown_tags: usize,
}

impl DecodeTally {
    /// One line per non-zero count, for people.
    pub fn lines(&self) -> Vec<String> {
        let join = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let placed = if self.placed.is_empty() {
            "none".to_string()
        } else {
            join(&self.placed)
        };
        let mut out = vec![format!("placed: {placed}")];
        if !self.dropped.is_empty() {
            out.push(format!("dropped: {}", join(&self.dropped)));
        }
        if self.unclosed + self.unmatched_closes + self.unknown_tags > 0 {
            out.push(format!(
                "markup: {} unclosed tags, {} unmatched closing tags, {} unknown tags",
                self.unclosed, self.unmatched_closes, self.unknown_tags
            ));
        }
        out
    }
}

/// Everything decoding a file of model outputs produced.
#[derive(Debug, Clone)]
pub struct DecodedFile {
    /// One entry per input row, spans in the order [`decode()`] returns them.
    pub predictions: Vec<PredictionFile>,
    /// Spans that could not be placed, with their document ids.
    pub dropped: Vec<(String, DroppedSpan)>,
    /// Totals.
    pub tally: DecodeTally,
}

impl DecodedFile {
    /// Joins windows into their documents: each entry named `ID@START-END` (a window of
    /// document `ID`, as `lamar infer --window-chars` tags them) becomes part of `ID`'s entry,
    /// its spans shifted by `START`. Documents keep the order of their first entry, windows are
    /// taken in order of `START`; other entries are left as they are.
    pub fn join_windows(mut self) -> DecodedFile {
        use crate::formats::windows::parse_window_id;
        if !self
            .predictions
            .iter()
            .any(|p| parse_window_id(&p.file_name).is_some())
        {
            return self;
        }
        let mut order: Vec<String> = Vec::new();
        let mut parts: HashMap<String, Vec<(usize, Vec<PredictedSpan>)>> = HashMap::new();
        for file in self.predictions {
            let (doc, start) = match parse_window_id(&file.file_name) {
                Some((doc, start, _)) => (doc.to_string(), start),
                None => (file.file_name.clone(), 0),
            };
            let shifted = file
                .predictions
                .into_iter()
                .map(|mut p| {
                    p.start_offset += start as i64;
                    p.end_offset += start as i64;
                    p
                })
                .collect();
            if !parts.contains_key(&doc) {
                order.push(doc.clone());
            }
            parts.entry(doc).or_default().push((start, shifted));
        }
        self.predictions = order
            .into_iter()
            .map(|doc| {
                let mut windows = parts.remove(&doc).unwrap_or_default();
                windows.sort_by_key(|(start, _)| *start);
                PredictionFile {
                    file_name: doc,
                    predictions: windows.into_iter().flat_map(|(_, spans)| spans).collect(),
                }
            })
            .collect();
        self
    }
}

/// Decodes model outputs: `raw_text_of(file_id)` gives a document's raw text (read once per
/// document; for example [`read_raw_text_of`](crate::formats::raw_text::read_raw_text_of) over
/// a folder), `keep_decision` adds each span's text widened to whole words, and `on_row` is
/// called after each row (for a progress bar).
pub fn decode_outputs(
    rows: &[ModelOutputRow],
    mut raw_text_of: impl FnMut(&str) -> Result<String, FormatError>,
    options: &DecodeOptions,
    keep_decision: bool,
    mut on_row: impl FnMut(),
) -> Result<DecodedFile, FormatError> {
    let mut texts: HashMap<&str, String> = HashMap::new();
    let mut predictions = Vec::with_capacity(rows.len());
    let mut dropped = Vec::new();
    let mut tally = DecodeTally::default();
    for row in rows {
        if !texts.contains_key(row.file_id.as_str()) {
            texts.insert(&row.file_id, raw_text_of(&row.file_id)?);
        }
        let raw = &texts[row.file_id.as_str()];
        let decoded = decode(&row.predicted, raw, options);
        let index = CharIndex::new(raw);
        let spans = decoded
            .spans
            .iter()
            .map(|a| {
                *tally.placed.entry(a.method.to_string()).or_default() += 1;
                let mut p = PredictedSpan::from(a.span);
                if keep_decision {
                    p.decision = Some(decision_text(&index, a.span).to_string());
                }
                p
            })
            .collect();
        predictions.push(PredictionFile {
            file_name: row.file_id.clone(),
            predictions: spans,
        });
        tally.unclosed += decoded.diagnostics.unclosed.len();
        tally.unmatched_closes += decoded.diagnostics.unmatched_closes;
        tally.unknown_tags += decoded.diagnostics.unknown_tags;
        for d in decoded.dropped {
            *tally.dropped.entry(d.reason.to_string()).or_default() += 1;
            dropped.push((row.file_id.clone(), d));
        }
        on_row();
    }
    Ok(DecodedFile {
        predictions,
        dropped,
        tally,
    })
}

/// The dropped-spans CSV: `file_id, category, reason, span_text, closest` (texts cut to 80
/// characters), `\n`-terminated.
pub fn dropped_csv(dropped: &[(String, DroppedSpan)]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut write = |record: [&str; 5]| {
        writer
            .write_record(record)
            .expect("writing CSV into memory cannot fail");
    };
    write(["file_id", "category", "reason", "span_text", "closest"]);
    for (id, d) in dropped {
        let category = d.category.id().to_string();
        let closest = d
            .closest
            .as_deref()
            .map(|c| prefix_chars(c, 80))
            .unwrap_or("");
        write([
            id.as_str(),
            &category,
            d.reason.as_str(),
            prefix_chars(&d.text, 80),
            closest,
        ]);
    }
    writer
        .into_inner()
        .expect("flushing CSV into memory cannot fail")
}
