//! # lamar-wasm
//!
//! wasm-bindgen bindings of `lamar-core` for the browser: JSON in, JSON out, so the page needs
//! no generated types beyond strings. Exports so far: the tag codec ([`encode_tags`],
//! [`decode_tags`]). The ensemble, the scorer and the viewer page arrive with their issues.

use lamar_core::Span;
use lamar_core::codec::{AlignedSpan, DecodeOptions, DroppedSpan, decode, encode};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// What [`decode_tags`] returns, as JSON.
#[derive(Serialize)]
struct DecodedView {
    spans: Vec<AlignedSpan>,
    dropped: Vec<DroppedSpan>,
    unclosed_tags: usize,
    unmatched_closing_tags: usize,
    unknown_tags: usize,
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
