//! The MedDec shared-task scorer, exact to the official `evaluate.py` (CLU-UML/MedDec f4374cd).
//!
//! * **Span F1**: micro precision/recall over sets of `(file, label, lower-cased refined text)`
//!   ([`refine`]): matching is by text, not position, and duplicates collapse.
//! * **Token F1**: NLTK `word_tokenize` tokens, labelled by the spans over them ([`token_f1`]),
//!   macro F1 over the labels present in each file, averaged over files.
//! * **Shared-task score**: base = (span + token) / 2 overall and per demographic group of
//!   `stats.csv`; final = (base + worst group base) / 2.
//!
//! A [`Scorer`] tokenizes and refines the gold once, so scoring many prediction sets (tuning
//! loops) costs only the predictions' share; [`evaluate::evaluate_files`] loads files and scores
//! them (the command line's and the pipeline's entry point).
//!
//! Deliberate differences from the Python script, none of which changes a value it computes
//! deterministically:
//! * the script averages per-file token F1 in Python set order, which changes with
//!   `PYTHONHASHSEED` and can move the last bits of the mean; lamar sums in sorted file order;
//! * where the script crashes (offsets that are not integers, a missing raw text), lamar returns
//!   an error naming the file.

pub mod evaluate;
pub mod load;
pub mod refine;
pub mod report;
pub mod token_f1;

use crate::formats::gold::GoldAnnotation;
use crate::formats::predictions::PredictedSpan;
use crate::formats::stats::{Language, Race, Sex, StatsRow, stats_key_of};
use crate::nltk::NltkVersion;
use crate::nltk::word_tokenize::token_spans;
use crate::text::CharIndex;
use refine::{AlignError, refine_span};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};
pub use token_f1::TokenF1Rule;

/// Scoring options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScorerOptions {
    /// NLTK release whose tokenizers to reproduce.
    pub nltk: NltkVersion,
    /// How overlapping spans label tokens.
    pub token_f1: TokenF1Rule,
}

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A gold offset is missing or not an integer (the Python script crashes here).
    #[error("gold of {file}: annotation {index} has no integer {field}")]
    BadGoldOffset {
        /// Document id.
        file: String,
        /// Index of the annotation in the file.
        index: usize,
        /// `start_offset` or `end_offset`.
        field: &'static str,
    },
    /// NLTK's tokenizer cannot find its own token again (NLTK raises `ValueError`).
    #[error("{file}: span {start}..{end}: {source}")]
    Tokenizer {
        /// Document id.
        file: String,
        /// Span start.
        start: i64,
        /// Span end.
        end: i64,
        /// The tokenizer's complaint.
        source: AlignError,
    },
}

/// Span F1 counts and scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct SpanScore {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// True positives.
    #[serde(skip)]
    pub tp: usize,
    /// False positives.
    #[serde(skip)]
    pub fp: usize,
    /// False negatives.
    #[serde(skip)]
    pub fn_: usize,
}

impl SpanScore {
    fn from_counts(tp: usize, fp: usize, fn_: usize) -> SpanScore {
        let (precision, recall, f1) = precision_recall_f1(tp, fp, fn_);
        SpanScore {
            precision,
            recall,
            f1,
            tp,
            fp,
            fn_,
        }
    }
}

/// Precision, recall and F1 from counts, as the evaluator computes them (0 for empty
/// denominators; F1 as `2 * p * r / (p + r)` in that order of operations).
pub(crate) fn precision_recall_f1(tp: usize, fp: usize, fn_: usize) -> (f64, f64, f64) {
    let precision = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let recall = if tp + fn_ > 0 {
        tp as f64 / (tp + fn_) as f64
    } else {
        0.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

/// Scores of one demographic group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupScore {
    /// Gold files in the group.
    pub n_files: usize,
    /// Distinct refined gold spans in those files.
    pub n_spans: usize,
    /// Span F1 over the group's files.
    pub span_f1: f64,
    /// Mean token F1 over the group's files.
    pub token_f1: f64,
    /// `(span_f1 + token_f1) / 2`.
    pub base_score: f64,
}

/// Groups of one dimension, in the evaluator's order, as a JSON object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Groups(pub Vec<(String, GroupScore)>);

impl Serialize for Groups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Subgroup scores per dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Subgroups {
    /// Female, Male.
    pub sex: Groups,
    /// White, African American, Hispanic, Asian, Other.
    pub race: Groups,
    /// English, Non-English.
    pub language: Groups,
}

/// The shared-task final score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedTask {
    /// `(span_f1 + token_f1) / 2` overall.
    pub base_score: f64,
    /// The lowest group base score (0 when no group has files).
    pub worst_group_score: f64,
    /// `(base + worst) / 2`.
    pub final_score: f64,
    /// Every group's scores.
    pub subgroups: Subgroups,
}

