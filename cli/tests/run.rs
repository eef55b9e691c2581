//! `lamar run PIPELINE.toml` end to end on a shortened demo pipeline (three LLM variants and the
//! encoder baseline): every stage's output,
//! a rerun that skips everything, a changed setting that reruns only what depends on it, a run
//! killed in the middle of training that resumes to the same results as an uninterrupted one,
//! and bad pipeline files refused before any work.

mod common;

use common::{fails, ok, p};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A short pipeline: 12 synthetic documents, a tiny model, all three variants.
fn pipeline(trials: usize) -> String {
    format!(
        r#"out = "out"

[data.synthetic]
docs = 20
seed = 3
unlabeled_notes = 6

[model]
tiny_seed = 5
device = "cpu"
prompt = "Tag the decisions:\n{{raw_text}}"

[dft]
loss = "ce"
rank = 4
alpha = 8.0
lr = 1e-3
epochs = 1
accumulation = 2
max_length = 768
checkpoint_every = 1
window_chars = 300

[grpo]
generations = 2
max_completion = 8
max_steps = 1

[pseudo]
embedder = "hashed"
dim = 64
k = 1
quantile = 0.5

[infer]
max_new_tokens = 24

[encoder]
tiny_seed = 3
lr = 1e-3
epochs = 2
batch_size = 8
max_tokens = 64

[consensus]
trials = {trials}

[view]
enabled = {view}
"#,
        // The viewer stage needs the viewer's package compiled into lamar (as in CI).
        view = cfg!(lamar_viewer_embedded)
    )
}

fn write_pipeline(dir: &Path, trials: usize) -> PathBuf {
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, pipeline(trials)).unwrap();
    file
}

