//! # lamar-wasm
//!
//! wasm-bindgen bindings of `lamar-core` for the browser, and the viewer page that uses them
//! (`wasm/web/`, written out by `lamar view`).
//!
//! Exports: the tag codec ([`encode_tags`], [`decode_tags`]), GRPO rollout logs grouped by
//! step ([`rollout_groups`]), a retrieval result grouped by query ([`retrieval_groups`]) and a [`Viewer`] session holding
//! documents, several models' predictions, gold and demographics, which merges with any voter
//! (explanations included) and scores with the official scorer. Data crosses the boundary as
//! JSON strings; their shapes are declared as TypeScript types in the generated `.d.ts`. The
//! logic lives in [`workbench`] (plain Rust, tested natively and in Chromium); `site` (native
//! builds only) writes the page with data preloaded as a static site (`lamar view`).

#[cfg(not(target_arch = "wasm32"))]
pub mod site;
pub mod workbench;

use lamar_core::Span;
use lamar_core::codec::{AlignedSpan, DecodeOptions, DroppedSpan, decode, encode};
use lamar_core::formats::predictions::predictions_to_string;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use workbench::{MergeSettings, Workbench};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** `[start, end, category]`: code-point offsets, half-open; category 1-9. */
export type SpanTriple = [number, number, number];
/** Merge settings (JSON): voter and Span-Cluster Consensus thresholds. */
export interface MergeSettings {
  voter?: "scc" | "majority" | "union" | "intersection" | "wbf";
  params?: { min_cluster_iou: number; min_pairwise_iou: number; min_cluster_support: number; min_iou_same_cat: number };
  boundary?: "joint" | "independent";
}
export interface ModelWeight { model: number; weight: number }
export interface ClusterRecord {
  members: { model: number; start: number; end: number }[];
  support: number; boundary: [number, number]; kept: boolean;
}
export interface CategoryExplanation { category: number; weights: ModelWeight[]; clusters: ClusterRecord[] }
/** `merge()` returns `Record<documentId, MergedDocument>` as JSON. */
export interface MergedDocument { spans: SpanTriple[]; explanation: { categories: CategoryExplanation[] } }
/** `evaluate()` returns `SystemScores[]` as JSON. */
export interface SystemScores {
  name: string;
  evaluation: {
    span_f1: { precision: number; recall: number; f1: number; tp: number; fp: number; fn_: number };
    token_f1: number;
    shared_task?: { base_score: number; worst_group_score: number; final_score: number };
    token_f1_by_file: Record<string, number>;
  };
  exact_f1_by_file: Record<string, number>;
}
/** One completion of a GRPO rollout log (`rollouts.jsonl`). */
export interface RolloutRecord {
  step: number; prompt_id: string; index: number; completion: string; tokens: number;
  finished: boolean; in_loss: boolean; rewards: { name: string; value: number | null }[];
  advantage: number; dropped: boolean;
}
/** `rolloutGroups()` returns `RolloutGroup[]` as JSON. */
export interface RolloutGroup {
  step: number; prompt_id: string; dropped: boolean;
  means: { name: string; value: number | null }[]; completions: RolloutRecord[];
}
/** `retrievalGroups()` returns `QueryNeighbours[]` as JSON. */
export interface QueryNeighbours {
  split: string; query_file_id: string;
  notes: { rank: number; score: number; ref_file_id: string }[];
}
/** `document()` returns this as JSON. */
export interface DocumentView { id: string; text: string | null; models: (SpanTriple[] | null)[]; gold: SpanTriple[] | null }
"#;

/// What [`decode_tags`] returns, as JSON.
#[derive(Serialize)]
struct DecodedView {
    spans: Vec<AlignedSpan>,
    dropped: Vec<DroppedSpan>,
    unclosed_tags: usize,
    unmatched_closing_tags: usize,
    unknown_tags: usize,
}

/// A GRPO rollout log (`rollouts.jsonl` of `lamar train grpo`, named `name` in errors) grouped
/// by optimiser step: `RolloutGroup[]` as JSON.
#[wasm_bindgen(js_name = rolloutGroups)]
pub fn rollout_groups(jsonl: &str, name: &str) -> Result<String, JsError> {
    let records = lamar_core::grpo::parse_rollouts(jsonl, name)?;
    Ok(serde_json::to_string(&lamar_core::grpo::group_rollouts(
        &records,
    ))?)
}

/// A retrieval result (`neighbours.jsonl` of `lamar pseudo retrieve`, named `name` in errors)
/// grouped by query: `QueryNeighbours[]` as JSON.
#[wasm_bindgen(js_name = retrievalGroups)]
pub fn retrieval_groups(jsonl: &str, name: &str) -> Result<String, JsError> {
    let rows = lamar_core::pseudo::neighbours::parse_matches(jsonl, name)?;
    Ok(serde_json::to_string(
        &lamar_core::pseudo::neighbours::group_matches(&rows),
    )?)
}

/// Encodes spans (`[{"start":..,"end":..,"category":1-9}]`) into `text` as inline tags.
#[wasm_bindgen(js_name = encodeTags)]
pub fn encode_tags(text: &str, spans_json: &str) -> Result<String, JsError> {
    let spans: Vec<Span> =
        serde_json::from_str(spans_json).map_err(|e| JsError::new(&format!("spans: {e}")))?;
    encode(text, &spans).map_err(|e| JsError::new(&e.to_string()))
}

