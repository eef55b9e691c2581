//! The demo's training step: LoRA + DFT on the tiny random Qwen3.5 (`lamar train dft`), on
//! short windows of the training notes so that it takes seconds, then the adapter merged into a
//! snapshot (`lamar export merge`) and tagging with it (`lamar infer --adapter`).

use super::DemoArgs;
use anyhow::{Result, bail};
use lamar_core::formats::inference::{DocumentRow, InferenceOutput};
use lamar_core::formats::rows::read_training_rows;
use lamar_core::formats::windows::windows;
use lamar_core::prompt::TaskPrompt;
use lamar_model::infer::{TagSettings, Tagger, TokenBudget};
use lamar_model::sampling::{Sampler, SamplingParams};
use lamar_model::train::export::merge_adapter;
use lamar_model::train::job::DftJob;
use lamar_model::train::lora::LoraShape;
use lamar_model::train::loss::LossKind;
use lamar_model::train::trainer::TrainConfig;
use serde_json::{Value, json};

/// Windows of the training notes the demo trains on.
const WINDOWS: usize = 32;

/// Step 9: trains an adapter for the tiny snapshot of step 8 on windows of `tagged/train.jsonl`
/// (step 2), merges it, and tags a few windows with it.
pub(super) fn train(args: &DemoArgs) -> Result<Value> {
    let snapshot = args.out.join("tiny-qwen35");
    let rows: Vec<_> = read_training_rows(&args.out.join("tagged/train.jsonl"))?
        .iter()
        .flat_map(|r| windows(r, 300))
        .take(WINDOWS)
        .collect();
    let out = args.out.join("training");
    // A short prompt keeps the sequences short; real runs use the task prompt (the default).
    let prompt = TaskPrompt::from_text("Tag the decisions:\n{raw_text}", "demo prompt")?;
    let job = DftJob {
        model: snapshot.clone(),
        out: out.join("adapter"),
        prompt: prompt.clone(),
        shape: LoraShape {
            rank: 8,
            alpha: 16.0,
            rslora: true,
        },
        config: TrainConfig {
            loss: LossKind::Dft,
            learning_rate: 2e-3,
            accumulation: 4,
            epochs: 2,
            seed: args.seed,
            ..TrainConfig::default()
        },
        max_length: 2048,
        checkpoint_every: 6,
        resume: false,
        device: candle_core::Device::Cpu,
        dtype: candle_core::DType::F32,
        profile: false,
        adapter_products: Default::default(),
    };
    let started = std::time::Instant::now();
    let outcome = job.run(&rows, |_, _| {}, |_| {})?;
    let first =
        lamar_model::train::metrics::read_metrics::<lamar_model::train::trainer::StepReport>(
            &job.out.join("metrics.jsonl"),
        )?
        .first()
        .map(|r| r.cross_entropy)
        .unwrap_or(f64::NAN);
    println!(
        "  {} steps on {} windows of the training notes in {:.1} s: cross-entropy {first:.3} → \
         {:.3} per response token; adapter (PEFT format) in {}, loss curve {}",
        outcome.last.step,
        outcome.rows,
        started.elapsed().as_secs_f64(),
        outcome.last.cross_entropy,
        job.out.display(),
        outcome.curve.display()
    );
    if args.strict && !(outcome.last.cross_entropy.is_finite() && first.is_finite()) {
        bail!("training gave a loss that is not finite");
    }
    let merged = out.join("merged-snapshot");
    let modules = merge_adapter(&snapshot, &job.out, &merged)?;
    println!(
        "  merged into {} adapted modules → {}",
        modules,
        merged.display()
    );
    let documents: Vec<DocumentRow> = rows
        .iter()
        .take(2)
        .map(|r| DocumentRow {
            file_id: r.file_id.clone(),
            raw_text: r.raw_text.clone(),
        })
        .collect();
    let tagger = Tagger::load(
        &snapshot,
        Some((&job.out, false)),
        prompt,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )?;
    let settings = TagSettings {
        slots: 2,
        budget: TokenBudget {
            max_new_tokens: 24,
            ..TokenBudget::default()
        },
    };
    let tagged_path = out.join("tagged.jsonl");
    let _ = std::fs::remove_file(&tagged_path);
    let mut output = InferenceOutput::open(&tagged_path)?;
    let mut sampler = Sampler::new(SamplingParams::default());
    let report = tagger.tag_into(
        documents,
        &mut output,
        &settings,
        &mut sampler,
        || {},
        |_| {},
    )?;
    println!(
        "  tagged {} windows with the adapter → {} (a tiny random model learns little in {} \
         steps: real runs train Qwen3.5-4B on whole notes)",
        report.documents,
        tagged_path.display(),
        outcome.last.step
    );
    Ok(json!({
        "steps": outcome.last.step,
        "rows": outcome.rows,
        "first_cross_entropy": first,
        "last_cross_entropy": outcome.last.cross_entropy,
        "adapter": job.out,
        "loss_curve": outcome.curve,
        "merged_modules": modules,
        "tagged": report.documents,
    }))
}
