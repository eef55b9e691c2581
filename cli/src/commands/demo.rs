//! `lamar demo`: every capability that exists, end to end, on a synthetic corpus.

use super::ensemble::{EnsembleArgs, VoterChoice, VoterKind};
use super::evaluate::EvaluateArgs;
use super::offsets::OffsetsArgs;
use super::synth::{NoiseArgs, SynthArgs};
use super::tag::TagArgs;
use super::tune::TuneArgs;
use anyhow::{Context, Result};
use clap::Args;
use lamar_core::codec::{DecodeOptions, canonicalize, decode};
use lamar_core::formats::predictions::read_predictions;
use lamar_core::formats::rows::{GoldOffset, read_model_outputs, read_training_rows};
use lamar_core::formats::write_atomic;
use lamar_core::metrics::ExactSpanScore;
use lamar_core::nltk::NltkVersion;
use lamar_core::scorer::TokenF1Rule;
use lamar_core::synth::CorpusLayout;
use serde_json::json;
use std::path::PathBuf;

/// Run every step that exists, end to end, on a synthetic corpus.
///
/// corpus (`lamar synth`) → simulated model outputs → training rows (`lamar tag`) → offsets
/// (`lamar offsets`) → tuned ensembles (`lamar tune`, `lamar ensemble`) → official scores
/// (`lamar evaluate`), with plugin voters and a plugin reward (`lamar ensemble --voter X.wasm`,
/// `lamar reward`) and the browser viewer (`lamar view`). Everything is written under --out, with
/// a summary in OUT/summary.json. Steps that are not built yet (the Qwen3.5 models) are listed as
/// such; the plugin and viewer steps need their WebAssembly builds (see README).
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
    /// The viewer's WebAssembly package (built by wasm/build-web.sh); the viewer step is skipped,
    /// with a note, when it is not there.
    #[arg(long, default_value = "target/lamar-web/pkg")]
    pub viewer_pkg: PathBuf,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

fn step(n: usize, total: usize, what: &str) {
    println!("\n[{n}/{total}] {what}");
}

