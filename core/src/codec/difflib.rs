//! A port of Python's `difflib.SequenceMatcher` (CPython 3.11) over code points, as far as
//! `ratio()` needs it.
//!
//! Parity details that matter:
//! * no junk function (`isjunk=None`), so the junk set is empty;
//! * the **autojunk** rule: when `len(b) >= 200`, every element occurring more than
//!   `len(b) // 100 + 1` times in `b` is "popular" and left out of the match index; matches found
//!   elsewhere are still extended over equal popular elements on both sides;
//! * `find_longest_match` keeps the first longest match (lowest `i`, then lowest `j`);
//! * `get_matching_blocks` processes sub-problems in LIFO order.
//!
//! The test `core/tests/difflib_parity.rs` compares `ratio()` bit for bit with CPython's difflib
//! on thousands of generated pairs.

use std::collections::HashMap;

/// Longest-common-block matcher between two code-point sequences `a` and `b`.
#[derive(Debug)]
pub struct SequenceMatcher<'a> {
    a: &'a [char],
    b: &'a [char],
    /// Positions of each non-popular element of `b`, ascending.
    b2j: HashMap<char, Vec<usize>>,
    /// Scratch rows of the longest-match dynamic programme, indexed by `j + 1`.
    prev: Vec<usize>,
    cur: Vec<usize>,
}

/// A matching block: `a[a_start..a_start+size] == b[b_start..b_start+size]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Start in `a`.
    pub a_start: usize,
    /// Start in `b`.
    pub b_start: usize,
    /// Length of the block.
    pub size: usize,
}

impl<'a> SequenceMatcher<'a> {
    /// Prepares to compare `a` against `b` (autojunk on, as in Python's default).
    pub fn new(a: &'a [char], b: &'a [char]) -> SequenceMatcher<'a> {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            b2j.entry(c).or_default().push(j);
        }
        let n = b.len();
        if n >= 200 {
            let ntest = n / 100 + 1;
            b2j.retain(|_, positions| positions.len() <= ntest);
        }
        SequenceMatcher {
            a,
            b,
            b2j,
            prev: vec![0; n + 1],
            cur: vec![0; n + 1],
        }
    }

    /// Python's `find_longest_match(alo, ahi, blo, bhi)`.
    pub fn find_longest_match(&mut self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> Match {
        let (a, b) = (self.a, self.b);
        let (mut best_i, mut best_j, mut best_size) = (alo, blo, 0usize);
        let mut prev_touched: Vec<usize> = Vec::new();
        let mut cur_touched: Vec<usize> = Vec::new();
        for (i, element) in a.iter().enumerate().take(ahi).skip(alo) {
            if let Some(positions) = self.b2j.get(element) {
                for &j in positions {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    // prev[j] holds the run length ending at (i-1, j-1).
                    let k = self.prev[j] + 1;
                    self.cur[j + 1] = k;
                    cur_touched.push(j + 1);
                    if k > best_size {
                        best_i = i + 1 - k;
                        best_j = j + 1 - k;
                        best_size = k;
                    }
                }
            }
            for &t in &prev_touched {
                self.prev[t] = 0;
            }
            prev_touched.clear();
            std::mem::swap(&mut self.prev, &mut self.cur);
            std::mem::swap(&mut prev_touched, &mut cur_touched);
        }
        for &t in &prev_touched {
            self.prev[t] = 0;
        }
        // Extend over equal elements on both ends: these are the popular elements the index left
        // out (the junk set is empty, so the second pair of loops in CPython never fires).
        while best_i > alo && best_j > blo && a[best_i - 1] == b[best_j - 1] {
            best_i -= 1;
            best_j -= 1;
            best_size += 1;
        }
        while best_i + best_size < ahi
            && best_j + best_size < bhi
            && a[best_i + best_size] == b[best_j + best_size]
        {
            best_size += 1;
        }
        Match {
            a_start: best_i,
            b_start: best_j,
            size: best_size,
        }
    }

    /// Python's `get_matching_blocks()` (without the trailing sentinel), sorted and with adjacent
    /// blocks collapsed.
    pub fn matching_blocks(&mut self) -> Vec<Match> {
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        let mut blocks = Vec::new();
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let m = self.find_longest_match(alo, ahi, blo, bhi);
            if m.size > 0 {
                blocks.push(m);
                if alo < m.a_start && blo < m.b_start {
                    queue.push((alo, m.a_start, blo, m.b_start));
                }
                if m.a_start + m.size < ahi && m.b_start + m.size < bhi {
                    queue.push((m.a_start + m.size, ahi, m.b_start + m.size, bhi));
                }
            }
        }
        blocks.sort();
        let mut collapsed: Vec<Match> = Vec::with_capacity(blocks.len());
        for m in blocks {
            match collapsed.last_mut() {
                Some(last)
                    if last.a_start + last.size == m.a_start
                        && last.b_start + last.size == m.b_start =>
                {
                    last.size += m.size;
                }
                _ => collapsed.push(m),
            }
        }
        collapsed
    }

    /// Python's `ratio()`: `2.0 * matches / (len(a) + len(b))`, or 1.0 when both are empty.
    pub fn ratio(&mut self) -> f64 {
        let total = self.a.len() + self.b.len();
        if total == 0 {
            return 1.0;
        }
        let matches: usize = self.matching_blocks().iter().map(|m| m.size).sum();
        2.0 * matches as f64 / total as f64
    }
}

/// `SequenceMatcher(None, a, b).ratio()` for two strings.
pub fn ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    SequenceMatcher::new(&a, &b).ratio()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        // From the difflib documentation: SequenceMatcher(None, "abcd", "bcde").ratio() == 0.75.
        assert_eq!(ratio("abcd", "bcde"), 0.75);
        assert_eq!(ratio("", ""), 1.0);
        assert_eq!(ratio("abc", ""), 0.0);
        assert_eq!(ratio("same", "same"), 1.0);
    }

    #[test]
    fn matching_blocks_follow_python() {
        // difflib docs: SequenceMatcher(None, "abxcd", "abcd").get_matching_blocks()
        // == [Match(a=0, b=0, size=2), Match(a=3, b=2, size=2), Match(a=5, b=4, size=0)]
        let a: Vec<char> = "abxcd".chars().collect();
        let b: Vec<char> = "abcd".chars().collect();
        let blocks = SequenceMatcher::new(&a, &b).matching_blocks();
        assert_eq!(
            blocks,
            vec![
                Match {
                    a_start: 0,
                    b_start: 0,
                    size: 2
                },
                Match {
                    a_start: 3,
                    b_start: 2,
                    size: 2
                }
            ]
        );
    }

    #[test]
    fn autojunk_drops_popular_characters_from_the_index() {
        // b has 200 'a's: 'a' is popular, so no block can start on it; the only anchor is 'b'.
        let b: String = "a".repeat(199) + "b";
        let a = "ab";
        // The match on 'b' is extended backwards over the equal popular 'a'.
        assert_eq!(ratio(a, &b), 2.0 * 2.0 / 202.0);
        // With no anchor at all, CPython extends the empty match at (0, 0) over the popular
        // elements: SequenceMatcher(None, "aa", "a" * 200).ratio() == 4 / 202.
        assert_eq!(ratio("aa", &"a".repeat(200)), 4.0 / 202.0);
    }
}
