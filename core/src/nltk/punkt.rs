//! NLTK's Punkt sentence tokenizer (`nltk/tokenize/punkt.py`, `PunktSentenceTokenizer`) with the
//! English `punkt_tab` parameters, embedded at compile time (`core/data/punkt_tab/`, see its
//! NOTICE). Only the tokenizer is ported, not the trainer. Sentence splitting is the same in NLTK
//! 3.8.1 and 3.9.x; 3.10 also treats the Unicode quotes `‘ ’ “ ” « »` as punctuation.
//!
//! The algorithm, as NLTK runs it:
//! 1. every `.`, `?` or `!` followed by punctuation or by whitespace and a token is a candidate;
//! 2. the candidate's context (the word before it, the mark, what follows) is split into Punkt
//!    word tokens and annotated: a first pass marks sentence breaks, abbreviations and ellipses by
//!    token type, a second pass revises them with collocations, frequent sentence starters and
//!    the orthographic context of the next word;
//! 3. the candidate is a boundary if a sentence break is followed by another token;
//! 4. closing quotes and brackets after a boundary are moved into the sentence before it.

use super::NltkVersion;
use super::pyre::Flavor;
use crate::text::CharIndex;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/// A trained Punkt model.
#[derive(Debug, Clone, Default)]
pub struct PunktParameters {
    /// Known abbreviations (lower case, without the final period).
    pub abbrev_types: HashSet<String>,
    /// Word pairs whose first word's period is not a sentence break.
    pub collocations: HashSet<(String, String)>,
    /// Words that frequently start sentences.
    pub sent_starters: HashSet<String>,
    /// Orthographic context flags per word type.
    pub ortho_context: HashMap<String, u32>,
}

impl PunktParameters {
    /// Reads the four `punkt_tab` files' contents (lines split on `\n`, as NLTK reads them).
    pub fn from_punkt_tab(
        abbrev: &str,
        collocations: &str,
        sent_starters: &str,
        ortho: &str,
    ) -> PunktParameters {
        let lines = |s: &str| -> Vec<String> {
            if s.is_empty() {
                Vec::new()
            } else {
                s.split('\n').map(str::to_string).collect()
            }
        };
        let mut params = PunktParameters {
            abbrev_types: lines(abbrev).into_iter().collect(),
            sent_starters: lines(sent_starters).into_iter().collect(),
            ..PunktParameters::default()
        };
        for line in lines(collocations) {
            if let Some((a, b)) = line.split_once('\t') {
                params.collocations.insert((a.to_string(), b.to_string()));
            }
        }
        for line in lines(ortho) {
            if let Some((k, v)) = line.split_once('\t')
                && let Ok(v) = v.parse()
            {
                params.ortho_context.insert(k.to_string(), v);
            }
        }
        params
    }

    /// NLTK's English model (`punkt_tab/english`).
    pub fn english() -> &'static PunktParameters {
        static CELL: OnceLock<PunktParameters> = OnceLock::new();
        CELL.get_or_init(|| {
            PunktParameters::from_punkt_tab(
                include_str!("../../data/punkt_tab/english/abbrev_types.txt"),
                include_str!("../../data/punkt_tab/english/collocations.tab"),
                include_str!("../../data/punkt_tab/english/sent_starters.txt"),
                include_str!("../../data/punkt_tab/english/ortho_context.tab"),
            )
        })
    }

    fn ortho(&self, typ: &str) -> u32 {
        self.ortho_context.get(typ).copied().unwrap_or(0)
    }
}

/// The character classes of Punkt's `PunktLanguageVars`, which NLTK 3.10 widened to the Unicode
/// quotes `‘ ’ “ ” « »`.
#[derive(Debug, Clone, Copy)]
struct LangVars {
    unicode_quotes: bool,
    /// The regex engine's classes (`\s`, `\d`, `\w`) for the regex-based steps; Python string
    /// methods (`strip`, `split`) keep Python's own whitespace.
    flavor: Flavor,
}

impl LangVars {
    fn of(version: NltkVersion) -> LangVars {
        LangVars {
            unicode_quotes: version == NltkVersion::V3_10,
            flavor: Flavor::of(version),
        }
    }

    fn is_space(self, c: char) -> bool {
        self.flavor.is_space(c)
    }

    fn is_unicode_quote(self, c: char) -> bool {
        self.unicode_quotes && matches!(c, '‘' | '’' | '“' | '”' | '«' | '»')
    }

