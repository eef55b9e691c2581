//! `lamar demo`: every capability that exists, end to end, on a synthetic corpus. Each step
//! calls the libraries (`lamar-core`, `lamar-plugins`, `lamar-wasm`, `lamar-model`) as any
//! pipeline would; nothing here is logic of its own beyond choosing inputs and printing.

mod data;
mod ensembles;
mod extras;
mod pipeline;
mod training;

use super::synth::NoiseArgs;
use anyhow::Result;
use clap::Args;
use lamar_core::formats::write_atomic;
use lamar_core::synth::CorpusLayout;
use serde_json::json;
use std::path::PathBuf;

/// Run every step that exists, end to end, on a synthetic corpus.
///
/// corpus (as `lamar synth`) → simulated model outputs → training rows (`lamar tag`) → offsets
/// (`lamar offsets`) → tuned ensembles (`lamar tune`, `lamar ensemble`) → official scores
/// (`lamar evaluate`), with plugin voters and a plugin reward (`lamar ensemble --voter X.wasm`,
/// `lamar reward`), the browser viewer (`lamar view`) and tagging with a tiny random Qwen3.5
/// (`lamar infer`: the machinery, not a tagger), and training an adapter for it (`lamar train
/// dft`, merged with `lamar export merge`), and the whole system from one pipeline file (`lamar
/// run` of the built-in examples/demo.toml: three tiny models trained, tagging, consensus,
/// scores; under OUT/run, rerun-safe). Everything is written under --out, with a
/// summary in OUT/summary.json. The plugin and viewer steps need their WebAssembly builds (see
/// README): without them they are skipped with a note, or fail with --strict.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Number of synthetic documents.
    #[arg(long, default_value_t = 451)]
    pub docs: usize,
    /// Number of simulated models.
    #[arg(long, default_value_t = 3)]
    pub models: usize,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Tuning trials for the consensus thresholds.
    #[arg(long, default_value_t = 300)]
    pub tune_trials: usize,
    /// Folder with the example plugins built for WebAssembly (`cargo build --target
    /// wasm32-unknown-unknown --profile wasm -p lamar-plugin-boundary-vote -p
    /// lamar-plugin-majority-voter -p lamar-plugin-exact-match-reward`); the plugin step is
    /// skipped, with a note, when they are not there.
    #[arg(long, default_value = "target/wasm32-unknown-unknown/wasm")]
    pub plugin_dir: PathBuf,
    /// The viewer's WebAssembly package (a folder built by wasm/build-web.sh). Default: the
    /// package compiled into lamar, else target/lamar-web/pkg; the viewer step is skipped, with
    /// a note, when there is none.
    #[arg(long)]
    pub viewer_pkg: Option<PathBuf>,
    /// Fail instead of skipping the plugin or viewer step, and when a check fails (a training
    /// target that does not decode to its gold, a plugin voter that differs from the native
    /// consensus it reimplements). CI runs the demo this way.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// Model outputs decoded against the corpus's raw texts with lamar's default options.
fn decode_against_corpus(
    rows: &[lamar_core::formats::rows::ModelOutputRow],
    layout: &CorpusLayout,
) -> Result<lamar_core::codec::DecodedFile> {
    let raw_text_dir = layout.raw_text_dir();
    Ok(lamar_core::codec::decode_outputs(
        rows,
        |id| lamar_core::formats::raw_text::read_raw_text_of(&raw_text_dir, id),
        &lamar_core::codec::DecodeOptions::default(),
        false,
        || {},
    )?)
}

/// Prints the header of step `n`.
fn step(n: usize, total: usize, what: &str) {
    println!("\n[{n}/{total}] {what}");
}

/// Runs `lamar demo`; `executor` runs the pipeline's command lines (step 10).
pub fn run(args: &DemoArgs, executor: &dyn lamar_pipeline::runner::Executor) -> Result<()> {
    const STEPS: usize = 10;
    let layout = CorpusLayout::new(&args.out);
    let model_names: Vec<String> = (0..args.models).map(|k| format!("model_{k}")).collect();

    step(1, STEPS, "corpus and simulated models (lamar synth)");
    data::corpus(args, &layout)?;

    step(2, STEPS, "gold → tagged training rows (lamar tag)");
    let round_trip = data::training_rows(args, &layout)?;

    step(3, STEPS, "tagged model outputs → offsets (lamar offsets)");
    let (model_files, agreement) = data::offsets(args, &layout, &model_names)?;
    let mut systems: Vec<(String, PathBuf)> = model_names
        .iter()
        .cloned()
        .zip(model_files.iter().cloned())
        .collect();

    step(
        4,
        STEPS,
        "tune the consensus on val (lamar tune), merge the models (lamar ensemble)",
    );
    ensembles::tune_and_merge(args, &layout, &model_files, &mut systems)?;

    step(
        5,
        STEPS,
        "WebAssembly plugins: voters and a GRPO reward (lamar ensemble --voter X.wasm, lamar reward)",
    );
    let plugins = extras::plugins(args, &layout, &model_names, &model_files, &mut systems)?;

    step(
        6,
        STEPS,
        "official MedDec scores on the test split (lamar evaluate)",
    );
    let scores = ensembles::scores(&layout, &systems)?;

    step(7, STEPS, "the ensemble viewer for the browser (lamar view)");
    let viewer = extras::viewer(args, &layout, &model_files)?;

    step(
        8,
        STEPS,
        "Qwen3.5 tagging (lamar infer) with a tiny random model: the machinery, not a tagger",
    );
    let inference = extras::inference(args, &layout)?;

    step(
        9,
        STEPS,
        "LoRA + DFT training of the tiny model (lamar train dft), merged (lamar export merge) and \
         tagging with the adapter",
    );
    let training = training::train(args)?;

    step(
        10,
        STEPS,
        "the whole system from one file (lamar run, the built-in examples/demo.toml): three tiny \
         models trained (DFT, DFT → GRPO, DFT + pseudo-labels), tagging, the tuned consensus, \
         scores",
    );
    let pipeline = pipeline::run(args, executor)?;

    let summary = json!({
        "docs": args.docs,
        "seed": args.seed,
        "models": model_names,
        "round_trip_rows": {"exact": round_trip.0, "total": round_trip.1},
        "decoded_recall_of_simulated_spans": agreement,
        "test_scores": scores,
        "plugins": plugins,
        "viewer": viewer,
        "inference": inference,
        "training": training,
        "pipeline": pipeline,
    });
    let path = args.out.join("summary.json");
    write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("\nsummary written to {}", path.display());
    Ok(())
}
