//! Property tests of the tag codec over arbitrary Unicode text and arbitrary span sets.

use lamar_core::codec::{
    DecodeOptions, canonicalize, decode, encode, parse_tagged, same_category_crossings,
};
use lamar_core::text::CharIndex;
use lamar_core::{Category, Span};
use proptest::prelude::*;

/// Characters that stress offsets and the parser: every Python whitespace kind, multi-byte and
/// astral code points, characters whose lower-case form is longer, and `<`, `>`, `/`, `_`.
const SPECIAL: &[char] = &[
    ' ', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', '\u{85}',
    '\u{a0}', '\u{1680}', '\u{2000}', '\u{2009}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}',
    '\u{205f}', '\u{3000}', 'é', 'µ', 'İ', 'ß', 'Σ', '中', '🙂', '𝛽', '\u{0}', '<', '>', '/', '_',
    '[', ']', '*', '"', '\'', '&',
];

/// Tag-like fragments that are not category tags.
const FRAGMENTS: &[&str] = &[
    "<br>",
    "</p>",
    "<b>",
    "<5",
    "< 100",
    "<_x>",
    "<Drug_Decision>",
    "<think>",
    "</think>",
    "<drug",
    "problem>",
    "[**Hospital1 18**]",
];

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,;:()-]{1,8}",
        3 => prop::sample::select(SPECIAL).prop_map(String::from),
        1 => prop::sample::select(FRAGMENTS).prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// True when `text` holds a literal category tag such as `<drug_decision>`. Such a text cannot
/// round-trip: tags are not escaped (as in the reference), so the literal reads as markup.
fn holds_category_tag(text: &str) -> bool {
    let p = parse_tagged(text);
    !p.spans.is_empty() || !p.diagnostics.unclosed.is_empty() || p.diagnostics.unmatched_closes > 0
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_piece(), 1..40)
        .prop_map(|v| v.concat())
        .prop_filter("text holds a category tag", |t| !holds_category_tag(t))
}

/// Text without `<` at all (no tag-shaped tokens).
fn text_without_angle_brackets() -> impl Strategy<Value = String> {
    text().prop_map(|t| t.replace('<', "("))
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

/// A text and spans whose boundaries come from a few shared cut points, so that nested,
/// crossing, adjacent and duplicate spans are common.
fn text_and_spans() -> impl Strategy<Value = (String, Vec<Span>)> {
    spans_over(text())
}

fn spans_over(texts: impl Strategy<Value = String>) -> impl Strategy<Value = (String, Vec<Span>)> {
    texts.prop_flat_map(|t| {
        let n = t.chars().count();
        let cuts = prop::collection::btree_set(0..=n, 2..7);
        (Just(t), cuts).prop_flat_map(|(t, cuts)| {
            let cuts: Vec<usize> = cuts.into_iter().collect();
            let k = cuts.len();
            let span = (0..k - 1)
                .prop_flat_map(move |i| (Just(i), i + 1..k, category()))
                .prop_map({
                    let cuts = cuts.clone();
                    move |(i, j, c)| Span::new(cuts[i], cuts[j], c)
                });
            (Just(t), prop::collection::vec(span, 0..12))
        })
    })
}

/// The spans a round trip returns ([`canonicalize`]), without the blank ones, which the
/// reference drops (nesting a crossing pair can leave one).
fn canonical_non_blank(text: &str, spans: &[Span]) -> Vec<Span> {
    let index = CharIndex::new(text);
    canonicalize(spans)
        .into_iter()
        .filter(|s| !lamar_core::text::is_blank(index.slice(s.start, s.end)))
        .collect()
}

fn sorted(mut v: Vec<Span>) -> Vec<Span> {
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// decode(encode(text, spans), text) returns the same multiset of spans (same-category
    /// crossing pairs come back nested, the one thing tags cannot express), with nothing dropped.
    #[test]
    fn round_trip_returns_the_same_spans((text, spans) in text_and_spans()) {
        let tagged = encode(&text, &spans).unwrap();
        let decoded = decode(&tagged, &text, &DecodeOptions::default());
        prop_assert!(decoded.dropped.is_empty(), "dropped {:?}", decoded.dropped);
        let got = sorted(decoded.plain_spans());
        prop_assert_eq!(&got, &sorted(canonicalize(&spans)));
        if same_category_crossings(&spans) == 0 {
            prop_assert_eq!(got, sorted(spans));
        }
    }

    /// Removing the category tags from an encoding gives back the text, byte for byte.
    #[test]
    fn encoding_only_adds_tags((text, spans) in text_and_spans()) {
        let tagged = encode(&text, &spans).unwrap();
        prop_assert_eq!(parse_tagged(&tagged).verbatim, text);
    }

    /// Without lamar's verbatim shortcut, the reference cascade alone still round-trips exactly
    /// when the text holds no tag-shaped tokens and no span is blank: the exact step's position
    /// ratio singles out the true occurrence.
    #[test]
    fn reference_cascade_round_trips_plain_text((text, spans) in spans_over(text_without_angle_brackets())) {
        let spans = canonical_non_blank(&text, &spans);
        let tagged = encode(&text, &spans).unwrap();
        let reference = DecodeOptions { verbatim: false, ..DecodeOptions::default() };
        let decoded = decode(&tagged, &text, &reference);
        prop_assert_eq!(sorted(decoded.plain_spans()), sorted(canonicalize(&spans)));
    }

    /// Decoding anything against anything never panics, and every span it returns lies on code
    /// point boundaries inside the raw text.
    #[test]
    fn decode_of_arbitrary_strings_is_safe(tagged in arbitrary_tagged(), raw in text()) {
        check_inside(&decode(&tagged, &raw, &DecodeOptions::default()).plain_spans(), &raw)?;
        // Against a related raw text too, so the cascade's later steps run.
        let related: String = parse_tagged(&tagged).plain.chars().rev().collect();
        check_inside(&decode(&tagged, &related, &DecodeOptions::default()).plain_spans(), &related)?;
    }

    /// Edited encodings (a model that slipped) decode without panics to spans inside the text.
    #[test]
    fn decode_of_edited_encodings_is_safe((text, spans) in text_and_spans(), cut in any::<prop::sample::Index>(), insert in text_piece()) {
        let mut tagged: Vec<char> = encode(&text, &spans).unwrap().chars().collect();
        let at = cut.index(tagged.len() + 1);
        if at < tagged.len() { tagged.remove(at); }
        tagged.splice(at.min(tagged.len())..at.min(tagged.len()), insert.chars());
        let tagged: String = tagged.into_iter().collect();
        let decoded = decode(&tagged, &text, &DecodeOptions::default());
        check_inside(&decoded.plain_spans(), &text)?;
    }
}

/// Pieces of clinical text with `<` that is not a tag (`<5`, `a<b`, `<1>`, arrows), besides
/// ordinary text.
fn text_with_angle_brackets() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-zA-Z0-9 .,;:()-]{1,8}",
        2 => prop::sample::select(vec!["<", "<5", "< 100", "<=", "<<", "a<b", "<1>", "<-", "->"])
            .prop_map(String::from),
        1 => prop::sample::select(SPECIAL).prop_map(String::from),
    ];
    prop::collection::vec(piece, 1..30)
        .prop_map(|v| v.concat())
        .prop_filter("text reads as markup", |t| {
            let p = parse_tagged(t);
            p.spans.is_empty() && p.diagnostics.unknown_tags == 0 && !holds_category_tag(t)
        })
}

