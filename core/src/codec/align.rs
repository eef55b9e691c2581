//! Aligning one span's text to the raw document: the reference cascade (LAMAR's
//! `utils/pred_to_offset.py`, <https://github.com/biodatlab/medexact-lamar> at commit `2c0d9c5`).
//!
//! Steps, first success wins:
//! 1. **exact** – every occurrence of the span text (overlapping ones too);
//! 2. **normalized** – whitespace runs collapsed, first against the raw text, then against the
//!    whitespace-collapsed raw text mapped back to raw offsets;
//! 3. **case-insensitive** – Unicode lower-casing of both sides;
//! 4. **prefix** / 5. **suffix** – for spans over 20 code points, the first / last 50 code points,
//!    with the span's own length assumed;
//! 6. **fuzzy** – the best `difflib` ratio over sliding windows of 0.8, 1.0 and 1.2 times the
//!    span's length, at least 0.85.
//!
//! Where several occurrences qualify, the one whose relative position in the raw text is closest
//! to the span's relative position in the model output wins (first one on ties).
//!
//! Differences from the reference, all deliberate fixes:
//! * whitespace-normalised matches map back correctly when the raw text starts with whitespace
//!   (the reference is off by one there) and pick among all occurrences by position (the
//!   reference takes the first);
//! * case-insensitive matches map back through lower-casing that changes the length of a text
//!   (`İ`), where the reference would return shifted offsets;
//! * prefix and suffix matches also pick among occurrences by position (the reference takes the
//!   first).
//!
//! [`AlignParams::reference_quirks`] turns all three back into the reference's behaviour;
//! `core/tests/reference_codec.rs` checks that this mode equals LAMAR's `pred_to_offset` span
//! for span on golden outputs of the reference itself.

use super::fuzzy::FuzzyScan;
use crate::text::{
    CharIndex, LowerText, collapse_whitespace, is_blank, prefix_chars, suffix_chars,
};
use serde::{Deserialize, Serialize};
use std::cell::OnceCell;
use std::fmt;

/// How a span was placed in the raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignMethod {
    /// The model copied the whole document faithfully; offsets carried over directly.
    Verbatim,
    /// Exact occurrence of the span text.
    Exact,
    /// Occurrence after collapsing whitespace.
    Normalized,
    /// Occurrence ignoring case.
    CaseInsensitive,
    /// Located by its first 50 code points.
    Prefix,
    /// Located by its last 50 code points.
    Suffix,
    /// Located by fuzzy matching.
    Fuzzy,
}

/// Why a span could not be placed in the raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The span marks no text, or only whitespace.
    EmptySpan,
    /// Something similar (difflib ratio at least 0.6) exists, but not close enough.
    ModelTypo,
    /// The span's beginning occurs in the text, but not the span.
    Truncated,
    /// Nothing like the span occurs in the text.
    NotInText,
}

impl DropReason {
    /// The reference's name for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::EmptySpan => "empty_span",
            DropReason::ModelTypo => "model_typo",
            DropReason::Truncated => "truncated",
            DropReason::NotInText => "not_in_text",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AlignMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AlignMethod::Verbatim => "verbatim",
            AlignMethod::Exact => "exact",
            AlignMethod::Normalized => "normalized",
            AlignMethod::CaseInsensitive => "case_insensitive",
            AlignMethod::Prefix => "prefix",
            AlignMethod::Suffix => "suffix",
            AlignMethod::Fuzzy => "fuzzy",
        };
        f.write_str(name)
    }
}

/// Tunable thresholds of the cascade; the defaults are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlignParams {
    /// Minimum difflib ratio for a fuzzy match (0.85).
    pub fuzzy_threshold: f64,
    /// Minimum difflib ratio for a failure to count as a model typo (0.6).
    pub typo_threshold: f64,
    /// Reproduce the reference's quirks instead of lamar's fixes: whitespace-normalised and
    /// prefix/suffix matches take the first occurrence, the normalised mapping is off by one after
    /// leading whitespace, and case-insensitive offsets are not mapped back through
    /// length-changing lower-casing (they are only clamped to the text).
    pub reference_quirks: bool,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            fuzzy_threshold: 0.85,
            typo_threshold: 0.6,
            reference_quirks: false,
        }
    }
}

/// Raw text with the derived views the cascade needs, each built on first use and then shared by
/// every span of the document.
pub struct RawText<'a> {
    index: CharIndex<'a>,
    chars: OnceCell<Vec<char>>,
    lower: OnceCell<(LowerText, Vec<usize>)>,
    collapsed: OnceCell<Collapsed>,
}

/// The whitespace-collapsed raw text and, for each of its code points, the raw offset it came
/// from (a collapsed space maps to the first code point of its whitespace run).
struct Collapsed {
    text: String,
    origin: Vec<usize>,
}

