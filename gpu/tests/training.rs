//! LoRA training end to end on the CPU (issue 17): a tiny random Qwen3.5 with the test
//! tokenizer learns to copy short synthetic notes with their decision tags: its loss falls.

use candle_core::{DType, Device};
use lamar_core::prompt::TaskPrompt;
use lamar_core::synth::{SynthConfig, generate};
use lamar_model::chat::ChatTemplate;
use lamar_model::qwen35;
use lamar_model::tokenizer::TextTokenizer;
use lamar_model::train::checkpoint::Checkpoints;
use lamar_model::train::data::{Example, example};
use lamar_model::train::lora::{ALL_LINEAR, LoraShape, TrainableLora};
use lamar_model::train::loss::LossKind;
use lamar_model::train::trainer::{StepReport, TrainConfig, train};
use std::sync::Arc;

/// Short windows of synthetic notes with the gold spans inside them, as tagged training rows.
fn examples(tokenizer: &TextTokenizer, template: &ChatTemplate) -> Vec<Example> {
    let prompt =
        TaskPrompt::from_text("Tag the decisions in this note:\n{raw_text}", "test").unwrap();
    let corpus = generate(&SynthConfig { docs: 6, seed: 4 });
    corpus
        .documents
        .iter()
        .map(|doc| {
            let window: String = doc.text.chars().take(240).collect();
            let n = window.chars().count();
            let spans: Vec<_> = doc.gold.iter().copied().filter(|s| s.end <= n).collect();
            let tagged = lamar_core::codec::encode(&window, &spans).unwrap();
            example(tokenizer, template, &prompt, &window, &tagged, 4096).unwrap()
        })
        .collect()
}

#[test]
fn a_tiny_model_learns_the_tagged_copies() {
    let dir = tempfile::tempdir().unwrap();
    qwen35::random::write_tiny_snapshot(dir.path(), 5).unwrap();
    let model = qwen35::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    let tokenizer = TextTokenizer::from_snapshot(dir.path()).unwrap();
    let template = ChatTemplate::from_snapshot(dir.path()).unwrap();
    let examples = examples(&tokenizer, &template);
    let shape = LoraShape {
        rank: 8,
        alpha: 16.0,
        rslora: true,
    };
    let lora = Arc::new(TrainableLora::init(&model, &ALL_LINEAR, shape, 1, &Device::Cpu).unwrap());
    let config = TrainConfig {
        loss: LossKind::CrossEntropy,
        learning_rate: 1e-2,
        warmup_ratio: 0.1,
        weight_decay: 0.0,
        accumulation: 2,
        epochs: 12,
        max_grad_norm: 1.0,
        head_chunk: 64,
        seed: 1,
        stop_after_steps: None,
    };
    let mut steps: Vec<StepReport> = Vec::new();
    train(&model, &lora, &examples, &config, None, |s| steps.push(*s)).unwrap();
    assert_eq!(steps.len(), 3 * 12);
    assert!(
        steps
            .iter()
            .all(|s| s.loss.is_finite() && s.grad_norm.is_finite())
    );
    let epoch_loss = |e: usize| {
        let of: Vec<f64> = steps
            .iter()
            .filter(|s| s.epoch == e)
            .map(|s| s.loss)
            .collect();
        of.iter().sum::<f64>() / of.len() as f64
    };
    let (first, last) = (epoch_loss(0), epoch_loss(11));
    eprintln!("cross-entropy per response token: epoch 1 {first:.4}, epoch 12 {last:.4}");
    // From ln(vocabulary) (a uniform guess) to about half of it in 12 epochs of 6 notes.
    assert!(
        last < 0.6 * first,
        "the loss fell from {first} to only {last}"
    );
}

#[test]
fn a_resumed_run_ends_with_the_same_adapter_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot");
    qwen35::random::write_tiny_snapshot(&snapshot, 6).unwrap();
    let model = qwen35::load(&snapshot, DType::F32, &Device::Cpu).unwrap();
    let tokenizer = TextTokenizer::from_snapshot(&snapshot).unwrap();
    let template = ChatTemplate::from_snapshot(&snapshot).unwrap();
    let examples = examples(&tokenizer, &template);
    let shape = LoraShape {
        rank: 4,
        alpha: 8.0,
        rslora: true,
    };
    let config = TrainConfig {
        loss: LossKind::Dft,
        learning_rate: 5e-3,
        warmup_ratio: 0.2,
        weight_decay: 0.01,
        accumulation: 2,
        epochs: 3,
        max_grad_norm: 1.0,
        head_chunk: 64,
        seed: 9,
        stop_after_steps: None,
    };
    let fresh =
        || Arc::new(TrainableLora::init(&model, &ALL_LINEAR, shape, 3, &Device::Cpu).unwrap());
    let values = |lora: &TrainableLora| -> Vec<Vec<f32>> {
        lora.named_vars()
            .iter()
            .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    // Uninterrupted: 9 steps.
    let whole = fresh();
    let mut whole_steps = Vec::new();
    train(&model, &whole, &examples, &config, None, |s| {
        whole_steps.push(*s)
    })
    .unwrap();
    assert_eq!(whole_steps.len(), 9);
    // Killed after step 5 (checkpoints every 2 steps and at epoch ends: the last is step 4),
    // then resumed from the checkpoint.
    let checkpoints = Checkpoints {
        dir: dir.path().join("run"),
        every: 2,
        resume: true,
    };
    let first = fresh();
    let killed = TrainConfig {
        stop_after_steps: Some(5),
        ..config
    };
    let mut first_steps = Vec::new();
    train(
        &model,
        &first,
        &examples,
        &killed,
        Some(&checkpoints),
        |s| first_steps.push(*s),
    )
    .unwrap();
    assert_eq!(first_steps.len(), 5);
    let state = std::fs::read_to_string(checkpoints.last().join("state.json")).unwrap();
    assert!(state.contains("\"step\":4"), "{state}");
    let resumed =
        Arc::new(TrainableLora::from_peft(&checkpoints.last(), &model, &Device::Cpu).unwrap());
    let mut rest = Vec::new();
    train(
        &model,
        &resumed,
        &examples,
        &config,
        Some(&checkpoints),
        |s| rest.push(*s),
    )
    .unwrap();
    assert_eq!(
        rest.iter().map(|s| s.step).collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9]
    );
    for (a, b) in rest.iter().zip(&whole_steps[4..]) {
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {}", a.step);
    }
    assert_eq!(values(&resumed), values(&whole), "the adapters differ");
    // A run that was not resumed differs (the check above can fail).
    assert_ne!(values(&first), values(&whole));
    // A checkpoint is continued only with the data and settings it was made with.
    let other = TrainConfig {
        learning_rate: 1e-3,
        ..config
    };
    let err = train(
        &model,
        &fresh(),
        &examples,
        &other,
        Some(&checkpoints),
        |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("other training data or settings"),
        "{err}"
    );
    let err = train(
        &model,
        &fresh(),
        &examples[1..],
        &config,
        Some(&checkpoints),
        |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("other training data or settings"),
        "{err}"
    );
}
