//! `lamar`: clinical-decision extraction with agreement-driven LLM ensembles.
//!
//! One binary, one subcommand per pipeline step; each lives in `commands/<name>.rs`.

mod commands;
mod progress;
mod viewer_package;

use clap::{Parser, Subcommand};

/// lamar: extract clinical decisions from discharge summaries with ensembles of generative
/// taggers (a Rust re-implementation and extension of the LAMAR system, MedExACT 2026).
///
/// Offsets are Unicode code points into the raw text, half-open, as Python indexes strings.
/// Data stays on this machine: nothing here uses the network.
#[derive(Parser, Debug)]
#[command(
    name = "lamar",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each variant's help text is the doc comment of its argument struct.
#[derive(Subcommand, Debug)]
enum Command {
    Demo(commands::demo::DemoArgs),
    Synth(commands::synth::SynthArgs),
    Tag(commands::tag::TagArgs),
    Infer(commands::infer::InferArgs),
    Offsets(commands::offsets::OffsetsArgs),
    Evaluate(commands::evaluate::EvaluateArgs),
    Ensemble(commands::ensemble::EnsembleArgs),
    Tune(commands::tune::TuneArgs),
    Reward(commands::reward::RewardArgs),
    View(commands::view::ViewArgs),
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
    #[command(subcommand)]
    Train(commands::train::TrainCommand),
    #[command(subcommand)]
    Export(commands::export::ExportCommand),
    #[command(subcommand)]
    Pseudo(commands::pseudo::PseudoCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => commands::demo::run(&args),
        Command::Synth(args) => commands::synth::run(&args),
        Command::Tag(args) => commands::tag::run(&args),
        Command::Infer(args) => commands::infer::run(&args),
        Command::Offsets(args) => commands::offsets::run(&args),
        Command::Evaluate(args) => commands::evaluate::run(&args),
        Command::Ensemble(args) => commands::ensemble::run(&args),
        Command::Tune(args) => commands::tune::run(&args),
        Command::Reward(args) => commands::reward::run(&args),
        Command::View(args) => commands::view::run(&args),
        Command::Plugin(command) => commands::plugin::run(&command),
        Command::Train(command) => commands::train::run(&command),
        Command::Export(command) => commands::export::run(&command),
        Command::Pseudo(command) => commands::pseudo::run(&command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
