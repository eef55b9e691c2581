//! The official MedDec scorer, bound to one gold set.

use crate::convert::predictions_from_list;
use crate::{error, json_text};
use lamar_core::formats::predictions::{PredictedSpan, parse_predictions};
use lamar_core::formats::raw_text::{raw_text_path, read_raw_text};
use lamar_core::formats::split::read_split;
use lamar_core::scorer::load::{InputPaths, LoadError, load_inputs};
use lamar_core::scorer::{Scorer as CoreScorer, ScorerOptions};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The gold, raw texts, split and demographics read once; scores any number of prediction sets
/// exactly as `lamar evaluate` does (the official evaluator's numbers).
#[pyclass(module = "lamar._native")]
pub struct Scorer {
    scorer: CoreScorer,
    raw_text_dir: PathBuf,
    split: Option<BTreeSet<String>>,
}

#[pymethods]
impl Scorer {
    /// Reads the gold folder, the raw texts of the gold documents, the split (when given: only
    /// its documents count, in the gold and in predictions) and `stats.csv` (when given: the
    /// shared-task score and its groups); `nltk` picks the tokenizer release ("3.8", "3.9.2",
    /// "3.9", "3.10"), `token_f1` the overlap rule ("official" or "lamar").
    #[new]
    #[pyo3(signature = (gold_dir, raw_text_dir, stats_csv = None, split = None, nltk = "3.9", token_f1 = "official"))]
    fn new(
        py: Python<'_>,
        gold_dir: PathBuf,
        raw_text_dir: PathBuf,
        stats_csv: Option<PathBuf>,
        split: Option<PathBuf>,
        nltk: &str,
        token_f1: &str,
    ) -> PyResult<Scorer> {
        let options = ScorerOptions {
            nltk: nltk.parse().map_err(error)?,
            token_f1: token_f1.parse().map_err(error)?,
        };
        py.detach(|| {
            let paths = InputPaths {
                gold_dir: Some(gold_dir),
                raw_text_dir: raw_text_dir.clone(),
                split: split.clone(),
                stats: stats_csv,
                ..InputPaths::default()
            };
            let inputs = load_inputs(&paths).map_err(error)?;
            let split = match &split {
                Some(path) => Some(read_split(path).map_err(error)?.into_iter().collect()),
                None => None,
            };
            let scorer = CoreScorer::new(
                &inputs.gold,
                &inputs.raw_texts,
                inputs.stats.as_deref(),
                options,
            )
            .map_err(error)?;
            Ok(Scorer {
                scorer,
                raw_text_dir,
                split,
            })
        })
    }

    /// Scores a predictions list, or a predictions file's JSON text (`source` names it in
    /// errors); returns the evaluation as JSON text (the official keys plus
    /// `token_f1_by_file`).
    #[pyo3(signature = (predictions, source = "predictions"))]
    fn score(
        &mut self,
        py: Python<'_>,
        predictions: &Bound<'_, PyAny>,
        source: &str,
    ) -> PyResult<String> {
        let files = match predictions
            .cast::<PyList>()
            .ok()
            .and_then(predictions_from_list)
        {
            Some(files) => files,
            None => parse_predictions(&json_text(predictions)?, source)
                .map_err(error)?
                .into_iter()
                .map(|f| (f.file_name, f.predictions))
                .collect(),
        };
        py.detach(|| {
            // A later entry for the same document replaces an earlier one, as in the CLI.
            let mut by_file: BTreeMap<String, Vec<PredictedSpan>> = files.into_iter().collect();
            if let Some(split) = &self.split {
                by_file.retain(|id, _| split.contains(id));
            }
            // Documents only the predictions name are scored on their text, as the CLI does.
            for id in by_file.keys() {
                if !self.scorer.knows(id) {
                    let path = raw_text_path(&self.raw_text_dir, id);
                    if !path.exists() {
                        return Err(error(LoadError::MissingRawText {
                            id: id.clone(),
                            path: path.display().to_string(),
                        }));
                    }
                    let text = read_raw_text(&path).map_err(error)?;
                    self.scorer.add_text(id, &text);
                }
            }
            let evaluation = self.scorer.score(&by_file).map_err(error)?;
            serde_json::to_string(&evaluation).map_err(error)
        })
    }
}
