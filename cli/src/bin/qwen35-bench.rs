//! Prefill and decode throughput of a Qwen3.5 snapshot, and its logits against a reference.
//!
//! ```text
//! qwen35-bench --model DIR [--device cuda|cpu] [--dtype bf16|f32] [--prompt-tokens 3000]
//!          [--new-tokens 3000] [--batches 1,32|none] [--reference FILE.safetensors]
//!          [--mixed N]
//! ```
//! Prompts are random token ids (seeded); decoding ignores stop tokens, so every sequence makes
//! exactly --new-tokens tokens. With --reference (a safetensors file with `input_ids` (1, T),
//! `logits` (1, T, V) and optionally `logits_bf16`, e.g. from transformers in f32 and bf16), the
//! logits of the same ids are compared first: max and mean absolute difference and top-1
//! agreement. With --mixed N, N requests of mixed lengths (prompts uniform in
//! [prompt/6, prompt] tokens, limits uniform in [new/8, new]) run twice with the largest
//! --batches value: static batches (length-sorted, shrinking) and continuous batching.
//! One JSON object per measurement goes to stdout.

use candle_core::{D, DType, Device, Tensor};
use lamar_gpu::qwen35;
use lamar_gpu::qwen35::model::{Decoding, PREFILL_TOKENS};
use lamar_gpu::sampling::{Sampler, SamplingParams};
use rand::{RngExt, SeedableRng};
use std::time::Instant;

struct Options {
    model: std::path::PathBuf,
    device: String,
    dtype: DType,
    prompt_tokens: usize,
    new_tokens: usize,
    batches: Vec<usize>,
    reference: Option<std::path::PathBuf>,
    mixed: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        model: "".into(),
        device: "cuda".into(),
        dtype: DType::BF16,
        prompt_tokens: 3000,
        new_tokens: 3000,
        batches: vec![1, 32],
        reference: None,
        mixed: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--model" => o.model = value.into(),
            "--device" => o.device = value,
            "--dtype" => {
                o.dtype = match value.as_str() {
                    "bf16" => DType::BF16,
                    "f32" => DType::F32,
                    other => return Err(format!("--dtype {other}: bf16 or f32")),
                }
            }
            "--prompt-tokens" => o.prompt_tokens = number(&value)?,
            "--new-tokens" => o.new_tokens = number(&value)?,
            "--batches" if value == "none" => o.batches.clear(),
            "--batches" => {
                o.batches = value.split(',').map(number).collect::<Result<_, _>>()?;
            }
            "--reference" => o.reference = Some(value.into()),
            "--mixed" => o.mixed = number(&value)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.model.as_os_str().is_empty() {
        return Err("--model DIR is required".into());
    }
    Ok(o)
}

