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
use super::pyre::{Flavor, Rule, collapse_spaces, split_whitespace};
use super::rules::{split_contractions, split_leading_quote_39, split_leading_quote_310};
use std::sync::OnceLock;

/// Compiled rules of one release, in NLTK's order.
struct Rules {
    version: NltkVersion,
    flavor: Flavor,
    /// `STARTING_QUOTES` without its last rule (the leading quote, see [`super::rules`]).
    starting_quotes: Vec<Rule>,
    /// `PUNCTUATION`, then `PARENS_BRACKETS` and `DOUBLE_DASHES`.
    punctuation: Vec<Rule>,
    /// `ENDING_QUOTES` before the whitespace rule.
    ending_quotes: Vec<Rule>,
    /// `ENDING_QUOTES` after it.
    contraction_quotes: Vec<Rule>,
}

fn build(version: NltkVersion) -> Rules {
    let flavor = Flavor::of(version);
    let rule = |p: &str, r: &'static str, t: &'static str| Rule::regex(p, r, t, flavor);
    let starting_quotes = vec![
        // ([«“‘„]|[`]+) → " \1 ": the two alternatives cannot overlap, so two passes do it.
        Rule::pad("«“‘„"),
        Rule::PadRuns('`', 1),
        rule(r#"^""#, "``", "\""),
        Rule::Literal("``", " `` "),
        rule(r#"([ (\[{<])("|'{2})"#, "${1} `` ", "\"'"),
    ];
    let mut punctuation = vec![
        rule(r#"([^.])(\.)([\])}>"'»”’ ]*)\s*$"#, "${1} ${2} ${3} ", "."),
        rule(r"([:,])([^\d])", " ${1} ${2}", ":,"),
        rule(r"([:,])$", " ${1} ", ":,"),
        Rule::PadRuns('.', 2),
        Rule::pad(";@#$%&"),
    ];
    if matches!(version, NltkVersion::V3_9 | NltkVersion::V3_10) {
        punctuation.push(Rule::pad("\u{2012}\u{2013}\u{2014}\u{2015}"));
    }
    punctuation.extend([
        rule(r#"([^.])(\.)([\])}>"']*)\s*$"#, "${1} ${2}${3} ", "."),
        Rule::pad("?!"),
        rule(r"([^'])' ", "${1} ' ", "'"),
        Rule::pad("*"),
        Rule::pad("[](){}<>"),
        Rule::Literal("--", " -- "),
    ]);
    let ending_quotes = vec![
        Rule::pad("»”’"),
        Rule::Literal("''", " '' "),
        Rule::Literal("\"", " '' "),
    ];
    let contraction_quotes = vec![
        rule(r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} ", "'"),
        rule(
            r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ",
            "${1} ${2} ",
            "'",
        ),
    ];
    Rules {
        version,
        flavor,
        starting_quotes,
        punctuation,
        ending_quotes,
        contraction_quotes,
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
    for rule in &r.starting_quotes {
        text = rule.apply(text);
    }
    text = match r.version {
        NltkVersion::V3_10 => split_leading_quote_310(&text),
        _ => split_leading_quote_39(&text),
    };
    for rule in &r.punctuation {
        text = rule.apply(text);
    }
    text = format!(" {text} ");
    for rule in &r.ending_quotes {
        text = rule.apply(text);
    }
    if r.version != NltkVersion::V3_8 {
        text = collapse_spaces(&text, r.flavor);
    }
    for rule in &r.contraction_quotes {
        text = rule.apply(text);
    }
    split_whitespace(&split_contractions(&text))
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