/// Runs `lamar demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    const STEPS: usize = 8;
    let layout = CorpusLayout::new(&args.out);
    let model_names: Vec<String> = (0..args.models).map(|k| format!("model_{k}")).collect();

    step(1, STEPS, "corpus and simulated models (lamar synth)");
    super::synth::run(&SynthArgs {
        out: args.out.clone(),
        docs: args.docs,
        seed: args.seed,
        simulate_models: args.models,
        noise: args.noise.clone(),
    })?;

    step(2, STEPS, "gold → tagged training rows (lamar tag)");
    let tagged_dir = args.out.join("tagged");
    let mut round_trip = (0usize, 0usize);
    for split in ["train", "val"] {
        let out = tagged_dir.join(format!("{split}.jsonl"));
        super::tag::run(&TagArgs {
            gold_dir: layout.gold_dir(),
            raw_text_dir: layout.raw_text_dir(),
            split: layout.split(split),
            out: out.clone(),
            format: None,
            skip_missing: false,
        })?;
        for row in read_training_rows(&out)? {
            let gold: Vec<_> = row
                .gold_offsets
                .iter()
                .filter_map(GoldOffset::span)
                .collect();
            let mut want = canonicalize(&gold);
            let mut got =
                decode(&row.gold_span, &row.raw_text, &DecodeOptions::default()).plain_spans();
            want.sort();
            got.sort();
            round_trip.0 += usize::from(got == want);
            round_trip.1 += 1;
        }
    }
    println!(
        "  round trip (decode of each training target gives its gold): {}/{} rows",
        round_trip.0, round_trip.1
    );

    step(3, STEPS, "tagged model outputs → offsets (lamar offsets)");
    let decoded_dir = args.out.join("decoded");
    let mut agreement = Vec::new();
    for name in &model_names {
        let out = decoded_dir.join(format!("{name}.json"));
        println!("  {name}:");
        super::offsets::run(&OffsetsArgs {
            input: layout.outputs(name),
            raw_text_dir: layout.raw_text_dir(),
            out: out.clone(),
            dropped: Some(decoded_dir.join(format!("{name}_dropped.csv"))),
            keep_decision: false,
            no_verbatim: false,
            reference: false,
        })?;
        // How much of what the simulated model "meant" survived its own typos and trimming.
        let truth = read_predictions(&layout.predictions(name))?;
        let decoded = read_predictions(&out)?;
        let mut score = ExactSpanScore::default();
        for (t, d) in truth.iter().zip(&decoded) {
            score.add(&canonicalize(&t.spans(None).0), &d.spans(None).0);
        }
        println!(
            "    recovered {:.1}% of the spans the simulated model meant",
            100.0 * score.recall()
        );
        agreement.push(score.recall());
    }

    step(
        4,
        STEPS,
        "tune the consensus on val (lamar tune), merge the models (lamar ensemble)",
    );
    let model_files: Vec<PathBuf> = model_names
        .iter()
        .map(|n| decoded_dir.join(format!("{n}.json")))
        .collect();
    let mut systems: Vec<(String, PathBuf)> = model_names
        .iter()
        .cloned()
        .zip(model_files.iter().cloned())
        .collect();
    let tuned = args.out.join("ensemble").join("best_params.json");
    print!("  ");
    super::tune::run(&TuneArgs {
        predictions: model_files.clone(),
        gold_dir: layout.gold_dir(),
        raw_text_dir: layout.raw_text_dir(),
        split: Some(layout.split("val")),
        stats_csv: Some(layout.stats()),
        trials: args.tune_trials,
        seed: args.seed,
        jobs: None,
        log: None,
        out: tuned.clone(),
        nltk: NltkVersion::default(),
        token_f1: TokenF1Rule::default(),
        serve_objective: false,
    })?;
    let runs = [
        ("scc", VoterKind::Scc, None),
        ("scc-tuned", VoterKind::Scc, Some(tuned.clone())),
        ("majority", VoterKind::Majority, None),
        ("wbf", VoterKind::Wbf, None),
    ];
    for (voter, kind, params) in runs {
        let out = args.out.join("ensemble").join(format!("{voter}.json"));
        print!("  ");
        super::ensemble::run(&EnsembleArgs {
            params,
            explain: (voter == "scc").then(|| args.out.join("ensemble").join("scc_explain.json")),
            ..EnsembleArgs::new(model_files.clone(), VoterChoice::Builtin(kind), out.clone())
        })?;
        systems.push((format!("ensemble:{voter}"), out));
    }

    step(
        5,
        STEPS,
        "WebAssembly plugins: voters and a GRPO reward (lamar ensemble --voter X.wasm, lamar reward)",
    );
    let plugins = plugin_step(args, &layout, &model_names, &model_files, &mut systems)?;

    step(
        6,
        STEPS,
        "official MedDec scores on the test split (lamar evaluate)",
    );
    let mut scores = Vec::new();
    let evaluations = super::evaluate::evaluate(
        &EvaluateArgs {
            gold_dir: Some(layout.gold_dir()),
            gold_file: None,
            raw_text_dir: layout.raw_text_dir(),
            predictions: systems.iter().map(|(_, p)| p.clone()).collect(),
            split: Some(layout.split("test")),
            stats_csv: Some(layout.stats()),
            output: None,
            nltk: NltkVersion::default(),
            token_f1: TokenF1Rule::default(),
        },
        true,
    )?;
    for ((name, _), (_, evaluation)) in systems.iter().zip(&evaluations) {
        let st = evaluation
            .shared_task
            .as_ref()
            .context("stats.csv was given")?;
        println!(
            "  {name:<22} span F1 {:.4}  token F1 {:.4}  base {:.4}  worst group {:.4}  final {:.4}",
            evaluation.span_f1.f1,
            evaluation.token_f1,
            st.base_score,
            st.worst_group_score,
            st.final_score
        );
        scores.push(json!({
            "model": name,
            "span_f1": evaluation.span_f1.f1,
            "token_f1": evaluation.token_f1,
            "final_score": st.final_score,
        }));
    }

    step(7, STEPS, "the ensemble viewer for the browser (lamar view)");
    let viewer = if args.viewer_pkg.join("lamar_wasm_bg.wasm").is_file() {
        let site = args.out.join("viewer");
        let mut predictions = model_files.clone();
        predictions.push(args.out.join("ensemble").join("scc-tuned.json"));
        print!("  ");
        super::view::run(&super::view::ViewArgs {
            raw_text_dir: layout.raw_text_dir(),
            predictions,
            gold_dir: Some(layout.gold_dir()),
            stats_csv: Some(layout.stats()),
            split: Some(layout.split("test")),
            out: site.clone(),
            pkg: args.viewer_pkg.clone(),
        })?;
        json!(site.join("index.html"))
    } else {
        println!(
            "  skipped: {} has no viewer package (build it with wasm/build-web.sh)",
            args.viewer_pkg.display()
        );
        json!("skipped")
    };

    step(
        8,
        STEPS,
        "Qwen3.5 tagging (lamar infer) with a tiny random model: the machinery, not a tagger",
    );
    let inference = inference_step(args, &layout)?;

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
    });
    let path = args.out.join("summary.json");
    write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("\nsummary written to {}", path.display());
    Ok(())
}

