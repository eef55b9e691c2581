//! The viewer's state and computations, in plain Rust (tested natively and in the browser):
//! documents, models' predictions, optional gold and demographics; merging with any voter;
//! scoring every model and the merged result with the official scorer.
//!
//! Inputs arrive as file contents with their names, so every error names the file at fault.
//! Problems that do not stop the viewer (spans beyond a document's end, predictions for a
//! document without text) are collected as warnings.

use lamar_core::Span;
use lamar_core::ensemble::input::{VotesByDocument, add_model};
use lamar_core::ensemble::registry::{VoterSettings, voter_by_name};
use lamar_core::ensemble::scc::{BoundaryVote, SccParams};
use lamar_core::ensemble::{Explanation, Voter, merge_all};
use lamar_core::formats::gold::{GoldAnnotation, GoldDocument, parse_gold};
use lamar_core::formats::predictions::{PredictedSpan, PredictionFile, parse_predictions};
use lamar_core::formats::stats::{StatsRow, parse_stats};
use lamar_core::metrics::ExactSpanScore;
use lamar_core::scorer::{Evaluation, Scorer, ScorerOptions};
use lamar_core::text::universal_newlines;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the viewer holds.
#[derive(Default)]
pub struct Workbench {
    raw_texts: BTreeMap<String, String>,
    /// Model names (file names), in the order added: model index = position.
    models: Vec<String>,
    /// Each model's valid spans per document (for lanes and scores).
    predictions: Vec<BTreeMap<String, Vec<Span>>>,
    votes: VotesByDocument,
    gold: BTreeMap<String, Vec<GoldAnnotation>>,
    gold_sources: BTreeMap<String, String>,
    stats: Option<Vec<StatsRow>>,
    /// Built on first use; dropped when gold, texts or demographics change.
    scorer: Option<Scorer>,
}

/// Merge settings from the page.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MergeSettings {
    /// `scc`, `majority`, `union`, `intersection` or `wbf`.
    pub voter: String,
    /// Consensus thresholds.
    pub params: SccParams,
    /// `joint` or `independent`.
    pub boundary: BoundaryVote,
}

impl Default for MergeSettings {
    fn default() -> Self {
        MergeSettings {
            voter: "scc".into(),
            params: SccParams::default(),
            boundary: BoundaryVote::Joint,
        }
    }
}

/// One document's merged result.
#[derive(Debug, Serialize)]
pub struct MergedDocument {
    /// `(start, end, category)` triples.
    pub spans: Vec<(usize, usize, u8)>,
    /// Weights and clusters (empty for exact-span voters).
    pub explanation: Explanation,
}

/// Scores of one system (a model or the merged result).
#[derive(Debug, Serialize)]
pub struct SystemScores {
    /// Display name.
    pub name: String,
    /// Everything the official evaluator reports (when gold was given).
    pub evaluation: Evaluation,
    /// Per document: exact-span F1 (offsets and category) — lamar's addition for the list.
    pub exact_f1_by_file: BTreeMap<String, f64>,
}

fn spans_json(spans: &[Span]) -> Vec<(usize, usize, u8)> {
    spans
        .iter()
        .map(|s| (s.start, s.end, s.category.id()))
        .collect()
}

impl Workbench {
    /// An empty workbench.
    pub fn new() -> Workbench {
        Workbench::default()
    }

    /// Adds a document's raw text (`name` = file name; the id drops a `.txt` suffix). Newlines
    /// are normalised as Python's text mode does.
    pub fn add_raw_text(&mut self, name: &str, text: &str) {
        let id = name.strip_suffix(".txt").unwrap_or(name).to_string();
        self.raw_texts
            .insert(id, universal_newlines(text).into_owned());
        self.scorer = None;
    }

    /// Adds a predictions file as the next model.
    pub fn add_predictions(&mut self, name: &str, json: &str) -> Result<(), String> {
        let files = parse_predictions(json, name).map_err(|e| e.to_string())?;
        let index = self.models.len();
        add_model(&mut self.votes, index, json, name).map_err(|e| e.to_string())?;
        let mut by_doc = BTreeMap::new();
        for file in &files {
            by_doc.insert(file.file_name.clone(), file.spans(None).0);
        }
        self.models.push(name.to_string());
        self.predictions.push(by_doc);
        Ok(())
    }

