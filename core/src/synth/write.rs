//! Writing a synthetic corpus in the MedDec folder layout.

use super::{SimulatedModel, SyntheticCorpus};
use crate::formats::FormatError;
use crate::formats::gold::write_gold_file;
use crate::formats::predictions::write_predictions;
use crate::formats::raw_text::write_raw_text;
use crate::formats::rows::to_jsonl;
use crate::formats::split::write_split;
use crate::formats::stats::write_stats;
use crate::formats::write_atomic;
use std::path::{Path, PathBuf};

/// Where each part of a corpus folder lives.
#[derive(Debug, Clone)]
pub struct CorpusLayout {
    /// The corpus root.
    pub root: PathBuf,
}

impl CorpusLayout {
    /// Layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> CorpusLayout {
        CorpusLayout { root: root.into() }
    }
    /// `data/`: gold JSON.
    pub fn gold_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `raw_text/`: raw notes.
    pub fn raw_text_dir(&self) -> PathBuf {
        self.root.join("raw_text")
    }
    /// `splits/<name>.txt`.
    pub fn split(&self, name: &str) -> PathBuf {
        self.root.join("splits").join(format!("{name}.txt"))
    }
    /// `stats.csv`.
    pub fn stats(&self) -> PathBuf {
        self.root.join("stats.csv")
    }
    /// `predictions/<model>.json`.
    pub fn predictions(&self, model: &str) -> PathBuf {
        self.root.join("predictions").join(format!("{model}.json"))
    }
    /// `NOTEEVENTS.csv`: unlabeled notes in MIMIC-III's layout (`lamar synth
    /// --unlabeled-notes`).
    pub fn noteevents(&self) -> PathBuf {
        self.root.join("NOTEEVENTS.csv")
    }
    /// `outputs/<model>.jsonl`: simulated tagged generations.
    pub fn outputs(&self, model: &str) -> PathBuf {
        self.root.join("outputs").join(format!("{model}.jsonl"))
    }
}

/// Writes gold, raw text, splits and stats. `progress` is called after each document.
pub fn write_corpus(
    corpus: &SyntheticCorpus,
    layout: &CorpusLayout,
    mut progress: impl FnMut(usize),
) -> Result<(), FormatError> {
    for (i, doc) in corpus.documents.iter().enumerate() {
        write_gold_file(
            &layout.gold_dir().join(format!("{}.json", doc.id)),
            &doc.gold_document(),
        )?;
        let text = if doc.crlf_on_disk {
            doc.text.replace('\n', "\r\n")
        } else {
            doc.text.clone()
        };
        write_raw_text(
            &layout.raw_text_dir().join(format!("{}.txt", doc.id)),
            &text,
        )?;
        progress(i + 1);
    }
    write_split(&layout.split("train"), &corpus.train)?;
    write_split(&layout.split("val"), &corpus.val)?;
    write_split(&layout.split("test"), &corpus.test)?;
    let stats: Vec<_> = corpus.documents.iter().map(|d| d.stats.clone()).collect();
    write_stats(&layout.stats(), &stats)
}

/// Writes a NOTEEVENTS.csv in MIMIC-III's layout: every document of `corpus` (which `lamar pseudo
/// extract --exclude` leaves out again), every document of `unlabeled` whose id is not in
/// `corpus` as a discharge summary report, an addendum for every fifth of them, and one nursing
/// note (neither of which is kept). Returns the unlabeled reports written.
pub fn write_noteevents(
    corpus: &SyntheticCorpus,
    unlabeled: &SyntheticCorpus,
    path: &Path,
) -> Result<usize, FormatError> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::NonNumeric)
        .from_writer(Vec::new());
    let csv_error = |e: csv::Error| FormatError::Csv {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    writer
        .write_record([
            "ROW_ID",
            "SUBJECT_ID",
            "HADM_ID",
            "CHARTDATE",
            "CHARTTIME",
            "STORETIME",
            "CATEGORY",
            "DESCRIPTION",
            "CGID",
            "ISERROR",
            "TEXT",
        ])
        .map_err(csv_error)?;
    let taken: std::collections::HashSet<&str> =
        corpus.documents.iter().map(|d| d.id.as_str()).collect();
    let mut reports = 0;
    let mut row = |id: &str, category: &str, description: &str, text: &str| {
        let mut parts = id.split('_');
        let (subject, hadm, row_id) = (
            parts.next().unwrap_or("0"),
            parts.next().unwrap_or("0"),
            parts.next().unwrap_or("0"),
        );
        writer.write_record([
            row_id,
            subject,
            hadm,
            "2150-01-01",
            "",
            "",
            category,
            description,
            "",
            "",
            text,
        ])
    };
    for doc in &corpus.documents {
        row(&doc.id, "Discharge summary", "Report", &doc.text).map_err(csv_error)?;
    }
    for (n, doc) in unlabeled.documents.iter().enumerate() {
        if taken.contains(doc.id.as_str()) {
            continue;
        }
        row(&doc.id, "Discharge summary", "Report", &doc.text).map_err(csv_error)?;
        reports += 1;
        if n % 5 == 4 {
            let addendum = format!("{}9", doc.id);
            row(
                &addendum,
                "Discharge summary",
                "Addendum",
                "Addendum: no change.",
            )
            .map_err(csv_error)?;
        }
    }
    row("1_1_1", "Nursing/other", "Report", "Nursing note.").map_err(csv_error)?;
    let bytes = writer.into_inner().map_err(|e| FormatError::Csv {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)?;
    Ok(reports)
}

/// Writes a simulated model's predictions JSON, its tagged outputs (JSONL) and a small
/// `<model>.meta.json` that says it is simulated and with which noise.
pub fn write_simulated_model(
    model: &SimulatedModel,
    layout: &CorpusLayout,
) -> Result<(), FormatError> {
    let predictions = layout.predictions(&model.name);
    write_predictions(&predictions, &model.predictions)?;
    write_atomic(
        &layout.outputs(&model.name),
        to_jsonl(&model.outputs).as_bytes(),
    )?;
    let meta = serde_json::json!({
        "model": model.name,
        "simulated": true,
        "description": "noisy copy of the synthetic gold written by `lamar synth --simulate-models`; not a real model",
        "noise": model.rates,
    });
    let meta_path: &Path = &layout
        .root
        .join("predictions")
        .join(format!("{}.meta.json", model.name));
    write_atomic(
        meta_path,
        serde_json::to_string_pretty(&meta)
            .expect("meta serialises")
            .as_bytes(),
    )
}
