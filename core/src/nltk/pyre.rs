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
            Flavor::Re => is_space(c),
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

/// Python's `str.isspace()` for one character.
pub fn is_space(c: char) -> bool {
    crate::text::is_python_space(c)
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

/// Rewrites Python's `\w \W \d \s \S $` into Rust classes and assertions.
pub fn translate(pattern: &str, flavor: Flavor) -> String {
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
            '$' if !in_class => out.push_str("(?=\\n?\\z)"),
            _ => out.push(c),
        }
    }
    out
}

/// Compiles a pattern written with Python's escapes (see [`translate`]). Patterns are fixed at
/// compile time, so a bad one is a programming error.
pub fn compile(pattern: &str, flavor: Flavor) -> Regex {
    let translated = translate(pattern, flavor);
    Regex::new(&translated).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
}

/// `re.sub(pattern, replacement, text)`: replacement uses `${1}` / `${0}` group references.
pub fn sub(regex: &Regex, replacement: &str, text: &str) -> String {
    regex.replace_all(text, replacement).into_owned()
}

/// Python's `str.split()` without arguments: split on runs of whitespace, no empty parts.
pub fn split_whitespace(text: &str) -> Vec<String> {
    text.split(is_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_classes() {
        assert!(is_word('_') && is_word('é') && is_word('²') && !is_word('-'));
        assert!(is_decimal('٣') && !is_decimal('²'));
        let re = compile(r"^\w+$", Flavor::Re);
        assert!(re.is_match("ab²_").unwrap());
        // Python's `$` matches before a final newline.
        assert!(re.is_match("ab\n").unwrap());
        assert!(!re.is_match("ab\n\n").unwrap());
        let re = compile(r"([:,])([^\d])", Flavor::Re);
        assert_eq!(sub(&re, " ${1} ${2}", "a,b 1,2"), "a , b 1,2");
        // The `regex` module's \w takes combining marks but not superscript digits.
        assert!(Flavor::Mrab.is_word('\u{301}') && !Flavor::Mrab.is_word('²'));
        assert!(!Flavor::Mrab.is_space('\u{1f}') && Flavor::Re.is_space('\u{1f}'));
        // \x1f is whitespace in Python.
        assert_eq!(split_whitespace("a\u{1f}b  c"), vec!["a", "b", "c"]);
    }
}
