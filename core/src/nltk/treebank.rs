//! NLTK's `TreebankWordTokenizer` and its `span_tokenize`, which the evaluator's `refine_span`
//! uses. Unlike `word_tokenize` it keeps `*` inside tokens (`[**Hospital1 18**]` gives `[`,
//! `**Hospital1`, `18**`, `]`) and splits a period only at the very end of the string.

use super::NltkVersion;
use super::pyre::{Flavor, PyRegex, Rule, compile, split_whitespace};
use super::rules::split_contractions;
use std::sync::OnceLock;

struct Treebank {
    /// `STARTING_QUOTES`, `PUNCTUATION`, `PARENS_BRACKETS`, `DOUBLE_DASHES`.
    before_padding: Vec<Rule>,
    /// `ENDING_QUOTES`.
    after_padding: Vec<Rule>,
    quotes: PyRegex,
}

fn treebank(flavor: Flavor) -> &'static Treebank {
    static RE: OnceLock<Treebank> = OnceLock::new();
    static MRAB: OnceLock<Treebank> = OnceLock::new();
    let cell = match flavor {
        Flavor::Re => &RE,
        Flavor::Mrab => &MRAB,
    };
    cell.get_or_init(|| {
        let rule = |p: &str, r: &'static str, t: &'static str| Rule::regex(p, r, t, flavor);
        Treebank {
            before_padding: vec![
                rule(r#"^""#, "``", "\""),
                Rule::Literal("``", " `` "),
                rule(r#"([ (\[{<])("|'{2})"#, "${1} `` ", "\"'"),
                rule(r"([:,])([^\d])", " ${1} ${2}", ":,"),
                rule(r"([:,])$", " ${1} ", ":,"),
                Rule::Literal("...", " ... "),
                Rule::pad(";@#$%&"),
                rule(r#"([^.])(\.)([\])}>"']*)\s*$"#, "${1} ${2}${3} ", "."),
                Rule::pad("?!"),
                rule(r"([^'])' ", "${1} ' ", "'"),
                Rule::pad("[](){}<>"),
                Rule::Literal("--", " -- "),
            ],
            after_padding: vec![
                Rule::Literal("''", " '' "),
                Rule::Literal("\"", " '' "),
                rule(r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} ", "'"),
                rule(
                    r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ",
                    "${1} ${2} ",
                    "'",
                ),
            ],
            quotes: compile(r#"``|'{2}|""#, flavor),
        }
    })
}

/// `TreebankWordTokenizer().tokenize(text)` of the given release (its rules are the same in all
/// supported releases, but 3.10 runs them with the `regex` module's character classes).
pub fn tokenize(text: &str, version: NltkVersion) -> Vec<String> {
    let tb = treebank(Flavor::of(version));
    let mut text = text.to_string();
    for rule in &tb.before_padding {
        text = rule.apply(text);
    }
    text = format!(" {text} ");
    for rule in &tb.after_padding {
        text = rule.apply(text);
    }
    split_whitespace(&split_contractions(&text))
}

/// A token NLTK produced that does not occur in the text where `align_tokens` looks for it (NLTK
/// raises `ValueError` there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token {token:?} not found in the text after offset {from}")]
pub struct AlignError {
    /// The token.
    pub token: String,
    /// Code-point offset where the search started.
    pub from: usize,
}

/// `TreebankWordTokenizer().span_tokenize(text)`: code-point spans of the tokens.
pub fn span_tokenize(text: &str, version: NltkVersion) -> Result<Vec<(usize, usize)>, AlignError> {
    let raw = tokenize(text, version);
    let tokens = if text.contains('"') || text.contains("''") {
        // Converted quotes are mapped back to the quote strings of the text, in order.
        let mut originals = treebank(Flavor::of(version))
            .quotes
            .find_strings(text)
            .into_iter();
        let mut out = Vec::with_capacity(raw.len());
        for tok in raw {
            if tok == "\"" || tok == "``" || tok == "''" {
                out.push(originals.next().ok_or_else(|| AlignError {
                    token: tok.clone(),
                    from: 0,
                })?);
            } else {
                out.push(tok);
            }
        }
        out
    } else {
        raw
    };
    align_tokens(&tokens, text)
}

/// NLTK's `util.align_tokens`: finds each token in order, in code points.
pub fn align_tokens(tokens: &[String], text: &str) -> Result<Vec<(usize, usize)>, AlignError> {
    let index = crate::text::CharIndex::new(text);
    let mut point_byte = 0;
    let mut spans = Vec::with_capacity(tokens.len());
    for token in tokens {
        let Some(found) = text[point_byte..].find(token.as_str()) else {
            return Err(AlignError {
                token: token.clone(),
                from: index.char_at_byte(point_byte),
            });
        };
        let start_byte = point_byte + found;
        let end_byte = start_byte + token.len();
        spans.push((index.char_at_byte(start_byte), index.char_at_byte(end_byte)));
        point_byte = end_byte;
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nltk_documented_examples() {
        // From the NLTK documentation of TreebankWordTokenizer.
        let s = "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.";
        assert_eq!(
            tokenize(s, NltkVersion::V3_9),
            vec![
                "Good", "muffins", "cost", "$", "3.88", "in", "New", "York.", "Please", "buy",
                "me", "two", "of", "them.", "Thanks", "."
            ]
        );
        assert_eq!(
            tokenize("[**Hospital1 18**] follow-up", NltkVersion::V3_9),
            vec!["[", "**Hospital1", "18**", "]", "follow-up"]
        );
        assert_eq!(
            tokenize("They'll save and invest more.", NltkVersion::V3_9),
            vec!["They", "'ll", "save", "and", "invest", "more", "."]
        );
    }

    #[test]
    fn spans_map_quotes_back() {
        let text = "He said \"no\" today.";
        let spans = span_tokenize(text, NltkVersion::V3_9).unwrap();
        let idx = crate::text::CharIndex::new(text);
        let toks: Vec<&str> = spans.iter().map(|&(s, e)| idx.slice(s, e)).collect();
        assert_eq!(toks, vec!["He", "said", "\"", "no", "\"", "today", "."]);
    }
}
