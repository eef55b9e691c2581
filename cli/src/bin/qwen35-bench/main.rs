//! Prefill and decode throughput of a Qwen3.5 snapshot, and its logits against a reference.
//!
//! ```text
//! qwen35-bench --model DIR [--device cuda|cpu] [--dtype bf16|f32] [--prompt-tokens 3000]
//!          [--new-tokens 3000] [--batches 1,32|none] [--reference FILE.safetensors]
//!          [--mixed N] [--fused all|none|deltanet,attention,norm,mlp,gemv,chunks] [--profile] [--no-graphs]
//! ```
//! Prompts are random token ids (seeded); decoding ignores stop tokens, so every sequence makes
//! exactly --new-tokens tokens. With --reference (a safetensors file with `input_ids` (1, T),
//! `logits` (1, T, V) and optionally `logits_bf16`, e.g. from transformers in f32 and bf16), the
//! logits of the same ids are compared first: max and mean absolute difference and top-1
//! agreement; then the last [`reference::DECODE_CHECK_TOKENS`] ids are decoded one at a time
//! (teacher forcing, two rows: the reference ids and the same ids rotated) after a prefill of the rest,
//! and each step's logits are compared with the reference and with lamar's own one-call logits
//! of each row (decoding and prefill run different code: recurrent vs chunked DeltaNet, fused
//! kernels on CUDA). --fused picks lamar's fused CUDA kernels (default all; none = candle
//! operations only); --no-graphs turns CUDA graphs for decoding steps off. --profile adds, per batch size, where a decoding step's time goes: the host
//! time to enqueue it against its time on the device, and the memory bandwidth the matrix
//! products of the model's shapes reach alone. With --mixed N, N requests of mixed lengths (prompts uniform in
//! [prompt/6, prompt] tokens, limits uniform in [new/8, new]) run twice with the largest
//! --batches value: static batches (length-sorted, shrinking) and continuous batching.
//! One JSON object per measurement goes to stdout.

mod reference;

use candle_core::{DType, Device, Tensor};
use lamar_model::qwen35;
use lamar_model::qwen35::{Decoding, FusedKernels, PREFILL_TOKENS};
use lamar_model::sampling::{Sampler, SamplingParams};
use rand::{RngExt, SeedableRng};
use reference::compare_logits;
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
    fused: FusedKernels,
    profile: bool,
    graphs: bool,
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
        fused: FusedKernels::ALL,
        profile: false,
        graphs: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        if flag == "--profile" {
            o.profile = true;
            continue;
        }
        if flag == "--no-graphs" {
            o.graphs = false;
            continue;
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
            "--fused" => o.fused = FusedKernels::parse(&value)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.model.as_os_str().is_empty() {
        return Err("--model DIR is required".into());
    }
    Ok(o)
}

