//! LAMAR's `reward_exact_match_f1` (GRPO reward 3; `utils/rewards.py` of
//! <https://github.com/biodatlab/medexact-lamar> at commit `2c0d9c5`, whose outputs are the goldens
//! of `tests/golden/exact_match_reward`) as a plugin.
//!
//! The completion's answer is the text after its last `</think>` (stripped), or nothing when it
//! opens a thinking block it never closes. From the answer and from the gold tagged text it
//! takes every `(tag, cleaned inner text)` of a properly nested pair of one of the nine decision
//! tags (per-tag stacks; unclosed opening tags ignored), where cleaning removes any tag-shaped
//! token, trims, drops leading and trailing characters other than ASCII letters, digits and `*`
//! (keeping a leading `[**` and trailing `**]` of MIMIC placeholders) and lower-cases. The
//! reward is the mean over tags of the set F1 of those strings: 1 when neither side has any,
//! 0 when only one side has some. Tags are averaged in name order (the reference uses Python's
//! set order, so the last bits of a mean can differ).

use lamar_plugin_sdk::reward::{Guest, Info, Sample};
use std::collections::{BTreeMap, BTreeSet};

/// The nine decision tags.
const TAGS: [&str; 9] = [
    "contact_related",
    "gather_info",
    "define_problem",
    "treatment_goal",
    "drug_decision",
    "therapeutic_procedure",
    "evaluate_result",
    "defer_decision",
    "advice_and_precaution",
];

/// Python's `str.isspace` (Rust's White_Space plus the four information separators).
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `_get_text`: the answer part of a completion.
pub fn answer(completion: &str) -> &str {
    if let Some(at) = completion.rfind("</think>") {
        return py_strip(&completion[at + "</think>".len()..]);
    }
    if py_strip(completion).starts_with("<think>") {
        return "";
    }
    completion
}

/// Removes every `</?[a-zA-Z_]+>` token.
fn remove_tag_tokens(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_from = usize::from(after.starts_with('/'));
        let name_len = after[name_from..]
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || *b == b'_')
            .count();
        let close = name_from + name_len;
        if name_len > 0 && after[close..].starts_with('>') {
            rest = &after[close + 1..];
        } else {
            out.push('<');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn kept_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '*'
}

/// `clean`: the comparable form of a span's inner text.
pub fn clean(inner: &str) -> String {
    let without_tags = remove_tag_tokens(inner);
    let x = py_strip(&without_tags);
    if x.is_empty() {
        return String::new();
    }
    let prefix = if x.starts_with("[**") { "[**" } else { "" };
    let x = format!(
        "{prefix}{}",
        x[prefix.len()..].trim_start_matches(|c| !kept_char(c))
    );
    let suffix = if x.ends_with("**]") { "**]" } else { "" };
    let body = x[..x.len() - suffix.len()].trim_end_matches(|c| !kept_char(c));
    format!("{body}{suffix}").to_lowercase()
}

/// `_extract_clean_strings_with_tags`: `(tag, cleaned text)` of every closed tag pair.
pub fn tagged_strings(text: &str) -> Vec<(&'static str, String)> {
    let mut open: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(lt) = text[i..].find('<').map(|k| i + k) {
        let Some(gt) = text[lt..].find('>').map(|k| lt + k) else {
            break;
        };
        let content = &text[lt + 1..gt];
        let (close, name) = match content.strip_prefix('/') {
            Some(name) => (true, name),
            None => (false, content),
        };
        match TAGS.iter().find(|t| **t == name) {
            Some(tag) => {
                let stack = open.entry(tag).or_default();
                if !close {
                    stack.push(gt + 1);
                } else if let Some(start) = stack.pop() {
                    let c = clean(&text[start..lt]);
                    if !c.is_empty() {
                        out.push((*tag, c));
                    }
                }
                i = gt + 1;
            }
            // Not a decision tag: move on by one character, as the reference does.
            None => i = lt + 1,
        }
    }
    out
}

/// Set F1 of the tagged strings, averaged over tags.
pub fn exact_match_f1(prediction: &str, gold: &str) -> f64 {
    let (p, g) = (tagged_strings(prediction), tagged_strings(gold));
    if p.is_empty() && g.is_empty() {
        return 1.0;
    }
    if p.is_empty() || g.is_empty() {
        return 0.0;
    }
    let by_tag = |pairs: Vec<(&'static str, String)>| {
        let mut m: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for (t, s) in pairs {
            m.entry(t).or_default().insert(s);
        }
        m
    };
    let (p, g) = (by_tag(p), by_tag(g));
    let tags: BTreeSet<&str> = p.keys().chain(g.keys()).copied().collect();
    let empty = BTreeSet::new();
    let mut total = 0.0;
    for tag in &tags {
        let (ps, gs) = (p.get(tag).unwrap_or(&empty), g.get(tag).unwrap_or(&empty));
        total += if ps.is_empty() || gs.is_empty() {
            0.0
        } else {
            let tp = ps.intersection(gs).count() as f64;
            let (precision, recall) = (tp / ps.len() as f64, tp / gs.len() as f64);
            if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            }
        };
    }
    total / tags.len() as f64
}

struct ExactMatchReward;

impl Guest for ExactMatchReward {
    fn info() -> Info {
        Info {
            name: "exact-match-f1".into(),
            version: "1.0.0".into(),
            description: "LAMAR's GRPO reward_exact_match_f1: per-tag set F1 of the cleaned \
                          tagged strings, averaged over tags."
                .into(),
        }
    }

    fn reward(samples: Vec<Sample>) -> Result<Vec<f64>, String> {
        Ok(samples
            .iter()
            .map(|s| exact_match_f1(answer(&s.completion), &s.gold))
            .collect())
    }
}

lamar_plugin_sdk::reward::export_reward!(ExactMatchReward);
