//! Merging several models' predictions: Span-Cluster Consensus and the other voters.

use crate::error;
use lamar_core::ensemble::input::{VotesByDocument, add_model};
use lamar_core::ensemble::registry::{VOTER_NAMES, VoterSettings, voter_by_name};
use lamar_core::ensemble::scc::{BoundaryVote, SccParams};
use lamar_core::ensemble::{merge_all, prediction_files};
use lamar_core::formats::predictions::predictions_to_string;
use pyo3::prelude::*;

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

/// Merges the models' predictions (model k = `models[k]`, each the JSON text of a predictions
/// file) with the voter `voter`; returns the merged predictions file's JSON text, documents
/// sorted by name.
#[pyfunction]
#[pyo3(signature = (voter, models, params = None, boundary = "joint"))]
pub fn vote(
    py: Python<'_>,
    voter: &str,
    models: Vec<String>,
    params: Option<&str>,
    boundary: &str,
) -> PyResult<String> {
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
    py.detach(|| {
        let mut votes = VotesByDocument::new();
        for (k, json) in models.iter().enumerate() {
            add_model(&mut votes, k, json, &format!("model {k}")).map_err(error)?;
        }
        let merged = merge_all(&votes, voter.as_ref());
        Ok(predictions_to_string(&prediction_files(&merged)))
    })
}

/// The names of the built-in voters.
#[pyfunction]
pub fn voter_names() -> Vec<&'static str> {
    VOTER_NAMES.to_vec()
}