    /// `[)";}\]*:@'({\[?!]` (+ Unicode quotes): punctuation that ends a word.
    fn is_non_word(self, c: char) -> bool {
        matches!(
            c,
            ')' | '"' | ';' | '}' | ']' | '*' | ':' | '@' | '\'' | '(' | '{' | '[' | '?' | '!'
        ) || self.is_unicode_quote(c)
    }

    /// Closing quotes and brackets moved into the sentence before a boundary.
    fn is_closing(self, c: char) -> bool {
        matches!(c, '"' | '\'' | ')' | ']' | '}') || self.is_unicode_quote(c)
    }
}

/// Punkt's `_re_word_start`: characters that may start a word token.
fn is_word_start(c: char) -> bool {
    !matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

/// Length of Punkt's `_re_multi_char_punct` (`--+`, `..+`, `. . .`) at `i`, if it matches.
fn multi_char_at(lang: LangVars, s: &[char], i: usize) -> Option<usize> {
    let run = |c: char| s[i..].iter().take_while(|&&x| x == c).count();
    if s.get(i) == Some(&'-') && run('-') >= 2 {
        return Some(run('-'));
    }
    if s.get(i) == Some(&'.') && run('.') >= 2 {
        return Some(run('.'));
    }
    // (?:\.\s){2,}\.  — greedy pairs, then a final period (backtracking one pair if needed).
    let mut pairs = 0;
    while s.get(i + 2 * pairs) == Some(&'.')
        && s.get(i + 2 * pairs + 1).is_some_and(|&c| lang.is_space(c))
    {
        pairs += 1;
    }
    while pairs >= 2 {
        if s.get(i + 2 * pairs) == Some(&'.') {
            return Some(2 * pairs + 1);
        }
        pairs -= 1;
    }
    None
}

/// Does a word end at `p`? (The look-ahead of Punkt's word regex.)
fn word_ends_at(lang: LangVars, s: &[char], p: usize) -> bool {
    let Some(&c) = s.get(p) else { return true };
    if lang.is_space(c) || lang.is_non_word(c) || multi_char_at(lang, s, p).is_some() {
        return true;
    }
    if c == ',' {
        return match s.get(p + 1) {
            None => true,
            Some(&n) => {
                lang.is_space(n) || lang.is_non_word(n) || multi_char_at(lang, s, p + 1).is_some()
            }
        };
    }
    // `$` also matches before a final newline; lines never contain one.
    false
}

/// Punkt's `word_tokenize` regex (`findall`) over one line.
fn word_tokens(lang: LangVars, line: &str) -> Vec<String> {
    let s: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if lang.is_space(s[i]) {
            i += 1;
            continue;
        }
        let len = if let Some(n) = multi_char_at(lang, &s, i) {
            n
        } else if is_word_start(s[i]) {
            let mut end = i + 1;
            while end < s.len() && !word_ends_at(lang, &s, end) {
                end += 1;
            }
            end - i
        } else {
            1
        };
        out.push(s[i..i + len].iter().collect());
        i += len;
    }
    out
}

