//! `lamar run`: LAMAR end to end from a pipeline file (the `lamar-pipeline` crate plans it; this
//! prints and executes).

use anyhow::{Context, Result};
use clap::Args;
use lamar_core::formats::write_atomic;
use lamar_pipeline::runner::{self, Decision, Event, Executor, Selection};
use lamar_pipeline::{PipelineConfig, Plan, report};
use std::path::{Path, PathBuf};

/// The pipeline `lamar run` runs when given no file: the demo on a synthetic corpus.
pub const DEMO_PIPELINE: &str = include_str!("../../../examples/demo.toml");

/// Run LAMAR end to end from a pipeline file: data, the three models, pseudo-labels, tagging,
/// the tuned consensus, scores and the viewer.
///
/// PIPELINE.toml names the data (MedDec's folders, or a synthetic corpus), the base model and
/// the settings of each stage (examples/meddec.toml: the reference recipe; examples/demo.toml,
/// used when no file is given: a tiny model on a synthetic corpus, on the CPU). Each stage is a
/// list of ordinary `lamar` commands (`--dry-run` prints them) writing into its own folder under
/// `out`, with a manifest of its commands, lamar's version and the fingerprints of what it read
/// and wrote. Running again skips the stages whose manifest still holds, and an interrupted
/// stage continues where it stopped (training from its last checkpoint, tagging after the
/// documents already written). A bad file (an unknown key, a missing path, a GPU stage in a
/// CPU-only build, a value a command refuses) fails before any work starts. At the end, the
/// scores of every model and of the ensemble on the test split are printed and written to
/// OUT/scores.md and OUT/scores.json.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline file (default: the built-in demo, examples/demo.toml, with paths relative
    /// to the current folder).
    pub pipeline: Option<PathBuf>,
    /// Run this stage and all after it again, even if up to date (the stages before it must
    /// have finished).
    #[arg(long, conflicts_with = "only", value_name = "STAGE")]
    pub from: Option<String>,
    /// Run only this stage, even if up to date (what it reads must exist).
    #[arg(long, value_name = "STAGE")]
    pub only: Option<String>,
    /// Print the stages, what would be done with each and their commands; run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The configuration: the file given, or the built-in demo.
fn config(args: &RunArgs) -> Result<PipelineConfig> {
    Ok(match &args.pipeline {
        Some(path) => PipelineConfig::read(path)?,
        // The built-in file's paths are relative to the current folder.
        None => PipelineConfig::parse(
            DEMO_PIPELINE,
            Path::new("examples/demo.toml (built in)"),
            Path::new(""),
        )?,
    })
}

/// Runs `lamar run`; `executor` runs each command line (the binary's own parser).
pub fn run(args: &RunArgs, executor: &dyn Executor) -> Result<()> {
    let mut config = config(args)?;
    config.validate(candle_core::utils::cuda_is_available())?;
    let package = crate::viewer_package::choose(None);
    if let (true, Some(dir)) = (
        config.view.enabled,
        crate::viewer_package::missing(&package),
    ) {
        let why = format!(
            "this lamar has no viewer package compiled in and {} is missing (build it with \
             wasm/build-web.sh)",
            dir.display()
        );
        if args.pipeline.is_some() {
            anyhow::bail!("view.enabled: {why}; or set view.enabled = false");
        }
        println!("the viewer stage is left out: {why}");
        config.view.enabled = false;
    }
    let plan = Plan::new(&config)?;
    let selection = Selection {
        from: args.from.clone(),
        only: args.only.clone(),
    };
    let version = env!("CARGO_PKG_VERSION");
    runner::preflight(&plan, &selection, executor)?;
    if args.dry_run {
        return dry_run(&plan, &selection, version);
    }
    let started = std::time::Instant::now();
    runner::run(&plan, &selection, version, executor, &mut |event| {
        show(&event)
    })?;
    println!(
        "\npipeline done in {:.1} s; everything is under {}",
        started.elapsed().as_secs_f64(),
        plan.out.display()
    );
    print_scores(&plan)?;
    Ok(())
}

/// Prints what the runner does.
pub fn show(event: &Event) {
    match event {
        Event::Stage {
            index,
            total,
            stage,
            decision,
        } => match decision {
            Decision::Outside => {}
            Decision::Skip => println!("[{index}/{total}] {}: up to date, skipped", stage.name),
            Decision::Resume(done) => println!(
                "\n[{index}/{total}] {}: {} (continuing after {done} of {} commands)",
                stage.name,
                stage.about,
                stage.commands.len()
            ),
            Decision::Run(why) => println!(
                "\n[{index}/{total}] {}: {} ({why})",
                stage.name, stage.about
            ),
        },
        Event::Command(args) => println!("  $ lamar {}", args.join(" ")),
        Event::AlreadyDone(args) => println!("  (done before) lamar {}", args.join(" ")),
        Event::Finished(stage, seconds) => {
            println!("  {} finished ({seconds:.1} s)", stage.name)
        }
    }
}

fn dry_run(plan: &Plan, selection: &Selection, version: &str) -> Result<()> {
    let decisions = runner::decide(plan, selection, version)?;
    let total = plan.stages.len();
    let mut earlier_runs = false;
    for (i, (stage, decision)) in plan.stages.iter().zip(&decisions).enumerate() {
        let what = match decision {
            Decision::Outside => "not selected".to_string(),
            Decision::Skip if earlier_runs => {
                "up to date now; checked again after the stages before it run".to_string()
            }
            Decision::Skip => "up to date: skipped".to_string(),
            Decision::Resume(done) => format!(
                "interrupted: continues after {done} of {} commands",
                stage.commands.len()
            ),
            Decision::Run(why) => format!("runs: {why}"),
        };
        earlier_runs |= matches!(decision, Decision::Run(_) | Decision::Resume(_));
        println!(
            "[{}/{total}] {} — {}\n    {what}",
            i + 1,
            stage.name,
            stage.about
        );
        for command in &stage.commands {
            println!("    $ lamar {}", command.args.join(" "));
        }
    }
    Ok(())
}

/// Prints the score table and writes it to OUT/scores.md and OUT/scores.json, when the
/// evaluation has run; returns its rows.
pub fn print_scores(plan: &Plan) -> Result<Vec<report::ScoreRow>> {
    let rows = report::scores(plan)?;
    if rows.is_empty() {
        return Ok(rows);
    }
    let table = report::markdown(&rows);
    println!("\nscores on the test split (official MedDec scorer):\n\n{table}");
    let md = plan.out.join("scores.md");
    write_atomic(&md, table.as_bytes()).with_context(|| format!("writing {}", md.display()))?;
    let json = plan.out.join("scores.json");
    write_atomic(&json, serde_json::to_string_pretty(&rows)?.as_bytes())
        .with_context(|| format!("writing {}", json.display()))?;
    Ok(rows)
}
