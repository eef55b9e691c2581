//! Short windows cut from whole-document training rows, for fast experiments and tests: LAMAR
//! itself trains and tags whole notes (no chunking), but a tiny model learns in minutes only
//! from a few lines at a time.
//!
//! A window is a run of whole lines (cut only just after a `\n`) of at most `max_chars` code
//! points, and never cuts a gold span: a cut point inside a span moves to the next line end
//! after it. A window keeps the spans that lie inside it, shifted to its own offsets, and its
//! tagged copy is written again from them, so it is exactly what `lamar tag` would write for a
//! document holding only that window. Windows of whitespace only and without spans are dropped.

use super::rows::{GoldOffset, TrainingRow};
use crate::codec::{encode, encoding_order};

/// Cuts `row` into windows of whole lines of at most `max_chars` code points (longer when one
/// line, or a span, is longer). Each window's `file_id` is `ID@START-END`, its code point range
/// in the document.
pub fn windows(row: &TrainingRow, max_chars: usize) -> Vec<TrainingRow> {
    let chars: Vec<char> = row.raw_text.chars().collect();
    let spans: Vec<_> = row
        .gold_offsets
        .iter()
        .filter_map(GoldOffset::span)
        .collect();
    let inside_a_span = |cut: usize| spans.iter().any(|s| s.start < cut && cut < s.end);
    // Cut points: just after each newline, and the end; none inside a span.
    let cuts: Vec<usize> = chars
        .iter()
        .enumerate()
        .filter(|&(_, c)| *c == '\n')
        .map(|(k, _)| k + 1)
        .chain(std::iter::once(chars.len()))
        .filter(|&cut| !inside_a_span(cut))
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let fitting = cuts
            .iter()
            .copied()
            .filter(|&c| c > start && c - start <= max_chars)
            .max();
        let end = fitting.unwrap_or_else(|| {
            cuts.iter()
                .copied()
                .find(|&c| c > start)
                .unwrap_or(chars.len())
        });
        let text: String = chars[start..end].iter().collect();
        let inner: Vec<_> = spans
            .iter()
            .filter(|s| s.start >= start && s.end <= end)
            .map(|s| crate::span::Span::new(s.start - start, s.end - start, s.category))
            .collect();
        if !text.trim().is_empty() || !inner.is_empty() {
            let ordered = encoding_order(&inner);
            let gold_span = encode(&text, &ordered).expect("spans lie inside their window");
            out.push(TrainingRow {
                file_id: format!("{}@{start}-{end}", row.file_id),
                raw_text: text,
                gold_span,
                gold_offsets: ordered.into_iter().map(GoldOffset::from).collect(),
            });
        }
        start = end;
    }
    out
}

/// The windows of a document to tag, `(id, text)`: whole lines of at most `max_chars` code
/// points (as [`windows`] cuts them, with no spans to respect), whitespace-only ones left out.
pub fn document_windows(file_id: &str, raw_text: &str, max_chars: usize) -> Vec<(String, String)> {
    let row = TrainingRow {
        file_id: file_id.to_string(),
        raw_text: raw_text.to_string(),
        gold_span: raw_text.to_string(),
        gold_offsets: Vec::new(),
    };
    windows(&row, max_chars)
        .into_iter()
        .map(|w| (w.file_id, w.raw_text))
        .collect()
}

/// The document and the code-point range of a window id `ID@START-END` (as [`windows`] names
/// them); `None` for an id of another form.
pub fn parse_window_id(id: &str) -> Option<(&str, usize, usize)> {
    let (doc, range) = id.rsplit_once('@')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (!doc.is_empty() && start <= end).then_some((doc, start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category;

    #[test]
    fn window_ids_parse_back_and_document_windows_cover_the_text() {
        assert_eq!(parse_window_id("1_2_3@10-42"), Some(("1_2_3", 10, 42)));
        assert_eq!(parse_window_id("a@b@0-4"), Some(("a@b", 0, 4)));
        for id in ["1_2_3", "x@1", "x@-1-2", "@0-1", "x@5-4"] {
            assert_eq!(parse_window_id(id), None, "{id}");
        }
        let text = "line one\n\n   \nline two is longer\nend";
        let windows = document_windows("d", text, 12);
        let chars: Vec<char> = text.chars().collect();
        let mut covered = 0;
        for (id, window) in &windows {
            let (doc, s, e) = parse_window_id(id).unwrap();
            assert_eq!(doc, "d");
            assert_eq!(window, &chars[s..e].iter().collect::<String>());
            assert!(s >= covered, "windows in order, not overlapping");
            assert!(
                chars[covered..s].iter().all(|c| c.is_whitespace()),
                "only blank text left out"
            );
            covered = e;
        }
        assert_eq!(covered, chars.len());
    }
    use crate::span::Span;
    use proptest::prelude::*;

    fn row(text: &str, spans: &[Span]) -> TrainingRow {
        let ordered = encoding_order(spans);
        TrainingRow {
            file_id: "d".into(),
            raw_text: text.into(),
            gold_span: encode(text, &ordered).unwrap(),
            gold_offsets: ordered.into_iter().map(GoldOffset::from).collect(),
        }
    }

    #[test]
    fn windows_are_whole_lines_and_never_cut_a_span() {
        let text = "ab\ncd\nef\ngh\n";
        // A span from "cd" into "ef" forces those two lines together.
        let r = row(text, &[Span::new(3, 7, Category::Drug)]);
        let w = windows(&r, 3);
        let texts: Vec<_> = w.iter().map(|w| w.raw_text.as_str()).collect();
        assert_eq!(texts, ["ab\n", "cd\nef\n", "gh\n"]);
        assert_eq!(w[1].file_id, "d@3-9");
        assert_eq!(w[1].gold_span, "<drug_decision>cd\ne</drug_decision>f\n");
        assert!(w[0].gold_offsets.is_empty() && w[2].gold_offsets.is_empty());
    }

    proptest! {
        /// The windows tile the text (less whitespace-only ones), and every span reappears in
        /// exactly one window at the same document offsets.
        #[test]
        fn windows_tile_the_text_and_keep_every_span(
            lines in proptest::collection::vec("[a-z é]{0,12}", 1..12),
            raw_spans in proptest::collection::vec((0usize..200, 1usize..30, 1u8..10), 0..6),
            max in 1usize..40,
        ) {
            let text = lines.join("\n");
            let n = text.chars().count();
            prop_assume!(n > 0);
            let spans: Vec<Span> = raw_spans
                .iter()
                .map(|&(s, l, c)| {
                    let s = s % n;
                    Span::new(s, (s + l).min(n).max(s + 1), Category::from_id(i64::from(c)).unwrap())
                })
                .collect();
            let r = row(&text, &spans);
            let w = windows(&r, max);
            let chars: Vec<char> = text.chars().collect();
            let mut found = Vec::new();
            for window in &w {
                let range = window.file_id.trim_start_matches("d@");
                let (a, b) = range.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                prop_assert_eq!(&chars[a..b].iter().collect::<String>(), &window.raw_text);
                prop_assert!(b == n || chars[b - 1] == '\n');
                for o in &window.gold_offsets {
                    found.push(Span::new(o.start_offset + a, o.end_offset + a,
                        Category::from_id(i64::from(o.category)).unwrap()));
                }
            }
            let mut expected = r.gold_offsets.iter().filter_map(GoldOffset::span).collect::<Vec<_>>();
            expected.sort();
            found.sort();
            prop_assert_eq!(found, expected);
        }
    }
}