/// A Punkt token with its annotations.
#[derive(Debug, Clone)]
struct Token {
    flavor: Flavor,
    tok: String,
    typ: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

/// `^-?[\.,]?\d[\d,\.-]*\.?$` on the lower-cased token.
fn is_numeric(t: &str, flavor: Flavor) -> bool {
    let c: Vec<char> = t.chars().collect();
    let mut i = 0;
    if c.get(i) == Some(&'-') {
        i += 1;
    }
    if matches!(c.get(i), Some('.' | ',')) {
        i += 1;
    }
    if !c.get(i).is_some_and(|&d| flavor.is_decimal(d)) {
        return false;
    }
    i += 1;
    // [\d,\.-]* greedy then optional '.', anchored at the end: every remaining char must be in
    // the class (a final '.' is in it too).
    c[i..]
        .iter()
        .all(|&d| flavor.is_decimal(d) || matches!(d, ',' | '.' | '-'))
}

impl Token {
    fn new(tok: String, flavor: Flavor) -> Token {
        let lower = tok.to_lowercase();
        let typ = if is_numeric(&lower, flavor) {
            "##number##".to_string()
        } else {
            lower
        };
        let period_final = tok.ends_with('.');
        Token {
            flavor,
            tok,
            typ,
            period_final,
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn type_no_period(&self) -> &str {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            &self.typ[..self.typ.len() - 1]
        } else {
            &self.typ
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first_char(&self) -> Option<char> {
        self.tok.chars().next()
    }

    fn first_upper(&self) -> bool {
        self.first_char().is_some_and(char::is_uppercase)
    }

    fn first_lower(&self) -> bool {
        self.first_char().is_some_and(char::is_lowercase)
    }

    /// `\.\.+$` matched at the start: two or more periods and nothing else.
    fn is_ellipsis(&self) -> bool {
        self.tok.chars().count() >= 2 && self.tok.chars().all(|c| c == '.')
    }

    /// `[^\W\d]\.$`: one letter (a word character that is not a digit) and a period.
    fn is_initial(&self) -> bool {
        let c: Vec<char> = self.tok.chars().collect();
        c.len() == 2 && c[1] == '.' && self.flavor.is_word(c[0]) && !self.flavor.is_decimal(c[0])
    }
}

/// The first pass: decisions from the token's own type.
fn first_pass(tok: &mut Token, params: &PunktParameters) {
    let t = tok.tok.as_str();
    if t == "." || t == "?" || t == "!" {
        tok.sentbreak = true;
    } else if tok.is_ellipsis() {
        tok.ellipsis = true;
    } else if tok.period_final && !t.ends_with("..") {
        let stem = t[..t.len() - 1].to_lowercase();
        let last = stem.rsplit('-').next().unwrap_or("");
        if params.abbrev_types.contains(&stem) || params.abbrev_types.contains(last) {
            tok.abbr = true;
        } else {
            tok.sentbreak = true;
        }
    }
}

/// The orthographic heuristic: `Some(true)` sentence starter, `Some(false)` not, `None` unknown.
fn ortho_heuristic(tok: &Token, params: &PunktParameters) -> Option<bool> {
    if matches!(tok.tok.as_str(), ";" | ":" | "," | "." | "!" | "?") {
        return Some(false);
    }
    let ctx = params.ortho(tok.type_no_sentperiod());
    if tok.first_upper() && ctx & ORTHO_LC != 0 && ctx & ORTHO_MID_UC == 0 {
        return Some(true);
    }
    if tok.first_lower() && (ctx & ORTHO_UC != 0 || ctx & ORTHO_BEG_LC == 0) {
        return Some(false);
    }
    None
}

/// The second pass over a token and the one after it.
fn second_pass(tok1: &mut Token, tok2: &Token, params: &PunktParameters) {
    if !tok1.period_final {
        return;
    }
    let typ = tok1.type_no_period().to_string();
    let next_typ = tok2.type_no_sentperiod();
    let is_initial = tok1.is_initial();
    if params
        .collocations
        .contains(&(typ.clone(), next_typ.to_string()))
    {
        tok1.sentbreak = false;
        tok1.abbr = true;
        return;
    }
    if (tok1.abbr || tok1.ellipsis) && !is_initial {
        if ortho_heuristic(tok2, params) == Some(true) {
            tok1.sentbreak = true;
            return;
        }
        if tok2.first_upper() && params.sent_starters.contains(next_typ) {
            tok1.sentbreak = true;
            return;
        }
    }
    if is_initial || typ == "##number##" {
        let starter = ortho_heuristic(tok2, params);
        if starter == Some(false) {
            tok1.sentbreak = false;
            tok1.abbr = true;
            return;
        }
        if starter.is_none()
            && is_initial
            && tok2.first_upper()
            && params.ortho(next_typ) & ORTHO_LC == 0
        {
            tok1.sentbreak = false;
            tok1.abbr = true;
        }
    }
}

/// `text_contains_sentbreak`: is some token after the first sentence break?
fn contains_sentbreak(lang: LangVars, text: &str, params: &PunktParameters) -> bool {
    let mut tokens: Vec<Token> = text
        .split('\n')
        .filter(|line| !line.chars().all(crate::text::is_python_space))
        .flat_map(|line| word_tokens(lang, line))
        .map(|t| Token::new(t, lang.flavor))
        .collect();
    for t in tokens.iter_mut() {
        first_pass(t, params);
    }
    for i in 0..tokens.len() {
        if i + 1 < tokens.len() {
            let (head, tail) = tokens.split_at_mut(i + 1);
            second_pass(&mut head[i], &tail[0], params);
        }
        if tokens[i].sentbreak && i + 1 < tokens.len() {
            return true;
        }
    }
    false
}

/// One candidate boundary: the mark's position, what follows it, and where the next token starts.
struct Candidate {
    start: usize,
    end: usize,
    after_end: usize,
    next_tok: Option<usize>,
}

/// `period_context_re().finditer(text)`.
fn candidates(lang: LangVars, s: &[char]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for i in 0..s.len() {
        if !matches!(s[i], '.' | '?' | '!') {
            continue;
        }
        let j = i + 1;
        match s.get(j) {
            Some(&c) if lang.is_non_word(c) => out.push(Candidate {
                start: i,
                end: j,
                after_end: j + 1,
                next_tok: None,
            }),
            Some(&c) if lang.is_space(c) => {
                let mut k = j;
                while k < s.len() && lang.is_space(s[k]) {
                    k += 1;
                }
                if k < s.len() {
                    let mut e = k;
                    while e < s.len() && !lang.is_space(s[e]) {
                        e += 1;
                    }
                    out.push(Candidate {
                        start: i,
                        end: j,
                        after_end: e,
                        next_tok: Some(k),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Python's `string.whitespace` (ASCII only), used by `_get_last_whitespace_index`.
fn is_ascii_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// Sentence spans of `text` (code points), as `PunktSentenceTokenizer.span_tokenize` of the
/// given NLTK release.
pub fn sentence_spans(
    text: &str,
    params: &PunktParameters,
    version: NltkVersion,
) -> Vec<(usize, usize)> {
    let lang = LangVars::of(version);
    let s: Vec<char> = text.chars().collect();
    let slice = |a: usize, b: usize| -> String { s[a.min(b)..b].iter().collect() };
    // _match_potential_end_contexts
    let mut contexts: Vec<(&Candidate, String)> = Vec::new();
    let cands = candidates(lang, &s);
    let (mut prev_start, mut prev_stop) = (0usize, 0usize);
    let mut previous: Option<&Candidate> = None;
    let context_of = |m: &Candidate, a: usize, b: usize| -> String {
        format!(
            "{}{}{}",
            slice(a, b),
            slice(m.start, m.end),
            slice(m.end, m.after_end)
        )
    };
    for m in &cands {
        let before = &s[prev_stop.min(m.start)..m.start];
        let last_ws = before.iter().rposition(|&c| is_ascii_ws(c)).unwrap_or(0);
        let word_start = if last_ws != 0 {
            last_ws + prev_stop + 1
        } else {
            prev_start
        };
        if let Some(p) = previous
            && prev_stop <= word_start
        {
            contexts.push((p, context_of(p, prev_start, prev_stop)));
        }
        previous = Some(m);
        prev_start = word_start;
        prev_stop = m.start;
    }
    if let Some(p) = previous {
        contexts.push((p, context_of(p, prev_start, prev_stop)));
    }
    // _slices_from_text
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (m, context) in contexts {
        if contains_sentbreak(lang, &context, params) {
            slices.push((last_break, m.end));
            last_break = m.next_tok.unwrap_or(m.end);
        }
    }
    let stripped = s
        .iter()
        .rposition(|&c| !crate::text::is_python_space(c))
        .map_or(0, |p| p + 1);
    slices.push((last_break, stripped));
    realign(lang, &s, slices)
}

/// `re_boundary_realignment.match(sentence)`: `["')\]}]+?(?:\s+|(?=--)|$)` with MULTILINE,
/// matched against one sentence's text. Returns (match end, length of the match with trailing
/// whitespace removed).
fn boundary_realignment(lang: LangVars, sentence: &[char]) -> Option<(usize, usize)> {
    let mut k = 0;
    while k < sentence.len() && lang.is_closing(sentence[k]) {
        k += 1;
        // Lazy: the shortest run that is followed by one of the alternatives wins.
        match sentence.get(k) {
            Some(&c) if lang.is_space(c) => {
                let e = k + sentence[k..]
                    .iter()
                    .take_while(|&&c| lang.is_space(c))
                    .count();
                return Some((e, k));
            }
            Some('-') if sentence.get(k + 1) == Some(&'-') => return Some((k, k)),
            None | Some('\n') => return Some((k, k)),
            _ => {}
        }
    }
    None
}

/// `_realign_boundaries`.
fn realign(lang: LangVars, s: &[char], slices: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(slices.len());
    let mut shift = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let start1 = start + shift;
        let Some(&(start2, stop2)) = slices.get(i + 1) else {
            if start1 < stop {
                out.push((start1, stop));
            }
            continue;
        };
        match boundary_realignment(lang, &s[start2.min(stop2)..stop2]) {
            Some((end, kept)) => {
                out.push((start1, start2 + kept));
                shift = end;
            }
            None => {
                shift = 0;
                if start1 < stop {
                    out.push((start1, stop));
                }
            }
        }
    }
    out
}

/// `sent_tokenize(text, NltkVersion::V3_9)` with the English model: the sentences' texts.
pub fn sent_tokenize(text: &str, version: NltkVersion) -> Vec<String> {
    let index = CharIndex::new(text);
    sentence_spans(text, PunktParameters::english(), version)
        .into_iter()
        .map(|(a, b)| index.slice_clamped(a, b).to_string())
        .collect()
}

#[cfg(test)]
#[path = "punkt_tests.rs"]
mod tests;