    /// Adds a gold file (one document, or a list of them).
    pub fn add_gold(&mut self, name: &str, json: &str) -> Result<(), String> {
        let docs = parse_gold(json, name).map_err(|e| e.to_string())?;
        let single = docs.len() == 1;
        let stem = name.strip_suffix(".json").unwrap_or(name);
        for doc in docs {
            let id = match (&doc.id, single) {
                (Some(id), _) => id.clone(),
                (None, true) => stem.trim_end_matches('_').to_string(),
                (None, false) => continue,
            };
            if let Some(first) = self.gold_sources.insert(id.clone(), name.to_string()) {
                return Err(format!(
                    "{name}: document {id} already has gold (from {first})"
                ));
            }
            self.gold.insert(id, doc.annotations);
        }
        self.scorer = None;
        Ok(())
    }

    /// Sets the demographics (`stats.csv` contents).
    pub fn set_stats(&mut self, name: &str, csv: &str) -> Result<(), String> {
        self.stats = Some(parse_stats(csv, name).map_err(|e| e.to_string())?);
        self.scorer = None;
        Ok(())
    }

    /// A session on the synthetic corpus (`docs` documents, `models` simulated models), loaded
    /// through the same entry points as files: for demos, tests and benchmarks.
    pub fn synthetic(docs: usize, seed: u64, models: usize) -> Result<Workbench, String> {
        use lamar_core::synth::{NoiseRates, SynthConfig, generate, simulate};
        let corpus = generate(&SynthConfig { docs, seed });
        let mut bench = Workbench::new();
        for doc in &corpus.documents {
            bench.add_raw_text(&format!("{}.txt", doc.id), &doc.text);
            let gold = doc.gold_document().to_json().to_string();
            bench.add_gold(&format!("{}.json", doc.id), &gold)?;
        }
        let stats: Vec<StatsRow> = corpus.documents.iter().map(|d| d.stats.clone()).collect();
        let csv = lamar_core::formats::stats::stats_to_csv(&stats, "stats.csv")
            .map_err(|e| e.to_string())?;
        bench.set_stats("stats.csv", &csv)?;
        for k in 0..models {
            let sim = simulate(&corpus, k, &NoiseRates::default(), seed);
            let json = lamar_core::formats::predictions::predictions_to_string(&sim.predictions);
            bench.add_predictions(&format!("model_{k}.json"), &json)?;
        }
        Ok(bench)
    }