/// Where a decoding step's time goes at batch size `batch`: after a 512-token prefill, 128 steps
/// (fixed ids, no sampling) timed twice, once without waiting for the device after each step
/// (the host's time to enqueue it) and once waiting; then each weight shape's matrix product
/// alone (effective GB/s of its weights).
fn profile(
    model: &qwen35::Qwen35Model,
    batch: usize,
    device: &Device,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    const STEPS: usize = 128;
    let prompt = Tensor::zeros((batch, 512), DType::U32, device)?;
    let next = Tensor::ones((batch, 1), DType::U32, device)?;
    let mut cache = model.new_cache();
    cache.reserve(512 + 3 * STEPS + 4);
    model.forward_last(&prompt, None, &mut cache)?;
    model.forward_last(&next, None, &mut cache)?; // first decoding step: kernel loading
    device.synchronize()?;
    let t0 = Instant::now();
    let mut enqueue = 0.0;
    for _ in 0..STEPS {
        let s = Instant::now();
        model.forward_last(&next, None, &mut cache)?;
        enqueue += s.elapsed().as_secs_f64();
    }
    device.synchronize()?;
    let unsynced = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..STEPS {
        model.forward_last(&next, None, &mut cache)?;
        device.synchronize()?;
    }
    let synced = t1.elapsed().as_secs_f64();
    // The same steps through a CUDA graph (when the model allows one).
    let mut slot = model.graph_slot();
    let tokens = vec![1u32; batch];
    for _ in 0..2 {
        model.decode_step_graphed(&tokens, &mut cache, &mut slot)?; // eager warm-up, capture
    }
    device.synchronize()?;
    let t2 = Instant::now();
    for _ in 0..STEPS {
        model.decode_step_graphed(&tokens, &mut cache, &mut slot)?;
        device.synchronize()?;
    }
    let graphed = t2.elapsed().as_secs_f64();
    let c = model.config();
    let dtype = model.dtype();
    let mut products = serde_json::Map::new();
    let key_width = c.linear_num_key_heads * c.linear_key_head_dim;
    let value_width = c.linear_num_value_heads * c.linear_value_head_dim;
    let attention_width = c.num_attention_heads * c.head_dim;
    let shapes = [
        ("mlp_gate_up", c.hidden_size, 2 * c.intermediate_size),
        ("mlp_down", c.intermediate_size, c.hidden_size),
        ("lm_head", c.hidden_size, c.vocab_size),
        (
            "deltanet_in",
            c.hidden_size,
            2 * key_width + 2 * value_width + 2 * c.linear_num_value_heads,
        ),
        ("deltanet_out", value_width, c.hidden_size),
        (
            "attention_qkv",
            c.hidden_size,
            2 * attention_width + 2 * c.num_key_value_heads * c.head_dim,
        ),
        ("attention_o", attention_width, c.hidden_size),
    ];
    for (name, k, n) in shapes {
        let x = Tensor::ones((batch, k), dtype, device)?;
        let bytes = (n * k * dtype.size_in_bytes()) as f64;
        // Enough copies of the weight that they never all sit in the L2 cache (a model's
        // layers each have their own).
        let copies = (256e6 / bytes).ceil().max(1.0) as usize;
        let weights = (0..copies)
            .map(|_| Tensor::ones((n, k), dtype, device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let w = &weights[0];
        x.matmul(&w.t()?)?;
        device.synchronize()?;
        let t = Instant::now();
        for i in 0..20 {
            x.matmul(&weights[i % copies].t()?)?;
        }
        device.synchronize()?;
        let each = t.elapsed().as_secs_f64() / 20.0;
        // lamar's kernel for a few rows, where it applies: the plan it picks, and every plan.
        #[cfg(feature = "cuda")]
        let (lamar_gb_s, plans) = {
            use lamar_model::kernels::gemv::{GemvPlan, gemv_planned};
            let speed = |plan: GemvPlan| -> candle_core::Result<Option<f64>> {
                if gemv_planned(&x, w, plan)?.is_none() {
                    return Ok(None);
                }
                device.synchronize()?;
                let t = Instant::now();
                for i in 0..20 {
                    gemv_planned(&x, &weights[i % copies], plan)?;
                }
                device.synchronize()?;
                Ok(Some(bytes / (t.elapsed().as_secs_f64() / 20.0) / 1e9))
            };
            let mut plans = serde_json::Map::new();
            for plan in GemvPlan::ALL {
                let key = format!("s{}m{}", plan.split, plan.columns);
                plans.insert(key, serde_json::json!(speed(plan)?));
            }
            (speed(GemvPlan::for_shape(n, k))?, plans)
        };
        #[cfg(not(feature = "cuda"))]
        let (lamar_gb_s, plans): (Option<f64>, serde_json::Map<String, serde_json::Value>) =
            (None, serde_json::Map::new());
        products.insert(
            name.into(),
            serde_json::json!({
                "n": n,
                "k": k,
                "ms": 1e3 * each,
                "weight_gb_s": bytes / each / 1e9,
                "lamar_gemv_weight_gb_s": lamar_gb_s,
                "lamar_gemv_plans_gb_s": plans,
            }),
        );
    }
    Ok(serde_json::json!({
        "profile_batch": batch,
        "enqueue_ms_per_step": 1e3 * enqueue / STEPS as f64,
        "pipelined_ms_per_step": 1e3 * unsynced / STEPS as f64,
        "synced_ms_per_step": 1e3 * synced / STEPS as f64,
        "graphed_ms_per_step": 1e3 * graphed / STEPS as f64,
        "graph_captures": slot.captures,
        "graph_replays": slot.replays,
        "graph_failure": slot.failure,
        "matmul": products,
    }))
}

/// One prefill of `batch` rows of `tokens` tokens, timed stage by stage
/// (`qwen35::stopwatch`): seconds per stage, largest first, and the unprofiled time of the same
/// call.
fn prefill_stages(
    model: &mut qwen35::Qwen35Model,
    batch: usize,
    tokens: usize,
    device: &Device,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use lamar_model::qwen35::stopwatch::Stopwatch;
    use std::sync::Arc;
    let ids = Tensor::ones((batch, tokens), DType::U32, device)?;
    let run = |model: &qwen35::Qwen35Model| -> candle_core::Result<f64> {
        device.synchronize()?;
        let t = Instant::now();
        let mut cache = model.new_cache();
        model.forward_last(&ids, None, &mut cache)?;
        device.synchronize()?;
        Ok(t.elapsed().as_secs_f64())
    };
    run(model)?; // warm-up
    let plain = run(model)?;
    let watch = Arc::new(Stopwatch::new(device));
    model.set_stopwatch(Some(watch.clone()));
    let profiled = run(model);
    model.set_stopwatch(None);
    let profiled = profiled?;
    let mut stages = watch.take();
    stages.sort_by(|a, b| b.1.total_cmp(&a.1));
    let stages: Vec<serde_json::Value> = stages
        .into_iter()
        .map(|(name, s, laps)| serde_json::json!({"stage": name, "ms": 1e3 * s, "laps": laps}))
        .collect();
    Ok(serde_json::json!({
        "prefill_stages_batch": batch,
        "tokens": tokens,
        "unprofiled_ms": 1e3 * plain,
        "profiled_ms": 1e3 * profiled,
        "stages": stages,
    }))
}

/// The step from which `decode_steady_tok_s` counts.
const STEADY_FROM: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let device = match o.device.as_str() {
        "cpu" => Device::Cpu,
        _ => lamar_model::device::open_cuda(0)?,
    };
    let started = Instant::now();
    let mut model = qwen35::load(&o.model, o.dtype, &device)?;
    model.set_fused_kernels(o.fused);
    model.set_cuda_graphs(o.graphs);
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
    if o.profile {
        for &batch in &o.batches {
            println!("{}", profile(&model, batch, &device)?);
        }
        // Prefill stage by stage, one call as generation makes them (batch 1, then as many
        // rows as one call takes).
        let rows = (PREFILL_TOKENS / o.prompt_tokens).max(1);
        for batch in [1, rows] {
            println!(
                "{}",
                prefill_stages(&mut model, batch, o.prompt_tokens, &device)?
            );
        }
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
        // What the host took to enqueue it (candle waits for the device only where it reads
        // values back).
        let prefill_enqueue = t0.elapsed().as_secs_f64();
        device.synchronize()?;
        let prefill = t0.elapsed().as_secs_f64();
        // Whole generation: prefill, then exactly new_tokens per row.
        let limits = vec![o.new_tokens; batch];
        let mut sampler = Sampler::new(SamplingParams::default());
        let t1 = Instant::now();
        let mut first_step: Option<f64> = None;
        // Steady state: from the 64th step on (after the decoding graph's capture).
        let (mut steps, mut steady_from) = (0usize, None);
        let generated = model.generate_each(
            &prompts,
            &limits,
            &Decoding::default(),
            &mut sampler,
            &device,
            |_| {
                first_step.get_or_insert_with(|| t1.elapsed().as_secs_f64());
                steps += 1;
                if steps == STEADY_FROM {
                    steady_from = Some(Instant::now());
                }
            },
        )?;
        let steady = steady_from.map(|t| (steps - STEADY_FROM) as f64 / t.elapsed().as_secs_f64());
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
                "prefill_enqueue_s": prefill_enqueue,
                "prefill_tok_s": (batch * o.prompt_tokens) as f64 / prefill,
                "time_to_first_token_s": first,
                "decode_s": decode,
                "decode_tok_s": (new - batch) as f64 / decode.max(1e-9),
                "decode_ms_per_step": 1e3 * decode / (o.new_tokens.max(2) - 1) as f64,
                // Steps per second after the first STEADY_FROM (the graph's capture excluded),
                // times the batch: tokens per second once decoding runs.
                "decode_steady_tok_s": steady.map(|s| s * batch as f64),
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
