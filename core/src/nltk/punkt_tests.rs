//! Tests of the Punkt sentence splitter (`punkt.rs`).

use super::*;

#[test]
fn english_model_loads() {
    let p = PunktParameters::english();
    assert_eq!(p.abbrev_types.len(), 156);
    assert_eq!(p.sent_starters.len(), 39);
    assert_eq!(p.collocations.len(), 37);
    assert_eq!(p.ortho_context.len(), 20_366);
    assert!(p.abbrev_types.contains(". . "));
    // Every entry of the files, with its value, in the right place (not only the counts).
    let data = |name: &str| {
        let path = format!(
            "{}/data/punkt_tab/english/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    };
    for line in data("abbrev_types.txt").split('\n') {
        assert!(p.abbrev_types.contains(line), "abbreviation {line:?}");
    }
    for line in data("sent_starters.txt").split('\n') {
        assert!(p.sent_starters.contains(line), "sentence starter {line:?}");
        assert!(
            !p.abbrev_types.contains(line),
            "{line:?} is no abbreviation"
        );
    }
    for line in data("collocations.tab").split('\n') {
        let (a, b) = line.split_once('\t').unwrap();
        assert!(p.collocations.contains(&(a.into(), b.into())), "{line:?}");
    }
    assert!(
        !p.collocations
            .contains(&("abreast".into(), "##number##".into()))
    );
    for line in data("ortho_context.tab").split('\n') {
        let (word, flags) = line.split_once('\t').unwrap();
        assert_eq!(p.ortho(word), flags.parse::<u32>().unwrap(), "{word:?}");
    }
}

#[test]
fn evaluator_parity_fixture() {
    let text =
        "Pt's\nLasix was held. Pt can't\ntake ASA due to GI bleed. Troponin 'neg' x3, d/c'd\nhome.";
    assert_eq!(
        sent_tokenize(text, NltkVersion::V3_9),
        vec![
            "Pt's\nLasix was held.",
            "Pt can't\ntake ASA due to GI bleed.",
            "Troponin 'neg' x3, d/c'd\nhome."
        ]
    );
}

#[test]
fn punkt_documented_examples() {
    let text = "Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.  And sometimes sentences\ncan start with non-capitalized words.  i is a good variable\nname.";
    // NLTK's own docstring example and its documented output.
    assert_eq!(
        sent_tokenize(text, NltkVersion::V3_9),
        vec![
            "Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.",
            "And sometimes sentences\ncan start with non-capitalized words.",
            "i is a good variable\nname."
        ]
    );
    let text = "(How does it deal with this parenthesis?)  \"It should be part of the\nprevious sentence.\" \"(And the same with this one.)\" ('And this one!')\n\"('(And (this)) '?)\" [(and this. )]";
    assert_eq!(
        sent_tokenize(text, NltkVersion::V3_9),
        vec![
            "(How does it deal with this parenthesis?)",
            "\"It should be part of the\nprevious sentence.\"",
            "\"(And the same with this one.)\"",
            "('And this one!')",
            "\"('(And (this)) '?)\"",
            "[(and this. )]"
        ]
    );
}
