//! A synthetic corpus in MedDec format, and simulated models that predict on it.
//!
//! We hold no MIMIC data, so lamar generates its own: discharge summaries with the layout of
//! MIMIC-III notes (section headers, de-identification brackets such as `[**Hospital1 18**]`,
//! abbreviations, contractions, quotes, lists, odd whitespace, some non-ASCII and astral
//! characters) and gold decisions of all nine categories, nested, crossing and duplicated, plus a
//! few out-of-scope labels (`Category 10`, `Category 11`, `TBD`). Every demographic group of
//! `stats.csv` is represented. Output is a pure function of the configuration and seed.
//!
//! [`simulate`] turns the gold into the outputs of *simulated* models: noisy copies with missed
//! spans, shifted boundaries, wrong categories, duplicates and spurious spans, written both as
//! offsets and as the tagged text a generative model would emit (with the occasional typo or
//! trimmed whitespace), so every later stage can be exercised before real models exist.

mod builder;
mod noise;
pub mod vocab;
mod write;

pub use noise::{NoiseRates, SimulatedModel, simulate};
pub use write::{CorpusLayout, write_corpus, write_noteevents, write_simulated_model};

use crate::category::GoldLabel;
use crate::formats::gold::{GoldAnnotation, GoldDocument};
use crate::formats::stats::StatsRow;
use crate::span::Span;
use builder::DocBuilder;
use rand::seq::IndexedRandom;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthConfig {
    /// Number of documents.
    pub docs: usize,
    /// Seed; the corpus is a pure function of it and `docs`.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { docs: 60, seed: 7 }
    }
}

/// One synthetic note with its gold.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthDocument {
    /// `SUBJECT_HADM_ROW` id.
    pub id: String,
    /// The raw text (only `\n` line ends).
    pub text: String,
    /// Whether the raw file is written with `\r\n` line ends (read back with universal newlines,
    /// the offsets still hold).
    pub crlf_on_disk: bool,
    /// In-scope gold spans, in annotation order.
    pub gold: Vec<Span>,
    /// Out-of-scope gold annotations: start, end, label string.
    pub out_of_scope: Vec<(usize, usize, String)>,
    /// Demographics row.
    pub stats: StatsRow,
}

impl SynthDocument {
    /// The MedDec gold file content of this document.
    pub fn gold_document(&self) -> GoldDocument {
        let index = crate::text::CharIndex::new(&self.text);
        let mut annotations: Vec<GoldAnnotation> = self
            .gold
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                GoldDocument::annotation_for(
                    s,
                    index.slice(s.start, s.end),
                    &format!("{}-{i}", self.id),
                )
            })
            .collect();
        for (i, (s, e, label)) in self.out_of_scope.iter().enumerate() {
            annotations.push(GoldAnnotation {
                start: Some(*s as i64),
                end: Some(*e as i64),
                label: GoldLabel::OutOfScope(label.clone()),
                decision: Some(index.slice(*s, *e).to_string()),
                annotation_id: Some(serde_json::Value::String(format!("{}-x{i}", self.id))),
            });
        }
        GoldDocument {
            id: Some(self.id.clone()),
            annotations,
        }
    }
}

/// A generated corpus with its splits.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticCorpus {
    /// The documents, in generation order.
    pub documents: Vec<SynthDocument>,
    /// Training ids (about 78 %).
    pub train: Vec<String>,
    /// Validation ids (about 12 %).
    pub val: Vec<String>,
    /// Test ids (the rest).
    pub test: Vec<String>,
}

const ETHNICITIES: &[&str] = &[
    "W",
    "AA",
    "Hisp.",
    "Asian",
    "NH",
    "OTHER",
    "UNKNOWN/NOT SPECIFIED",
    "UNABLE TO OBTAIN",
    "PATIENT DECLINED TO ANSWER",
];

