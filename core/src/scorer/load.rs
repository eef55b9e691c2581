//! Loading the evaluator's inputs from disk, with the official script's conventions.
//!
//! * Gold: every `*.json` of the gold folder (or one `--gold-file`), single-object or list form;
//!   a document's id is its `discharge_summary_id` (trailing `_` removed), else the file name
//!   without `.json`. Two files claiming one id are an error (the script keeps whichever
//!   `os.listdir` returns last).
//! * Predictions: the submission JSON; a later entry for the same file replaces an earlier one.
//! * Split: ids with or without `.json`; both gold and predictions are restricted to it.
//! * Raw text: `<raw_text_dir>/<id>.txt` for every gold or predicted id; a missing file is an
//!   error, as in the script.

use crate::formats::FormatError;
use crate::formats::gold::{GoldAnnotation, read_gold_file};
use crate::formats::predictions::{
    OutsideText, PredictedSpan, read_predictions, spans_outside_text,
};
use crate::formats::raw_text::{raw_text_path, read_raw_text};
use crate::formats::split::read_split;
use crate::formats::stats::{StatsRow, read_stats};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Why the inputs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Two gold files name the same document.
    #[error("gold document {id} appears in both {first} and {second}")]
    DuplicateGold {
        /// The document id.
        id: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
    /// A document has no raw text file.
    #[error("raw text file not found: {path} (document {id})")]
    MissingRawText {
        /// The document id.
        id: String,
        /// Where it was looked for.
        path: String,
    },
}

/// Where the inputs are.
#[derive(Debug, Clone, Default)]
pub struct InputPaths {
    /// Folder of gold JSON files.
    pub gold_dir: Option<PathBuf>,
    /// One gold file instead of the folder.
    pub gold_file: Option<PathBuf>,
    /// Predictions JSON files (one or more prediction sets scored against the same gold).
    pub predictions: Vec<PathBuf>,
    /// Folder of raw texts.
    pub raw_text_dir: PathBuf,
    /// Optional split file.
    pub split: Option<PathBuf>,
    /// Optional `stats.csv`.
    pub stats: Option<PathBuf>,
}

/// The loaded inputs.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Gold annotations per document.
    pub gold: BTreeMap<String, Vec<GoldAnnotation>>,
    /// Each predictions file with its predictions per document.
    pub predictions: Vec<(PathBuf, BTreeMap<String, Vec<PredictedSpan>>)>,
    /// Raw text of every gold or predicted document.
    pub raw_texts: BTreeMap<String, String>,
    /// Demographics, when given.
    pub stats: Option<Vec<StatsRow>>,
    /// Whether a split file restricted the documents.
    pub split_applied: bool,
    /// Predicted spans outside their document's text (of the documents scored), with their
    /// predictions file: the scorer drops them, the caller reports them.
    pub outside_text: Vec<(PathBuf, OutsideText)>,
}

fn gold_from(
    path: &Path,
    gold: &mut BTreeMap<String, Vec<GoldAnnotation>>,
    origin: &mut HashMap<String, String>,
) -> Result<(), LoadError> {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(".json", ""))
        .unwrap_or_default();
    let docs = read_gold_file(path)?;
    let single = docs.len() == 1;
    for doc in docs {
        let id = match (&doc.id, single) {
            (Some(id), _) => id.clone(),
            (None, true) => stem.trim_end_matches('_').to_string(),
            (None, false) => continue,
        };
        let here = path.display().to_string();
        if let Some(first) = origin.insert(id.clone(), here.clone()) {
            return Err(LoadError::DuplicateGold {
                id,
                first,
                second: here,
            });
        }
        gold.insert(id, doc.annotations);
    }
    Ok(())
}

/// Loads everything the evaluator reads.
pub fn load_inputs(paths: &InputPaths) -> Result<Inputs, LoadError> {
    let mut gold = BTreeMap::new();
    let mut origin = HashMap::new();
    if let Some(file) = &paths.gold_file {
        gold_from(file, &mut gold, &mut origin)?;
    } else if let Some(dir) = &paths.gold_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| FormatError::Io {
                path: dir.display().to_string(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".json"))
            })
            .collect();
        files.sort();
        for file in files {
            gold_from(&file, &mut gold, &mut origin)?;
        }
    }
    let mut predictions = Vec::with_capacity(paths.predictions.len());
    let mut entries = Vec::with_capacity(paths.predictions.len());
    for path in &paths.predictions {
        let files = read_predictions(path)?;
        let mut by_file = BTreeMap::new();
        for entry in &files {
            by_file.insert(entry.file_name.clone(), entry.predictions.clone());
        }
        predictions.push((path.clone(), by_file));
        entries.push(files);
    }
    let split_applied = paths.split.is_some();
    if let Some(split) = &paths.split {
        let ids: BTreeSet<String> = read_split(split)?.into_iter().collect();
        gold.retain(|k, _| ids.contains(k));
        for (_, by_file) in &mut predictions {
            by_file.retain(|k, _| ids.contains(k));
        }
    }
    let mut raw_texts = BTreeMap::new();
    let predicted_ids = predictions.iter().flat_map(|(_, p)| p.keys());
    for id in gold.keys().chain(predicted_ids) {
        if raw_texts.contains_key(id) {
            continue;
        }
        let path = raw_text_path(&paths.raw_text_dir, id);
        if !path.exists() {
            return Err(LoadError::MissingRawText {
                id: id.clone(),
                path: path.display().to_string(),
            });
        }
        raw_texts.insert(id.clone(), read_raw_text(&path)?);
    }
    // Only the documents scored (those in the split).
    let mut outside_text = Vec::new();
    for ((path, by_file), files) in predictions.iter().zip(&entries) {
        let length = |id: &str| raw_texts.get(id).map(|t: &String| t.chars().count());
        for problem in spans_outside_text(files, length) {
            if by_file.contains_key(&problem.file_name) {
                outside_text.push((path.clone(), problem));
            }
        }
    }
    let stats = match &paths.stats {
        Some(p) => Some(read_stats(p)?),
        None => None,
    };
    Ok(Inputs {
        gold,
        predictions,
        raw_texts,
        stats,
        split_applied,
        outside_text,
    })
}
