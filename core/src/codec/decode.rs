//! Tagged model output + raw text → spans with raw-text offsets, and a report of what failed.
//!
//! Two ways to place a span, tried in this order:
//! 1. **Verbatim** (lamar's addition): when the model reproduced the document faithfully – its
//!    output with the category tags removed equals the raw text, or equals it once leading and
//!    trailing whitespace are set aside (chat templates trim the document) – the tags' positions
//!    *are* the offsets. This is exact even when the span's text occurs many times, when it is
//!    only whitespace, or when the document contains `<` or tag-like tokens such as `<br>`.
//! 2. Otherwise the reference's per-span cascade ([`super::align`]).
//!
//! Output spans are sorted by `(start, end)` (stable, in closing-tag order otherwise) and are not
//! de-duplicated, as in the reference.

use super::align::{AlignMethod, AlignParams, Alignment, DropReason, RawText, align_span};
use super::parse::{ParseDiagnostics, ParsedOutput, TaggedSpan, parse_tagged};
use crate::category::Category;
use crate::span::Span;
use crate::text::{CharIndex, is_python_space};
use serde::{Deserialize, Serialize};

/// Options of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Use tag positions directly when the output reproduces the document (default on). Off
    /// gives the reference's behaviour of aligning every span by its text.
    pub verbatim: bool,
    /// Thresholds of the alignment cascade.
    pub align: AlignParams,
}

impl DecodeOptions {
    /// The reference's behaviour exactly: no verbatim shortcut and the reference's quirks in the
    /// cascade (see [`AlignParams::reference_quirks`]).
    pub fn reference() -> DecodeOptions {
        DecodeOptions {
            verbatim: false,
            align: AlignParams {
                reference_quirks: true,
                ..AlignParams::default()
            },
        }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verbatim: true,
            align: AlignParams::default(),
        }
    }
}

/// A decoded span and how it was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlignedSpan {
    /// The span in raw-text offsets.
    pub span: Span,
    /// Which step placed it.
    pub method: AlignMethod,
}

/// A span the model marked that could not be placed in the raw text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedSpan {
    /// Category of the tag.
    pub category: Category,
    /// Why it was dropped.
    pub reason: DropReason,
    /// The text the model marked.
    pub text: String,
    /// For a model typo, the raw text it most resembles (as the reference reports it).
    pub closest: Option<String>,
}

/// Everything [`decode`] learned from one model output.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Placed spans, sorted by `(start, end)`.
    pub spans: Vec<AlignedSpan>,
    /// Spans that could not be placed, in closing-tag order.
    pub dropped: Vec<DroppedSpan>,
    /// Malformed markup in the output.
    pub diagnostics: ParseDiagnostics,
}

impl Decoded {
    /// The placed spans without their methods.
    pub fn plain_spans(&self) -> Vec<Span> {
        self.spans.iter().map(|a| a.span).collect()
    }
}

/// Maps spans of the output's verbatim text to the raw text, when the two agree.
struct VerbatimMap {
    /// Part of the verbatim text that equals a part of the raw text: `[lo, hi)`.
    lo: usize,
    hi: usize,
    /// Raw offset of verbatim offset `lo`.
    raw_lo: usize,
}

impl VerbatimMap {
    fn build(parsed: &ParsedOutput, raw: &str) -> Option<VerbatimMap> {
        let verbatim = parsed.verbatim.as_str();
        if verbatim == raw {
            let n = raw.chars().count();
            return Some(VerbatimMap {
                lo: 0,
                hi: n,
                raw_lo: 0,
            });
        }
        let (v_lead, v_core) = trim_python(verbatim);
        let (r_lead, r_core) = trim_python(raw);
        (!v_core.is_empty() && v_core == r_core).then(|| VerbatimMap {
            lo: v_lead,
            hi: v_lead + v_core.chars().count(),
            raw_lo: r_lead,
        })
    }

    fn map(&self, span: &TaggedSpan) -> Option<(usize, usize)> {
        (span.verbatim_start >= self.lo && span.verbatim_end <= self.hi).then(|| {
            (
                span.verbatim_start - self.lo + self.raw_lo,
                span.verbatim_end - self.lo + self.raw_lo,
            )
        })
    }
}

/// Python's `strip()`: the number of leading whitespace code points and the stripped text.
fn trim_python(text: &str) -> (usize, &str) {
    let trimmed_start = text.trim_start_matches(is_python_space);
    let lead = text[..text.len() - trimmed_start.len()].chars().count();
    (lead, trimmed_start.trim_end_matches(is_python_space))
}

/// The text the reference's `--keep_decision` writes for a span: the span widened to whole words
/// (start moved left while the previous code point is not whitespace, end moved right while the
/// next one is not).
pub fn decision_text<'a>(raw: &CharIndex<'a>, span: Span) -> &'a str {
    let not_space = |i: usize| raw.char_at(i).is_some_and(|c| !is_python_space(c));
    let mut start = span.start.min(raw.len());
    while start > 0 && not_space(start - 1) {
        start -= 1;
    }
    let mut end = span.end.min(raw.len()).max(start);
    while end < raw.len() && not_space(end) {
        end += 1;
    }
    raw.slice(start, end)
}

