//! The encoder baseline's stage: its base checkpoint (a tiny random BERT when asked), fine-tuning
//! on the training rows (whole notes: the encoder reads them in windows of its own), and
//! tagging val and test.

use super::line::Line;
use super::{ModelPredictions, Stage};
use crate::PipelineError;
use crate::config::EncoderConfig;
use std::path::{Path, PathBuf};

/// The rows files the stage reads.
pub(super) struct EncoderRows<'a> {
    pub(super) train: &'a Path,
    pub(super) val: &'a Path,
    pub(super) test: &'a Path,
}

/// The `encoder` stage and where its predictions land (scored into `eval_dir/encoder.json`).
pub(super) fn encoder_stage(
    config: &EncoderConfig,
    device: &str,
    out: &Path,
    rows: EncoderRows,
    eval_dir: &Path,
) -> Result<(Stage, ModelPredictions), PipelineError> {
    let dir = out.join("encoder");
    let mut commands = Vec::new();
    let mut inputs: Vec<PathBuf> = vec![rows.train.into(), rows.val.into(), rows.test.into()];
    let base = match &config.model {
        Some(model) => {
            inputs.push(model.clone());
            model.clone()
        }
        None => {
            let base = dir.join("base");
            commands.push(
                Line::new(&["export", "tiny-encoder"])
                    .path("--out", &base)?
                    .opt("--seed", &config.tiny_seed)
                    .done(),
            );
            base
        }
    };
    let trained = dir.join("model");
    commands.push(
        Line::new(&["train", "encoder"])
            .path("--model", &base)?
            .path("--data", rows.train)?
            .path("--out", &trained)?
            .opt("--lr", &config.lr)
            .opt("--weight-decay", &config.weight_decay)
            .opt("--warmup-ratio", &config.warmup_ratio)
            .opt("--epochs", &config.epochs)
            .opt("--batch-size", &config.batch_size)
            .opt("--max-tokens", &config.max_tokens)
            .opt("--seed", &config.seed)
            .opt("--checkpoint-every", &config.checkpoint_every)
            .arg("--device", device)
            .resumable(trained.join("checkpoint")),
    );
    let mut outputs = Vec::new();
    for (split, input) in [("val", rows.val), ("test", rows.test)] {
        let predictions = dir.join(format!("{split}.json"));
        commands.push(
            Line::new(&["classify"])
                .path("--model", &trained)?
                .path("--input", input)?
                .path("--out", &predictions)?
                .opt("--max-tokens", &config.max_tokens)
                .arg("--device", device)
                .done(),
        );
        outputs.push(predictions);
    }
    let predictions = ModelPredictions {
        name: "encoder".into(),
        val: Some(outputs[0].clone()),
        test: outputs[1].clone(),
        scores: eval_dir.join("encoder.json"),
    };
    outputs.push(trained);
    let stage = Stage {
        name: "encoder".into(),
        about: "the encoder baseline: a BERT token classifier fine-tuned on BIO labels tags val \
                and test"
            .into(),
        dir,
        commands,
        inputs,
        outputs,
    };
    Ok((stage, predictions))
}