impl<'a> RawText<'a> {
    /// Wraps a raw document text.
    pub fn new(text: &'a str) -> RawText<'a> {
        RawText {
            index: CharIndex::new(text),
            chars: OnceCell::new(),
            lower: OnceCell::new(),
            collapsed: OnceCell::new(),
        }
    }

    /// The code-point index of the raw text.
    pub fn index(&self) -> &CharIndex<'a> {
        &self.index
    }

    /// Length in code points.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True for an empty text.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn chars(&self) -> &[char] {
        self.chars
            .get_or_init(|| self.index.text().chars().collect())
    }

    /// Lower-cased text and, for each of its code points, its start byte.
    fn lower(&self) -> &(LowerText, Vec<usize>) {
        self.lower.get_or_init(|| {
            let lower = LowerText::new(self.index.text());
            let bytes = lower.text.char_indices().map(|(b, _)| b).collect();
            (lower, bytes)
        })
    }

    fn collapsed(&self) -> &Collapsed {
        self.collapsed.get_or_init(|| {
            let mut text = String::with_capacity(self.index.text().len());
            let mut origin = Vec::with_capacity(self.len());
            let mut pending_space: Option<usize> = None;
            for (i, c) in self.index.text().chars().enumerate() {
                if crate::text::is_python_space(c) {
                    if pending_space.is_none() && !origin.is_empty() {
                        pending_space = Some(i);
                    }
                } else {
                    if let Some(at) = pending_space.take() {
                        text.push(' ');
                        origin.push(at);
                    }
                    text.push(c);
                    origin.push(i);
                }
            }
            Collapsed { text, origin }
        })
    }

    /// The occurrence of `start` candidates closest to `ratio` (relative position), first on ties.
    fn closest(&self, starts: impl IntoIterator<Item = usize>, ratio: f64) -> Option<usize> {
        let denom = self.len().max(1) as f64;
        let mut best: Option<(f64, usize)> = None;
        for s in starts {
            let d = (s as f64 / denom - ratio).abs();
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, s));
            }
        }
        best.map(|(_, s)| s)
    }

    fn exact(&self, needle: &str, ratio: f64) -> Option<(usize, usize)> {
        let start = self.closest(self.index.find_all(needle), ratio)?;
        Some((start, start + needle.chars().count()))
    }

    fn in_collapsed(&self, needle: &str, ratio: f64) -> Option<(usize, usize)> {
        let collapsed = self.collapsed();
        let cindex = CharIndex::new(&collapsed.text);
        let n = needle.chars().count();
        let hits = cindex.find_all(needle);
        let start = self.closest(hits.iter().map(|&k| collapsed.origin[k]), ratio)?;
        let k = hits
            .into_iter()
            .find(|&k| collapsed.origin[k] == start)
            .expect("the chosen start comes from one of the hits");
        Some((start, collapsed.origin[k + n - 1] + 1))
    }

    /// Occurrences of `needle` (already lower-cased) in the lower-cased text, as raw ranges.
    fn lower_hits(&self, needle_lower: &str) -> Vec<(usize, usize)> {
        let (lower, bytes) = self.lower();
        let n = needle_lower.chars().count();
        let lindex = LowerIndex {
            bytes,
            text: &lower.text,
        };
        lindex
            .find_all(needle_lower)
            .into_iter()
            .map(|k| lower.original_range(k, k + n))
            .collect()
    }

    fn case_insensitive(&self, needle: &str, ratio: f64) -> Option<(usize, usize)> {
        let needle_lower = LowerText::new(needle).text;
        self.pick(self.lower_hits(&needle_lower), ratio)
    }

    /// Chooses among ranges by the start's relative position.
    fn pick(&self, ranges: Vec<(usize, usize)>, ratio: f64) -> Option<(usize, usize)> {
        let start = self.closest(ranges.iter().map(|r| r.0), ratio)?;
        ranges.into_iter().find(|r| r.0 == start)
    }

    /// The reference's step 2b: the first occurrence in the collapsed text, mapped back with
    /// its `_map_normalized_to_original` (off by one after leading whitespace) and
    /// `_find_end_in_original` (which walks without comparing characters).
    fn in_collapsed_reference(&self, needle: &str) -> Option<(usize, usize)> {
        let k = CharIndex::new(&self.collapsed().text)
            .find_all(needle)
            .into_iter()
            .next()?;
        let raw = self.chars();
        let is_space = |c: char| crate::text::is_python_space(c);
        let (mut norm, mut orig) = (0usize, 0usize);
        while norm < k && orig < raw.len() {
            if is_space(raw[orig]) {
                while orig < raw.len() && is_space(raw[orig]) {
                    orig += 1;
                }
            } else {
                orig += 1;
            }
            norm += 1;
        }
        if norm != k {
            return None;
        }
        let start = orig;
        let needle: Vec<char> = needle.chars().collect();
        let mut n = 0;
        while n < needle.len() && orig < raw.len() {
            if needle[n] == ' ' && is_space(raw[orig]) {
                while orig < raw.len() && is_space(raw[orig]) {
                    orig += 1;
                }
            } else {
                orig += 1;
            }
            n += 1;
        }
        Some((start, orig))
    }

    /// The reference's case-insensitive step: offsets of the lower-cased text used as they are.
    fn case_insensitive_reference(&self, needle: &str, ratio: f64) -> Option<(usize, usize)> {
        let needle = LowerText::new(needle).text;
        let (lower, bytes) = self.lower();
        let hits = LowerIndex {
            bytes,
            text: &lower.text,
        }
        .find_all(&needle);
        let start = self.closest(hits, ratio)?;
        Some(self.clamp(start, start + needle.chars().count()))
    }

    /// First occurrence of `needle` in the lower-cased text, in its own coordinates.
    fn first_lower_hit_reference(&self, needle: &str) -> Option<usize> {
        let needle = LowerText::new(needle).text;
        let (lower, bytes) = self.lower();
        LowerIndex {
            bytes,
            text: &lower.text,
        }
        .find_all(&needle)
        .into_iter()
        .next()
    }

    fn clamp(&self, start: usize, end: usize) -> (usize, usize) {
        let end = end.min(self.len());
        (start.min(end), end)
    }

    /// Runs the reference's `fuzzy_match(span, raw, threshold)` for several thresholds at once
    /// (the coarse scan does not depend on the threshold).
    fn fuzzy<'s>(&'s self, span: &'s [char]) -> FuzzyScan<'s> {
        FuzzyScan::coarse(span, self.chars())
    }
}

