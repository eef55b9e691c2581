#![cfg(not(target_arch = "wasm32"))]
//! The viewer session natively: its digest must equal the golden file that the browser test
//! (`tests/web.rs`, run in headless Chromium) also compares against, so wasm = native.

mod common;

#[test]
fn synthetic_session_matches_the_golden_digest() {
    let digest = common::digest();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/synthetic_40_docs.json"
    );
    if std::env::var_os("LAMAR_BLESS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&digest).unwrap() + "\n").unwrap();
    }
    let golden: serde_json::Value = serde_json::from_str(common::GOLDEN).unwrap();
    assert!(
        digest == golden,
        "the digest differs from tests/golden/synthetic_40_docs.json (LAMAR_BLESS=1 rewrites it after an intended change)"
    );
    // The digest is not trivial.
    let first = &digest[0]["scores"];
    assert_eq!(first.as_array().unwrap().len(), 4);
    assert!(
        first[3]["span_f1"]["f1"].as_f64().unwrap() > first[0]["span_f1"]["f1"].as_f64().unwrap()
    );
}

#[test]
fn bad_files_are_reported_by_name() {
    let mut bench = lamar_wasm::workbench::Workbench::new();
    let err = bench
        .add_predictions("m.json", "[{\"file_name\": \"a\",")
        .unwrap_err();
    assert!(err.starts_with("m.json:1:"), "{err}");
    let err = bench
        .add_gold("g.json", "{\"annotations\": 3}")
        .unwrap_err();
    assert!(err.contains("g.json"), "{err}");
    bench.add_raw_text("a.txt", "short");
    bench
        .add_predictions(
            "m.json",
            r#"[{"file_name": "a", "predictions": [{"start_offset": 2, "end_offset": 90, "category": 5}]},
                {"file_name": "b", "predictions": []}]"#,
        )
        .unwrap();
    let warnings = bench.warnings().join("\n");
    assert!(
        warnings.contains("m.json: 1 span(s) end beyond"),
        "{warnings}"
    );
    assert!(warnings.contains("no raw text (first: b)"), "{warnings}");
    assert!(
        bench
            .evaluate(&Default::default(), true)
            .unwrap_err()
            .contains("no gold")
    );
}
