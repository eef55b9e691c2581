//! NLTK rules whose regexes need look-around, written out by hand.
//!
//! Look-behind and look-ahead force a backtracking engine, which made these rules the slowest
//! part of tokenization. Each function here does exactly what its regex does under Python's
//! `re.sub` (leftmost, non-overlapping matches; look-arounds see the input, not the output),
//! including Python's case-insensitive matches of non-ASCII letters (`İ`/`ı` for `i`, `ſ` for
//! `s`, the Kelvin sign for `k`).

use super::pyre::Flavor;

/// Python's `(?i)` match of one ASCII pattern letter against a text character.
fn ci_eq(pattern: char, c: char, flavor: Flavor) -> bool {
    if c.to_ascii_lowercase() == pattern {
        return true;
    }
    match pattern {
        'i' => c == '\u{130}' || (flavor == Flavor::Re && c == '\u{131}'),
        'k' => c == '\u{212a}',
        's' => c == '\u{17f}',
        _ => false,
    }
}

/// Does `literal` match case-insensitively at `s[i..]`? Returns the end.
fn match_ci(s: &[char], i: usize, literal: &str, flavor: Flavor) -> Option<usize> {
    let mut j = i;
    for p in literal.chars() {
        if j >= s.len() || !ci_eq(p, s[j], flavor) {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// What must follow a contraction.
#[derive(Clone, Copy)]
enum After {
    /// `\b` after a word character: a non-word character or the end.
    Boundary,
    /// `(?=\s)`.
    Space,
}

/// One MacIntyre contraction rule: `\b(first)(second)` or ` (first)(second)` (with a leading
/// space), replaced by ` first second `.
struct Contraction {
    /// The whole contraction, for a quick pre-check on ASCII text.
    needle: &'static str,
    first: &'static str,
    second: &'static str,
    leading_space: bool,
    after: After,
}

const CONTRACTIONS: &[Contraction] = &[
    Contraction {
        needle: "cannot",
        first: "can",
        second: "not",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "d'ye",
        first: "d",
        second: "'ye",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "gimme",
        first: "gim",
        second: "me",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "gonna",
        first: "gon",
        second: "na",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "gotta",
        first: "got",
        second: "ta",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "lemme",
        first: "lem",
        second: "me",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "more'n",
        first: "more",
        second: "'n",
        leading_space: false,
        after: After::Boundary,
    },
    Contraction {
        needle: "wanna",
        first: "wan",
        second: "na",
        leading_space: false,
        after: After::Space,
    },
    Contraction {
        needle: "'tis",
        first: "'t",
        second: "is",
        leading_space: true,
        after: After::Boundary,
    },
    Contraction {
        needle: "'twas",
        first: "'t",
        second: "was",
        leading_space: true,
        after: After::Boundary,
    },
];

impl Contraction {
    /// `re.sub(pattern, r" \1 \2 ", text)`. NLTK compiles these with the standard `re` module
    /// in every release.
    fn apply(&self, text: &str) -> String {
        let flavor = Flavor::Re;
        let s: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len() + 8);
        let mut i = 0;
        while i < s.len() {
            if let Some((a, b, end)) = self.match_at(&s, i, flavor) {
                out.push(' ');
                out.extend(&s[a..b]);
                out.push(' ');
                out.extend(&s[b..end]);
                out.push(' ');
                i = end;
            } else {
                out.push(s[i]);
                i += 1;
            }
        }
        out
    }

    fn match_at(&self, s: &[char], i: usize, flavor: Flavor) -> Option<(usize, usize, usize)> {
        let start = if self.leading_space {
            if s[i] != ' ' {
                return None;
            }
            i + 1
        } else {
            if i > 0 && flavor.is_word(s[i - 1]) {
                return None;
            }
            i
        };
        let mid = match_ci(s, start, self.first, flavor)?;
        let end = match_ci(s, mid, self.second, flavor)?;
        let ok = match self.after {
            After::Boundary => end == s.len() || !flavor.is_word(s[end]),
            After::Space => end < s.len() && flavor.is_space(s[end]),
        };
        ok.then_some((start, mid, end))
    }
}

/// The MacIntyre contraction rules (`CONTRACTIONS2` then `CONTRACTIONS3`), in NLTK's order.
pub fn split_contractions(text: &str) -> String {
    // Cheap pre-check on ASCII text: a rule cannot match unless its letters occur together
    // (inserting spaces never creates them). Non-ASCII text may match through `İ`, `ſ`…
    let lower = text.is_ascii().then(|| text.to_ascii_lowercase());
    let mut text = text.to_string();
    for rule in CONTRACTIONS {
        if lower.as_ref().is_some_and(|l| !l.contains(rule.needle)) {
            continue;
        }
        text = rule.apply(&text);
    }
    text
}

/// NLTK ≤ 3.9's last starting-quote rule, `(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b` → `\1 \2`:
/// a quote before a one-letter word is split off unless the letter is m, t, s, d or n.
pub fn split_leading_quote_39(text: &str) -> String {
    if !text.contains('\'') {
        return text.to_string();
    }
    let flavor = Flavor::Re;
    let s: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 4);
    let mut i = 0;
    while i < s.len() {
        let hit = s[i] == '\''
            && i + 1 < s.len()
            && flavor.is_word(s[i + 1])
            && (i + 2 == s.len() || !flavor.is_word(s[i + 2]))
            && !["re", "ve", "ll", "m", "t", "s", "d", "n"]
                .iter()
                .any(|x| match_ci(&s, i + 1, x, flavor).is_some());
        if hit {
            out.push('\'');
            out.push(' ');
            out.push(s[i + 1]);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// NLTK 3.10's rule, `(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)` → `\1 ` (run by the
/// `regex` module): a quote opening a word is split off unless a contraction suffix follows.
pub fn split_leading_quote_310(text: &str) -> String {
    if !text.contains('\'') {
        return text.to_string();
    }
    let flavor = Flavor::Mrab;
    let s: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 4);
    for i in 0..s.len() {
        out.push(s[i]);
        let hit = s[i] == '\''
            && (i == 0 || !flavor.is_word(s[i - 1]))
            && i + 1 < s.len()
            && flavor.is_word(s[i + 1])
            && !["re", "ve", "ll", "m", "t", "s", "d", "n"].iter().any(|x| {
                match_ci(&s, i + 1, x, flavor)
                    .is_some_and(|e| e == s.len() || !flavor.is_word(s[e]))
            });
        if hit {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contractions() {
        assert_eq!(split_contractions("I cannot gimme"), "I  can not   gim me ");
        assert_eq!(
            split_contractions("Cannotx wanna go"),
            "Cannotx  wan na  go"
        );
        assert_eq!(split_contractions("it 'tis"), "it 't is ");
        assert_eq!(split_contractions("gİmme"), " gİm me ");
    }

    #[test]
    fn leading_quotes() {
        assert_eq!(split_leading_quote_39("'x 'm 'ab"), "' x 'm 'ab");
        assert_eq!(
            split_leading_quote_310("'neg' x'y 're 'rex"),
            "' neg' x'y 're ' rex"
        );
    }
}
