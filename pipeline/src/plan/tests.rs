//! The plans of the example pipelines and of variations on them.

use super::*;

fn example(name: &str) -> PipelineConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    PipelineConfig::read(&dir.join(name)).unwrap()
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.stages.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn the_examples_parse_into_their_stages() {
    let demo = Plan::new(&example("demo.toml")).unwrap();
    assert_eq!(
        names(&demo),
        [
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
            "evaluate",
            "view"
        ]
    );
    let demo_systems: Vec<&str> = demo.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        demo_systems,
        ["dft", "grpo", "pseudo", "encoder", "ensemble"]
    );
    // The encoder trains on whole notes from a tiny base made in its stage, and its
    // predictions of val join the tuning.
    let encoder = &demo.stages[names(&demo).iter().position(|n| *n == "encoder").unwrap()];
    let lines: Vec<String> = encoder.commands.iter().map(|c| c.args.join(" ")).collect();
    assert!(
        lines[0].starts_with("export tiny-encoder --out"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("--data") && lines[1].contains("rows/train.jsonl"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("classify") && lines[2].contains("rows/val.jsonl"));
    let consensus = &demo.stages[names(&demo).iter().position(|n| *n == "consensus").unwrap()];
    assert!(
        consensus.commands[0]
            .args
            .join(" ")
            .contains("encoder/val.json")
    );
    let meddec = Plan::new(&example("meddec.toml")).unwrap();
    assert_eq!(names(&meddec)[..2], ["rows", "dft"]);
    let systems: Vec<&str> = meddec.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(systems, ["dft", "grpo", "pseudo", "ensemble"]);
    // Settings left out are not passed: the command's default holds.
    let dft = &meddec.stages[1].commands[0].args;
    assert!(!dft.contains(&"--rank".to_string()), "{dft:?}");
    assert!(dft.contains(&"--tf32".to_string()), "{dft:?}");
    assert_eq!(dft[dft.len() - 2..], ["--device", "cuda"]);
    // Model 2 tags with Model 1 merged and its own adapter.
    let infer = &meddec.stages[names(&meddec)
        .iter()
        .position(|n| *n == "infer-grpo")
        .unwrap()];
    let args = infer.commands[0].args.join(" ");
    assert!(
        args.contains("grpo/model1-merged --adapter") && args.contains("grpo/adapter"),
        "{args}"
    );
}

#[test]
fn models_left_out_are_not_planned_and_paths_are_relative_to_the_file() {
    let text = r#"
        out = "o"
        [data.synthetic]
        [model]
        snapshot = "snap"
        [view]
        enabled = false
    "#;
    let config = PipelineConfig::parse(text, Path::new("p.toml"), Path::new("/base")).unwrap();
    assert_eq!(config.out, Path::new("/base/o"));
    let plan = Plan::new(&config).unwrap();
    assert_eq!(
        names(&plan),
        [
            "corpus",
            "rows",
            "dft",
            "infer-dft",
            "consensus",
            "evaluate"
        ]
    );
    assert_eq!(plan.stages[2].inputs[0], Path::new("/base/snap"));
    assert_eq!(
        plan.stages[2].commands[0]
            .resume
            .as_ref()
            .unwrap()
            .checkpoint,
        Path::new("/base/o/dft/adapter/checkpoint")
    );
}
