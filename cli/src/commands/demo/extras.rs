//! The demo's optional and model steps: WebAssembly plugins (voters and a reward), the browser
//! viewer, and tagging with a tiny random Qwen3.5.

use super::DemoArgs;
use anyhow::{Result, bail};
use lamar_core::ensemble::input::read_models;
use lamar_core::ensemble::prediction_files;
use lamar_core::ensemble::scc::SccParams;
use lamar_core::formats::inference::{DocumentRow, InferenceOutput, read_documents};
use lamar_core::formats::predictions::write_predictions;
use lamar_core::formats::raw_text::read_raw_text_of;
use lamar_core::formats::rows::{read_model_outputs, read_training_rows, to_jsonl};
use lamar_core::formats::split::read_split;
use lamar_core::formats::write_atomic;
use lamar_core::prompt::TaskPrompt;
use lamar_core::reward::{CompletionRow, Reward, Sample, rewards_jsonl};
use lamar_core::synth::CorpusLayout;
use lamar_model::infer::{TagSettings, Tagger, TokenBudget};
use lamar_model::qwen35::random::write_tiny_snapshot;
use lamar_model::sampling::{Sampler, SamplingParams};
use lamar_plugins::{Limits, PluginHost};
use lamar_wasm::site::{SiteInputs, write_site};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

/// What a skipped optional step reports: a note, or an error with `--strict`.
fn skipped(args: &DemoArgs, why: String) -> Result<Value> {
    if args.strict {
        bail!("{why}");
    }
    println!("  skipped: {why}");
    Ok(json!("skipped"))
}

/// Step 5: the example plugins, when built. The boundary-vote plugin must reproduce the native
/// consensus file byte for byte; the majority-voter plugin joins the evaluated systems; the
/// exact-match reward scores each simulated model's tagged outputs on the validation split.
pub(super) fn plugins(
    args: &DemoArgs,
    layout: &CorpusLayout,
    model_names: &[String],
    model_files: &[PathBuf],
    systems: &mut Vec<(String, PathBuf)>,
) -> Result<Value> {
    let wasm = |name: &str| args.plugin_dir.join(format!("lamar_plugin_{name}.wasm"));
    let needed = ["boundary_vote", "majority_voter", "exact_match_reward"];
    if let Some(missing) = needed.iter().map(|n| wasm(n)).find(|p| !p.is_file()) {
        return skipped(
            args,
            format!(
                "{} not found (build the example plugins: cargo build --target \
                 wasm32-unknown-unknown --profile wasm -p lamar-plugin-boundary-vote -p \
                 lamar-plugin-majority-voter -p lamar-plugin-exact-match-reward)",
                missing.display()
            ),
        );
    }
    let dir = args.out.join("plugins");
    let host = PluginHost::new(Limits::default())?;
    let votes = read_models(model_files)?;
    let mut identical = true;
    for (plugin, native) in [("boundary_vote", Some("scc")), ("majority_voter", None)] {
        let voter = host.load_voter(&wasm(plugin))?;
        let merged = voter.merge_all(&votes, &SccParams::default(), false)?;
        let out = dir.join(format!("{plugin}.json"));
        write_predictions(&out, &prediction_files(&merged))?;
        println!("  plugin {}: merged → {}", voter.info().name, out.display());
        if let Some(native) = native {
            let native_file = args.out.join("ensemble").join(format!("{native}.json"));
            identical = std::fs::read(&out)? == std::fs::read(&native_file)?;
            println!(
                "    identical to the native consensus ({}): {}",
                native_file.display(),
                if identical { "yes" } else { "NO" }
            );
            if args.strict && !identical {
                bail!("{} differs from {}", out.display(), native_file.display());
            }
        } else {
            systems.push((format!("plugin:{plugin}"), out));
        }
    }
    // Completions for the reward: each model's tagged outputs on val, against the gold rows.
    let reward: Box<dyn Reward> = Box::new(host.load_reward(&wasm("exact_match_reward"))?);
    let gold_rows = read_training_rows(&args.out.join("tagged").join("val.jsonl"))?;
    let mut rewards = serde_json::Map::new();
    for name in model_names {
        let outputs = read_model_outputs(&layout.outputs(name))?;
        let by_id: HashMap<&str, &str> = outputs
            .iter()
            .map(|o| (o.file_id.as_str(), o.predicted.as_str()))
            .collect();
        let rows: Vec<CompletionRow> = gold_rows
            .iter()
            .filter_map(|row| {
                Some(CompletionRow {
                    id: Some(json!(row.file_id)),
                    completion: by_id.get(row.file_id.as_str())?.to_string(),
                    gold: row.gold_span.clone(),
                    raw_text: row.raw_text.clone(),
                })
            })
            .collect();
        // As JSON objects (sorted keys, as this file always had them).
        let lines: Vec<Value> = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        write_atomic(
            &dir.join(format!("completions_{name}.jsonl")),
            to_jsonl(&lines).as_bytes(),
        )?;
        let samples: Vec<Sample> = rows.iter().map(CompletionRow::sample).collect();
        let scores = reward.score(&samples)?;
        let out = dir.join(format!("rewards_{name}.jsonl"));
        write_atomic(&out, rewards_jsonl(&rows, &scores).as_bytes())?;
        let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
        println!(
            "  {name}: {} completions, mean {} reward {mean:.4} → {}",
            scores.len(),
            reward.name(),
            out.display()
        );
        rewards.insert(name.clone(), json!(mean));
    }
    Ok(json!({
        "boundary_vote_identical_to_native": identical,
        "mean_exact_match_reward_on_val": rewards,
    }))
}

