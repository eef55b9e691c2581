//! The synthetic MedDec-format corpus.

use crate::error;
use lamar_core::synth::{
    CorpusLayout, NoiseRates, SynthConfig, generate, simulate, write_corpus, write_simulated_model,
};
use pyo3::prelude::*;
use std::path::PathBuf;

/// Generates the corpus `lamar synth --docs DOCS --seed SEED` generates; with `out`, writes it
/// there exactly as the CLI does (with `simulate_models` simulated models at the default noise).
/// Returns JSON text: `{"documents": [{file_name, text, spans, split}]}`, spans as
/// `[start, end, category]`.
#[pyfunction]
#[pyo3(signature = (docs = 60, seed = 7, out = None, simulate_models = 0))]
pub fn synth(
    py: Python<'_>,
    docs: usize,
    seed: u64,
    out: Option<PathBuf>,
    simulate_models: usize,
) -> PyResult<String> {
    py.detach(|| {
        let corpus = generate(&SynthConfig { docs, seed });
        if let Some(out) = &out {
            let layout = CorpusLayout::new(out);
            write_corpus(&corpus, &layout, |_| {}).map_err(error)?;
            for k in 0..simulate_models {
                let model = simulate(&corpus, k, &NoiseRates::default(), seed);
                write_simulated_model(&model, &layout).map_err(error)?;
            }
        }
        let split_of = |id: &String| {
            if corpus.train.contains(id) {
                "train"
            } else if corpus.val.contains(id) {
                "val"
            } else {
                "test"
            }
        };
        let documents: Vec<serde_json::Value> = corpus
            .documents
            .iter()
            .map(|d| {
                let spans: Vec<[usize; 3]> = d
                    .gold
                    .iter()
                    .map(|s| [s.start, s.end, usize::from(s.category.id())])
                    .collect();
                serde_json::json!({
                    "file_name": d.id,
                    "text": d.text,
                    "spans": spans,
                    "split": split_of(&d.id),
                })
            })
            .collect();
        serde_json::to_string(&serde_json::json!({ "documents": documents })).map_err(error)
    })
}