/// Mostly whitespace of every kind, with a few words, so that blank spans are common.
fn mostly_blank_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![" ", "\t", "\n", "\u{a0}", "\u{2009}", "\u{3000}", "  \n "])
            .prop_map(String::from),
        1 => "[a-z]{1,4}",
    ];
    prop::collection::vec(piece, 1..30).prop_map(|v| v.concat())
}

/// Text without `<` and `\r`, which starts with a non-space (the reference's whitespace step
/// is off by one on leading whitespace, a documented quirk).
fn plain_lf_text() -> impl Strategy<Value = String> {
    text_without_angle_brackets()
        .prop_map(|t| t.replace('\r', " "))
        .prop_map(|t| format!("A{t}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every tagged span of any output is accounted for: placed or dropped, never lost.
    #[test]
    fn every_tagged_span_is_placed_or_dropped(tagged in arbitrary_tagged(), raw in text()) {
        let parsed = parse_tagged(&tagged).spans.len();
        for options in [DecodeOptions::default(), DecodeOptions::reference()] {
            let d = decode(&tagged, &raw, &options);
            prop_assert_eq!(d.spans.len() + d.dropped.len(), parsed);
        }
    }

    /// An empty raw text places nothing: every tagged span is dropped.
    #[test]
    fn an_empty_raw_text_places_nothing(tagged in arbitrary_tagged()) {
        prop_assert_eq!(encode("", &[]).unwrap(), "");
        let parsed = parse_tagged(&tagged).spans.len();
        for options in [DecodeOptions::default(), DecodeOptions::reference()] {
            let d = decode(&tagged, "", &options);
            prop_assert!(d.spans.is_empty(), "{:?}", d.spans);
            prop_assert_eq!(d.dropped.len(), parsed);
        }
    }

    /// An empty tag pair (a zero-length span) anywhere between tags changes nothing but adds one
    /// `empty_span` drop, in lamar's mode and the reference's.
    #[test]
    fn empty_tag_pairs_are_dropped_as_empty((text, spans) in spans_over(plain_lf_text()), at in any::<prop::sample::Index>(), c in category()) {
        let spans = canonical_non_blank(&text, &spans);
        let tagged = encode(&text, &spans).unwrap();
        // Positions outside tags (the text has no '<': every '<' opens a tag).
        let safe: Vec<usize> = tagged
            .char_indices()
            .map(|(i, _)| i)
            .chain([tagged.len()])
            .filter(|&i| {
                let before = &tagged[..i];
                before.rfind('<').is_none_or(|l| before[l..].contains('>'))
            })
            .collect();
        let i = safe[at.index(safe.len())];
        let pair = format!("<{0}></{0}>", c.tag());
        let edited = format!("{}{pair}{}", &tagged[..i], &tagged[i..]);
        for options in [DecodeOptions::default(), DecodeOptions::reference()] {
            let plain = decode(&tagged, &text, &options);
            let with_pair = decode(&edited, &text, &options);
            prop_assert_eq!(sorted(with_pair.plain_spans()), sorted(plain.plain_spans()));
            prop_assert_eq!(with_pair.dropped.len(), plain.dropped.len() + 1);
            prop_assert!(with_pair.dropped.iter().any(|d| d.reason.as_str() == "empty_span"));
        }
    }

    /// Text with `<` that is not markup (lab values, arrows) round-trips exactly, through the
    /// reference cascade alone as well.
    #[test]
    fn angle_brackets_in_the_text_round_trip((text, spans) in spans_over(text_with_angle_brackets())) {
        let spans = canonical_non_blank(&text, &spans);
        let tagged = encode(&text, &spans).unwrap();
        prop_assert_eq!(parse_tagged(&tagged).verbatim, text.clone());
        let lamar = decode(&tagged, &text, &DecodeOptions::default());
        prop_assert!(lamar.dropped.is_empty(), "dropped {:?}", lamar.dropped);
        prop_assert_eq!(sorted(lamar.plain_spans()), sorted(spans.clone()));
        let cascade = DecodeOptions { verbatim: false, ..DecodeOptions::default() };
        prop_assert_eq!(sorted(decode(&tagged, &text, &cascade).plain_spans()), sorted(spans));
    }

    /// Whitespace-only spans: the reference drops each as `empty_span` and places the others;
    /// lamar's verbatim shortcut keeps them all.
    #[test]
    fn whitespace_only_spans((text, spans) in spans_over(mostly_blank_text())) {
        let index = CharIndex::new(&text);
        let spans = canonicalize(&spans);
        let blank = |s: &Span| lamar_core::text::is_blank(index.slice(s.start, s.end));
        let tagged = encode(&text, &spans).unwrap();
        let lamar = decode(&tagged, &text, &DecodeOptions::default());
        prop_assert_eq!(sorted(lamar.plain_spans()), sorted(spans.clone()));
        let reference = decode(&tagged, &text, &DecodeOptions::reference());
        let blanks = spans.iter().filter(|s| blank(s)).count();
        let empty_drops = reference.dropped.iter().filter(|d| d.reason.as_str() == "empty_span").count();
        prop_assert_eq!(empty_drops, blanks);
        for s in reference.plain_spans() {
            prop_assert!(!blank(&s), "a blank span was placed: {}", s);
        }
    }

    /// A model that writes Windows line ends (`\r\n`) into its copy of an LF document: every
    /// span is still placed, with its category and its text up to whitespace. And a CRLF raw
    /// text file reads as the LF text (Python's universal newlines), so offsets agree.
    #[test]
    fn crlf_outputs_and_documents((text, spans) in spans_over(plain_lf_text())) {
        let index = CharIndex::new(&text);
        let spans = canonical_non_blank(&text, &spans);
        let crlf = encode(&text, &spans).unwrap().replace('\n', "\r\n");
        let decoded = decode(&crlf, &text, &DecodeOptions::default());
        prop_assert!(decoded.dropped.is_empty(), "dropped {:?}", decoded.dropped);
        let words = |s: &str| s.split(lamar_core::text::is_python_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        let mut want: Vec<(u8, String)> = spans.iter().map(|s| (s.category.id(), words(index.slice(s.start, s.end)))).collect();
        let mut got: Vec<(u8, String)> = decoded.plain_spans().iter().map(|s| (s.category.id(), words(index.slice(s.start, s.end)))).collect();
        want.sort();
        got.sort();
        prop_assert_eq!(got, want);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.txt");
        std::fs::write(&path, text.replace('\n', "\r\n")).unwrap();
        prop_assert_eq!(lamar_core::formats::raw_text::read_raw_text(&path).unwrap(), text);
    }
}

fn check_inside(spans: &[Span], raw: &str) -> Result<(), TestCaseError> {
    let index = CharIndex::new(raw);
    for s in spans {
        prop_assert!(
            s.start < s.end && s.end <= index.len(),
            "{s} outside {}",
            index.len()
        );
        let byte_start = index.byte(s.start);
        let byte_end = index.byte(s.end);
        prop_assert!(raw.is_char_boundary(byte_start) && raw.is_char_boundary(byte_end));
    }
    Ok(())
}

/// Strings mixing valid, unknown, broken and unbalanced tags with text.
fn arbitrary_tagged() -> impl Strategy<Value = String> {
    let tag = category().prop_flat_map(|c| {
        prop_oneof![
            Just(format!("<{}>", c.tag())),
            Just(format!("</{}>", c.tag())),
            Just(format!("<{}", c.tag())),
            Just(format!("</ {}>", c.tag())),
            Just(format!("<{}>", c.tag().to_uppercase())),
        ]
    });
    prop::collection::vec(prop_oneof![3 => text_piece(), 2 => tag], 0..60).prop_map(|v| v.concat())
}
