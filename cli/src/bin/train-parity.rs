//! The loss and every LoRA gradient of one training sequence, as lamar's trainer computes them
//! (each layer recomputed in the backward pass, the blocked attention and the chunked delta rule
//! of training), for the full-size parity check against transformers + PEFT
//! (`gpu/tools/gpu-train-parity.sh`, which makes the inputs with
//! `gpu/tools/full_size_train_golden.py` and compares with `gpu/tools/compare_train_gradients.py`).
//!
//! ```text
//! train-parity --model DIR --adapter DIR --step step.safetensors --out grads.safetensors
//!              [--device cuda|cpu] [--dtype bf16|f32] [--loss dft|ce]
//!              [--adapter-products f32|model]
//! ```
//!
//! `step.safetensors` holds `input_ids` (1 × L) and `prompt_tokens` (one value P): the positions
//! P .. L − 2 predict the tokens P + 1 .. L − 1, and the loss is their mean (DFT-weighted by
//! default), as `gpu/tools/make_tiny_train_golden.py` defines it. The output holds `loss` and
//! each gradient under its PEFT name (`base_model.model.….lora_A.weight`, as PEFT's
//! `named_parameters` without `.default`), in f32.

#[path = "../bench_args.rs"]
mod bench_args;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::Parser;
use lamar_model::qwen35;
use lamar_model::train::data::Example;
use lamar_model::train::gradients::{Backward, example_gradients};
use lamar_model::train::lora::{AdapterProducts, TrainableLora};
use lamar_model::train::loss::LossKind;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Loss and LoRA gradients of one sequence, written for comparison with PyTorch.
#[derive(Parser, Debug)]
struct Args {
    /// The snapshot folder (config.json and safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The PEFT adapter the gradients are taken at.
    #[arg(long)]
    adapter: PathBuf,
    /// safetensors with `input_ids` (1 × L) and `prompt_tokens` (one value).
    #[arg(long)]
    step: PathBuf,
    /// Where the loss and gradients go (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// cuda or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Precision of the frozen model: bf16 or f32 (the adapter stays f32).
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// dft or ce.
    #[arg(long, default_value = "dft")]
    loss: String,
    /// The dtype of the adapter's products: f32 (as PEFT) or model (the model's dtype).
    #[arg(long, default_value = "f32")]
    adapter_products: AdapterProducts,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = bench_args::device(&args.device)?;
    let dtype = bench_args::dtype(&args.dtype)?;
    let kind = match args.loss.as_str() {
        "dft" => LossKind::Dft,
        "ce" => LossKind::CrossEntropy,
        other => bail!("--loss {other}: expected dft or ce"),
    };
    let step = candle_core::safetensors::load(&args.step, &Device::Cpu)
        .with_context(|| format!("reading {}", args.step.display()))?;
    let tensor = |name: &str| {
        step.get(name)
            .with_context(|| format!("{} has no tensor `{name}`", args.step.display()))
    };
    let ids: Vec<u32> = tensor("input_ids")?
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1()?;
    let prompt = tensor("prompt_tokens")?
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?
        .first()
        .copied()
        .with_context(|| format!("{}: `prompt_tokens` is empty", args.step.display()))?
        as usize;
    if prompt + 2 > ids.len() {
        bail!(
            "{}: a prompt of {prompt} tokens leaves no response in {} tokens",
            args.step.display(),
            ids.len()
        );
    }
    let model = qwen35::load(&args.model, dtype, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let lora = Arc::new(
        TrainableLora::from_peft(&args.adapter, &model, &device)
            .with_context(|| format!("loading the adapter {}", args.adapter.display()))?
            .with_products(args.adapter_products),
    );
    let named = lora.named_vars();
    let vars: Vec<_> = named.iter().map(|(_, v)| *v).collect();
    // Position t predicts token t + 1: the responses ids[prompt + 1..] are predicted at
    // positions prompt .. L − 2.
    let example = Example {
        ids: ids.clone(),
        response_start: prompt + 1,
        truncated: false,
    };
    let normaliser = ids.len() - prompt - 1;
    let started = std::time::Instant::now();
    let (loss, grads) = example_gradients(
        &model,
        &lora,
        &vars,
        &example,
        kind,
        normaliser,
        1024,
        Backward::Recompute,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out: HashMap<String, Tensor> = HashMap::new();
    let value = loss.weighted_sum / normaliser as f64;
    out.insert("loss".into(), Tensor::new(&[value as f32], &Device::Cpu)?);
    for ((name, _), grad) in named.iter().zip(grads) {
        let grad = grad.with_context(|| format!("no gradient reached {name}"))?;
        out.insert(
            name.clone(),
            grad.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&out, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "loss": value,
            "tokens": ids.len(),
            "response_tokens": normaliser,
            "tensors": named.len(),
            "dtype": args.dtype,
            "seconds": seconds,
        })
    );
    Ok(())
}