/// The tiny tokenizer and chat template the tests use (trained on the synthetic corpus; see
/// gpu/tools/make_chat_golden.py).
const TINY_TOKENIZER: &str = include_str!("../../../tests/golden/chat/tokenizer.json");
const TINY_TOKENIZER_CONFIG: &str =
    include_str!("../../../tests/golden/chat/tokenizer_config.json");
const TINY_CHAT_TEMPLATE: &str = include_str!("../../../tests/golden/chat/chat_template.jinja");

/// Writes a tiny random snapshot (weights, tokenizer, chat template) into `dir`.
pub fn write_tiny_snapshot(dir: &std::path::Path, seed: u64) -> Result<()> {
    for (name, text) in [
        ("tokenizer.json", TINY_TOKENIZER),
        ("tokenizer_config.json", TINY_TOKENIZER_CONFIG),
        ("chat_template.jinja", TINY_CHAT_TEMPLATE),
    ] {
        write_atomic(&dir.join(name), text.as_bytes())?;
    }
    let vocab = lamar_gpu::tokenizer::TextTokenizer::from_snapshot(dir)?.vocab_size();
    lamar_gpu::qwen35::random::write_random_snapshot(
        dir,
        &lamar_gpu::qwen35::random::tiny_config(vocab),
        seed,
    )?;
    Ok(())
}

/// Step 8: `lamar infer` on a few test documents with a tiny random snapshot, twice (the
/// second run must find everything done), then `lamar offsets` on its output.
fn inference_step(args: &DemoArgs, layout: &CorpusLayout) -> Result<serde_json::Value> {
    use lamar_core::formats::inference::{DocumentRow, read_documents};
    use lamar_core::formats::raw_text::read_raw_text_of;
    let snapshot = args.out.join("tiny-qwen35");
    write_tiny_snapshot(&snapshot, args.seed)?;
    let ids = lamar_core::formats::split::read_split(&layout.split("test"))?;
    let docs: Vec<DocumentRow> = ids
        .iter()
        .take(6)
        .map(|id| {
            Ok(DocumentRow {
                file_id: id.clone(),
                raw_text: read_raw_text_of(&layout.raw_text_dir(), id)?,
            })
        })
        .collect::<Result<_>>()?;
    let dir = args.out.join("inference");
    let input = dir.join("documents.jsonl");
    write_atomic(
        &input,
        lamar_core::formats::rows::to_jsonl(&docs).as_bytes(),
    )?;
    let out = dir.join("tiny_qwen35.jsonl");
    let _ = std::fs::remove_file(&out);
    let infer = super::infer::InferArgs {
        model: snapshot.clone(),
        adapter: None,
        unmerged: false,
        input: input.clone(),
        out: out.clone(),
        prompt_file: None,
        batch_size: 4,
        max_new_tokens: 32,
        length_factor: 2.0,
        device: super::infer::DeviceChoice::Cpu,
        dtype: super::infer::DtypeChoice::F32,
        temperature: 0.0,
        top_p: 1.0,
        seed: args.seed,
    };
    super::infer::run(&infer)?;
    println!("  again (resumes: nothing left to do):");
    super::infer::run(&infer)?;
    let records = read_documents(&out)?.len();
    super::offsets::run(&OffsetsArgs {
        input: out.clone(),
        raw_text_dir: layout.raw_text_dir(),
        out: dir.join("tiny_qwen35_offsets.json"),
        dropped: None,
        keep_decision: false,
        no_verbatim: false,
        reference: false,
    })?;
    println!(
        "  real tagging needs real weights: lamar infer --model <Qwen3.5-4B snapshot> --adapter \
         <LoRA> (see README; CUDA build: gpu/tools/build-cuda.sh)"
    );
    Ok(json!({"documents": records, "snapshot": snapshot, "output": out}))
}

