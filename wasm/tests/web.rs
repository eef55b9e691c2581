//! The viewer session compiled to WebAssembly and run in headless Chromium
//! (`wasm-bindgen-test`): the same digest as native lamar (`tests/golden/`, which
//! `tests/native.rs` checks natively), and the exported bindings behave.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
//! cargo test -p lamar-wasm --target wasm32-unknown-unknown`

#![cfg(target_arch = "wasm32")]

mod common;

use lamar_wasm::Viewer;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn synthetic_session_in_the_browser_equals_native() {
    let golden: serde_json::Value = serde_json::from_str(common::GOLDEN).unwrap();
    assert!(
        common::digest() == golden,
        "wasm digest differs from the native golden digest"
    );
}

#[wasm_bindgen_test]
fn bindings_load_merge_score_and_report_errors() {
    let mut viewer = Viewer::synthetic(12, 3, 3).unwrap();
    let models: Vec<String> = serde_json::from_str(&viewer.models().unwrap()).unwrap();
    assert_eq!(models, ["model_0.json", "model_1.json", "model_2.json"]);
    let merged: serde_json::Value = serde_json::from_str(&viewer.merge("").unwrap()).unwrap();
    assert_eq!(merged.as_object().unwrap().len(), 12);
    let scores: serde_json::Value =
        serde_json::from_str(&viewer.evaluate(r#"{"voter": "wbf"}"#, true).unwrap()).unwrap();
    assert_eq!(scores[3]["name"], "ensemble:wbf");
    assert!(viewer.merge(r#"{"voter": "nope"}"#).is_err());
    assert!(viewer.add_predictions("bad.json", "[{").is_err());
    let exported = viewer.export_merged("").unwrap();
    assert!(exported.contains("file_name"));
}
