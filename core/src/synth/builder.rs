//! Incremental construction of a synthetic note: text plus the gold spans written into it.

use super::vocab;
use crate::category::Category;
use crate::span::Span;
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// Text under construction, with offsets counted in code points as it grows.
pub(super) struct DocBuilder {
    text: String,
    len: usize,
    gold: Vec<Span>,
    out_of_scope: Vec<(usize, usize, String)>,
}

/// Gold label of an out-of-scope template mark.
fn out_of_scope_label(mark: u32) -> String {
    match mark {
        10 => "Category 10: Legal and insurance related".to_string(),
        11 => "Category 11: Other".to_string(),
        _ => "TBD".to_string(),
    }
}

impl DocBuilder {
    pub(super) fn new() -> DocBuilder {
        DocBuilder {
            text: String::new(),
            len: 0,
            gold: Vec::new(),
            out_of_scope: Vec::new(),
        }
    }

    /// Appends literal text.
    pub(super) fn text(&mut self, s: &str) {
        self.text.push_str(s);
        self.len += s.chars().count();
    }

    /// A random entry of a slot's word list (not written).
    pub(super) fn fill(&self, rng: &mut ChaCha8Rng, slot: &str) -> String {
        vocab::slot(slot)
            .and_then(|values| values.choose(rng))
            .map_or_else(|| format!("{{{slot}}}"), |v| v.to_string())
    }

    /// Expands a template (see [`vocab`] for its markup) and records its marks as gold.
    pub(super) fn template(&mut self, rng: &mut ChaCha8Rng, template: &str) {
        let mut open: Vec<(u32, usize)> = Vec::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(end) = rest.find('>')
            {
                let inner = &rest[1..end];
                let (closing, digits) = match inner.strip_prefix('/') {
                    Some(d) => (true, d),
                    None => (false, inner),
                };
                if let Ok(mark) = digits.parse::<u32>() {
                    rest = &rest[end + 1..];
                    if !closing {
                        open.push((mark, self.len));
                    } else if let Some(at) = open.iter().rposition(|(m, _)| *m == mark) {
                        let (_, start) = open.remove(at);
                        self.record(mark, start, self.len);
                    }
                    continue;
                }
            }
            if c == '{'
                && let Some(end) = rest.find('}')
            {
                let value = self.fill(rng, &rest[1..end]);
                self.text(&value);
                rest = &rest[end + 1..];
                continue;
            }
            self.text(&rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
        // An occasional doubled space inside a sentence, outside any mark.
        if open.is_empty() && rng.random_bool(0.02) {
            self.text(" ");
        }
    }

    fn record(&mut self, mark: u32, start: usize, end: usize) {
        if start >= end {
            return;
        }
        match Category::from_id(i64::from(mark)) {
            Some(c) => self.gold.push(Span::new(start, end, c)),
            None => self
                .out_of_scope
                .push((start, end, out_of_scope_label(mark))),
        }
    }

    /// The text, its in-scope gold spans and its out-of-scope annotations.
    pub(super) fn finish(self) -> (String, Vec<Span>, Vec<(usize, usize, String)>) {
        (self.text, self.gold, self.out_of_scope)
    }
}