/// Step 7: the viewer as a static site (the models and the tuned consensus on test).
pub(super) fn viewer(
    args: &DemoArgs,
    layout: &CorpusLayout,
    model_files: &[PathBuf],
) -> Result<Value> {
    let package = crate::viewer_package::choose(args.viewer_pkg.as_deref());
    if let Some(dir) = crate::viewer_package::missing(&package) {
        return skipped(
            args,
            format!(
                "{} has no viewer package (build it with wasm/build-web.sh)",
                dir.display()
            ),
        );
    }
    let mut predictions = model_files.to_vec();
    predictions.push(args.out.join("ensemble").join("scc-tuned.json"));
    let site = args.out.join("viewer");
    let report = write_site(
        &SiteInputs {
            raw_text_dir: layout.raw_text_dir(),
            predictions,
            gold_dir: Some(layout.gold_dir()),
            stats_csv: Some(layout.stats()),
            split: Some(layout.split("test")),
            rollouts: Vec::new(),
            retrieval: Vec::new(),
            notes: Vec::new(),
            strict: false,
            pkg: package,
        },
        &site,
    )?;
    println!(
        "  {} documents: open {}",
        report.documents,
        report.index.display()
    );
    Ok(json!(report.index))
}

/// Step 8: a tiny random snapshot tags a few test documents, twice (the second run must find
/// everything done), and its output is decoded to offsets.
pub(super) fn inference(args: &DemoArgs, layout: &CorpusLayout) -> Result<Value> {
    let snapshot = args.out.join("tiny-qwen35");
    write_tiny_snapshot(&snapshot, args.seed)?;
    let docs: Vec<DocumentRow> = read_split(&layout.split("test"))?
        .into_iter()
        .take(6)
        .map(|id| {
            let raw_text = read_raw_text_of(&layout.raw_text_dir(), &id)?;
            Ok(DocumentRow {
                file_id: id,
                raw_text,
            })
        })
        .collect::<Result<_>>()?;
    let dir = args.out.join("inference");
    let input = dir.join("documents.jsonl");
    write_atomic(&input, to_jsonl(&docs).as_bytes())?;
    let out = dir.join("tiny_qwen35.jsonl");
    let _ = std::fs::remove_file(&out);
    let device = candle_core::Device::Cpu;
    let tagger = Tagger::load(
        &snapshot,
        None,
        TaskPrompt::builtin(),
        candle_core::DType::F32,
        &device,
    )?;
    let settings = TagSettings {
        slots: 4,
        budget: TokenBudget {
            max_new_tokens: 32,
            ..TokenBudget::default()
        },
    };
    for attempt in ["first run", "again (resumes: nothing left to do)"] {
        let mut output = InferenceOutput::open(&out)?;
        let todo = output.pending(read_documents(&input)?);
        let mut sampler = Sampler::new(SamplingParams {
            seed: args.seed,
            ..SamplingParams::default()
        });
        let report = tagger.tag_into(todo, &mut output, &settings, &mut sampler, || {}, |_| {})?;
        println!(
            "  {attempt}: tagged {} documents ({} new tokens) → {}",
            report.documents,
            report.new_tokens,
            out.display()
        );
    }
    let records = read_documents(&out)?.len();
    let rows = read_model_outputs(&out)?;
    let decoded = super::decode_against_corpus(&rows, layout)?;
    write_predictions(&dir.join("tiny_qwen35_offsets.json"), &decoded.predictions)?;
    println!(
        "  real tagging needs real weights: lamar infer --model <Qwen3.5-4B snapshot> --adapter \
         <LoRA> (see README; CUDA build: gpu/tools/build-cuda.sh)"
    );
    Ok(json!({"documents": records, "snapshot": snapshot, "output": out}))
}