/// Decodes a tagged model output against the raw text; returns the placed spans (with the method
/// that placed each), the dropped spans (with reasons) and markup counts, as JSON.
#[wasm_bindgen(js_name = decodeTags)]
pub fn decode_tags(tagged: &str, raw: &str) -> String {
    let d = decode(tagged, raw, &DecodeOptions::default());
    let view = DecodedView {
        spans: d.spans,
        dropped: d.dropped,
        unclosed_tags: d.diagnostics.unclosed.len(),
        unmatched_closing_tags: d.diagnostics.unmatched_closes,
        unknown_tags: d.diagnostics.unknown_tags,
    };
    serde_json::to_string(&view).expect("decoded spans serialise")
}

fn settings(json: &str) -> Result<MergeSettings, JsError> {
    if json.trim().is_empty() {
        return Ok(MergeSettings::default());
    }
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("merge settings: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

/// A viewer session: load files, then merge, score and draw.
#[wasm_bindgen]
#[derive(Default)]
pub struct Viewer {
    bench: Workbench,
}

#[wasm_bindgen]
impl Viewer {
    /// An empty session.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Viewer {
        Viewer::default()
    }

    /// A session preloaded with the synthetic corpus and simulated models.
    pub fn synthetic(docs: usize, seed: u64, models: usize) -> Result<Viewer, JsError> {
        Ok(Viewer {
            bench: Workbench::synthetic(docs, seed, models).map_err(|e| JsError::new(&e))?,
        })
    }

    /// Adds a raw text file (`name` like `<id>.txt`).
    #[wasm_bindgen(js_name = addRawText)]
    pub fn add_raw_text(&mut self, name: &str, text: &str) {
        self.bench.add_raw_text(name, text);
    }

    /// Adds a predictions JSON file as the next model; errors name the file and place.
    #[wasm_bindgen(js_name = addPredictions)]
    pub fn add_predictions(&mut self, name: &str, json: &str) -> Result<(), JsError> {
        self.bench
            .add_predictions(name, json)
            .map_err(|e| JsError::new(&e))
    }

    /// Adds a gold JSON file.
    #[wasm_bindgen(js_name = addGold)]
    pub fn add_gold(&mut self, name: &str, json: &str) -> Result<(), JsError> {
        self.bench
            .add_gold(name, json)
            .map_err(|e| JsError::new(&e))
    }

    /// Sets the demographics (`stats.csv`).
    #[wasm_bindgen(js_name = setStats)]
    pub fn set_stats(&mut self, name: &str, csv: &str) -> Result<(), JsError> {
        self.bench
            .set_stats(name, csv)
            .map_err(|e| JsError::new(&e))
    }

    /// Model names as a JSON list.
    pub fn models(&self) -> Result<String, JsError> {
        to_json(&self.bench.models())
    }

    /// Document ids as a JSON list.
    pub fn documents(&self) -> Result<String, JsError> {
        to_json(&self.bench.documents())
    }

    /// Whether gold was loaded.
    #[wasm_bindgen(js_name = hasGold)]
    pub fn has_gold(&self) -> bool {
        self.bench.has_gold()
    }

    /// Non-fatal problems as a JSON list of messages.
    pub fn warnings(&self) -> Result<String, JsError> {
        to_json(&self.bench.warnings())
    }

    /// Merges every document (`settings`: a `MergeSettings` JSON); returns
    /// `Record<id, MergedDocument>` as JSON.
    pub fn merge(&self, settings_json: &str) -> Result<String, JsError> {
        let merged = self
            .bench
            .merge(&settings(settings_json)?)
            .map_err(|e| JsError::new(&e))?;
        to_json(&merged)
    }

    /// The merged predictions as a predictions JSON file (for download).
    #[wasm_bindgen(js_name = exportMerged)]
    pub fn export_merged(&self, settings_json: &str) -> Result<String, JsError> {
        let files = self
            .bench
            .merged_predictions(&settings(settings_json)?)
            .map_err(|e| JsError::new(&e))?;
        Ok(predictions_to_string(&files))
    }

    /// Scores (`SystemScores[]` JSON) of the merged result, and of every model first when
    /// `with_models`.
    pub fn evaluate(&mut self, settings_json: &str, with_models: bool) -> Result<String, JsError> {
        let scores = self
            .bench
            .evaluate(&settings(settings_json)?, with_models)
            .map_err(|e| JsError::new(&e))?;
        to_json(&scores)
    }

    /// One document for drawing (`DocumentView` JSON).
    pub fn document(&self, id: &str) -> Result<String, JsError> {
        to_json(&self.bench.document(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_through_the_bindings() {
        let tagged = encode_tags("take aspirin", r#"[{"start":5,"end":12,"category":5}]"#).unwrap();
        assert_eq!(tagged, "take <drug_decision>aspirin</drug_decision>");
        let decoded: serde_json::Value =
            serde_json::from_str(&decode_tags(&tagged, "take aspirin")).unwrap();
        assert_eq!(decoded["spans"][0]["span"]["start"], 5);
        assert_eq!(decoded["spans"][0]["method"], "verbatim");
    }
}
