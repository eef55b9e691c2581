//! Step 6 of the alignment cascade: the reference's fuzzy search, the best `difflib` ratio over
//! sliding windows of 0.8, 1.0 and 1.2 times the span's length (a coarse pass at a stride of a
//! tenth of the span, then a refinement around the best window). Windows whose code-point
//! overlap with the span (an upper bound on difflib's ratio, as its `quick_ratio`) cannot beat
//! the best so far are skipped, which never changes the result.

use super::difflib::SequenceMatcher;
use std::collections::HashMap;

/// State of the reference's fuzzy search after its coarse pass.
#[derive(Clone)]
pub(super) struct FuzzyScan<'s> {
    span: &'s [char],
    raw: &'s [char],
    widths: [usize; 3],
    step: usize,
    best: f64,
    window: Option<(usize, usize)>,
}

impl<'s> FuzzyScan<'s> {
    pub(super) fn coarse(span: &'s [char], raw: &'s [char]) -> FuzzyScan<'s> {
        let l = span.len();
        let mut scan = FuzzyScan {
            span,
            raw,
            widths: [0; 3],
            step: 1,
            best: 0.0,
            window: None,
        };
        if l < 5 || raw.is_empty() {
            return scan;
        }
        let min_w = ((l as f64 * 0.8) as usize).max(1);
        let max_w = ((l as f64 * 1.2) as usize).min(raw.len());
        scan.widths = [l, min_w, max_w];
        scan.step = (l / 10).max(1);
        let mut overlap = WindowOverlap::new(span);
        for w in scan.widths {
            if w > raw.len() {
                continue;
            }
            overlap.clear_window();
            raw[..w].iter().for_each(|&c| overlap.add(c));
            let mut i = 0;
            loop {
                scan.consider(i, w, overlap.common);
                let next = i + scan.step;
                if next + w > raw.len() {
                    break;
                }
                raw[i..next].iter().for_each(|&c| overlap.remove(c));
                raw[i + w..next + w].iter().for_each(|&c| overlap.add(c));
                i = next;
            }
        }
        scan
    }

    /// Scores window `[i, i + w)` unless `overlap` (the multiset intersection of the span and the
    /// window, an upper bound on difflib's matches, as in its `quick_ratio`) shows it cannot beat
    /// the best so far. Skipping never changes the result: the ratio is at most the bound.
    fn consider(&mut self, i: usize, w: usize, overlap: usize) {
        let total = (self.span.len() + w) as f64;
        if 2.0 * overlap as f64 / total <= self.best {
            return;
        }
        let r = SequenceMatcher::new(self.span, &self.raw[i..i + w]).ratio();
        if r > self.best {
            self.best = r;
            self.window = Some((i, i + w));
        }
    }

    /// The reference's `fuzzy_match` result for `threshold`: refines a copy of the coarse state
    /// and returns the best window if it reaches the threshold.
    pub(super) fn result(&self, threshold: f64) -> Option<(usize, usize)> {
        let mut scan = self.clone();
        if let Some((start, _)) = scan.window
            && scan.best >= 0.9 * threshold
        {
            // The refinement range is fixed before refining, as in the reference.
            let lo = start.saturating_sub(scan.step);
            let hi = (start + scan.step).min(scan.raw.len());
            for w in scan.widths {
                if w > scan.raw.len() {
                    continue;
                }
                for i in lo..hi.min(scan.raw.len() - w + 1) {
                    let overlap = WindowOverlap::of(scan.span, &scan.raw[i..i + w]);
                    scan.consider(i, w, overlap);
                }
            }
        }
        if scan.best >= threshold {
            scan.window
        } else {
            None
        }
    }
}

/// Size of the multiset intersection between a span and a window of the raw text, kept up to
/// date as the window slides.
struct WindowOverlap {
    /// Occurrences of each code point in the span.
    need: HashMap<char, u32>,
    /// Occurrences of each code point in the window.
    have: HashMap<char, u32>,
    /// `Σ min(need[c], have[c])`.
    common: usize,
}

impl WindowOverlap {
    fn new(span: &[char]) -> WindowOverlap {
        let mut need = HashMap::new();
        for &c in span {
            *need.entry(c).or_insert(0) += 1;
        }
        WindowOverlap {
            need,
            have: HashMap::new(),
            common: 0,
        }
    }

    /// The intersection size of `span` and `window`, computed afresh.
    fn of(span: &[char], window: &[char]) -> usize {
        let mut overlap = WindowOverlap::new(span);
        window.iter().for_each(|&c| overlap.add(c));
        overlap.common
    }

    fn clear_window(&mut self) {
        self.have.clear();
        self.common = 0;
    }

    fn add(&mut self, c: char) {
        let have = self.have.entry(c).or_insert(0);
        if *have < self.need.get(&c).copied().unwrap_or(0) {
            self.common += 1;
        }
        *have += 1;
    }

    fn remove(&mut self, c: char) {
        if let Some(have) = self.have.get_mut(&c) {
            *have -= 1;
            if *have < self.need.get(&c).copied().unwrap_or(0) {
                self.common -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's `fuzzy_match`, transcribed loop for loop with no pruning: the oracle for
    /// the pruned search.
    fn naive_fuzzy(span: &[char], raw: &[char], threshold: f64) -> Option<(usize, usize)> {
        let l = span.len();
        if l < 5 || raw.is_empty() {
            return None;
        }
        let min_w = ((l as f64 * 0.8) as usize).max(1);
        let max_w = ((l as f64 * 1.2) as usize).min(raw.len());
        let step = (l / 10).max(1);
        let (mut best, mut bm) = (0.0, None);
        let visit = |i: usize, w: usize, best: &mut f64, bm: &mut Option<(usize, usize)>| {
            let r = SequenceMatcher::new(span, &raw[i..i + w]).ratio();
            if r > *best {
                *best = r;
                *bm = Some((i, i + w));
            }
        };
        for w in [l, min_w, max_w] {
            if w > raw.len() {
                continue;
            }
            for i in (0..raw.len() - w + 1).step_by(step) {
                visit(i, w, &mut best, &mut bm);
            }
        }
        if let Some((start, _)) = bm
            && best >= 0.9 * threshold
        {
            let lo = start.saturating_sub(step);
            let hi = (start + step).min(raw.len());
            for w in [l, min_w, max_w] {
                if w > raw.len() {
                    continue;
                }
                for i in lo..hi.min(raw.len() - w + 1) {
                    visit(i, w, &mut best, &mut bm);
                }
            }
        }
        if best >= threshold { bm } else { None }
    }

    #[test]
    fn pruned_fuzzy_search_equals_the_reference_loop() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
        let alphabet: Vec<char> = "abcde fgh.\nXé".chars().collect();
        for case in 0..400 {
            let raw: Vec<char> = (0..rng.random_range(0..300))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let span: Vec<char> = if case % 2 == 0 && raw.len() > 40 {
                let s = rng.random_range(0..raw.len() - 30);
                let mut v = raw[s..s + rng.random_range(5..30)].to_vec();
                let k = rng.random_range(0..v.len());
                v[k] = 'z';
                v
            } else {
                (0..rng.random_range(0..40))
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            };
            let scan = FuzzyScan::coarse(&span, &raw);
            for threshold in [0.85, 0.6, 0.3] {
                assert_eq!(
                    scan.result(threshold),
                    naive_fuzzy(&span, &raw, threshold),
                    "case {case}"
                );
            }
        }
    }
}
