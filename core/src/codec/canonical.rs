//! What inline tags can express.
//!
//! Tags carry no identity: `<e>a<e>b</e>c</e>` pairs each closing tag with the nearest open tag
//! of its name. Two spans of the **same category that cross** (`[0,10)` and `[5,15)`) therefore
//! encode to the same text as the nested pair `[0,15)` and `[5,10)`, and decode as the latter.
//! Every other combination (nesting, crossing across categories, adjacency, duplicates) survives
//! a round trip exactly. [`canonicalize`] gives the span set a round trip returns.

use crate::span::Span;

fn crosses(a: &Span, b: &Span) -> bool {
    a.category == b.category && a.start < b.start && b.start < a.end && a.end < b.end
}

/// Replaces every same-category crossing pair `[a1,a2)`, `[b1,b2)` (`a1 < b1 < a2 < b2`) by the
/// nested pair `[a1,b2)`, `[b1,a2)` until none is left: the spans that
/// `decode(encode(text, spans), text)` returns, in the same order otherwise.
pub fn canonicalize(spans: &[Span]) -> Vec<Span> {
    let mut out = spans.to_vec();
    // Each swap strictly increases the sum of squared lengths, so this terminates.
    loop {
        let mut changed = false;
        for i in 0..out.len() {
            for j in 0..out.len() {
                let (a, b) = (out[i], out[j]);
                if crosses(&a, &b) {
                    out[i] = Span::new(a.start, b.end, a.category);
                    out[j] = Span::new(b.start, a.end, a.category);
                    changed = true;
                }
            }
        }
        if !changed {
            return out;
        }
    }
}

/// Number of same-category crossing pairs, i.e. of pairs a round trip through tags will nest.
pub fn same_category_crossings(spans: &[Span]) -> usize {
    let mut n = 0;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if crosses(a, b) || crosses(b, a) {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    #[test]
    fn crossing_pairs_of_one_category_nest() {
        let spans = [
            Span::new(0, 10, Drug),
            Span::new(5, 15, Drug),
            Span::new(5, 15, Deferment),
        ];
        assert_eq!(same_category_crossings(&spans), 1);
        assert_eq!(
            canonicalize(&spans),
            vec![
                Span::new(0, 15, Drug),
                Span::new(5, 10, Drug),
                Span::new(5, 15, Deferment)
            ]
        );
    }
}