/// Generates a corpus.
pub fn generate(config: &SynthConfig) -> SyntheticCorpus {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut documents = Vec::with_capacity(config.docs);
    let mut used_ids = std::collections::HashSet::new();
    for n in 0..config.docs {
        let (subject, hadm, row) = loop {
            let key = (
                rng.random_range(10..99_999u32),
                rng.random_range(100_000..199_999u32),
                rng.random_range(1..60_000u32),
            );
            if used_ids.insert(key) {
                break key;
            }
        };
        let id = format!("{subject}_{hadm}_{row}");
        // The first documents cycle through every group so that all are covered.
        let ethnicity = match ETHNICITIES.get(n) {
            Some(e) => *e,
            None => ETHNICITIES.choose(&mut rng).copied().unwrap_or("W"),
        };
        let language = if n % 3 == 1 { "Non-ENGL" } else { "ENGL" };
        let gender = if n % 2 == 0 { "F" } else { "M" };
        let stats = StatsRow {
            subject_id: subject.to_string(),
            hadm_id: hadm.to_string(),
            row_id: row.to_string(),
            ethnicity: ethnicity.to_string(),
            language: language.to_string(),
            gender: gender.to_string(),
        };
        let mut doc = DocBuilder::new();
        write_note(&mut doc, &mut rng, gender);
        let (text, gold, out_of_scope) = doc.finish();
        documents.push(SynthDocument {
            id,
            text,
            crlf_on_disk: rng.random_bool(0.05),
            gold,
            out_of_scope,
            stats,
        });
    }
    let mut ids: Vec<String> = documents.iter().map(|d| d.id.clone()).collect();
    ids.shuffle(&mut rng);
    let n = ids.len();
    let n_train = (n * 78).div_ceil(100).min(n);
    let n_val = ((n * 12).div_ceil(100)).min(n - n_train);
    let test = ids.split_off(n_train + n_val);
    let val = ids.split_off(n_train);
    SyntheticCorpus {
        documents,
        train: ids,
        val,
        test,
    }
}

/// Writes one whole discharge summary.
fn write_note(doc: &mut DocBuilder, rng: &mut ChaCha8Rng, gender: &str) {
    let (y, m, d) = (
        rng.random_range(2100..2190),
        rng.random_range(1..13),
        rng.random_range(1..27),
    );
    let stay = rng.random_range(2..20);
    doc.text(&format!(
        "Admission Date:  [**{y}-{m}-{d}**]{}Discharge Date:   [**{y}-{m}-{}**]\n\n",
        " ".repeat(rng.random_range(3..10)),
        d + stay.min(27 - d)
    ));
    doc.text(&format!(
        "Date of Birth:  [**{}-{}-{}**]             Sex:   {gender}\n\n",
        y - rng.random_range(25..95),
        rng.random_range(1..13),
        rng.random_range(1..29)
    ));
    doc.text(&format!(
        "Service: {}\n\nAllergies:\n{}\n\n",
        vocab::SERVICES.choose(rng).copied().unwrap_or("MEDICINE"),
        if rng.random_bool(0.6) {
            "Patient recorded as having No Known Allergies to Drugs"
        } else {
            "Penicillins / Sulfa (Sulfonamide Antibiotics)"
        }
    ));
    doc.text(&format!(
        "Attending:[**First Name3 (LF) {}**]\nChief Complaint:\n",
        rng.random_range(100..3000)
    ));
    let complaint = vocab::COMPLAINTS
        .choose(rng)
        .copied()
        .unwrap_or("{symptom}");
    doc.template(rng, complaint);
    doc.text("\n\nHistory of Present Illness:\n");
    doc.text(&format!(
        "{} y/o {} w/ ",
        rng.random_range(25..95),
        if gender == "F" { "F" } else { "M" }
    ));
    let pmh = doc.fill(rng, "pmh");
    doc.text(&format!("{pmh} who presented to [**Hospital1 18**] with "));
    let symptom = doc.fill(rng, "symptom");
    doc.text(&format!("{symptom}. "));
    sentences(doc, rng, vocab::COURSE, 2..4);
    doc.text("\n\nPast Medical History:\n");
    for _ in 0..rng.random_range(2..6) {
        let bullet = if rng.random_bool(0.5) { "- " } else { "# " };
        doc.text(bullet);
        let pmh = doc.fill(rng, "pmh");
        doc.text(&pmh);
        if rng.random_bool(0.15) {
            doc.text("  ");
        }
        doc.text("\n");
    }
    doc.text("\nBrief Hospital Course:\n");
    for _ in 0..rng.random_range(2..5) {
        doc.text("# ");
        doc.template(rng, "<3>{problem}</3>");
        doc.text(": ");
        sentences(doc, rng, vocab::COURSE, 2..6);
        if rng.random_bool(0.1) {
            let odd = vocab::ODD_TOKENS.choose(rng).copied().unwrap_or("±");
            doc.text(&format!(" ({odd})"));
        }
        doc.text(if rng.random_bool(0.2) {
            "\n\n\n"
        } else {
            "\n\n"
        });
    }
    doc.text("Discharge Medications:\n");
    for i in 1..=rng.random_range(2..7) {
        doc.text(&format!("{i}. "));
        if rng.random_bool(0.5) {
            doc.template(
                rng,
                "<5>{drug} {dose} Tablet Sig: One (1) Tablet {route} {freq}</5>.",
            );
        } else {
            doc.template(
                rng,
                "{drug} {dose} Tablet Sig: One (1) Tablet {route} {freq}.",
            );
        }
        doc.text("\n");
    }
    doc.text(&format!(
        "\n\nDischarge Disposition:\n{}\n\nDischarge Diagnosis:\n",
        vocab::DISPOSITIONS.choose(rng).copied().unwrap_or("Home")
    ));
    doc.template(
        rng,
        "Primary: <3>{problem}</3>\nSecondary: <3>{problem}</3>, {pmh}",
    );
    doc.text("\n\nDischarge Condition:\nMental Status: Clear and coherent.\n\n");
    doc.text("Discharge Instructions:\n");
    sentences(doc, rng, vocab::INSTRUCTIONS, 1..4);
    doc.text("\n\nFollowup Instructions:\n");
    sentences(doc, rng, vocab::FOLLOWUP, 1..3);
    doc.text("\n\n");
    if rng.random_bool(0.3) {
        doc.text(&format!(
            "                             [**First Name11 (Name Pattern1) **] [**Last Name (NamePattern4) {}**] MD [**MD Number(1) 1202**]\n",
            rng.random_range(100..999)
        ));
    }
}

