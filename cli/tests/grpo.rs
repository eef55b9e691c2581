//! `lamar train grpo` end to end on the CPU, with rewards built in and as plugins: a run with
//! LAMAR's fidelity reward beside the exact-match reward plugin; a hostile reward plugin
//! (`plugins/fixtures/chaos-reward`) that answers NaN stops the run with an error naming it and
//! the last checkpoint intact, and `--resume --on-plugin-error skip` then finishes the run; one
//! that loops runs out of fuel.

#[path = "../../plugins/tests/common/mod.rs"]
mod plugin_build;

mod common;

use common::{fails, json_lines, ok, p, tag};
use lamar_core::formats::rows::TrainingRow;
use lamar_model::train::grpo::job::prompt_order;
use std::path::Path;

/// Three short tagged windows of a synthetic corpus (`lamar tag --window-chars 60`), as rows.
fn windows(dir: &Path) -> Vec<TrainingRow> {
    let corpus = dir.join("corpus");
    ok(&["synth", "--out", p(&corpus), "--docs", "3", "--seed", "5"]);
    let all = dir.join("all.jsonl");
    tag(&corpus, "train", &all, &["--window-chars", "60"]);
    std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &TrainingRow| !r.gold_offsets.is_empty())
        .take(3)
        .collect()
}

/// `rows` written as JSON Lines to `path`.
fn write_rows(path: &Path, rows: &[TrainingRow]) {
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

/// `row` with a chaos marker at the end of its text (the gold offsets stay valid).
fn marked(row: &TrainingRow, marker: &str) -> TrainingRow {
    TrainingRow {
        file_id: format!("{}-{marker}", row.file_id),
        raw_text: format!("{} {marker}", row.raw_text),
        gold_span: format!("{} {marker}", row.gold_span),
        gold_offsets: row.gold_offsets.clone(),
    }
}

fn grpo<'a>(model: &'a Path, data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "grpo",
        "--model",
        p(model),
        "--data",
        p(data),
        "--out",
        p(out),
        "--generations",
        "2",
        "--max-completion",
        "6",
        "--checkpoint-every",
        "1",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn grpo_trains_with_builtin_and_plugin_rewards_and_survives_a_failing_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let rows = windows(dir.path());
    assert_eq!(rows.len(), 3);
    let snapshot = dir.path().join("snapshot");
    lamar_model::qwen35::random::write_tiny_snapshot(&snapshot, 2).unwrap();
    let exact = plugin_build::plugin("lamar-plugin-exact-match-reward");
    let chaos = plugin_build::plugin("lamar-plugin-fixture-chaos-reward");

    // Built-in and plugin rewards side by side.
    let data = dir.path().join("train.jsonl");
    write_rows(&data, &rows);
    let out = dir.path().join("grpo");
    let weighted = format!("{}=0.5", p(&exact));
    let said = ok(&grpo(
        &snapshot,
        &data,
        &out,
        &["--reward", "fidelity", "--reward", &weighted],
    ));
    assert!(said.contains("GRPO: 3 steps over 3 prompts"), "{said}");
    let metrics = json_lines(&out.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 3);
    let names: Vec<&str> = metrics[0]["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fidelity", "exact-match-f1"]);
    assert_eq!(json_lines(&out.join("rollouts.jsonl")).len(), 6);
    for file in ["adapter_model.safetensors", "rewards.svg", "loss.svg"] {
        assert!(out.join(file).exists(), "{file}");
    }

    // A plugin answering NaN on the chaos row stops the run there, checkpoint intact.
    let mut with_chaos = rows.clone();
    with_chaos.push(marked(&rows[0], "[chaos:nan]"));
    let data = dir.path().join("chaos.jsonl");
    write_rows(&data, &with_chaos);
    let before = prompt_order(4, 1, 3407)
        .iter()
        .position(|&k| k == 3)
        .unwrap();
    let out = dir.path().join("chaos");
    let reward = ["--reward", p(&chaos)];
    let err = fails(&grpo(&snapshot, &data, &out, &reward));
    assert!(
        err.contains("chaos-reward")
            && err.contains("NaN")
            && err.contains("checkpoint")
            && err.contains(&format!("step {}", before + 1)),
        "{err}"
    );
    assert_eq!(json_lines(&out.join("metrics.jsonl")).len(), before);
    if before > 0 {
        let state = json_lines(&out.join("checkpoint/state.json"));
        assert_eq!(state[0]["step"], before);
    }
    // Resumed, skipping the failing reward: the run ends, the chaos group's reward missing.
    let mut resume = reward.to_vec();
    resume.extend(["--resume", "--on-plugin-error", "skip"]);
    let said = ok(&grpo(&snapshot, &data, &out, &resume));
    assert!(said.contains("GRPO: 4 steps over 4 prompts"), "{said}");
    let metrics = json_lines(&out.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 4);
    assert!(metrics[before]["rewards"][0]["value"].is_null());
    assert!(
        metrics[before]["prompt_id"]
            .as_str()
            .unwrap()
            .ends_with("[chaos:nan]")
    );

    // A plugin that loops runs out of fuel, and the error says so.
    let data = dir.path().join("loop.jsonl");
    write_rows(&data, &[marked(&rows[1], "[chaos:loop]")]);
    let out = dir.path().join("loop");
    let mut fuel = reward.to_vec();
    fuel.extend(["--plugin-fuel", "2000000"]);
    let err = fails(&grpo(&snapshot, &data, &out, &fuel));
    assert!(
        err.contains("chaos-reward") && err.contains("fuel"),
        "{err}"
    );
}
