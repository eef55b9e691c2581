//! `lamar export`: write models in forms other tools take.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Write models in forms other tools take.
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    Merge(MergeArgs),
    Tiny(TinyArgs),
    TinyEncoder(TinyEncoderArgs),
}

/// Write a tiny randomly initialised BERT (2 layers, width 64, the tiny tokenizer of
/// `lamar export tiny`): a base checkpoint for `lamar train encoder` without downloaded
/// weights. The same seed writes the same weights.
#[derive(Args, Debug)]
pub struct TinyEncoderArgs {
    /// Folder for the checkpoint.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the weights.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Write a tiny randomly initialised Qwen3.5 snapshot (4 layers, width 64, a small tokenizer
/// and chat template), for demos and tests without downloaded weights.
///
/// It loads and trains like a real snapshot (`lamar infer`, `lamar train`); untrained, it tags
/// nothing useful. The same seed writes the same weights.
#[derive(Args, Debug)]
pub struct TinyArgs {
    /// Folder for the snapshot.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the weights.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write instead the tiny model pre-trained to copy windows of notes of at most 160
    /// characters, prompted with "Tag the decisions:\n{raw_text}" (compiled in; made once with
    /// PyTorch, tests/golden/qwen35_tiny_copier): LoRA training teaches it to tag in minutes
    /// on a CPU.
    #[arg(long, conflicts_with = "seed")]
    pub copier: bool,
}

/// Merge a LoRA adapter into a snapshot's weights (W + s·BA), offline.
///
/// Writes OUT/model.safetensors and copies the snapshot's configuration, tokenizer and chat
/// template, so the result loads like the base model (`lamar infer --model OUT`, transformers)
/// and runs as fast. The adapter is PEFT's format, as `lamar train dft` writes it.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Base model snapshot.
    #[arg(long)]
    pub model: PathBuf,
    /// PEFT adapter folder (adapter_config.json, adapter_model.safetensors).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Folder for the merged snapshot.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `lamar export`.
pub fn run(command: &ExportCommand) -> Result<()> {
    match command {
        ExportCommand::Merge(args) => {
            let modules =
                lamar_model::train::export::merge_adapter(&args.model, &args.adapter, &args.out)?;
            println!(
                "merged {modules} adapted modules into {}",
                args.out.display()
            );
            Ok(())
        }
        ExportCommand::TinyEncoder(args) => {
            lamar_model::encoder::tiny::write_tiny_encoder(&args.out, args.seed)?;
            println!("wrote a tiny random BERT to {}", args.out.display());
            Ok(())
        }
        ExportCommand::Tiny(args) => {
            if args.copier {
                lamar_model::qwen35::random::write_tiny_copier(&args.out)?;
                println!("wrote the tiny copier Qwen3.5 to {}", args.out.display());
            } else {
                lamar_model::qwen35::random::write_tiny_snapshot(&args.out, args.seed)?;
                println!("wrote a tiny random Qwen3.5 to {}", args.out.display());
            }
            Ok(())
        }
    }
}
