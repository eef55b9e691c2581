//! `lamar infer`: tag documents with a Qwen3.5 model.

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use clap::{Args, ValueEnum};
use lamar_core::formats::inference::{DocumentRow, InferenceOutput, read_documents};
use lamar_core::formats::windows::document_windows;
use lamar_core::prompt::TaskPrompt;
use lamar_model::infer::{TagSettings, Tagger, TokenBudget};
use lamar_model::sampling::{Sampler, SamplingParams};
use std::path::PathBuf;
use std::time::Instant;

/// Tag discharge summaries with a Qwen3.5 model: each document goes into the task prompt, the
/// model's chat template (thinking off) and its tokenizer; the model rewrites the document
/// with inline decision tags.
///
/// --input is JSON Lines or CSV (by extension) with `file_id` and `raw_text`. --out gets one
/// record per document, appended and flushed as each finishes: `file_id`, `raw_text`,
/// `predicted` (the tagged text), `entropy` (mean negative log-likelihood of the generated
/// tokens; lower is more confident), and in JSON Lines also `new_tokens` and `finished`
/// (false when the token limit cut the output). Run the same command again after an
/// interruption: documents already in --out are skipped. Decode the output with
/// `lamar offsets`.
///
/// --model is a local Hugging Face snapshot folder (config.json, *.safetensors,
/// tokenizer.json, a chat template); --adapter a PEFT LoRA folder. Nothing is downloaded.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// Model snapshot folder.
    #[arg(long)]
    pub model: PathBuf,
    /// PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Apply the adapter next to the weights instead of merging it into them (slower; for
    /// checking a merge).
    #[arg(long, requires = "adapter")]
    pub unmerged: bool,
    /// Documents to tag (JSONL or CSV with file_id, raw_text).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file (JSONL, or CSV with the reference's columns); resumed if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// Task prompt with a {raw_text} field (Python str.format rules); default: lamar's own
    /// prompt (core/assets/prompts/lamar-tagging-v1.txt). Pass the prompt an adapter was
    /// trained with.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Documents decoded together (continuous batching: a finished document's slot takes the
    /// next one at once; results are written as documents finish).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Most new tokens per document.
    #[arg(long, default_value_t = 24_576)]
    pub max_new_tokens: usize,
    /// New-token limit per document as a multiple of its own token count (plus 64), capped by
    /// --max-new-tokens.
    #[arg(long, default_value_t = 2.0)]
    pub length_factor: f64,
    /// Where to run: cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Weight precision (auto: bf16 on CUDA, f32 on the CPU).
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    /// Sampling temperature; 0 is greedy (the reference's setting).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus size for sampling.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Min-p for sampling: drop tokens less probable than this times the most probable one
    /// (0 keeps all).
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f64,
    /// Seed of the sampling draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Tag each document in windows of whole lines of at most this many characters (ids
    /// `ID@START-END`; `lamar offsets` joins them back into ID), for models trained on windows
    /// (`lamar tag --window-chars`). LAMAR tags whole notes (left out).
    #[arg(long)]
    pub window_chars: Option<usize>,
}

/// Device choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when this binary has it, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

/// Precision choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DtypeChoice {
    /// bf16 on CUDA, f32 on the CPU.
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
}

/// The device asked for.
pub fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto if !cfg!(feature = "cuda") => Ok(Device::Cpu),
        DeviceChoice::Auto | DeviceChoice::Cuda => {
            if !cfg!(feature = "cuda") {
                bail!(
                    "this lamar was built without CUDA; build it with gpu/tools/build-cuda.sh \
                     (see README) or pass --device cpu"
                );
            }
            lamar_model::device::open_cuda(0).context("could not open CUDA device 0")
        }
    }
}

/// The weight precision asked for.
pub fn dtype(choice: DtypeChoice, device: &Device) -> DType {
    match choice {
        DtypeChoice::F32 => DType::F32,
        DtypeChoice::Bf16 => DType::BF16,
        DtypeChoice::Auto if device.is_cpu() => DType::F32,
        DtypeChoice::Auto => DType::BF16,
    }
}

/// Runs `lamar infer`.
pub fn run(args: &InferArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let prompt = match &args.prompt_file {
        Some(path) => TaskPrompt::from_file(path)?,
        None => TaskPrompt::builtin(),
    };
    let mut documents = read_documents(&args.input)?;
    if let Some(max) = args.window_chars {
        if max == 0 {
            bail!("--window-chars must be at least 1");
        }
        documents = documents
            .iter()
            .flat_map(|d| document_windows(&d.file_id, &d.raw_text, max))
            .map(|(file_id, raw_text)| DocumentRow { file_id, raw_text })
            .collect();
    }
    let mut output = InferenceOutput::open(&args.out)?;
    if output.dropped_bytes > 0 {
        eprintln!(
            "{}: removed a last record cut off mid-write ({} bytes); it will be redone",
            args.out.display(),
            output.dropped_bytes
        );
    }
    let todo = output.pending(documents);
    let skipped = output.done().len();
    if todo.is_empty() {
        println!(
            "{}: all documents are already done ({skipped})",
            args.out.display()
        );
        return Ok(());
    }
    let device = device(args.device)?;
    let dtype = dtype(args.dtype, &device);
    let started = Instant::now();
    let adapter = args.adapter.as_deref().map(|dir| (dir, !args.unmerged));
    let tagger = Tagger::load(&args.model, adapter, prompt, dtype, &device)?;
    println!(
        "model {} ({dtype:?} on {}) loaded in {:.1} s; prompt {}; chat template {}",
        args.model.display(),
        if device.is_cpu() { "cpu" } else { "cuda:0" },
        started.elapsed().as_secs_f64(),
        tagger.prompt().describe(),
        tagger.template_origin(),
    );
    for (group, count) in &tagger.skipped_weights {
        println!("not loaded (text-only tagging): {group}, {count} tensors");
    }
    if skipped > 0 {
        println!(
            "resuming: {skipped} documents already in {}",
            args.out.display()
        );
    }
    let settings = TagSettings {
        slots: args.batch_size,
        budget: TokenBudget {
            max_new_tokens: args.max_new_tokens,
            factor: args.length_factor,
            ..TokenBudget::default()
        },
    };
    let bar = crate::progress::bar(todo.len(), "infer");
    let mut sampler = Sampler::new(SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        min_p: args.min_p,
        seed: args.seed,
    });
    // The progress rate counts from the first decoding step (prompts are prepared before it).
    let mut generating: Option<Instant> = None;
    let mut new_tokens = 0usize;
    let report = tagger.tag_into(
        todo,
        &mut output,
        &settings,
        &mut sampler,
        || bar.inc(1),
        |n| {
            new_tokens += n;
            let secs = generating
                .get_or_insert_with(Instant::now)
                .elapsed()
                .as_secs_f64()
                .max(1e-9);
            bar.set_message(format!("{:.0} tok/s", new_tokens as f64 / secs));
        },
    )?;
    bar.finish_and_clear();
    let secs = report.generation_seconds;
    println!(
        "tagged {} documents ({} prompt tokens, {} new tokens) in {secs:.1} s: {:.1} new \
         tokens/s → {}",
        report.documents,
        report.prompt_tokens,
        report.new_tokens,
        report.new_tokens as f64 / secs.max(1e-9),
        args.out.display()
    );
    let cut = report.cut;
    if cut > 0 {
        eprintln!(
            "warning: {cut} documents hit their token limit before the end of the tagged copy \
             (raise --length-factor or --max-new-tokens)"
        );
    }
    Ok(())
}