/// File counts, as the evaluator reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Statistics {
    /// Gold files.
    pub gold_files: usize,
    /// Prediction files.
    pub prediction_files: usize,
    /// Files with raw text (gold ∪ predictions).
    pub files_with_text: usize,
}

/// Everything the evaluator reports, plus per-file token F1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Span precision, recall and F1.
    pub span_f1: SpanScore,
    /// Mean per-file token F1.
    pub token_f1: f64,
    /// File counts.
    pub statistics: Statistics,
    /// Present when demographics were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_task: Option<SharedTask>,
    /// Token F1 of each file (lamar's addition).
    pub token_f1_by_file: BTreeMap<String, f64>,
}

/// Demographic groups of one gold file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileGroups {
    sex: Sex,
    race: Race,
    language: Language,
}

/// One document as the scorer keeps it: tokens and gold, prepared once.
struct PreparedFile {
    text: String,
    tokens: Vec<(usize, usize)>,
    gold_labels: Option<Vec<i8>>,
    gold_set: HashSet<(u8, String)>,
    /// Refined texts of the gold offsets, reused for predictions at the same offsets.
    refined: RefineCache,
    groups: Option<FileGroups>,
}

impl PreparedFile {
    /// A document's text and tokens, before any gold is attached.
    fn without_gold(text: &str, nltk: NltkVersion) -> PreparedFile {
        PreparedFile {
            text: text.to_string(),
            tokens: if text.is_empty() {
                Vec::new()
            } else {
                token_spans(text, nltk)
            },
            gold_labels: None,
            gold_set: HashSet::new(),
            refined: RefineCache::new(),
            groups: None,
        }
    }
}

/// A scorer bound to one gold set: scores any number of prediction sets.
pub struct Scorer {
    options: ScorerOptions,
    files: BTreeMap<String, PreparedFile>,
    gold_ids: Vec<String>,
    has_stats: bool,
}

/// Lower-cased refined text of each `(start, end)` already seen in a file.
type RefineCache = HashMap<(i64, i64), Option<String>>;

/// Refined `(label, lower-cased text)` of spans. Offsets found in `cache` are not refined again;
/// new ones are added to `fresh` when given.
fn refined_set(
    file: &str,
    text: &CharIndex<'_>,
    spans: &[(i64, i64, u8)],
    version: NltkVersion,
    cache: Option<&RefineCache>,
    mut fresh: Option<&mut RefineCache>,
) -> Result<HashSet<(u8, String)>, ScoreError> {
    let mut set = HashSet::with_capacity(spans.len());
    for &(start, end, label) in spans {
        let refined = match cache.and_then(|c| c.get(&(start, end))) {
            Some(hit) => hit.clone(),
            None => {
                let tokenizer_error = |source| ScoreError::Tokenizer {
                    file: file.to_string(),
                    start,
                    end,
                    source,
                };
                let r = refine_span(text, start, end, version)
                    .map_err(tokenizer_error)?
                    .map(|t| t.to_lowercase());
                if let Some(fresh) = fresh.as_deref_mut() {
                    fresh.insert((start, end), r.clone());
                }
                r
            }
        };
        if let Some(t) = refined {
            set.insert((label, t));
        }
    }
    Ok(set)
}

/// Gold annotations as `(start, end, label)`, in-scope labels only, in file order.
fn gold_spans(file: &str, anns: &[GoldAnnotation]) -> Result<Vec<(i64, i64, u8)>, ScoreError> {
    let mut out = Vec::with_capacity(anns.len());
    for (index, a) in anns.iter().enumerate() {
        let Some(category) = a.label.category() else {
            continue;
        };
        let start = a.start.ok_or(ScoreError::BadGoldOffset {
            file: file.to_string(),
            index,
            field: "start_offset",
        })?;
        let end = a.end.ok_or(ScoreError::BadGoldOffset {
            file: file.to_string(),
            index,
            field: "end_offset",
        })?;
        out.push((start, end, category.id()));
    }
    Ok(out)
}