/// Compares the model's logits for the reference's ids with the reference's `logits` (and,
/// when present, with `logits_bf16`).
fn compare_logits(
    model: &qwen35::model::Qwen35Model,
    path: &std::path::Path,
    device: &Device,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let reference = candle_core::safetensors::load(path, device)?;
    let ids = reference["input_ids"].to_dtype(DType::U32)?;
    let mut cache = model.new_cache();
    let got = model.forward(&ids, &mut cache)?.to_dtype(DType::F32)?;
    let mut report = serde_json::Map::new();
    report.insert("logits_tokens".into(), ids.dim(1)?.into());
    for name in ["logits", "logits_bf16"] {
        let Some(want) = reference.get(name) else {
            continue;
        };
        let want = want.to_dtype(DType::F32)?;
        let diff = (&got - &want)?.abs()?;
        let agree = got
            .argmax(D::Minus1)?
            .eq(&want.argmax(D::Minus1)?)?
            .to_dtype(DType::F32)?
            .mean_all()?
            .to_scalar::<f32>()?;
        report.insert(
            format!("vs_{name}"),
            serde_json::json!({
                "max_abs_diff": diff.max_all()?.to_scalar::<f32>()?,
                "mean_abs_diff": diff.mean_all()?.to_scalar::<f32>()?,
                "top1_agreement": agree,
            }),
        );
    }
    Ok(report.into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let device = match o.device.as_str() {
        "cpu" => Device::Cpu,
        _ => Device::new_cuda(0)?,
    };
    let started = Instant::now();
    let model = qwen35::load(&o.model, o.dtype, &device)?;
    device.synchronize()?;
    println!(
        "{}",
        serde_json::json!({
            "load_s": started.elapsed().as_secs_f64(),
            "dtype": format!("{:?}", o.dtype),
        })
    );
    if let Some(path) = &o.reference {
        println!("{}", compare_logits(&model, path, &device)?);
    }
    let vocab = model.config().vocab_size as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for &batch in &o.batches {
        let prompts: Vec<Vec<u32>> = (0..batch)
            .map(|_| {
                (0..o.prompt_tokens)
                    .map(|_| rng.random_range(0..vocab))
                    .collect()
            })
            .collect();
        // Prefill alone (row groups as generation makes them).
        device.synchronize()?;
        let t0 = Instant::now();
        let rows = (PREFILL_TOKENS / o.prompt_tokens).max(1);
        for group in prompts.chunks(rows) {
            let flat: Vec<u32> = group.iter().flatten().copied().collect();
            let ids = Tensor::from_vec(flat, (group.len(), o.prompt_tokens), &device)?;
            let mut cache = model.new_cache();
            model.forward_last(&ids, None, &mut cache)?;
        }
        device.synchronize()?;
        let prefill = t0.elapsed().as_secs_f64();
        // Whole generation: prefill, then exactly new_tokens per row.
        let limits = vec![o.new_tokens; batch];
        let mut sampler = Sampler::new(SamplingParams::default());
        let t1 = Instant::now();
        let mut first_step: Option<f64> = None;
        let generated = model.generate_each(
            &prompts,
            &limits,
            &Decoding::default(),
            &mut sampler,
            &device,
            |_| {
                first_step.get_or_insert_with(|| t1.elapsed().as_secs_f64());
            },
        )?;
        device.synchronize()?;
        let total = t1.elapsed().as_secs_f64();
        let first = first_step.unwrap_or(0.0);
        let new: usize = generated.iter().map(|g| g.tokens.len()).sum();
        let decode = total - first;
        println!(
            "{}",
            serde_json::json!({
                "batch": batch,
                "prompt_tokens": o.prompt_tokens,
                "new_tokens_per_row": o.new_tokens,
                "prefill_s": prefill,
                "prefill_tok_s": (batch * o.prompt_tokens) as f64 / prefill,
                "time_to_first_token_s": first,
                "decode_s": decode,
                "decode_tok_s": (new - batch) as f64 / decode.max(1e-9),
                "decode_ms_per_step": 1e3 * decode / (o.new_tokens.max(2) - 1) as f64,
            })
        );
    }
    if o.mixed > 0 {
        let slots = o.batches.iter().copied().max().unwrap_or(32);
        let prompts: Vec<Vec<u32>> = (0..o.mixed)
            .map(|_| {
                let len = rng.random_range(o.prompt_tokens / 6..=o.prompt_tokens);
                (0..len).map(|_| rng.random_range(0..vocab)).collect()
            })
            .collect();
        let limits: Vec<usize> = (0..o.mixed)
            .map(|_| rng.random_range(o.new_tokens / 8..=o.new_tokens))
            .collect();
        let total: usize = limits.iter().sum();
        // Static: longest prompts first, batches of `slots`, each until its last sequence ends.
        let mut order: Vec<usize> = (0..o.mixed).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(prompts[k].len()));
        device.synchronize()?;
        let t0 = Instant::now();
        for batch in order.chunks(slots) {
            let p: Vec<Vec<u32>> = batch.iter().map(|&k| prompts[k].clone()).collect();
            let l: Vec<usize> = batch.iter().map(|&k| limits[k]).collect();
            let mut sampler = Sampler::new(SamplingParams::default());
            model.generate_each(&p, &l, &Decoding::default(), &mut sampler, &device, |_| {})?;
        }
        device.synchronize()?;
        let static_s = t0.elapsed().as_secs_f64();
        let ordered: Vec<Vec<u32>> = order.iter().map(|&k| prompts[k].clone()).collect();
        let ordered_limits: Vec<usize> = order.iter().map(|&k| limits[k]).collect();
        let mut sampler = Sampler::new(SamplingParams::default());
        let mut steps = 0usize;
        let t1 = Instant::now();
        model.generate_continuous(
            &ordered,
            &ordered_limits,
            slots,
            &Decoding::default(),
            &mut sampler,
            &device,
            |_, _| Ok(()),
            |_| steps += 1,
        )?;
        device.synchronize()?;
        let continuous_s = t1.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "mixed_requests": o.mixed,
                "slots": slots,
                "new_tokens_total": total,
                "prompt_tokens_total": prompts.iter().map(Vec::len).sum::<usize>(),
                "static_s": static_s,
                "static_tok_s": total as f64 / static_s,
                "continuous_s": continuous_s,
                "continuous_tok_s": total as f64 / continuous_s,
                "continuous_calls": steps,
            })
        );
    }
    Ok(())
}
