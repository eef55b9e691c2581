//! `lamar export`: write models in forms other tools take.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Write models in forms other tools take.
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    Merge(MergeArgs),
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
    }
}
