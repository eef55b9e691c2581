//! The demo's last step: the whole system from one pipeline file (`lamar run` of the built-in
//! examples/demo.toml), on a synthetic corpus of the demo's size (at most the file's 120
//! documents): three models trained from the tiny copier (DFT, DFT → GRPO, DFT +
//! pseudo-labels) and the encoder baseline (a tiny random BERT), tagging, the tuned consensus
//! and the score table. With `--strict`, an ensemble whose span F1 is not above every single
//! model's fails the demo.

use super::DemoArgs;
use crate::commands::run::{DEMO_PIPELINE, print_scores, show};
use anyhow::Result;
use lamar_pipeline::runner::{self, Executor, Selection};
use lamar_pipeline::{PipelineConfig, Plan};
use serde_json::{Value, json};
use std::path::Path;

/// Most documents of the pipeline's corpus (the built-in file's own size).
const MAX_DOCS: usize = 120;

/// Runs the built-in pipeline under OUT/run with the demo's seed and at most its documents.
pub(super) fn run(args: &DemoArgs, executor: &dyn Executor) -> Result<Value> {
    let mut config = PipelineConfig::parse(
        DEMO_PIPELINE,
        Path::new("examples/demo.toml (built in)"),
        Path::new(""),
    )?;
    config.out = args.out.join("run");
    if let Some(corpus) = config.data.synthetic.as_mut() {
        corpus.docs = Some(args.docs.min(MAX_DOCS));
        corpus.seed = Some(args.seed);
    }
    // The demo writes its own viewer (step 7).
    config.view.enabled = false;
    config.validate(candle_core::utils::cuda_is_available())?;
    let plan = Plan::new(&config)?;
    println!(
        "  {} stages as lamar commands (lamar run examples/demo.toml --dry-run prints them)",
        plan.stages.len()
    );
    let started = std::time::Instant::now();
    runner::run(
        &plan,
        &Selection::default(),
        env!("CARGO_PKG_VERSION"),
        executor,
        &mut |event| show(&event),
    )?;
    let rows = print_scores(&plan)?;
    let gain = lamar_pipeline::report::ensemble_gain(&rows);
    match gain {
        Some(g) if g > 0.0 => {
            println!("  the ensemble's span F1 is {g:.4} above the best single model's")
        }
        Some(g) => {
            let message = format!(
                "the ensemble's span F1 is {:.4} below the best single model's",
                -g
            );
            if args.strict {
                anyhow::bail!(message);
            }
            println!("  note: {message}");
        }
        None => {}
    }
    Ok(json!({
        "ensemble_span_f1_gain": gain,
        "out": plan.out,
        "stages": plan.stages.len(),
        "seconds": started.elapsed().as_secs_f64(),
        "scores": rows,
    }))
}