/// Predictions as `(start, end, label)`, labels 1 to 9 only, in list order.
fn predicted_spans(preds: &[PredictedSpan]) -> Vec<(i64, i64, u8)> {
    preds
        .iter()
        .filter(|p| (1..=9).contains(&p.category))
        .map(|p| (p.start_offset, p.end_offset, p.category as u8))
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

impl Scorer {
    /// Prepares the gold: `raw_texts` must hold every gold file and every file the predictions
    /// to be scored may name (files without text score as the evaluator scores them: no spans,
    /// no token F1). `stats` enables the shared-task score.
    pub fn new(
        gold: &BTreeMap<String, Vec<GoldAnnotation>>,
        raw_texts: &BTreeMap<String, String>,
        stats: Option<&[StatsRow]>,
        options: ScorerOptions,
    ) -> Result<Scorer, ScoreError> {
        let stats_by_key: Option<HashMap<(i64, i64, i64), FileGroups>> = stats.map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    r.key().map(|k| {
                        (
                            k,
                            FileGroups {
                                sex: r.sex(),
                                race: r.race(),
                                language: r.language(),
                            },
                        )
                    })
                })
                .collect()
        });
        let mut files = BTreeMap::new();
        for (id, text) in raw_texts {
            files.insert(id.clone(), PreparedFile::without_gold(text, options.nltk));
        }
        for (id, anns) in gold {
            let spans = gold_spans(id, anns)?;
            let file = files.entry(id.clone()).or_insert_with(|| PreparedFile {
                text: String::new(),
                tokens: Vec::new(),
                gold_labels: None,
                gold_set: HashSet::new(),
                refined: RefineCache::new(),
                groups: None,
            });
            let index = CharIndex::new(&file.text);
            let mut refined = RefineCache::new();
            file.gold_set =
                refined_set(id, &index, &spans, options.nltk, None, Some(&mut refined))?;
            file.refined = refined;
            file.gold_labels = Some(token_f1::label_tokens(
                &file.tokens,
                &spans,
                options.token_f1,
            ));
            file.groups = stats_by_key
                .as_ref()
                .and_then(|s| stats_key_of(id).and_then(|k| s.get(&k).copied()));
        }
        Ok(Scorer {
            options,
            files,
            gold_ids: gold.keys().cloned().collect(),
            has_stats: stats.is_some(),
        })
    }

    /// Whether the scorer knows `file` (it is in the gold or its raw text was given).
    pub fn knows(&self, file: &str) -> bool {
        self.files.contains_key(file)
    }

    /// Adds the raw text of a file the gold does not have (a document only predictions name),
    /// so that spans predicted on it are scored as the evaluator scores them. A file the scorer
    /// already knows is left as it is.
    pub fn add_text(&mut self, file: &str, text: &str) {
        if !self.files.contains_key(file) {
            let prepared = PreparedFile::without_gold(text, self.options.nltk);
            self.files.insert(file.to_string(), prepared);
        }
    }

    /// Refines spans at these offsets ahead of time, so that scoring predictions made of them
    /// (an ensemble of these models, in a tuning loop) does no tokenizer work.
    pub fn prime(
        &mut self,
        file: &str,
        offsets: impl IntoIterator<Item = (i64, i64)>,
    ) -> Result<(), ScoreError> {
        let Some(prepared) = self.files.get_mut(file) else {
            return Ok(());
        };
        let index = CharIndex::new(&prepared.text);
        for (start, end) in offsets {
            if prepared.refined.contains_key(&(start, end)) {
                continue;
            }
            let refined = refine_span(&index, start, end, self.options.nltk)
                .map_err(|source| ScoreError::Tokenizer {
                    file: file.to_string(),
                    start,
                    end,
                    source,
                })?
                .map(|t| t.to_lowercase());
            prepared.refined.insert((start, end), refined);
        }
        Ok(())
    }

    /// Scores one prediction set (keyed by file id).
    pub fn score(
        &self,
        predictions: &BTreeMap<String, Vec<PredictedSpan>>,
    ) -> Result<Evaluation, ScoreError> {
        let empty = HashSet::new();
        let mut pred_sets: BTreeMap<&str, HashSet<(u8, String)>> = BTreeMap::new();
        let mut token_by_file = BTreeMap::new();
        let gold_ids: HashSet<&str> = self.gold_ids.iter().map(String::as_str).collect();
        let all: std::collections::BTreeSet<&str> = gold_ids
            .iter()
            .copied()
            .chain(predictions.keys().map(String::as_str))
            .collect();
        for id in &all {
            let file = self.files.get(*id);
            let text = file.map_or("", |f| f.text.as_str());
            let index = CharIndex::new(text);
            let preds = predictions
                .get(*id)
                .map(|p| predicted_spans(p))
                .unwrap_or_default();
            if predictions.contains_key(*id) {
                let cache = file.map(|f| &f.refined);
                pred_sets.insert(
                    id,
                    refined_set(id, &index, &preds, self.options.nltk, cache, None)?,
                );
            }
            let Some(file) = file else { continue };
            if file.text.is_empty() || file.tokens.is_empty() {
                continue;
            }
            let gold_labels = match &file.gold_labels {
                Some(l) => l.clone(),
                None => vec![0; file.tokens.len()],
            };
            let pred_labels = token_f1::label_tokens(&file.tokens, &preds, self.options.token_f1);
            token_by_file.insert(
                id.to_string(),
                token_f1::token_f1(&gold_labels, &pred_labels, self.options.token_f1),
            );
        }
        // Span F1 over all files, keyed by file.
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for id in &all {
            let g = if gold_ids.contains(id) {
                self.files.get(*id).map_or(&empty, |f| &f.gold_set)
            } else {
                &empty
            };
            let p = pred_sets.get(id).unwrap_or(&empty);
            let common = g.intersection(p).count();
            tp += common;
            fp += p.len() - common;
            fn_ += g.len() - common;
        }
        let span_f1 = SpanScore::from_counts(tp, fp, fn_);
        let token_f1 = mean(token_by_file.values().copied());
        let shared_task = self
            .has_stats
            .then(|| self.shared_task(&span_f1, token_f1, &pred_sets, &token_by_file));
        Ok(Evaluation {
            span_f1,
            token_f1,
            statistics: Statistics {
                gold_files: self.gold_ids.len(),
                prediction_files: predictions.len(),
                files_with_text: all.len(),
            },
            shared_task,
            token_f1_by_file: token_by_file,
        })
    }

    fn shared_task(
        &self,
        span: &SpanScore,
        token: f64,
        pred_sets: &BTreeMap<&str, HashSet<(u8, String)>>,
        token_by_file: &BTreeMap<String, f64>,
    ) -> SharedTask {
        let empty = HashSet::new();
        let group_score = |member: &dyn Fn(&FileGroups) -> bool| -> Option<GroupScore> {
            let files: Vec<&str> = self
                .gold_ids
                .iter()
                .filter(|id| {
                    self.files
                        .get(*id)
                        .and_then(|f| f.groups)
                        .is_some_and(|g| member(&g))
                })
                .map(String::as_str)
                .collect();
            if files.is_empty() {
                return None;
            }
            let (mut tp, mut fp, mut fn_, mut n_spans) = (0, 0, 0, 0);
            for id in &files {
                let g = self.files.get(*id).map_or(&empty, |f| &f.gold_set);
                let p = pred_sets.get(id).unwrap_or(&empty);
                let common = g.intersection(p).count();
                tp += common;
                fp += p.len() - common;
                fn_ += g.len() - common;
                n_spans += g.len();
            }
            let span_f1 = SpanScore::from_counts(tp, fp, fn_).f1;
            let token_f1 = mean(
                files
                    .iter()
                    .filter_map(|id| token_by_file.get(*id).copied()),
            );
            Some(GroupScore {
                n_files: files.len(),
                n_spans,
                span_f1,
                token_f1,
                base_score: (span_f1 + token_f1) / 2.0,
            })
        };
        let mut subgroups = Subgroups::default();
        for (name, sex) in [("Female", Sex::Female), ("Male", Sex::Male)] {
            if let Some(s) = group_score(&|g| g.sex == sex) {
                subgroups.sex.0.push((name.to_string(), s));
            }
        }
        for (name, race) in [
            ("White", Race::White),
            ("African American", Race::AfricanAmerican),
            ("Hispanic", Race::Hispanic),
            ("Asian", Race::Asian),
            ("Other", Race::Other),
        ] {
            if let Some(s) = group_score(&|g| g.race == race) {
                subgroups.race.0.push((name.to_string(), s));
            }
        }
        for (name, language) in [
            ("English", Language::English),
            ("Non-English", Language::NonEnglish),
        ] {
            if let Some(s) = group_score(&|g| g.language == language) {
                subgroups.language.0.push((name.to_string(), s));
            }
        }
        let bases: Vec<f64> = [&subgroups.sex, &subgroups.race, &subgroups.language]
            .iter()
            .flat_map(|g| g.0.iter().map(|(_, s)| s.base_score))
            .collect();
        let base_score = (span.f1 + token) / 2.0;
        let worst_group_score = bases
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.min(b))))
            .unwrap_or(0.0);
        SharedTask {
            base_score,
            worst_group_score,
            final_score: (base_score + worst_group_score) / 2.0,
            subgroups,
        }
    }
}
