//! The encoder baseline learns: a tiny random BERT fine-tuned on notes where one drug is always
//! a decision of category 2 finds it in a note it never saw, and writes a checkpoint that
//! transformers' names describe.

use candle_core::Device;
use lamar_core::{Category, Span};
use lamar_model::encoder::predict::EncoderTagger;
use lamar_model::encoder::tiny::write_tiny_encoder;
use lamar_model::encoder::train::{EncoderJob, EncoderTrainConfig, LabelledText};

const FILLERS: [&str; 6] = [
    "Patient seen on the ward today.",
    "Vitals were stable overnight.",
    "Family updated at the bedside.",
    "No acute events were reported.",
    "Plan discussed with the team.",
    "Labs reviewed this morning.",
];

/// A note with "start heparin drip" as a category-2 decision between two fillers.
fn note(k: usize) -> LabelledText {
    let before = FILLERS[k % FILLERS.len()];
    let after = FILLERS[(k * 5 + 1) % FILLERS.len()];
    let decision = "start heparin drip";
    let text = format!("{before} We will {decision} now. {after}");
    let start = text.chars().count() - after.chars().count() - decision.chars().count() - 6;
    let end = start + decision.chars().count();
    let chars: Vec<char> = text.chars().collect();
    assert_eq!(chars[start..end].iter().collect::<String>(), decision);
    LabelledText {
        id: format!("doc{k}"),
        spans: vec![Span::new(start, end, Category::from_id(2).unwrap())],
        text,
    }
}

#[test]
fn a_tiny_encoder_learns_a_decision_and_tags_an_unseen_note() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_tiny_encoder(&base, 7).unwrap();
    let documents: Vec<LabelledText> = (0..12).map(note).collect();
    let job = EncoderJob {
        model: base.clone(),
        out: dir.path().join("trained"),
        config: EncoderTrainConfig {
            learning_rate: 3e-3,
            epochs: 40,
            batch_size: 6,
            max_tokens: 64,
            ..EncoderTrainConfig::default()
        },
        device: Device::Cpu,
        checkpoint_every: 1000,
        resume: false,
    };
    let mut steps = Vec::new();
    let outcome = job
        .run(&documents, |_, _| {}, |s| steps.push(s.loss))
        .unwrap();
    assert_eq!(outcome.placed, 12);
    assert_eq!(steps.len(), 80);
    let first = steps[..5].iter().sum::<f64>() / 5.0;
    let last = steps[steps.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(last < first / 5.0, "loss {first} → {last}");

    // The checkpoint: transformers' names, the labels in its config, the tokenizer beside.
    let trained = dir.path().join("trained");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trained.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["num_labels"], 19);
    assert_eq!(config["id2label"]["18"], "O");
    assert_eq!(config["architectures"][0], "BertForTokenClassification");
    let tensors =
        candle_core::safetensors::load(trained.join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(tensors.contains_key("classifier.weight"));
    assert!(tensors.contains_key("bert.encoder.layer.1.output.LayerNorm.bias"));
    assert!(trained.join("tokenizer.json").is_file());
    assert!(trained.join("loss.svg").is_file());

    // An unseen note: other words around the decision.
    let tagger = EncoderTagger::load(&trained, 64, &Device::Cpu).unwrap();
    let text = "Cultures were sent. We will start heparin drip now. Wife at the bedside.";
    let spans = tagger.tag(text).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let found: Vec<(String, u8)> = spans
        .iter()
        .map(|s| (chars[s.start..s.end].iter().collect(), s.category.id()))
        .collect();
    assert!(
        found.iter().any(|(t, c)| *c == 2 && t.contains("heparin")),
        "{found:?}"
    );
    assert!(spans.iter().all(|s| s.end <= chars.len()));
}

#[test]
fn training_on_the_cpu_is_reproducible_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_tiny_encoder(&base, 3).unwrap();
    let documents: Vec<LabelledText> = (0..4).map(note).collect();
    let train = |name: &str| {
        let job = EncoderJob {
            model: base.clone(),
            out: dir.path().join(name),
            config: EncoderTrainConfig {
                learning_rate: 1e-3,
                epochs: 2,
                batch_size: 2,
                max_tokens: 16,
                ..EncoderTrainConfig::default()
            },
            device: Device::Cpu,
            checkpoint_every: 1000,
            resume: false,
        };
        job.run(&documents, |_, _| {}, |_| {}).unwrap();
        std::fs::read(dir.path().join(name).join("model.safetensors")).unwrap()
    };
    let (first, second) = (train("a"), train("b"));
    assert_eq!(first, second, "two runs of one job differ");
    // Another seed gives another model (the head, the crops and dropout follow it).
    let job = EncoderJob {
        model: base.clone(),
        out: dir.path().join("c"),
        config: EncoderTrainConfig {
            learning_rate: 1e-3,
            epochs: 2,
            batch_size: 2,
            max_tokens: 16,
            seed: 1,
            ..EncoderTrainConfig::default()
        },
        device: Device::Cpu,
        checkpoint_every: 1000,
        resume: false,
    };
    job.run(&documents, |_, _| {}, |_| {}).unwrap();
    assert_ne!(
        std::fs::read(dir.path().join("c").join("model.safetensors")).unwrap(),
        first
    );
}

#[test]
fn a_run_killed_midway_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_tiny_encoder(&base, 3).unwrap();
    let documents: Vec<LabelledText> = (0..6).map(note).collect();
    let job = |name: &str, resume: bool| EncoderJob {
        model: base.clone(),
        out: dir.path().join(name),
        config: EncoderTrainConfig {
            learning_rate: 1e-3,
            epochs: 3,
            batch_size: 2,
            max_tokens: 16,
            ..EncoderTrainConfig::default()
        },
        device: Device::Cpu,
        checkpoint_every: 2,
        resume,
    };
    job("whole", false)
        .run(&documents, |_, _| {}, |_| {})
        .unwrap();
    // Killed while reporting step 6 (9 in all): the checkpoint of step 4 survives.
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        job("killed", false).run(
            &documents,
            |_, _| {},
            |s| {
                if s.step == 6 {
                    panic!("killed");
                }
            },
        )
    }));
    assert!(killed.is_err());
    assert!(!dir.path().join("killed/model.safetensors").exists());
    let mut resumed_at = None;
    let mut ran = Vec::new();
    job("killed", true)
        .run(
            &documents,
            |_, done| resumed_at = Some(done),
            |s| ran.push(s.step),
        )
        .unwrap();
    assert_eq!(resumed_at, Some(4));
    assert_eq!(ran, [5, 6, 7, 8, 9]);
    let read = |name: &str| std::fs::read(dir.path().join(name).join("model.safetensors")).unwrap();
    assert_eq!(
        read("whole"),
        read("killed"),
        "the resumed run ends elsewhere"
    );
    let lines = |name: &str| {
        std::fs::read_to_string(dir.path().join(name).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines("killed"), 9);
}
