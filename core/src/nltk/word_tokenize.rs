//! `nltk.word_tokenize` and the evaluator's offset reconstruction.

use super::NltkVersion;
use super::destructive;
use super::punkt::{PunktParameters, sentence_spans};
use crate::text::{CharIndex, is_python_space};

/// `nltk.word_tokenize(text)`: Punkt sentences, then the word tokenizer on each.
pub fn word_tokenize(text: &str, version: NltkVersion) -> Vec<String> {
    let index = CharIndex::new(text);
    sentence_spans(text, PunktParameters::english(), version)
        .into_iter()
        .flat_map(|(a, b)| destructive::tokenize(index.slice_clamped(a, b), version))
        .collect()
}

/// The evaluator's `tokenize_text`: each `word_tokenize` token is looked up with
/// `text.find(token, position)` after the previous one; tokens not found verbatim (NLTK turns `"`
/// into ``` `` ``` and `''`) are skipped. Returns code-point spans.
pub fn token_spans(text: &str, version: NltkVersion) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    // (byte, code point) of the search position.
    let (mut from, mut from_char) = (0usize, 0usize);
    for token in word_tokenize(text, version) {
        // Tokens hold no whitespace, so when the token starts right after the whitespace at the
        // search position, that is where `find` would find it.
        let rest = &text[from..];
        let ws = rest.len() - rest.trim_start_matches(is_python_space).len();
        let found = if rest[ws..].starts_with(token.as_str()) {
            Some(ws)
        } else {
            rest.find(token.as_str())
        };
        if let Some(offset) = found {
            let start_char = from_char + count_chars(&rest[..offset]);
            let end_char = start_char + count_chars(&token);
            spans.push((start_char, end_char));
            from += offset + token.len();
            from_char = end_char;
        }
    }
    spans
}

fn count_chars(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A note where NLTK 3.8.1, 3.9.x and 3.10.x tokenize differently (token lists of the real
    /// releases; the differential tests in `core/tests/nltk_parity.rs` rerun NLTK itself).
    #[test]
    fn version_fixture() {
        let text = "Pt's\nLasix was held. Pt can't\ntake ASA due to GI bleed. Troponin 'neg' x3, d/c'd\nhome.";
        let v38 = "Pt's Lasix was held . Pt can't take ASA due to GI bleed . Troponin 'neg ' x3 , d/c'd home .";
        let v39 = "Pt 's Lasix was held . Pt ca n't take ASA due to GI bleed . Troponin 'neg ' x3 , d/c 'd home .";
        let v310 = "Pt 's Lasix was held . Pt ca n't take ASA due to GI bleed . Troponin ' neg ' x3 , d/c 'd home .";
        assert_eq!(word_tokenize(text, NltkVersion::V3_8).join(" "), v38);
        assert_eq!(word_tokenize(text, NltkVersion::V3_9).join(" "), v39);
        assert_eq!(word_tokenize(text, NltkVersion::V3_10).join(" "), v310);
    }

    #[test]
    fn converted_quotes_are_skipped() {
        let text = "He said \"stop\" [**Hospital1 18**].";
        let index = CharIndex::new(text);
        let toks: Vec<&str> = token_spans(text, NltkVersion::V3_9)
            .iter()
            .map(|&(a, b)| index.slice(a, b))
            .collect();
        assert_eq!(
            toks,
            vec![
                "He",
                "said",
                "stop",
                "[",
                "*",
                "*",
                "Hospital1",
                "18",
                "*",
                "*",
                "]",
                "."
            ]
        );
    }
}
