//! Simulated models: clearly labelled noisy copies of the gold.

use super::SyntheticCorpus;
use crate::category::Category;
use crate::codec::encode;
use crate::codec::parse::match_tag;
use crate::formats::predictions::PredictionFile;
use crate::formats::rows::ModelOutputRow;
use crate::span::Span;
use crate::text::is_python_space;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How a simulated model departs from the gold. Rates are probabilities per gold span unless
/// stated otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseRates {
    /// A gold span is not predicted.
    pub miss: f64,
    /// A boundary moves by one word.
    pub shift: f64,
    /// The category is replaced by another.
    pub wrong_category: f64,
    /// The span is predicted twice.
    pub duplicate: f64,
    /// Expected spurious spans per gold span.
    pub spurious: f64,
    /// Per document: the tagged output has a typo, a changed case or collapsed whitespace.
    pub typo: f64,
    /// Per document: the tagged output lost the document's leading/trailing whitespace, as chat
    /// templates trim it.
    pub trim: f64,
}

impl Default for NoiseRates {
    fn default() -> Self {
        NoiseRates {
            miss: 0.2,
            shift: 0.15,
            wrong_category: 0.08,
            duplicate: 0.03,
            spurious: 0.12,
            typo: 0.3,
            trim: 0.5,
        }
    }
}

/// One simulated model's output on a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedModel {
    /// `model_K`.
    pub name: String,
    /// The noise it was generated with.
    pub rates: NoiseRates,
    /// The spans it "predicted", per document (the ground truth of the simulation).
    pub predictions: Vec<PredictionFile>,
    /// The tagged text it "generated", per document, to be decoded like a real model's.
    pub outputs: Vec<ModelOutputRow>,
}

/// Word boundaries of a text: starts and ends (code points) of maximal non-space runs.
fn words(chars: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in chars.iter().enumerate() {
        match (is_python_space(c), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, chars.len()));
    }
    out
}

/// Simulates model number `model` (0-based) on `corpus`.
pub fn simulate(
    corpus: &SyntheticCorpus,
    model: usize,
    rates: &NoiseRates,
    seed: u64,
) -> SimulatedModel {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (model as u64 + 1));
    let mut predictions = Vec::with_capacity(corpus.documents.len());
    let mut outputs = Vec::with_capacity(corpus.documents.len());
    for doc in &corpus.documents {
        let chars: Vec<char> = doc.text.chars().collect();
        let words = words(&chars);
        let mut spans = Vec::with_capacity(doc.gold.len() + 4);
        for &gold in &doc.gold {
            if rng.random_bool(rates.miss) {
                continue;
            }
            let mut span = gold;
            if rng.random_bool(rates.shift) {
                span = shift_one_boundary(span, &words, &mut rng);
            }
            if rng.random_bool(rates.wrong_category) {
                let others: Vec<Category> = Category::ALL
                    .into_iter()
                    .filter(|c| *c != span.category)
                    .collect();
                span.category = *others.choose(&mut rng).unwrap_or(&span.category);
            }
            spans.push(span);
            if rng.random_bool(rates.duplicate) {
                spans.push(span);
            }
        }
        let spurious = (doc.gold.len() as f64 * rates.spurious).round() as usize;
        for _ in 0..spurious {
            if words.is_empty() {
                break;
            }
            let first = rng.random_range(0..words.len());
            let last = (first + rng.random_range(0..6)).min(words.len() - 1);
            let category = *Category::ALL
                .choose(&mut rng)
                .unwrap_or(&Category::DefiningProblem);
            spans.push(Span::new(words[first].0, words[last].1, category));
        }
        let mut tagged = encode(&doc.text, &spans).expect("simulated spans lie inside the text");
        if rng.random_bool(rates.trim) {
            tagged = tagged.trim_matches(is_python_space).to_string();
        }
        if rng.random_bool(rates.typo) {
            corrupt(&mut tagged, &mut rng);
        }
        spans.sort_by_key(|s| (s.start, s.end));
        predictions.push(PredictionFile::from_spans(doc.id.clone(), &spans));
        outputs.push(ModelOutputRow {
            file_id: doc.id.clone(),
            predicted: tagged,
        });
    }
    SimulatedModel {
        name: format!("model_{model}"),
        rates: *rates,
        predictions,
        outputs,
    }
}

