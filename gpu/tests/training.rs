//! LoRA training end to end on the CPU (issue 17): a tiny random Qwen3.5 with the test
//! tokenizer learns to copy short synthetic notes with their decision tags: its loss falls.

use candle_core::{DType, Device};
use lamar_core::prompt::TaskPrompt;
use lamar_core::synth::{SynthConfig, generate};
use lamar_model::chat::ChatTemplate;
use lamar_model::qwen35;
use lamar_model::tokenizer::TextTokenizer;
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
    };
    let mut steps: Vec<StepReport> = Vec::new();
    train(&model, &lora, &examples, &config, |s| steps.push(*s)).unwrap();
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
