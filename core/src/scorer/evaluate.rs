//! Scoring files end to end (what `lamar evaluate` and the pipeline do): load the gold, raw
//! texts, split and demographics once ([`load_inputs`]), tokenize the gold once ([`Scorer`]),
//! then score every predictions file against it.

use super::load::{InputPaths, LoadError, load_inputs};
use super::{Evaluation, ScoreError, Scorer, ScorerOptions};
use crate::formats::predictions::OutsideText;
use std::path::PathBuf;

/// Why files could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The inputs could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The gold could not be prepared (a bad gold offset, a span the tokenizer cannot place).
    #[error(transparent)]
    Gold(ScoreError),
    /// A predictions file could not be scored.
    #[error("scoring {path}: {source}")]
    Score {
        /// The predictions file.
        path: PathBuf,
        /// Why.
        source: ScoreError,
    },
}

/// Every predictions file's scores, with what was read.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Each predictions file and its evaluation, in the order given.
    pub results: Vec<(PathBuf, Evaluation)>,
    /// Gold documents scored.
    pub gold_documents: usize,
    /// Predicted documents per predictions file (after the split).
    pub predicted_documents: Vec<usize>,
    /// Whether a split file restricted the documents.
    pub split_applied: bool,
    /// Predicted spans outside their text, with their predictions file (not scored).
    pub outside_text: Vec<(PathBuf, OutsideText)>,
}

/// Loads `paths` and scores each predictions file with the same gold.
pub fn evaluate_files(
    paths: &InputPaths,
    options: ScorerOptions,
) -> Result<Evaluated, EvaluateError> {
    let inputs = load_inputs(paths)?;
    let scorer = Scorer::new(
        &inputs.gold,
        &inputs.raw_texts,
        inputs.stats.as_deref(),
        options,
    )
    .map_err(EvaluateError::Gold)?;
    let mut results = Vec::with_capacity(inputs.predictions.len());
    for (path, predictions) in &inputs.predictions {
        let evaluation = scorer
            .score(predictions)
            .map_err(|source| EvaluateError::Score {
                path: path.clone(),
                source,
            })?;
        results.push((path.clone(), evaluation));
    }
    Ok(Evaluated {
        results,
        gold_documents: inputs.gold.len(),
        predicted_documents: inputs.predictions.iter().map(|(_, p)| p.len()).collect(),
        split_applied: inputs.split_applied,
        outside_text: inputs.outside_text,
    })
}
