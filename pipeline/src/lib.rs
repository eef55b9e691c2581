//! `lamar run PIPELINE.toml`: LAMAR end to end from one declarative file.
//!
//! The pipeline is a thin layer over lamar's commands, in three parts:
//!
//! - [`config`]: the TOML file, typed, refusing unknown keys; each setting maps to one flag of
//!   one command, and a setting left out takes that command's default.
//! - [`plan`]: the stages (corpus, rows, the three models, pseudo-labels, tagging, consensus,
//!   scores, viewer), each a list of `lamar` command lines with what it reads and writes.
//!   `lamar run --dry-run` prints them; typing them by hand does the same work.
//! - [`manifest`] and [`runner`]: each stage records its commands, lamar's version and
//!   fingerprints of its inputs and outputs; a rerun skips stages whose record still holds and
//!   continues an interrupted one (training from its checkpoint, tagging after the documents
//!   already written).
//!
//! [`report`] reads the scores at the end. The library prints nothing and runs no command
//! itself: the `lamar` binary executes the command lines through its own argument parser.

pub mod config;
pub mod manifest;
pub mod plan;
pub mod report;
pub mod runner;

pub use config::PipelineConfig;
pub use plan::Plan;

use std::path::PathBuf;

/// What can go wrong before or while a pipeline runs.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file is not valid TOML or does not fit the schema (the message names the line
    /// and key).
    #[error("{file}: {message}", file = file.display())]
    Toml {
        /// The pipeline file.
        file: PathBuf,
        /// toml's message.
        message: String,
    },
    /// A setting is wrong.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, e.g. `data.gold_dir`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {message}", path = path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The system's message.
        message: String,
    },
    /// A manifest or report cannot be read.
    #[error("{path}: {message}", path = path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No stage has this name.
    #[error("no stage called {name:?} in this pipeline (its stages: {stages})")]
    UnknownStage {
        /// The name asked for.
        name: String,
        /// The stages there are.
        stages: String,
    },
    /// `--from` / `--only` cannot be honoured.
    #[error("{0}")]
    Selection(String),
    /// A command of a stage does not parse.
    #[error("stage {stage}: `lamar {command}` is not a valid command: {message}")]
    Command {
        /// The stage.
        stage: String,
        /// The command line.
        command: String,
        /// The parser's message.
        message: String,
    },
    /// A command failed; the stage can be continued by running again.
    #[error("stage {stage} failed in `lamar {command}`: {message}")]
    Failed {
        /// The stage.
        stage: String,
        /// The command line.
        command: String,
        /// Its error.
        message: String,
    },
}