/// Moves the start or the end of a span to the neighbouring word boundary.
fn shift_one_boundary(span: Span, words: &[(usize, usize)], rng: &mut ChaCha8Rng) -> Span {
    let Some(first) = words.iter().position(|w| w.1 > span.start) else {
        return span;
    };
    let last = words.iter().rposition(|w| w.0 < span.end).unwrap_or(first);
    let (mut start, mut end) = (span.start, span.end);
    match rng.random_range(0..4) {
        0 if first > 0 => start = words[first - 1].0,
        1 if first < last => start = words[first + 1].0,
        2 if last + 1 < words.len() => end = words[last + 1].1,
        3 if last > first => end = words[last - 1].1,
        _ => {}
    }
    if start < end {
        Span::new(start, end, span.category)
    } else {
        span
    }
}

/// Changes the text (never a tag) of a tagged output the way a generative model slips: a letter
/// substituted, a word's case changed, or a double space collapsed.
fn corrupt(tagged: &mut String, rng: &mut ChaCha8Rng) {
    let mut letters = Vec::new();
    let mut rest = tagged.as_str();
    let mut at = 0;
    while let Some(c) = rest.chars().next() {
        let step = match match_tag(rest) {
            Some(tag) => tag.byte_len,
            None => {
                if c.is_ascii_alphabetic() {
                    letters.push(at);
                }
                c.len_utf8()
            }
        };
        at += step;
        rest = &rest[step..];
    }
    let Some(&pos) = letters.choose(rng) else {
        return;
    };
    let old = tagged.as_bytes()[pos];
    let new = match rng.random_range(0..3) {
        0 => {
            let c = b'a' + rng.random_range(0..26u8);
            if c == old.to_ascii_lowercase() {
                b'x'
            } else {
                c
            }
        }
        _ => {
            if old.is_ascii_lowercase() {
                old.to_ascii_uppercase()
            } else {
                old.to_ascii_lowercase()
            }
        }
    };
    tagged.replace_range(pos..pos + 1, std::str::from_utf8(&[new]).unwrap_or("x"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeOptions, decode};
    use crate::synth::{SynthConfig, generate};

    #[test]
    fn simulated_models_differ_from_gold_and_each_other() {
        let corpus = generate(&SynthConfig { docs: 10, seed: 4 });
        let a = simulate(&corpus, 0, &NoiseRates::default(), 4);
        let b = simulate(&corpus, 1, &NoiseRates::default(), 4);
        assert_eq!(a, simulate(&corpus, 0, &NoiseRates::default(), 4));
        assert_ne!(a.predictions, b.predictions);
        let gold_total: usize = corpus.documents.iter().map(|d| d.gold.len()).sum();
        let pred_total: usize = a.predictions.iter().map(|p| p.predictions.len()).sum();
        assert!(pred_total > gold_total / 2 && pred_total < gold_total * 2);
    }

    #[test]
    fn noiseless_outputs_decode_to_the_predictions() {
        let corpus = generate(&SynthConfig { docs: 8, seed: 5 });
        let exact = NoiseRates {
            typo: 0.0,
            ..NoiseRates::default()
        };
        let model = simulate(&corpus, 0, &exact, 5);
        for ((doc, pred), out) in corpus
            .documents
            .iter()
            .zip(&model.predictions)
            .zip(&model.outputs)
        {
            let decoded = decode(&out.predicted, &doc.text, &DecodeOptions::default());
            let (want, _) = pred.spans(None);
            let mut want = crate::codec::canonicalize(&want);
            let mut got = decoded.plain_spans();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{}", doc.id);
        }
    }
}
