//! Regexes with Python's meaning, and Python's character predicates.
//!
//! NLTK's tokenizers are chains of Python `re` substitutions. Rust's regex engines differ from
//! Python's `re` in small ways that change tokens: `\w`, `\d` and `\s` cover different code
//! points, `$` does not match before a trailing newline, and `\b` follows Rust's `\w`. Patterns
//! here are written in Rust syntax with Python's escapes, and [`compile`] rewrites those escapes
//! into explicit classes built from Python's tables. Patterns never use `\b`: write
//! `(?<!\w)` / `(?!\w)`, which mean the same next to a word character.
//!
//! NLTK up to 3.9 uses the standard `re` module; NLTK 3.10 routes every regex through the
//! third-party `regex` module, whose `\w`, `\d` and `\s` differ again (`\w` takes combining marks
//! but not `²`, `\s` leaves out U+001C–U+001F). [`Flavor`] picks the tables.

/// Which Python regex engine's character classes to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// The standard `re` module (NLTK 3.8, 3.9).
    Re,
    /// The third-party `regex` module (NLTK 3.10).
    Mrab,
}

impl Flavor {
    /// The engine an NLTK release uses.
    pub fn of(version: NltkVersion) -> Flavor {
        if version == NltkVersion::V3_10 {
            Flavor::Mrab
        } else {
            Flavor::Re
        }
    }

    /// `\w` for one character.
    pub fn is_word(self, c: char) -> bool {
        match self {
            Flavor::Re => is_word(c),
            Flavor::Mrab => in_table(REGEX_WORD, c),
        }
    }

    /// `\d` for one character.
    pub fn is_decimal(self, c: char) -> bool {
        match self {
            Flavor::Re => is_decimal(c),
            Flavor::Mrab => in_table(REGEX_DECIMAL, c),
        }
    }

    /// `\s` for one character.
    pub fn is_space(self, c: char) -> bool {
        match self {
            Flavor::Re => crate::text::is_python_space(c),
            Flavor::Mrab => c.is_whitespace(),
        }
    }

    fn word_body(self, out: &mut String) {
        match self {
            Flavor::Re => {
                class_body(ALNUM, out);
                out.push('_');
            }
            Flavor::Mrab => class_body(REGEX_WORD, out),
        }
    }

    fn decimal_body(self, out: &mut String) {
        class_body(
            match self {
                Flavor::Re => DECIMAL,
                Flavor::Mrab => REGEX_DECIMAL,
            },
            out,
        );
    }

    fn space_body(self) -> &'static str {
        match self {
            Flavor::Re => "\\s\\x{1c}-\\x{1f}",
            Flavor::Mrab => "\\s",
        }
    }
}

use super::NltkVersion;
use super::python_unicode::{ALNUM, DECIMAL, REGEX_DECIMAL, REGEX_WORD};
use fancy_regex::Regex;
use std::fmt::Write;

