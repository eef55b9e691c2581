//! `lamar plugins` end to end: checking, voting and rewarding with WebAssembly plugins, and
//! refusing misbehaving ones.

#[path = "../../plugins/tests/common/mod.rs"]
mod plugin_build;

mod common;

use common::{fails, lamar, ok, p, synth_with_models};
use std::path::Path;

#[test]
fn plugins_check_vote_and_reward() {
    let dir = tempfile::tempdir().unwrap();
    let models: Vec<String> = synth_with_models(dir.path(), 12, 3, &[])
        .iter()
        .map(|m| p(m).to_string())
        .collect();
    let vote = plugin_build::plugin("lamar-plugin-boundary-vote");
    let check = ok(&["plugin", "check", p(&vote)]);
    assert!(
        check.contains("voter (lamar:plugin/voter@1.0.0)") && check.contains("boundary-vote"),
        "{check}"
    );
    let err = fails(&[
        "plugin",
        "check",
        p(&plugin_build::plugin(
            "lamar-plugin-fixture-forbidden-import",
        )),
    ]);
    assert!(
        err.contains("forbidden_import.wasm") && err.contains("env.clock_ms"),
        "{err}"
    );

    let merge = |voter: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "ensemble",
            "--voter",
            voter,
            "--out",
            p(out),
            "--predictions",
        ];
        args.extend(models.iter().map(String::as_str));
        args.extend(extra);
        lamar(&args)
    };
    let (native, plugged) = (
        dir.path().join("native.json"),
        dir.path().join("plugged.json"),
    );
    assert!(merge("scc", &native, &[]).status.success());
    let out = merge(p(&vote), &plugged, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&native).unwrap(),
        std::fs::read(&plugged).unwrap()
    );

    // A plugin that loops forever is stopped; nothing is written.
    let chaos = plugin_build::plugin("lamar-plugin-fixture-chaos-voter");
    let stopped = dir.path().join("stopped.json");
    let out = merge(
        p(&chaos),
        &stopped,
        &["--min-cluster-iou", "0.901", "--plugin-fuel", "5000000"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("fuel") && err.contains("chaos_voter.wasm"),
        "{err}"
    );
    assert!(!stopped.exists());

    // Rewards: the gold itself scores 1.
    let rows = std::fs::read_to_string(dir.path().join("outputs/model_0.jsonl")).unwrap();
    let mut input = String::new();
    for line in rows.lines().take(5) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = row["predicted"].as_str().unwrap();
        input.push_str(&serde_json::json!({"id": row["file_id"], "completion": text, "gold": text, "raw_text": ""}).to_string());
        input.push('\n');
    }
    let completions = dir.path().join("completions.jsonl");
    std::fs::write(&completions, &input).unwrap();
    let scores = dir.path().join("scores.jsonl");
    let reward = plugin_build::plugin("lamar-plugin-exact-match-reward");
    let said = ok(&[
        "reward",
        "--plugin",
        p(&reward),
        "--input",
        p(&completions),
        "--out",
        p(&scores),
    ]);
    assert!(said.contains("5 completions, mean reward 1.0000"), "{said}");
    assert_eq!(std::fs::read_to_string(&scores).unwrap().lines().count(), 5);
    // The built-in exact-match reward agrees with the plugin, line for line.
    let builtin_scores = dir.path().join("builtin_scores.jsonl");
    let said = ok(&[
        "reward",
        "--reward",
        "reward_exact_match_f1",
        "--input",
        p(&completions),
        "--out",
        p(&builtin_scores),
    ]);
    assert!(said.starts_with("exact_match_f1: 5 completions"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&builtin_scores).unwrap(),
        std::fs::read_to_string(&scores).unwrap()
    );
    let err = fails(&["reward", "--reward", "fidelty", "--input", p(&completions)]);
    assert!(
        err.contains("unknown reward \"fidelty\"") && err.contains("fidelity, fast_token_f1"),
        "{err}"
    );
    // A voter is not a reward: valid completions, refused for the plugin's interface.
    let err = fails(&["reward", "--plugin", p(&vote), "--input", p(&completions)]);
    assert!(
        err.contains("lamar_plugin_boundary_vote.wasm")
            && err.contains("lamar:plugin/voter@1.0.0")
            && err.contains("lamar:plugin/reward@1.0.0"),
        "{err}"
    );
    assert!(!err.contains("completions.jsonl"), "{err}");
    std::fs::write(&completions, "{\"completion\": \"x\"}\n").unwrap();
    let err = fails(&["reward", "--plugin", p(&reward), "--input", p(&completions)]);
    assert!(err.contains("completions.jsonl: line 1: expected"), "{err}");
}