/// Step 5: the example plugins, when built. The boundary-vote plugin must reproduce the native
/// consensus file byte for byte; the majority-voter plugin joins the evaluated systems; the
/// exact-match reward scores each simulated model's tagged outputs on the validation split.
fn plugin_step(
    args: &DemoArgs,
    layout: &CorpusLayout,
    model_names: &[String],
    model_files: &[PathBuf],
    systems: &mut Vec<(String, PathBuf)>,
) -> Result<serde_json::Value> {
    let wasm = |name: &str| args.plugin_dir.join(format!("lamar_plugin_{name}.wasm"));
    let needed = ["boundary_vote", "majority_voter", "exact_match_reward"];
    if let Some(missing) = needed.iter().map(|n| wasm(n)).find(|p| !p.is_file()) {
        println!(
            "  skipped: {} not found (build the example plugins: cargo build --target \
             wasm32-unknown-unknown --profile wasm -p lamar-plugin-boundary-vote -p \
             lamar-plugin-majority-voter -p lamar-plugin-exact-match-reward)",
            missing.display()
        );
        return Ok(json!("skipped"));
    }
    let dir = args.out.join("plugins");
    let mut identical = true;
    for (plugin, native) in [("boundary_vote", Some("scc")), ("majority_voter", None)] {
        let out = dir.join(format!("{plugin}.json"));
        print!("  ");
        super::ensemble::run(&EnsembleArgs::new(
            model_files.to_vec(),
            VoterChoice::Plugin(wasm(plugin)),
            out.clone(),
        ))?;
        if let Some(native) = native {
            let native_file = args.out.join("ensemble").join(format!("{native}.json"));
            identical = std::fs::read(&out)? == std::fs::read(&native_file)?;
            println!(
                "    identical to the native consensus ({}): {}",
                native_file.display(),
                if identical { "yes" } else { "NO" }
            );
        } else {
            systems.push((format!("plugin:{plugin}"), out));
        }
    }
    // Completions for the reward: each model's tagged outputs on val, against the gold rows.
    let gold_rows = read_training_rows(&args.out.join("tagged").join("val.jsonl"))?;
    let mut rewards = serde_json::Map::new();
    for name in model_names {
        let outputs = read_model_outputs(&layout.outputs(name))?;
        let by_id: std::collections::HashMap<&str, &str> = outputs
            .iter()
            .map(|o| (o.file_id.as_str(), o.predicted.as_str()))
            .collect();
        let mut lines = String::new();
        for row in &gold_rows {
            if let Some(completion) = by_id.get(row.file_id.as_str()) {
                lines.push_str(&serde_json::to_string(&json!({
                    "id": row.file_id,
                    "completion": completion,
                    "gold": row.gold_span,
                    "raw_text": row.raw_text,
                }))?);
                lines.push('\n');
            }
        }
        let input = dir.join(format!("completions_{name}.jsonl"));
        write_atomic(&input, lines.as_bytes())?;
        let out = dir.join(format!("rewards_{name}.jsonl"));
        print!("  {name}: ");
        super::reward::run(&super::reward::RewardArgs {
            plugin: wasm("exact_match_reward"),
            input,
            out: Some(out.clone()),
            limits: Default::default(),
        })?;
        let scores: Vec<f64> = std::fs::read_to_string(&out)?
            .lines()
            .map(|l| -> Result<f64> {
                let v: serde_json::Value = serde_json::from_str(l)?;
                v["reward"].as_f64().context("reward is a number")
            })
            .collect::<Result<_>>()?;
        rewards.insert(
            name.clone(),
            json!(scores.iter().sum::<f64>() / scores.len().max(1) as f64),
        );
    }
    Ok(json!({
        "boundary_vote_identical_to_native": identical,
        "mean_exact_match_reward_on_val": rewards,
    }))
}