fn in_table(table: &[(char, char)], c: char) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if c < lo {
                std::cmp::Ordering::Greater
            } else if c > hi {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Python's `str.isalnum()` for one character (CPython 3.11, Unicode 14).
pub fn is_alnum(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    in_table(ALNUM, c)
}

/// Python's regex `\w` for one character: `isalnum()` or `_`.
pub fn is_word(c: char) -> bool {
    c == '_' || is_alnum(c)
}

/// Python's regex `\d` for one character (Unicode decimal digits).
pub fn is_decimal(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_table(DECIMAL, c)
}

fn class_body(table: &[(char, char)], out: &mut String) {
    for &(lo, hi) in table {
        if lo == hi {
            let _ = write!(out, "\\x{{{:x}}}", lo as u32);
        } else {
            let _ = write!(out, "\\x{{{:x}}}-\\x{{{:x}}}", lo as u32, hi as u32);
        }
    }
}

/// Rewrites Python's `\w \W \d \s \S $` into Rust classes and assertions. `$` becomes
/// `(?=\n?\z)` when `end_before_newline` (texts ending in a newline), else plain `\z` (same
/// meaning on any other text, and it keeps the pattern free of look-arounds).
pub fn translate(pattern: &str, flavor: Flavor, end_before_newline: bool) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let open = !in_class;
                match e {
                    'w' | 'd' | 's' => {
                        if open {
                            out.push('[');
                        }
                        match e {
                            'w' => flavor.word_body(&mut out),
                            'd' => flavor.decimal_body(&mut out),
                            _ => out.push_str(flavor.space_body()),
                        }
                        if open {
                            out.push(']');
                        }
                    }
                    'W' | 'S' | 'D' => {
                        assert!(open, "negated class escape inside a class in {pattern}");
                        out.push_str("[^");
                        match e {
                            'W' => flavor.word_body(&mut out),
                            'D' => flavor.decimal_body(&mut out),
                            _ => out.push_str(flavor.space_body()),
                        }
                        out.push(']');
                    }
                    'b' | 'B' => panic!("\\b differs between Python and Rust; rewrite {pattern}"),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` belongs to the class syntax.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '$' if !in_class => out.push_str(if end_before_newline {
                "(?=\\n?\\z)"
            } else {
                "\\z"
            }),
            _ => out.push(c),
        }
    }
    out
}

/// A Python pattern compiled for Rust.
#[derive(Debug, Clone)]
pub struct PyRegex {
    /// For texts that do not end in `\n`.
    plain: Regex,
    /// For texts that do (only when the pattern has a `$`).
    before_newline: Option<Regex>,
}

impl PyRegex {
    fn for_text(&self, text: &str) -> &Regex {
        match &self.before_newline {
            Some(r) if text.ends_with('\n') => r,
            _ => &self.plain,
        }
    }

    /// `re.sub(pattern, replacement, text)`; the replacement uses `${1}` / `${0}` references.
    /// Returns `text` itself when nothing matches.
    pub fn sub(&self, replacement: &str, text: String) -> String {
        match self.for_text(&text).replace_all(&text, replacement) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(replaced) => replaced,
        }
    }

    /// `re.finditer(pattern, text)`: the matched strings.
    pub fn find_strings(&self, text: &str) -> Vec<String> {
        self.for_text(text)
            .find_iter(text)
            .filter_map(Result::ok)
            .map(|m| m.as_str().to_string())
            .collect()
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.for_text(text).is_match(text).unwrap_or(false)
    }
}

/// Compiles a pattern written with Python's escapes (see [`translate`]). Patterns are fixed at
/// compile time, so a bad one is a programming error.
pub fn compile(pattern: &str, flavor: Flavor) -> PyRegex {
    let build = |newline: bool| {
        let translated = translate(pattern, flavor, newline);
        Regex::new(&translated).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
    };
    PyRegex {
        plain: build(false),
        before_newline: pattern.contains('$').then(|| build(true)),
    }
}

/// A small set of characters, tested without decoding ASCII text.
#[derive(Debug, Clone)]
pub struct CharSet {
    ascii: [bool; 128],
    other: Vec<char>,
}

impl CharSet {
    /// The set of the characters of `chars`.
    pub fn new(chars: &str) -> CharSet {
        let mut ascii = [false; 128];
        let mut other = Vec::new();
        for c in chars.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else {
                other.push(c);
            }
        }
        CharSet { ascii, other }
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: char) -> bool {
        if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            self.other.contains(&c)
        }
    }

    /// Whether any character of `text` is in the set.
    pub fn any_in(&self, text: &str) -> bool {
        if text.is_ascii() || self.other.is_empty() {
            text.bytes().any(|b| b < 128 && self.ascii[b as usize])
        } else {
            text.chars().any(|c| self.contains(c))
        }
    }
}

/// One substitution step of an NLTK tokenizer, `re.sub(pattern, replacement, text)`. Steps
/// whose pattern is a character set or a literal are done by hand; regex steps are skipped
/// (without a search or a copy) when the text holds none of the characters every match needs.
/// Tokenizers run about twenty steps over every sentence, so both shortcuts matter.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A regex substitution.
    Regex {
        /// The pattern (boxed: the variant is otherwise much larger than the others).
        regex: Box<PyRegex>,
        /// The replacement (`${1}` references).
        replacement: &'static str,
        /// Characters of which every match contains at least one.
        triggers: CharSet,
    },
    /// `re.sub("[set]", r" \g<0> ", text)`: every character of the set padded with spaces.
    Pad(CharSet),
    /// `re.sub("c{min,}", r" \g<0> ", text)`: runs of `c` at least `min` long padded.
    PadRuns(char, usize),
    /// `re.sub(literal, replacement, text)` for a pattern without metacharacters.
    Literal(&'static str, &'static str),
}

impl Rule {
    /// A regex rule; `triggers` lists characters of which every match contains at least one.
    pub fn regex(
        pattern: &str,
        replacement: &'static str,
        triggers: &'static str,
        flavor: Flavor,
    ) -> Rule {
        assert!(
            !triggers.is_empty(),
            "a rule needs trigger characters: {pattern}"
        );
        Rule::Regex {
            regex: Box::new(compile(pattern, flavor)),
            replacement,
            triggers: CharSet::new(triggers),
        }
    }

    /// A padding rule for the characters of `set`.
    pub fn pad(set: &str) -> Rule {
        Rule::Pad(CharSet::new(set))
    }

    /// Applies the rule.
    pub fn apply(&self, text: String) -> String {
        match self {
            Rule::Regex {
                regex,
                replacement,
                triggers,
            } => {
                if triggers.any_in(&text) {
                    regex.sub(replacement, text)
                } else {
                    text
                }
            }
            Rule::Pad(set) => {
                if !set.any_in(&text) {
                    return text;
                }
                let mut out = String::with_capacity(text.len() + 16);
                for c in text.chars() {
                    if set.contains(c) {
                        out.push(' ');
                        out.push(c);
                        out.push(' ');
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            Rule::PadRuns(ch, min) => {
                if !text.contains(*ch) {
                    return text;
                }
                let mut out = String::with_capacity(text.len() + 16);
                let mut run = 0usize;
                let flush = |out: &mut String, run: usize| {
                    if run >= *min {
                        out.push(' ');
                    }
                    out.extend(std::iter::repeat_n(*ch, run));
                    if run >= *min {
                        out.push(' ');
                    }
                };
                for c in text.chars() {
                    if c == *ch {
                        run += 1;
                    } else {
                        flush(&mut out, run);
                        run = 0;
                        out.push(c);
                    }
                }
                flush(&mut out, run);
                out
            }
            Rule::Literal(from, to) => {
                if text.contains(from) {
                    text.replace(from, to)
                } else {
                    text
                }
            }
        }
    }
}

/// `re.sub(r"\s+", " ", text)` with the flavor's `\s`.
pub fn collapse_spaces(text: &str, flavor: Flavor) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if flavor.is_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Python's `str.split()` without arguments: split on runs of whitespace, no empty parts.
pub fn split_whitespace(text: &str) -> Vec<String> {
    crate::text::split_python_whitespace(text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_classes() {
        assert!(is_word('_') && is_word('é') && is_word('²') && !is_word('-'));
        assert!(is_decimal('٣') && !is_decimal('²'));
        let re = compile(r"^\w+$", Flavor::Re);
        assert!(re.is_match("ab²_"));
        // Python's `$` matches before a final newline.
        assert!(re.is_match("ab\n"));
        assert!(!re.is_match("ab\n\n"));
        let re = compile(r"([:,])([^\d])", Flavor::Re);
        assert_eq!(re.sub(" ${1} ${2}", "a,b 1,2".to_string()), "a , b 1,2");
        // The `regex` module's \w takes combining marks but not superscript digits.
        assert!(Flavor::Mrab.is_word('\u{301}') && !Flavor::Mrab.is_word('²'));
        assert!(!Flavor::Mrab.is_space('\u{1f}') && Flavor::Re.is_space('\u{1f}'));
        // \x1f is whitespace in Python.
        assert_eq!(split_whitespace("a\u{1f}b  c"), vec!["a", "b", "c"]);
    }
}
