//! Command lines of the LLM variants: a `lamar train dft` stage (Models 1 and 3) and a `lamar
//! infer` line (every model tags val and test).

use super::line::{Line, ModelArgs};
use super::{Invocation, Stage};
use crate::PipelineError;
use crate::config::PipelineConfig;
use std::path::{Path, PathBuf};

/// `lamar infer` of `input` with `base` + `adapter`.
pub(super) fn infer_line(
    config: &PipelineConfig,
    model: &ModelArgs,
    base: &Path,
    adapter: &Path,
    input: &Path,
    out: &Path,
) -> Result<Invocation, PipelineError> {
    let line = Line::new(&["infer"])
        .path("--model", base)?
        .path("--adapter", adapter)?
        .path("--input", input)?
        .path("--out", out)?
        .opt("--batch-size", &config.infer.batch_size)
        .opt("--max-new-tokens", &config.infer.max_new_tokens)
        .opt("--length-factor", &config.infer.length_factor)
        .opt("--window-chars", &config.infer.window_chars);
    Ok(model.add(line, true)?.done())
}

/// A `lamar train dft` stage; its first output is the adapter.
pub(super) fn dft_stage(
    config: &PipelineConfig,
    model: &ModelArgs,
    out: &Path,
    name: &str,
    about: &str,
    data: &Path,
    common_inputs: &[PathBuf],
) -> Result<Stage, PipelineError> {
    let dir = out.join(name);
    let adapter = dir.join("adapter");
    let d = &config.dft;
    let line = Line::new(&["train", "dft"])
        .path("--model", &model.snapshot)?
        .path("--data", data)?
        .path("--out", &adapter)?
        .opt("--loss", &d.loss)
        .opt("--rank", &d.rank)
        .opt("--alpha", &d.alpha)
        .opt("--lr", &d.lr)
        .opt("--warmup-ratio", &d.warmup_ratio)
        .opt("--weight-decay", &d.weight_decay)
        .opt("--accumulation", &d.accumulation)
        .opt("--epochs", &d.epochs)
        .opt("--max-length", &d.max_length)
        .opt("--seed", &d.seed)
        .opt("--checkpoint-every", &d.checkpoint_every)
        .flag("--tf32", d.tf32);
    let line = model.add(line, true)?;
    let mut inputs = common_inputs.to_vec();
    inputs.push(data.to_path_buf());
    Ok(Stage {
        name: name.to_string(),
        about: about.to_string(),
        dir,
        commands: vec![line.resumable(adapter.join("checkpoint"))],
        inputs,
        outputs: vec![adapter],
    })
}
