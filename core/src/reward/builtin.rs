//! LAMAR's reward functions (`utils/rewards.py`, lamar-spec.md §6.4), natively: the three GRPO
//! used (fidelity, fast token F1, exact-match F1) and the variants it defined but did not use.
//! `tests/golden/rewards` holds the reference's own outputs for every one of them.

use super::bleu::sentence_bleu;
use super::extract::{Piece, answer, strip_decision_tags, tag_tokens, tagged_strings};
use super::{Reward, RewardError, Sample};
use crate::category::Category;
use crate::codec::difflib;
use crate::text::split_python_whitespace;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A built-in reward. Each scores one completion against the gold tagged text or the raw text;
/// scores lie in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinReward {
    /// `reward_fidelity`: how much of the note the completion reproduces. Both texts lose their
    /// decision tags and runs of whitespace; with `r` the `difflib` ratio of the two (autojunk
    /// on, the raw text as the second sequence), `r >= 0.99` scores 1, `r < 0.90` scores 0, and
    /// in between `(r − 0.90) / 0.09`. An empty raw text scores 1.
    Fidelity,
    /// `reward_fast_token_f1`: per tag, the multiset F1 of the words of all its cleaned spans;
    /// averaged over the tags either side has.
    TokenF1,
    /// `reward_fast_token_precision`: as [`TokenF1`](Self::TokenF1) with precision.
    TokenPrecision,
    /// `reward_fast_token_f05`: as [`TokenF1`](Self::TokenF1) with F0.5.
    TokenF05,
    /// `reward_exact_match_f1`: per tag, the set F1 of the cleaned span strings; averaged over
    /// the tags either side has.
    ExactMatchF1,
    /// `reward_exact_match_precision`: as [`ExactMatchF1`](Self::ExactMatchF1) with precision.
    ExactMatchPrecision,
    /// `reward_exact_match_f05`: as [`ExactMatchF1`](Self::ExactMatchF1) with F0.5.
    ExactMatchF05,
    /// `reward_bleu_exact_tags`: sentence BLEU-4 (sacrebleu's defaults: exponential smoothing,
    /// effective order) of the answer against the gold, tags spaced out as words, divided by
    /// 100. The reference asks sacrebleu for a tokenizer named `whitespace`, which does not
    /// exist (a `KeyError` on any non-empty pair: it was never run); lamar splits on whitespace,
    /// which is what the name means and what the spaced-out text needs.
    BleuTags,
}

/// Per-tag measure of the span rewards.
#[derive(Debug, Clone, Copy)]
enum Measure {
    F1,
    Precision,
    F05,
}

impl Measure {
    fn of(self, tp: f64, predicted: f64, gold: f64) -> f64 {
        let (p, r) = (tp / predicted, tp / gold);
        if p + r == 0.0 {
            return 0.0;
        }
        match self {
            Measure::F1 => 2.0 * p * r / (p + r),
            Measure::Precision => p,
            Measure::F05 => (1.25 * p * r) / (0.25 * p + r),
        }
    }
}

impl BuiltinReward {
    /// Every built-in reward; the first three are the ones LAMAR's GRPO trains with.
    pub const ALL: [BuiltinReward; 8] = [
        BuiltinReward::Fidelity,
        BuiltinReward::TokenF1,
        BuiltinReward::ExactMatchF1,
        BuiltinReward::TokenPrecision,
        BuiltinReward::ExactMatchPrecision,
        BuiltinReward::TokenF05,
        BuiltinReward::ExactMatchF05,
        BuiltinReward::BleuTags,
    ];

    /// The rewards LAMAR's GRPO trains with, in its order.
    pub const GRPO: [BuiltinReward; 3] = [
        BuiltinReward::Fidelity,
        BuiltinReward::TokenF1,
        BuiltinReward::ExactMatchF1,
    ];

