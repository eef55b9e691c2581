//! Running the `lamar` binary from the end-to-end tests.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `lamar` with `args`.
pub fn lamar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lamar"))
        .args(args)
        .output()
        .expect("lamar runs")
}

/// Runs `lamar`, which must succeed; its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = lamar(args);
    assert!(
        out.status.success(),
        "lamar {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `lamar`, which must fail; its standard error.
pub fn fails(args: &[&str]) -> String {
    let out = lamar(args);
    assert!(!out.status.success(), "lamar {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `lamar synth` into `corpus` with `docs` documents, `models` simulated models and the
/// `extra` flags, which must succeed; the models' prediction files, in model order.
pub fn synth_with_models(
    corpus: &Path,
    docs: usize,
    models: usize,
    extra: &[&str],
) -> Vec<PathBuf> {
    let (doc_count, model_count) = (docs.to_string(), models.to_string());
    let mut args = vec![
        "synth",
        "--out",
        p(corpus),
        "--docs",
        &doc_count,
        "--simulate-models",
        &model_count,
    ];
    args.extend_from_slice(extra);
    ok(&args);
    (0..models)
        .map(|k| corpus.join(format!("predictions/model_{k}.json")))
        .collect()
}

/// Runs `lamar tag` on a synthetic corpus's `split` (train, val or test), writing `out`, with
/// `extra` flags; its standard output.
pub fn tag(corpus: &Path, split: &str, out: &Path, extra: &[&str]) -> String {
    let (gold, raw) = (corpus.join("data"), corpus.join("raw_text"));
    let split = corpus.join(format!("splits/{split}.txt"));
    let mut args = vec![
        "tag",
        "--gold-dir",
        p(&gold),
        "--raw-text-dir",
        p(&raw),
        "--split",
        p(&split),
        "--out",
        p(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// The JSON values of a JSON Lines file.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