    /// Model names.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// Every document id (with text, gold or predictions), sorted.
    pub fn documents(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .raw_texts
            .keys()
            .chain(self.gold.keys())
            .chain(self.votes.keys())
            .cloned()
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether gold was given.
    pub fn has_gold(&self) -> bool {
        !self.gold.is_empty()
    }

    /// Problems worth showing that do not stop the viewer.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, by_doc) in self.predictions.iter().enumerate() {
            let model = &self.models[k];
            let (mut no_text, mut beyond) = (Vec::new(), 0usize);
            for (id, spans) in by_doc {
                match self.raw_texts.get(id) {
                    None => no_text.push(id.as_str()),
                    Some(text) => {
                        let len = text.chars().count();
                        beyond += spans.iter().filter(|s| s.end > len).count();
                    }
                }
            }
            if !no_text.is_empty() {
                out.push(format!(
                    "{model}: {} document(s) have no raw text (first: {}); their spans are not shown",
                    no_text.len(),
                    no_text[0]
                ));
            }
            if beyond > 0 {
                out.push(format!(
                    "{model}: {beyond} span(s) end beyond their document's text; they are not drawn"
                ));
            }
        }
        let missing: Vec<&String> = self
            .gold
            .keys()
            .filter(|id| !self.raw_texts.contains_key(*id))
            .collect();
        if let Some(first) = missing.first() {
            out.push(format!(
                "gold: {} document(s) have no raw text (first: {first}); they cannot be scored",
                missing.len()
            ));
        }
        out
    }

    fn voter(settings: &MergeSettings, explain: bool) -> Result<Box<dyn Voter>, String> {
        let settings_of_voter = VoterSettings {
            params: settings.params,
            boundary: settings.boundary,
            explain,
        };
        voter_by_name(&settings.voter, &settings_of_voter).map_err(|e| e.to_string())
    }

    /// Merges every document.
    pub fn merge(
        &self,
        settings: &MergeSettings,
    ) -> Result<BTreeMap<String, MergedDocument>, String> {
        let voter = Workbench::voter(settings, true)?;
        Ok(merge_all(&self.votes, voter.as_ref())
            .into_iter()
            .map(|(id, m)| {
                (
                    id,
                    MergedDocument {
                        spans: spans_json(&m.spans),
                        explanation: m.explanation,
                    },
                )
            })
            .collect())
    }

    /// The merged result as a predictions file (for export).
    pub fn merged_predictions(
        &self,
        settings: &MergeSettings,
    ) -> Result<Vec<PredictionFile>, String> {
        let voter = Workbench::voter(settings, false)?;
        Ok(merge_all(&self.votes, voter.as_ref())
            .iter()
            .map(|(id, m)| PredictionFile::from_spans(id.clone(), &m.spans))
            .collect())
    }

    fn scorer(&mut self) -> Result<&Scorer, String> {
        if self.scorer.is_none() {
            let scorer = Scorer::new(
                &self.gold,
                &self.raw_texts,
                self.stats.as_deref(),
                ScorerOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            self.scorer = Some(scorer);
        }
        Ok(self.scorer.as_ref().expect("just built"))
    }

    fn score(
        &mut self,
        name: &str,
        spans: &BTreeMap<String, Vec<Span>>,
    ) -> Result<SystemScores, String> {
        let predictions: BTreeMap<String, Vec<PredictedSpan>> = spans
            .iter()
            .map(|(id, s)| {
                let file = PredictionFile::from_spans(id.clone(), s);
                (id.clone(), file.predictions)
            })
            .collect();
        let evaluation = self
            .scorer()?
            .score(&predictions)
            .map_err(|e| e.to_string())?;
        let mut exact_f1_by_file = BTreeMap::new();
        for id in self.gold.keys() {
            let gold_spans = self.gold_spans(id).unwrap_or_default();
            let mut score = ExactSpanScore::default();
            score.add(&gold_spans, spans.get(id).map_or(&[][..], Vec::as_slice));
            exact_f1_by_file.insert(id.clone(), score.f1());
        }
        Ok(SystemScores {
            name: name.to_string(),
            evaluation,
            exact_f1_by_file,
        })
    }

    /// Scores of every model (when `with_models`) and of the merged result; needs gold.
    pub fn evaluate(
        &mut self,
        settings: &MergeSettings,
        with_models: bool,
    ) -> Result<Vec<SystemScores>, String> {
        if self.gold.is_empty() {
            return Err("no gold loaded: add gold JSON files to see scores".into());
        }
        let mut out = Vec::new();
        if with_models {
            for k in 0..self.models.len() {
                let spans = self.predictions[k].clone();
                let name = self.models[k].clone();
                out.push(self.score(&name, &spans)?);
            }
        }
        let voter = Workbench::voter(settings, false)?;
        let merged: BTreeMap<String, Vec<Span>> = merge_all(&self.votes, voter.as_ref())
            .into_iter()
            .map(|(id, m)| (id, m.spans))
            .collect();
        out.push(self.score(&format!("ensemble:{}", settings.voter), &merged)?);
        Ok(out)
    }

    /// The in-scope gold spans of a document that fit its text.
    fn gold_spans(&self, id: &str) -> Option<Vec<Span>> {
        let annotations = self.gold.get(id)?.clone();
        let len = self
            .raw_texts
            .get(id)
            .map_or(usize::MAX, |t| t.chars().count());
        Some(
            GoldDocument {
                id: None,
                annotations,
            }
            .spans(len)
            .0,
        )
    }

    /// One document for drawing: text (or `None`), each model's spans, gold spans.
    pub fn document(&self, id: &str) -> DocumentView {
        DocumentView {
            id: id.to_string(),
            text: self.raw_texts.get(id).cloned(),
            models: self
                .predictions
                .iter()
                .map(|by_doc| by_doc.get(id).map(|s| spans_json(s)))
                .collect(),
            gold: self.gold_spans(id).map(|s| spans_json(&s)),
        }
    }
}

/// One document as the page draws it.
#[derive(Debug, Serialize)]
pub struct DocumentView {
    /// Its id.
    pub id: String,
    /// Raw text, when loaded.
    pub text: Option<String>,
    /// Per model: its spans, or `None` when the model has no entry for the document.
    pub models: Vec<Option<Vec<(usize, usize, u8)>>>,
    /// Gold spans, when loaded.
    pub gold: Option<Vec<(usize, usize, u8)>>,
}
