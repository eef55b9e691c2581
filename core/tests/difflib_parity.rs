//! Differential test: lamar's `SequenceMatcher::ratio` against CPython's difflib, bit for bit.
//!
//! Needs `python3` on PATH (CI installs it; every supported machine has it).

mod common;

use common::run_python;
use lamar_core::codec::difflib::ratio;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ALPHABETS: &[&[char]] = &[
    &['a', 'b'],
    &['a', 'b', 'c', ' '],
    &['a', 'e', 'i', 'o', 'u', 't', 'n', ' ', '.', '\n'],
    &['x', 'é', '中', '🙂', ' ', '\u{1f}', 'İ'],
];

fn random_string(rng: &mut ChaCha8Rng, alphabet: &[char], len: usize) -> String {
    (0..len).map(|_| *alphabet.choose(rng).unwrap()).collect()
}

/// Pairs that exercise short and long (autojunk, ≥ 200) sequences and near-duplicates.
fn cases() -> Vec<(String, String)> {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut out = Vec::new();
    for i in 0..3000 {
        let alphabet = ALPHABETS[i % ALPHABETS.len()];
        let la = rng.random_range(0..60);
        let lb = match i % 3 {
            0 => rng.random_range(0..60),
            1 => rng.random_range(190..260),
            _ => rng.random_range(300..700),
        };
        let a = random_string(&mut rng, alphabet, la);
        let mut b = random_string(&mut rng, alphabet, lb);
        if i % 4 == 0 && !a.is_empty() {
            // Plant a slightly edited copy of `a` inside `b`, as in fuzzy span matching.
            let at = b
                .char_indices()
                .nth(b.chars().count() / 2)
                .map_or(b.len(), |(k, _)| k);
            let mut planted: Vec<char> = a.chars().collect();
            let k = rng.random_range(0..planted.len());
            planted[k] = 'z';
            b.insert_str(at, &planted.into_iter().collect::<String>());
        }
        out.push((a, b));
    }
    out.push((
        "metoprolol tartrate".into(),
        "Pt was started on metoprolol tartrate 25 mg.".into(),
    ));
    out
}

#[test]
fn ratio_matches_cpython_difflib_bit_for_bit() {
    let cases = cases();
    let input = serde_json::to_string(&cases).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/difflib_ratio.py");
    let output = run_python("python3", script, input.as_bytes(), "python3 with difflib");
    let expected: Vec<f64> = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(expected.len(), cases.len());
    let mut long = 0;
    for ((a, b), want) in cases.iter().zip(expected) {
        let got = ratio(a, b);
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "ratio({a:?}, {b:?}): lamar {got}, python {want}"
        );
        long += usize::from(b.chars().count() >= 200);
    }
    assert!(long > 1500, "the autojunk path must be exercised");
}
