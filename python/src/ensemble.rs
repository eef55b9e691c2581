//! Merging several models' predictions: Span-Cluster Consensus and the other voters.

use crate::convert::{predictions_to_list, votes_from_list};
use crate::{error, json_text};
use lamar_core::ensemble::input::{VotesByDocument, add_document, add_model};
use lamar_core::ensemble::merge_all;
use lamar_core::ensemble::registry::{VOTER_NAMES, VoterSettings, voter_by_name};
use lamar_core::ensemble::scc::{BoundaryVote, SccParams};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// LAMAR's thresholds with the keys of `overrides` (a JSON object) replaced; an unknown key is
/// an error that names it.
fn params_with(overrides: Option<&str>) -> PyResult<SccParams> {
    let mut params = serde_json::to_value(SccParams::default()).map_err(error)?;
    if let Some(text) = overrides {
        let given: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| error(format!("params: {e}")))?;
        for (key, value) in given {
            match params.get_mut(&key) {
                Some(slot) => *slot = value,
                None => {
                    return Err(error(format!(
                        "params: unknown threshold {key:?} (expected min_cluster_iou, \
                         min_pairwise_iou, min_cluster_support, min_iou_same_cat)"
                    )));
                }
            }
        }
    }
    serde_json::from_value(params).map_err(|e| error(format!("params: {e}")))
}

/// Merges the models' predictions (model k = `models[k]`: a predictions list, or the JSON text
/// of a predictions file) with the voter `voter`; returns the merged predictions list, documents
/// sorted by name.
#[pyfunction]
#[pyo3(signature = (voter, models, params = None, boundary = "joint"))]
pub fn vote<'py>(
    py: Python<'py>,
    voter: &str,
    models: Vec<Bound<'py, PyAny>>,
    params: Option<&str>,
    boundary: &str,
) -> PyResult<Bound<'py, PyList>> {
    let boundary = match boundary {
        "joint" => BoundaryVote::Joint,
        "independent" => BoundaryVote::Independent,
        other => {
            return Err(error(format!(
                "unknown boundary rule {other:?} (expected joint or independent)"
            )));
        }
    };
    let settings = VoterSettings {
        params: params_with(params)?,
        boundary,
        explain: false,
    };
    let voter = voter_by_name(voter, &settings).map_err(error)?;
    let mut votes = VotesByDocument::new();
    for (k, model) in models.iter().enumerate() {
        let fast = model.cast::<PyList>().ok().and_then(votes_from_list);
        match fast {
            Some(entries) => {
                for (name, spans) in entries {
                    add_document(&mut votes, k, name, spans);
                }
            }
            None => {
                let json = json_text(model)?;
                add_model(&mut votes, k, &json, &format!("model {k}")).map_err(error)?;
            }
        }
    }
    let merged: Vec<(String, Vec<lamar_core::Span>)> = py.detach(|| {
        merge_all(&votes, voter.as_ref())
            .into_iter()
            .map(|(name, m)| (name, m.spans))
            .collect()
    });
    predictions_to_list(py, &merged)
}

/// The names of the built-in voters.
#[pyfunction]
pub fn voter_names() -> Vec<&'static str> {
    VOTER_NAMES.to_vec()
}