/// `find_all` over a lower-cased text whose char starts are precomputed.
struct LowerIndex<'b> {
    bytes: &'b [usize],
    text: &'b str,
}

impl LowerIndex<'_> {
    fn find_all(&self, needle: &str) -> Vec<usize> {
        let mut found = Vec::new();
        if needle.is_empty() {
            return found;
        }
        let step = needle.chars().next().map_or(1, char::len_utf8);
        let mut from = 0;
        while let Some(pos) = self.text[from..].find(needle) {
            let byte = from + pos;
            found.push(self.bytes.partition_point(|&b| b < byte));
            from = byte + step;
        }
        found
    }
}

/// Outcome of aligning one span.
#[derive(Debug, Clone, PartialEq)]
pub enum Alignment {
    /// Placed at `[start, end)` of the raw text.
    Found {
        /// Start in raw code points.
        start: usize,
        /// End in raw code points.
        end: usize,
        /// Which step placed it.
        method: AlignMethod,
    },
    /// Not placed.
    Failed {
        /// Why.
        reason: DropReason,
        /// For a model typo, the raw window it most resembles.
        closest: Option<(usize, usize)>,
    },
}

/// Aligns one span's text (`pos_ratio` = its relative start in the model output) to `raw`.
pub fn align_span(
    raw: &RawText<'_>,
    span: &str,
    pos_ratio: f64,
    params: &AlignParams,
) -> Alignment {
    let found = |(start, end): (usize, usize), method| Alignment::Found { start, end, method };
    if is_blank(span) {
        return Alignment::Failed {
            reason: DropReason::EmptySpan,
            closest: None,
        };
    }
    if let Some(r) = raw.exact(span, pos_ratio) {
        return found(r, AlignMethod::Exact);
    }
    let collapsed = collapse_whitespace(span);
    if collapsed != span
        && let Some(r) = raw.exact(&collapsed, pos_ratio)
    {
        return found(r, AlignMethod::Normalized);
    }
    let quirks = params.reference_quirks;
    let in_collapsed = if quirks {
        raw.in_collapsed_reference(&collapsed)
    } else {
        raw.in_collapsed(&collapsed, pos_ratio)
    };
    if let Some(r) = in_collapsed {
        return found(r, AlignMethod::Normalized);
    }
    let case_insensitive = if quirks {
        raw.case_insensitive_reference(span, pos_ratio)
    } else {
        raw.case_insensitive(span, pos_ratio)
    };
    if let Some(r) = case_insensitive {
        return found(r, AlignMethod::CaseInsensitive);
    }
    let span_chars: Vec<char> = span.chars().collect();
    let l = span_chars.len();
    if l > 20 && quirks {
        let prefix = prefix_chars(span, 50);
        let first = raw.index.find_all(prefix).into_iter().next();
        if let Some(start) = first.or_else(|| raw.first_lower_hit_reference(prefix)) {
            return found(raw.clamp(start, start + l), AlignMethod::Prefix);
        }
        let suffix = suffix_chars(span, 50);
        let suffix_len = suffix.chars().count();
        if let Some(idx) = raw.index.find_all(suffix).into_iter().next() {
            return found(
                (idx.saturating_sub(l - suffix_len), idx + suffix_len),
                AlignMethod::Suffix,
            );
        }
    } else if l > 20 {
        let prefix = prefix_chars(span, 50);
        let mut starts: Vec<usize> = raw.index.find_all(prefix);
        if starts.is_empty() {
            starts = raw
                .lower_hits(&LowerText::new(prefix).text)
                .into_iter()
                .map(|r| r.0)
                .collect();
        }
        if let Some(start) = raw.closest(starts, pos_ratio) {
            return found((start, (start + l).min(raw.len())), AlignMethod::Prefix);
        }
        let suffix = suffix_chars(span, 50);
        let suffix_len = suffix.chars().count();
        let ranges: Vec<(usize, usize)> = raw
            .index
            .find_all(suffix)
            .into_iter()
            .map(|idx| (idx.saturating_sub(l - suffix_len), idx + suffix_len))
            .collect();
        if let Some(r) = raw.pick(ranges, pos_ratio) {
            return found(r, AlignMethod::Suffix);
        }
    }
    let scan = raw.fuzzy(&span_chars);
    if let Some(r) = scan.result(params.fuzzy_threshold) {
        return found(r, AlignMethod::Fuzzy);
    }
    // classify_failure
    let typo = scan.result(params.typo_threshold);
    let reason = if l >= 5 && typo.is_some() {
        DropReason::ModelTypo
    } else if l > 10
        && !raw
            .index
            .find_all(prefix_chars(span, (l / 3).max(10)))
            .is_empty()
    {
        DropReason::Truncated
    } else {
        DropReason::NotInText
    };
    // As the reference reports it: the closest text only for model typos.
    let closest = if reason == DropReason::ModelTypo {
        typo
    } else {
        None
    };
    Alignment::Failed { reason, closest }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn align(raw: &str, span: &str, ratio: f64) -> Alignment {
        align_span(&RawText::new(raw), span, ratio, &AlignParams::default())
    }

    fn at(start: usize, end: usize, method: AlignMethod) -> Alignment {
        Alignment::Found { start, end, method }
    }

    #[test]
    fn exact_picks_the_occurrence_nearest_the_position_ratio() {
        let raw = "aspirin ... aspirin ... aspirin";
        assert_eq!(align(raw, "aspirin", 0.0), at(0, 7, AlignMethod::Exact));
        assert_eq!(align(raw, "aspirin", 0.4), at(12, 19, AlignMethod::Exact));
        assert_eq!(align(raw, "aspirin", 0.9), at(24, 31, AlignMethod::Exact));
    }

    #[test]
    fn normalized_matches_map_back_even_with_leading_whitespace() {
        // The reference returns 2 here (off by one): the leading run counts as a collapsed char.
        let raw = "\n\n a  b\tc";
        assert_eq!(align(raw, "a b c", 0.0), at(3, 9, AlignMethod::Normalized));
        assert_eq!(
            align("x a\n b y", "a  b", 0.0),
            at(2, 6, AlignMethod::Normalized)
        );
    }

    #[test]
    fn case_insensitive_maps_through_length_changing_lowercase() {
        let raw = "İİ Warfarin";
        assert_eq!(
            align(raw, "WARFARIN", 0.0),
            at(3, 11, AlignMethod::CaseInsensitive)
        );
    }

    #[test]
    fn prefix_and_suffix_assume_the_span_length() {
        let raw = "start the patient on a long course of antibiotics today, then stop";
        let span = "start the patient on a long course of antibiotics XX";
        assert_eq!(align(raw, span, 0.0), at(0, 52, AlignMethod::Prefix));
        let span = "YY the patient on a long course of antibiotics today";
        let suffix_only = align(raw, span, 0.0);
        assert_eq!(suffix_only, at(3, 55, AlignMethod::Suffix));
    }

    #[test]
    fn fuzzy_finds_typos_and_failures_are_classified() {
        let raw = "Pt was started on metoprolol tartrate 25 mg.";
        assert_eq!(
            align(raw, "metoprolo tartrate", 0.0),
            at(18, 36, AlignMethod::Fuzzy)
        );
        let failed = |r: Alignment| match r {
            Alignment::Failed { reason, .. } => reason,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(failed(align(raw, "  \n", 0.0)), DropReason::EmptySpan);
        assert_eq!(
            failed(align(raw, "zzzzzzzzzzzz", 0.0)),
            DropReason::NotInText
        );
        assert_eq!(failed(align(raw, "metXXrolYY", 0.0)), DropReason::ModelTypo);
        assert_eq!(
            failed(align(raw, "was started on ZZZZZZZZZZZZZZZZ QQQQ", 0.0)),
            DropReason::Truncated
        );
    }
}
