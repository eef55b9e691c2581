//! Running a plan: which stages run (all, `--from`, `--only`), skipping those up to date,
//! continuing an interrupted one, and recording each in its manifest.
//!
//! The runner does not know how a command runs: an [`Executor`] (the `lamar` binary, which
//! dispatches the arguments to its own subcommands) checks and executes them, and an observer
//! hears what happens, so the library prints nothing.

use crate::PipelineError;
use crate::manifest::{MANIFEST, Manifest, Status, command_lines, fingerprints, status};
use crate::plan::{Plan, Stage};

/// Runs `lamar` command lines.
pub trait Executor {
    /// Checks that `args` parse, without running anything.
    fn check(&self, args: &[String]) -> Result<(), String>;
    /// Runs `args` to completion.
    fn execute(&self, args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Which stages to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Run this stage and every one after it, whether up to date or not; the stages before it
    /// must have finished.
    pub from: Option<String>,
    /// Run this stage alone, whether up to date or not; what it reads must exist.
    pub only: Option<String>,
}

/// What the runner does with one stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not run: up to date.
    Skip,
    /// Not run: outside the selection.
    Outside,
    /// Continue after this many commands.
    Resume(usize),
    /// Run from the start, for this reason.
    Run(String),
}

/// What happens, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// Stage `index` of `total`, and what will be done with it.
    Stage {
        /// 1-based.
        index: usize,
        /// Stages in the plan.
        total: usize,
        /// The stage.
        stage: &'a Stage,
        /// Skip, resume or run.
        decision: &'a Decision,
    },
    /// A command is about to run (with any resume flag added).
    Command(&'a [String]),
    /// A command was skipped: it had completed before the interruption.
    AlreadyDone(&'a [String]),
    /// The stage finished, its commands taking this many seconds.
    Finished(&'a Stage, f64),
}

/// The decisions for every stage, in order, as they stand before anything runs (a stage after
/// one that runs is checked again when its turn comes).
pub fn decide(
    plan: &Plan,
    selection: &Selection,
    version: &str,
) -> Result<Vec<Decision>, PipelineError> {
    let (start, end, forced) = range(plan, selection)?;
    let mut decisions = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        if i < start || i >= end {
            decisions.push(Decision::Outside);
            continue;
        }
        if forced {
            decisions.push(Decision::Run("asked for (--from or --only)".into()));
            continue;
        }
        decisions.push(decide_one(stage, version)?);
    }
    Ok(decisions)
}

fn range(plan: &Plan, selection: &Selection) -> Result<(usize, usize, bool), PipelineError> {
    match (&selection.from, &selection.only) {
        (Some(_), Some(_)) => Err(PipelineError::Selection(
            "give --from or --only, not both".into(),
        )),
        (Some(from), None) => Ok((plan.position(from)?, plan.stages.len(), true)),
        (None, Some(only)) => {
            let i = plan.position(only)?;
            Ok((i, i + 1, true))
        }
        (None, None) => Ok((0, plan.stages.len(), false)),
    }
}

fn decide_one(stage: &Stage, version: &str) -> Result<Decision, PipelineError> {
    let previous = Manifest::read(stage)?;
    let inputs = fingerprints(&stage.inputs, previous.as_ref().map(|m| &m.inputs))?;
    Ok(match status(stage, version, previous.as_ref(), &inputs)? {
        Status::UpToDate => Decision::Skip,
        Status::Resume { commands_done } => Decision::Resume(commands_done),
        Status::Run(why) => Decision::Run(why),
    })
}

/// Checks every command of the selected stages with the executor, and that what a
/// `--from`/`--only` run starts from is there; nothing runs.
pub fn preflight(
    plan: &Plan,
    selection: &Selection,
    executor: &dyn Executor,
) -> Result<(), PipelineError> {
    let (start, end, _) = range(plan, selection)?;
    for stage in &plan.stages[start..end] {
        for command in &stage.commands {
            executor
                .check(&command.args)
                .map_err(|message| PipelineError::Command {
                    stage: stage.name.clone(),
                    command: command.args.join(" "),
                    message,
                })?;
        }
    }
    if selection.from.is_some() {
        for stage in &plan.stages[..start] {
            let finished = Manifest::read(stage)?.is_some_and(|m| m.finished);
            if !finished {
                return Err(PipelineError::Selection(format!(
                    "stage {} (before --from {}) has not finished: run without --from first",
                    stage.name, plan.stages[start].name
                )));
            }
        }
    }
    if selection.only.is_some() {
        let stage = &plan.stages[start];
        // What earlier stages write and this one reads must be there.
        let missing: Vec<String> = stage
            .inputs
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(PipelineError::Selection(format!(
                "stage {} reads what is not there yet: {} (run the stages before it first)",
                stage.name,
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// Runs the selected stages of `plan`.
pub fn run(
    plan: &Plan,
    selection: &Selection,
    version: &str,
    executor: &dyn Executor,
    observe: &mut dyn FnMut(Event),
) -> Result<(), PipelineError> {
    preflight(plan, selection, executor)?;
    write_generated(plan)?;
    let (start, end, forced) = range(plan, selection)?;
    let total = plan.stages.len();
    for (i, stage) in plan.stages.iter().enumerate() {
        let decision = if i < start || i >= end {
            Decision::Outside
        } else if forced {
            Decision::Run("asked for (--from or --only)".into())
        } else {
            // Decided now: an earlier stage may just have rewritten its inputs.
            decide_one(stage, version)?
        };
        observe(Event::Stage {
            index: i + 1,
            total,
            stage,
            decision: &decision,
        });
        if matches!(decision, Decision::Skip | Decision::Outside) {
            continue;
        }
        // Read before a fresh run clears the folder: its recorded fingerprints spare hashing
        // inputs again that were not touched since (a multi-gigabyte snapshot).
        let previous = Manifest::read(stage)?;
        let done = match decision {
            Decision::Resume(done) => done,
            _ => {
                clear(stage)?;
                0
            }
        };
        run_stage(stage, version, done, previous, executor, observe)?;
    }
    Ok(())
}

/// Writes the files the pipeline file holds, leaving those already as they should be untouched.
fn write_generated(plan: &Plan) -> Result<(), PipelineError> {
    for (path, text) in &plan.generated {
        if std::fs::read_to_string(path).is_ok_and(|t| &t == text) {
            continue;
        }
        let io = |e: std::io::Error| PipelineError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, text).map_err(io)?;
    }
    Ok(())
}

/// Empties a stage's folder before a fresh run, refusing a folder lamar did not write.
fn clear(stage: &Stage) -> Result<(), PipelineError> {
    let dir = &stage.dir;
    if !dir.exists() {
        return Ok(());
    }
    let ours = dir.join(MANIFEST).exists();
    let empty = std::fs::read_dir(dir)
        .map_err(|e| PipelineError::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?
        .next()
        .is_none();
    if !ours && !empty {
        return Err(PipelineError::Selection(format!(
            "{} exists and was not written by `lamar run` (no {MANIFEST}): move it away or \
             choose another `out`",
            dir.display()
        )));
    }
    std::fs::remove_dir_all(dir).map_err(|e| PipelineError::Io {
        path: dir.clone(),
        message: e.to_string(),
    })
}

fn run_stage(
    stage: &Stage,
    version: &str,
    done: usize,
    previous: Option<Manifest>,
    executor: &dyn Executor,
    observe: &mut dyn FnMut(Event),
) -> Result<(), PipelineError> {
    let inputs = fingerprints(&stage.inputs, previous.as_ref().map(|m| &m.inputs))?;
    let mut manifest = Manifest {
        stage: stage.name.clone(),
        lamar_version: version.to_string(),
        commands: command_lines(stage),
        inputs,
        outputs: Default::default(),
        commands_done: done,
        finished: false,
        // A resumed stage adds to the time it had taken; a fresh run starts from zero.
        seconds: previous.filter(|_| done > 0).map_or(0.0, |m| m.seconds),
    };
    manifest.write(stage)?;
    for (k, command) in stage.commands.iter().enumerate() {
        if k < done {
            observe(Event::AlreadyDone(&command.args));
            continue;
        }
        let mut args = command.args.clone();
        if let Some(resume) = &command.resume
            && k == done
            && done == manifest.commands_done
            && resume.checkpoint.exists()
        {
            args.push(resume.flag.clone());
        }
        observe(Event::Command(&args));
        let started = std::time::Instant::now();
        executor.execute(&args).map_err(|e| PipelineError::Failed {
            stage: stage.name.clone(),
            command: args.join(" "),
            message: error_chain(e.as_ref()),
        })?;
        manifest.seconds += started.elapsed().as_secs_f64();
        manifest.commands_done = k + 1;
        manifest.write(stage)?;
    }
    manifest.outputs = fingerprints(&stage.outputs, None)?;
    if let Some((path, _)) = manifest.outputs.iter().find(|(_, f)| f.files == 0) {
        return Err(PipelineError::Failed {
            stage: stage.name.clone(),
            command: command_lines(stage)
                .last()
                .map(|c| c.join(" "))
                .unwrap_or_default(),
            message: format!("it did not write {path}"),
        });
    }
    manifest.finished = true;
    manifest.write(stage)?;
    observe(Event::Finished(stage, manifest.seconds));
    Ok(())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
