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
    Run(commands::run::RunArgs),
    Demo(commands::demo::DemoArgs),
    Synth(commands::synth::SynthArgs),
    Tag(commands::tag::TagArgs),
    Infer(commands::infer::InferArgs),
    Classify(commands::encoder::ClassifyArgs),
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
    dispatch(Cli::parse().command)
}

/// Runs one subcommand.
fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => commands::run::run(&args, &Lamar),
        Command::Demo(args) => commands::demo::run(&args, &Lamar),
        Command::Synth(args) => commands::synth::run(&args),
        Command::Tag(args) => commands::tag::run(&args),
        Command::Infer(args) => commands::infer::run(&args),
        Command::Classify(args) => commands::encoder::classify(&args),
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

/// `lamar run`'s executor: a pipeline's command lines parsed and run by this binary's own
/// subcommands, in this process.
struct Lamar;

impl Lamar {
    fn parse(args: &[String]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lamar").chain(args.iter().map(String::as_str)))
    }
}

impl lamar_pipeline::runner::Executor for Lamar {
    fn check(&self, args: &[String]) -> Result<(), String> {
        match Lamar::parse(args) {
            Ok(Cli {
                command: Command::Run(_),
            }) => Err("a pipeline cannot run `lamar run`".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.render().to_string().trim_end().to_string()),
        }
    }

    fn execute(&self, args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let cli = Lamar::parse(args)?;
        dispatch(cli.command).map_err(Into::into)
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