/// Writes a random number of template sentences separated by varied whitespace.
fn sentences(
    doc: &mut DocBuilder,
    rng: &mut ChaCha8Rng,
    pool: &[&str],
    count: std::ops::Range<usize>,
) {
    for k in 0..rng.random_range(count) {
        if k > 0 {
            let sep = match rng.random_range(0..10) {
                0 => "  ",
                1 => "\n",
                2 => " \t",
                _ => " ",
            };
            doc.text(sep);
        }
        let template = pool.choose(rng).copied().unwrap_or("");
        doc.template(rng, template);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category;
    use crate::text::CharIndex;

    #[test]
    fn deterministic_by_seed() {
        let a = generate(&SynthConfig { docs: 5, seed: 1 });
        let b = generate(&SynthConfig { docs: 5, seed: 1 });
        let c = generate(&SynthConfig { docs: 5, seed: 2 });
        assert_eq!(a, b);
        assert_ne!(a.documents[0].text, c.documents[0].text);
    }

    #[test]
    fn corpus_has_every_category_group_and_shape() {
        let corpus = generate(&SynthConfig { docs: 40, seed: 3 });
        let spans: Vec<(&SynthDocument, Span)> = corpus
            .documents
            .iter()
            .flat_map(|d| d.gold.iter().map(move |s| (d, *s)))
            .collect();
        for c in Category::ALL {
            assert!(spans.iter().any(|(_, s)| s.category == c), "no {c}");
        }
        let labels: std::collections::HashSet<&str> = corpus
            .documents
            .iter()
            .flat_map(|d| d.out_of_scope.iter().map(|o| o.2.as_str()))
            .collect();
        assert!(labels.iter().any(|l| l.starts_with("Category 10")));
        assert!(labels.contains("TBD"));
        // Nested, crossing and duplicate spans all occur.
        let mut nested = false;
        let mut crossing = false;
        let mut duplicate = false;
        for d in &corpus.documents {
            for (i, a) in d.gold.iter().enumerate() {
                for b in &d.gold[i + 1..] {
                    nested |= a.start <= b.start && b.end <= a.end && a != b;
                    crossing |= a.start < b.start && b.start < a.end && a.end < b.end;
                    duplicate |= a.start == b.start && a.end == b.end;
                }
            }
        }
        assert!(nested && crossing && duplicate);
        // Every span lies inside its text, and the texts hold the promised oddities.
        for (d, s) in &spans {
            assert!(s.start < s.end && s.end <= d.text.chars().count());
        }
        let all: String = corpus.documents.iter().map(|d| d.text.as_str()).collect();
        for needle in ["[**", "b.i.d.", "n't", "\"", "\t", "\u{a0}", "<", "µ"] {
            assert!(all.contains(needle), "no {needle:?}");
        }
        assert!(
            all.chars().any(|c| c as u32 > 0xFFFF),
            "no astral character"
        );
        assert!(!all.contains('\r'));
        // Demographic coverage.
        let races: std::collections::HashSet<_> =
            corpus.documents.iter().map(|d| d.stats.race()).collect();
        assert_eq!(races.len(), 5);
        // Splits partition the ids.
        let mut ids: Vec<&String> = corpus
            .train
            .iter()
            .chain(&corpus.val)
            .chain(&corpus.test)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40);
        assert!(!corpus.val.is_empty() && !corpus.test.is_empty());
    }

    #[test]
    fn gold_decision_text_matches_offsets() {
        let corpus = generate(&SynthConfig { docs: 3, seed: 9 });
        for d in &corpus.documents {
            let index = CharIndex::new(&d.text);
            let gold = d.gold_document();
            for a in &gold.annotations {
                let (s, e) = (a.start.unwrap() as usize, a.end.unwrap() as usize);
                assert_eq!(a.decision.as_deref(), Some(index.slice(s, e)));
            }
        }
    }
}