/// Decodes a model's tagged output against the raw document text. Never panics.
pub fn decode(tagged: &str, raw: &str, options: &DecodeOptions) -> Decoded {
    let parsed = parse_tagged(tagged);
    let raw_text = RawText::new(raw);
    let verbatim = if options.verbatim {
        VerbatimMap::build(&parsed, raw)
    } else {
        None
    };
    let mut decoded = Decoded {
        spans: Vec::with_capacity(parsed.spans.len()),
        dropped: Vec::new(),
        diagnostics: parsed.diagnostics.clone(),
    };
    for tagged_span in &parsed.spans {
        let category = tagged_span.category;
        let drop = |reason, closest: Option<String>| DroppedSpan {
            category,
            reason,
            text: tagged_span.text.clone(),
            closest,
        };
        if tagged_span.verbatim_start == tagged_span.verbatim_end {
            decoded.dropped.push(drop(DropReason::EmptySpan, None));
            continue;
        }
        if let Some((start, end)) = verbatim.as_ref().and_then(|m| m.map(tagged_span)) {
            decoded.spans.push(AlignedSpan {
                span: Span::new(start, end, category),
                method: AlignMethod::Verbatim,
            });
            continue;
        }
        let ratio = tagged_span.position_ratio(parsed.plain_len);
        match align_span(&raw_text, &tagged_span.text, ratio, &options.align) {
            Alignment::Found { start, end, method } if start < end => {
                decoded.spans.push(AlignedSpan {
                    span: Span::new(start, end, category),
                    method,
                });
            }
            Alignment::Found { .. } => decoded.dropped.push(drop(DropReason::EmptySpan, None)),
            Alignment::Failed { reason, closest } => {
                let closest = closest.map(|(s, e)| raw_text.index().slice(s, e).to_string());
                decoded.dropped.push(drop(reason, closest));
            }
        }
    }
    decoded.spans.sort_by_key(|a| (a.span.start, a.span.end));
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;
    use crate::codec::encode;

    #[test]
    fn decision_text_widens_to_whole_words() {
        let raw = CharIndex::new("take aspirin daily.\nnow");
        assert_eq!(
            decision_text(&raw, Span::new(7, 14, Drug)),
            "aspirin daily."
        );
        assert_eq!(decision_text(&raw, Span::new(0, 2, Drug)), "take");
    }

    #[test]
    fn verbatim_output_keeps_exact_positions_of_repeated_text() {
        let raw = "pain. pain. pain.";
        let spans = vec![Span::new(6, 10, DefiningProblem)];
        let tagged = encode(raw, &spans).unwrap();
        let d = decode(&tagged, raw, &DecodeOptions::default());
        assert_eq!(d.plain_spans(), spans);
        assert_eq!(d.spans[0].method, AlignMethod::Verbatim);
    }

    #[test]
    fn trimmed_output_still_counts_as_verbatim() {
        let raw = "\n  Start aspirin.\n\n";
        let tagged = "Start <drug_decision>aspirin</drug_decision>.";
        let d = decode(tagged, raw, &DecodeOptions::default());
        assert_eq!(d.plain_spans(), vec![Span::new(9, 16, Drug)]);
        assert_eq!(d.spans[0].method, AlignMethod::Verbatim);
    }

    #[test]
    fn edited_output_falls_back_to_the_cascade() {
        let raw = "Start aspirin. Stop heparin.";
        let tagged = "Start <drug_decision>aspirin</drug_decision>. <drug_decision>Stop  heparin</drug_decision> <drug_decision>xyzzy plugh</drug_decision><define_problem></define_problem>";
        let d = decode(tagged, raw, &DecodeOptions::default());
        let got: Vec<_> = d.spans.iter().map(|a| (a.span, a.method)).collect();
        assert_eq!(
            got,
            vec![
                (Span::new(6, 13, Drug), AlignMethod::Exact),
                (Span::new(15, 27, Drug), AlignMethod::Normalized),
            ]
        );
        let reasons: Vec<_> = d.dropped.iter().map(|x| x.reason).collect();
        assert_eq!(reasons, vec![DropReason::NotInText, DropReason::EmptySpan]);
    }

    #[test]
    fn reference_mode_ignores_positions_of_verbatim_copies() {
        let raw = "pain. pain. pain.";
        let tagged = encode(raw, &[Span::new(6, 10, DefiningProblem)]).unwrap();
        let reference = DecodeOptions {
            verbatim: false,
            ..DecodeOptions::default()
        };
        let d = decode(&tagged, raw, &reference);
        assert_eq!(d.spans[0].method, AlignMethod::Exact);
        assert_eq!(d.plain_spans(), vec![Span::new(6, 10, DefiningProblem)]);
    }
}
