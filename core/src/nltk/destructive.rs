//! NLTK's `NLTKWordTokenizer` (`nltk/tokenize/destructive.py`), the word tokenizer behind
//! `word_tokenize`, for each supported [`NltkVersion`].
//!
//! Differences between releases:
//! * 3.8.1 has no `\s+ → " "` step before the contraction rules (`can't\n` stays whole) and does
//!   not split the dashes U+2012–U+2015;
//! * 3.9.2 adds the whitespace step; 3.9.4 also splits the dashes;
//! * 3.10.4 splits a leading `'` off a word (`'neg'` → `'`, `neg`, `'`) and runs every rule with
//!   the `regex` module's character classes ([`Flavor::Mrab`]).

use super::NltkVersion;
use super::pyre::{Flavor, compile, split_whitespace, sub};
use super::treebank::contractions;
use fancy_regex::Regex;
use std::sync::OnceLock;

/// Compiled rules of one release.
struct Rules {
    starting_quotes: Vec<(Regex, &'static str)>,
    punctuation: Vec<(Regex, &'static str)>,
    ending_quotes: Vec<(Regex, &'static str)>,
    contractions: Vec<Regex>,
}

fn compiled(list: &[(&str, &'static str)], flavor: Flavor) -> Vec<(Regex, &'static str)> {
    list.iter().map(|(p, r)| (compile(p, flavor), *r)).collect()
}

fn build(version: NltkVersion) -> Rules {
    let flavor = Flavor::of(version);
    let leading_quote: (&str, &'static str) = match version {
        NltkVersion::V3_10 => (
            r"(?<!\w)(')(?!(?i:re|ve|ll|m|t|s|d|n)(?!\w))(?=\w)",
            "${1} ",
        ),
        _ => (r"(')(?!(?i:re|ve|ll|m|t|s|d|n))(\w)(?!\w)", "${1} ${2}"),
    };
    let starting_quotes = compiled(
        &[
            ("([«“‘„]|[`]+)", " ${1} "),
            (r#"^""#, "``"),
            (r"(``)", " ${1} "),
            (r#"([ (\[{<])("|'{2})"#, "${1} `` "),
            leading_quote,
        ],
        flavor,
    );
    let mut punctuation: Vec<(&str, &'static str)> = vec![
        (r#"([^.])(\.)([\])}>"'»”’ ]*)\s*$"#, "${1} ${2} ${3} "),
        (r"([:,])([^\d])", " ${1} ${2}"),
        (r"([:,])$", " ${1} "),
        (r"\.{2,}", " ${0} "),
        (r"[;@#$%&]", " ${0} "),
    ];
    if matches!(version, NltkVersion::V3_9 | NltkVersion::V3_10) {
        punctuation.push((r"[\x{2012}-\x{2015}]", " ${0} "));
    }
    punctuation.extend_from_slice(&[
        (r#"([^.])(\.)([\])}>"']*)\s*$"#, "${1} ${2}${3} "),
        (r"[?!]", " ${0} "),
        (r"([^'])' ", "${1} ' "),
        (r"[*]", " ${0} "),
        // PARENS_BRACKETS and DOUBLE_DASHES follow in the same order as NLTK applies them.
        (r"[\]\[(){}<>]", " ${0} "),
        (r"--", " -- "),
    ]);
    let mut ending: Vec<(&str, &'static str)> =
        vec![("([»”’])", " ${1} "), (r"''", " '' "), (r#"""#, " '' ")];
    if version != NltkVersion::V3_8 {
        ending.push((r"\s+", " "));
    }
    ending.extend_from_slice(&[
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
    ]);
    Rules {
        starting_quotes,
        punctuation: compiled(&punctuation, flavor),
        ending_quotes: compiled(&ending, flavor),
        // NLTK compiles the contraction rules with the standard `re` module in every release.
        contractions: contractions(Flavor::Re),
    }
}

fn rules(version: NltkVersion) -> &'static Rules {
    static V3_8: OnceLock<Rules> = OnceLock::new();
    static V3_9_2: OnceLock<Rules> = OnceLock::new();
    static V3_9: OnceLock<Rules> = OnceLock::new();
    static V3_10: OnceLock<Rules> = OnceLock::new();
    let cell = match version {
        NltkVersion::V3_8 => &V3_8,
        NltkVersion::V3_9_2 => &V3_9_2,
        NltkVersion::V3_9 => &V3_9,
        NltkVersion::V3_10 => &V3_10,
    };
    cell.get_or_init(|| build(version))
}

/// `NLTKWordTokenizer().tokenize(text)` of the given release.
pub fn tokenize(text: &str, version: NltkVersion) -> Vec<String> {
    let r = rules(version);
    let mut text = text.to_string();
    for (re, rep) in r.starting_quotes.iter().chain(&r.punctuation) {
        text = sub(re, rep, &text);
    }
    text = format!(" {text} ");
    for (re, rep) in &r.ending_quotes {
        text = sub(re, rep, &text);
    }
    for re in &r.contractions {
        text = sub(re, " ${1} ${2} ", &text);
    }
    split_whitespace(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nltk_documented_example() {
        let s = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.";
        assert_eq!(
            tokenize(s, NltkVersion::V3_9),
            vec![
                "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in",
                "New", "York.", "Please", "buy", "me", "two", "of", "them.", "Thanks", "."
            ]
        );
    }

    #[test]
    fn versions_differ_where_nltk_changed() {
        let s = "Pt can't\ntake 'neg' x3 \u{2014} ok";
        assert_eq!(
            tokenize(s, NltkVersion::V3_8),
            vec!["Pt", "can't", "take", "'neg", "'", "x3", "\u{2014}", "ok"]
        );
        assert_eq!(
            tokenize(s, NltkVersion::V3_9_2),
            vec![
                "Pt", "ca", "n't", "take", "'neg", "'", "x3", "\u{2014}", "ok"
            ]
        );
        assert_eq!(
            tokenize(s, NltkVersion::V3_10),
            vec![
                "Pt", "ca", "n't", "take", "'", "neg", "'", "x3", "\u{2014}", "ok"
            ]
        );
    }
}