fn manifest(out: &Path, stage: &str) -> Value {
    let text = std::fs::read_to_string(out.join(stage).join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const STAGES: [&str; 12] = [
    "corpus",
    "model",
    "rows",
    "dft",
    "grpo",
    "pseudo",
    "pseudo-dft",
    "infer-dft",
    "infer-grpo",
    "infer-pseudo",
    "encoder",
    "consensus",
];

/// What two runs must agree on.
const RESULTS: [&str; 8] = [
    "dft/adapter/adapter_model.safetensors",
    "encoder/model/model.safetensors",
    "encoder/test.json",
    "pseudo/train-mixed.jsonl",
    "infer-dft/test.jsonl",
    "consensus/test.json",
    "evaluate/ensemble.json",
    "scores.json",
];

#[test]
fn a_pipeline_runs_skips_reruns_what_changed_and_resumes_where_it_was_killed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path(), 10);
    let out = dir.path().join("out");

    // The first run runs every stage and prints the score table.
    let said = ok(&["run", p(&file)]);
    for stage in STAGES.iter().chain(&["evaluate"]) {
        assert!(manifest(&out, stage)["finished"] == true, "{stage}: {said}");
    }
    assert!(said.contains("| system | span F1"), "{said}");
    let scores: Vec<Value> =
        serde_json::from_str(&String::from_utf8(read(&out.join("scores.json"))).unwrap()).unwrap();
    let systems: Vec<&str> = scores
        .iter()
        .map(|r| r["system"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["dft", "grpo", "pseudo", "encoder", "ensemble"]);
    for row in &scores {
        let f1 = row["span_f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1), "{row}");
    }
    // Each stage wrote what it is for.
    for file in [
        "corpus/NOTEEVENTS.csv",
        "model/snapshot/config.json",
        "rows/train.jsonl",
        "dft/adapter/adapter_config.json",
        "grpo/model1-merged/model.safetensors",
        "grpo/adapter/rollouts.jsonl",
        "pseudo/labelled.jsonl",
        "pseudo-dft/adapter/adapter_model.safetensors",
        "infer-grpo/val.json",
        "infer-pseudo/test.json",
        "encoder/base/model.safetensors",
        "encoder/model/loss.svg",
        "encoder/val.json",
        "consensus/params.json",
        "evaluate/dft.json",
        "prompt.txt",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    if cfg!(lamar_viewer_embedded) {
        assert!(out.join("view/site/index.html").is_file());
    }
    // Model 3 trains on more rows than Model 1: the pseudo-labels were mixed in.
    let lines = |f: &str| {
        String::from_utf8(read(&out.join(f)))
            .unwrap()
            .lines()
            .count()
    };
    assert!(
        lines("pseudo/train-mixed.jsonl") > lines("rows/train.jsonl"),
        "no pseudo-labels mixed in"
    );
    let first: Vec<Vec<u8>> = RESULTS.iter().map(|f| read(&out.join(f))).collect();

    // A rerun skips everything and changes nothing.
    let said = ok(&["run", p(&file)]);
    assert_eq!(
        said.matches("up to date, skipped").count(),
        STAGES.len() + 1 + usize::from(cfg!(lamar_viewer_embedded)),
        "{said}"
    );
    assert!(!said.contains("$ lamar"), "{said}");
    let again: Vec<Vec<u8>> = RESULTS.iter().map(|f| read(&out.join(f))).collect();
    assert_eq!(first, again);

    // Another tuning budget reruns the consensus and what follows it, nothing before.
    let file = write_pipeline(dir.path(), 12);
    let plan = ok(&["run", p(&file), "--dry-run"]);
    assert!(plan.contains("consensus — "), "{plan}");
    let status_of = |stage: &str| -> String {
        let at = plan.find(&format!("] {stage} — ")).unwrap();
        plan[at..].lines().nth(1).unwrap().trim().to_string()
    };
    assert_eq!(status_of("dft"), "up to date: skipped");
    assert_eq!(status_of("infer-pseudo"), "up to date: skipped");
    assert_eq!(
        status_of("consensus"),
        "runs: its commands changed (the pipeline file)"
    );
    assert!(
        status_of("evaluate").starts_with("up to date now; checked again"),
        "{plan}"
    );
    assert!(plan.contains("$ lamar tune --predictions"), "{plan}");
    let said = ok(&["run", p(&file)]);
    assert!(said.contains("[8/"), "{said}");
    assert!(said.contains("dft: up to date, skipped"), "{said}");
    assert!(said.contains("$ lamar tune"), "{said}");
    assert!(
        manifest(&out, "consensus")["commands"][0]
            .as_array()
            .unwrap()
            .contains(&Value::from("12"))
    );

    // --only reruns one stage; --from a stage and everything after it.
    let said = ok(&["run", p(&file), "--only", "rows"]);
    assert_eq!(said.matches("$ lamar").count(), 4, "{said}");
    let said = ok(&["run", p(&file), "--from", "evaluate", "--dry-run"]);
    assert!(
        said.contains("evaluate — ") && said.contains("runs: asked for"),
        "{said}"
    );
    assert!(said.contains("not selected"), "{said}");
}

#[test]
fn a_run_killed_while_training_resumes_from_its_checkpoint_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    let file = write_pipeline(&reference, 10);
    ok(&["run", p(&file)]);

    let killed = dir.path().join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    let file = write_pipeline(&killed, 10);
    let out = killed.join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamar"))
        .args(["run", p(&file)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as Model 1's first checkpoint is written.
    let checkpoint = out.join("dft/adapter/checkpoint");
    let started = Instant::now();
    while !checkpoint.join("state.json").exists()
        && !checkpoint.join("adapter_model.safetensors").exists()
    {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("the run ended before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        manifest(&out, "dft")["finished"],
        false,
        "the run was to be killed while training"
    );

    let said = ok(&["run", p(&file)]);
    assert!(said.contains("corpus: up to date, skipped"), "{said}");
    assert!(said.contains("continuing after 0 of 1 commands"), "{said}");
    assert!(
        said.contains("--checkpoint-every 1 --device cpu --prompt-file"),
        "{said}"
    );
    assert!(said.contains(" --resume\n"), "{said}");
    for f in RESULTS {
        assert_eq!(
            read(&reference.join("out").join(f)),
            read(&out.join(f)),
            "{f} differs from the uninterrupted run's"
        );
    }
}

#[test]
fn bad_pipelines_are_refused_before_any_work_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    let good = pipeline(10);

    let f = write("typo.toml", &good.replace("[dft]\n", "[dft]\nrnak = 4\n"));
    let err = fails(&["run", p(&f)]);
    assert!(
        err.contains("typo.toml") && err.contains("rnak") && err.contains("line 14"),
        "{err}"
    );

    let f = write(
        "snapshot.toml",
        &good.replace("tiny_seed = 5", "snapshot = \"no/such/model\""),
    );
    let err = fails(&["run", p(&f)]);
    assert!(
        err.contains("model.snapshot") && err.contains("does not exist"),
        "{err}"
    );

    let f = write(
        "both.toml",
        &good.replace("tiny_seed = 5", "tiny_seed = 5\nsnapshot = \".\""),
    );
    let err = fails(&["run", p(&f)]);
    assert!(
        err.contains("exactly one of model.snapshot, model.tiny_seed"),
        "{err}"
    );

    let f = write(
        "encoder.toml",
        &good.replace("tiny_seed = 3", "tiny_seed = 3\nmodel = \"no/such/bert\""),
    );
    let err = fails(&["run", p(&f)]);
    assert!(
        err.contains("exactly one of encoder.model and encoder.tiny_seed"),
        "{err}"
    );
    let f = write(
        "encoder-model.toml",
        &good.replace("tiny_seed = 3", "model = \"no/such/bert\""),
    );
    let err = fails(&["run", p(&f)]);
    assert!(
        err.contains("encoder.model") && err.contains("does not exist"),
        "{err}"
    );

    let f = write(
        "partial.toml",
        &good.replace(
            "[data.synthetic]\ndocs = 20\nseed = 3\nunlabeled_notes = 6\n",
            "[data]\ngold_dir = \".\"\n",
        ),
    );
    let err = fails(&["run", p(&f)]);
    assert!(err.contains("data.raw_text_dir: missing"), "{err}");

    // A value the command refuses is found by parsing every command first.
    let f = write(
        "loss.toml",
        &good.replace("loss = \"ce\"", "loss = \"mse\""),
    );
    let err = fails(&["run", p(&f)]);
    assert!(err.contains("stage dft") && err.contains("--loss"), "{err}");

    if !cfg!(feature = "cuda") {
        let f = write(
            "cuda.toml",
            &good.replace("device = \"cpu\"", "device = \"cuda\""),
        );
        let err = fails(&["run", p(&f)]);
        assert!(
            err.contains("model.device") && err.contains("--features cuda"),
            "{err}"
        );
    }

    let f = write("good.toml", &good);
    let err = fails(&["run", p(&f), "--only", "nosuch"]);
    assert!(err.contains("corpus, model, rows, dft"), "{err}");
    let err = fails(&["run", p(&f), "--only", "consensus"]);
    assert!(err.contains("reads what is not there yet"), "{err}");
    let err = fails(&["run", p(&f), "--from", "dft"]);
    assert!(
        err.contains("stage corpus (before --from dft) has not finished"),
        "{err}"
    );
    // Nothing was written by any of these.
    assert!(!dir.path().join("out").exists());
}