    /// The name without the reference's `reward_` prefix, e.g. `fast_token_f1`.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinReward::Fidelity => "fidelity",
            BuiltinReward::TokenF1 => "fast_token_f1",
            BuiltinReward::TokenPrecision => "fast_token_precision",
            BuiltinReward::TokenF05 => "fast_token_f05",
            BuiltinReward::ExactMatchF1 => "exact_match_f1",
            BuiltinReward::ExactMatchPrecision => "exact_match_precision",
            BuiltinReward::ExactMatchF05 => "exact_match_f05",
            BuiltinReward::BleuTags => "bleu_exact_tags",
        }
    }

    /// The reward named `name`, with or without the reference's `reward_` prefix.
    pub fn from_name(name: &str) -> Option<BuiltinReward> {
        let name = name.strip_prefix("reward_").unwrap_or(name);
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the reward reads the raw text (otherwise it reads the gold tagged text).
    pub fn reads_raw_text(self) -> bool {
        self == BuiltinReward::Fidelity
    }

    /// The score of one completion (the answer after any thinking block is what counts).
    pub fn score_one(self, sample: &Sample<'_>) -> f64 {
        let predicted = answer(sample.completion);
        match self {
            BuiltinReward::Fidelity => fidelity(predicted, sample.raw_text),
            BuiltinReward::TokenF1 => token_reward(predicted, sample.gold, Measure::F1),
            BuiltinReward::TokenPrecision => {
                token_reward(predicted, sample.gold, Measure::Precision)
            }
            BuiltinReward::TokenF05 => token_reward(predicted, sample.gold, Measure::F05),
            BuiltinReward::ExactMatchF1 => exact_reward(predicted, sample.gold, Measure::F1),
            BuiltinReward::ExactMatchPrecision => {
                exact_reward(predicted, sample.gold, Measure::Precision)
            }
            BuiltinReward::ExactMatchF05 => exact_reward(predicted, sample.gold, Measure::F05),
            BuiltinReward::BleuTags => bleu_tags(predicted, sample.gold),
        }
    }
}

impl Reward for BuiltinReward {
    fn name(&self) -> &str {
        BuiltinReward::name(*self)
    }

    fn score(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardError> {
        Ok(samples.iter().map(|s| self.score_one(s)).collect())
    }
}

fn fidelity(predicted: &str, raw_text: &str) -> f64 {
    let original = strip_decision_tags(raw_text);
    if original.is_empty() {
        return 1.0;
    }
    let ratio = difflib::ratio(&strip_decision_tags(predicted), &original);
    if ratio >= 0.99 {
        1.0
    } else if ratio < 0.90 {
        0.0
    } else {
        (ratio - 0.90) / 0.09
    }
}

/// The mean over tags of `per_tag(predicted items, gold items)`, with the reference's rules for
/// empty sides: nothing on both sides scores 1, nothing on one side 0 (for the whole
/// completion and for each tag).
fn mean_over_tags<T>(
    predicted: BTreeMap<Category, T>,
    gold: BTreeMap<Category, T>,
    is_empty: impl Fn(&T) -> bool,
    per_tag: impl Fn(&T, &T) -> f64,
) -> f64 {
    let tags: BTreeSet<Category> = predicted.keys().chain(gold.keys()).copied().collect();
    let total: f64 = tags
        .iter()
        .map(|tag| match (predicted.get(tag), gold.get(tag)) {
            (Some(p), Some(g)) if !is_empty(p) && !is_empty(g) => per_tag(p, g),
            (p, g) if p.is_none_or(&is_empty) && g.is_none_or(&is_empty) => 1.0,
            _ => 0.0,
        })
        .sum();
    total / tags.len() as f64
}

fn token_reward(predicted: &str, gold: &str, measure: Measure) -> f64 {
    let (predicted, gold) = (tagged_strings(predicted), tagged_strings(gold));
    if predicted.is_empty() || gold.is_empty() {
        return f64::from(u8::from(predicted.is_empty() && gold.is_empty()));
    }
    let words = |pairs: Vec<(Category, String)>| {
        let mut by_tag: BTreeMap<Category, Vec<String>> = BTreeMap::new();
        for (tag, text) in pairs {
            by_tag
                .entry(tag)
                .or_default()
                .extend(split_python_whitespace(&text, None));
        }
        by_tag
    };
    mean_over_tags(words(predicted), words(gold), Vec::is_empty, |p, g| {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for w in g {
            *counts.entry(w).or_insert(0) += 1;
        }
        let mut tp = 0usize;
        for w in p {
            if let Some(c) = counts.get_mut(w.as_str())
                && *c > 0
            {
                *c -= 1;
                tp += 1;
            }
        }
        measure.of(tp as f64, p.len() as f64, g.len() as f64)
    })
}

fn exact_reward(predicted: &str, gold: &str, measure: Measure) -> f64 {
    let (predicted, gold) = (tagged_strings(predicted), tagged_strings(gold));
    if predicted.is_empty() || gold.is_empty() {
        return f64::from(u8::from(predicted.is_empty() && gold.is_empty()));
    }
    let sets = |pairs: Vec<(Category, String)>| {
        let mut by_tag: BTreeMap<Category, BTreeSet<String>> = BTreeMap::new();
        for (tag, text) in pairs {
            by_tag.entry(tag).or_default().insert(text);
        }
        by_tag
    };
    mean_over_tags(sets(predicted), sets(gold), BTreeSet::is_empty, |p, g| {
        let tp = p.intersection(g).count();
        measure.of(tp as f64, p.len() as f64, g.len() as f64)
    })
}

/// `_space_out_tags`: spaces around every `</?[a-zA-Z_]+>` token, whitespace collapsed.
fn space_out_tags(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 16);
    for piece in tag_tokens(text) {
        match piece {
            Piece::Text(text) => spaced.push_str(text),
            Piece::Tag { token, .. } => {
                spaced.push(' ');
                spaced.push_str(token);
                spaced.push(' ');
            }
        }
    }
    split_python_whitespace(&spaced, None)
}

