//! Sentence BLEU as sacrebleu's `sentence_bleu` computes it with its defaults (one reference,
//! n-grams up to 4, exponential smoothing, effective order), over words already split.

use std::collections::HashMap;

const MAX_ORDER: usize = 4;

/// How many times each n-gram of `words` occurs.
fn ngram_counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if words.len() >= n {
        for gram in words.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// BLEU of `hypothesis` against one `reference`, on sacrebleu's 0–100 scale.
///
/// No matching n-gram of any order scores 0. Per order `n`: the clipped matches over the hypothesis's n-grams. An order with no
/// hypothesis n-gram ends the product (effective order); an order with none matching counts as
/// `100 / (2^k · total)` for the k-th such order (exponential smoothing). The brevity penalty is
/// `exp(1 − ref_len / hyp_len)` when the hypothesis is shorter (0 when it is empty).
pub fn sentence_bleu(hypothesis: &[String], reference: &[String]) -> f64 {
    let (hyp_len, ref_len) = (hypothesis.len() as f64, reference.len() as f64);
    let brevity = if hyp_len < ref_len {
        if hyp_len > 0.0 {
            (1.0 - ref_len / hyp_len).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let statistics: Vec<(usize, usize)> = (1..=MAX_ORDER)
        .map(|n| {
            let hyp = ngram_counts(hypothesis, n);
            let reference = ngram_counts(reference, n);
            let correct = hyp
                .iter()
                .map(|(gram, &c)| c.min(reference.get(gram).copied().unwrap_or(0)))
                .sum();
            (correct, hyp.values().sum())
        })
        .collect();
    if statistics.iter().all(|&(correct, _)| correct == 0) {
        return 0.0;
    }
    let mut log_sum = 0.0;
    let mut order = 0;
    let mut smoothing = 1.0;
    for (n, &(correct, total)) in (1..).zip(&statistics) {
        if total == 0 {
            break;
        }
        order = n;
        let precision = if correct == 0 {
            smoothing *= 2.0;
            100.0 / (smoothing * total as f64)
        } else {
            100.0 * correct as f64 / total as f64
        };
        log_sum += precision.ln();
    }
    if order == 0 {
        return 0.0;
    }
    brevity * (log_sum / order as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn identical_sentences_score_100() {
        let s = words("the patient was started on aspirin");
        assert!((sentence_bleu(&s, &s) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn short_hypotheses_use_their_effective_order_and_pay_brevity() {
        // Two words, both right: orders 1 and 2 are perfect, 3 and 4 have no n-grams.
        let score = sentence_bleu(&words("a b"), &words("a b c d"));
        assert!((score - 100.0 * (1.0f64 - 2.0).exp()).abs() < 1e-9);
        assert_eq!(sentence_bleu(&[], &words("a")), 0.0);
        assert_eq!(sentence_bleu(&words("x y z"), &words("a b c")), 0.0);
    }
}