fn bleu_tags(predicted: &str, gold: &str) -> f64 {
    if predicted.is_empty() || gold.is_empty() {
        return f64::from(u8::from(predicted.is_empty() && gold.is_empty()));
    }
    sentence_bleu(&space_out_tags(predicted), &space_out_tags(gold)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(reward: BuiltinReward, completion: &str, gold: &str, raw_text: &str) -> f64 {
        reward.score_one(&Sample {
            completion,
            gold,
            raw_text,
        })
    }

    #[test]
    fn names_round_trip_with_and_without_the_prefix() {
        for r in BuiltinReward::ALL {
            assert_eq!(BuiltinReward::from_name(r.name()), Some(r));
            assert_eq!(
                BuiltinReward::from_name(&format!("reward_{}", r.name())),
                Some(r)
            );
        }
        assert_eq!(BuiltinReward::from_name("fidelty"), None);
    }

    #[test]
    fn empty_sides_follow_the_reference_rules() {
        // BLEU's empty rules are about the texts, the others' about their tagged spans.
        let spans = |r: &BuiltinReward| !r.reads_raw_text() && *r != BuiltinReward::BleuTags;
        for r in BuiltinReward::ALL.into_iter().filter(spans) {
            assert_eq!(score(r, "no tags", "none either", ""), 1.0, "{r:?}");
            assert_eq!(
                score(r, "x", "<drug_decision>aspirin</drug_decision>", ""),
                0.0,
                "{r:?}"
            );
        }
        assert_eq!(score(BuiltinReward::Fidelity, "anything", "", " \n "), 1.0);
        assert_eq!(score(BuiltinReward::BleuTags, "", "", ""), 1.0);
        assert_eq!(score(BuiltinReward::BleuTags, "", "gold", ""), 0.0);
    }

    #[test]
    fn token_f1_counts_repeated_words_once_per_occurrence() {
        let gold = "<drug_decision>give aspirin aspirin</drug_decision>";
        let predicted = "<drug_decision>aspirin</drug_decision>";
        // tp 1, precision 1, recall 1/3 → F1 0.5.
        assert_eq!(score(BuiltinReward::TokenF1, predicted, gold, ""), 0.5);
        assert_eq!(
            score(BuiltinReward::TokenPrecision, predicted, gold, ""),
            1.0
        );
        let f05 = score(BuiltinReward::TokenF05, predicted, gold, "");
        assert!((f05 - 1.25 / 3.0 / (0.25 + 1.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn fidelity_is_linear_between_the_thresholds() {
        let raw = "a".repeat(50) + &"b".repeat(50);
        // 95 of 100 characters kept: ratio 2·95/195.
        let kept = "a".repeat(50) + &"b".repeat(45);
        let r = 2.0 * 95.0 / 195.0;
        let expected = (r - 0.90) / 0.09;
        assert!((score(BuiltinReward::Fidelity, &kept, "", &raw) - expected).abs() < 1e-12);
        assert_eq!(score(BuiltinReward::Fidelity, &raw, "", &raw), 1.0);
        assert_eq!(score(BuiltinReward::Fidelity, "zzz", "", &raw), 0.0);
    }

    #[test]
    fn tags_become_words_for_bleu() {
        assert_eq!(
            space_out_tags("a<drug_decision>b </drug_decision>c<x"),
            ["a", "<drug_decision>", "b", "</drug_decision>", "c<x"]
        );
        let gold = "<drug_decision>start aspirin today</drug_decision> then rest";
        assert!((score(BuiltinReward::BleuTags, gold, gold, "") - 1.0).abs() < 1e-12);
    }
}
