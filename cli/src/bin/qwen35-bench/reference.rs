//! The checks of `--reference`: lamar's logits against a reference's (transformers'), one-call
//! prefill against token-by-token decoding, and graphed greedy decoding against eager.

use candle_core::{D, DType, Device, Tensor};
use lamar_model::qwen35;
use lamar_model::qwen35::Decoding;
use lamar_model::sampling::{Sampler, SamplingParams};
use rand::{RngExt, SeedableRng};

/// Compares the model's logits for the reference's ids with the reference's `logits` (and,
/// when present, with `logits_bf16`).
pub(crate) fn compare_logits(
    model: &qwen35::Qwen35Model,
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
        report.insert(format!("vs_{name}"), agreement(&got, &want)?);
    }
    drop(got);
    let want = reference["logits"].to_dtype(DType::F32)?.squeeze(0)?;
    report.insert("decoding".into(), compare_decoding(model, &ids, &want)?);
    report.insert(
        "greedy_graphs".into(),
        compare_greedy_graphs(model, device)?,
    );
    Ok(report.into())
}

/// Tokens decoded one at a time by the decoding check of `--reference`.
pub(crate) const DECODE_CHECK_TOKENS: usize = 128;

/// Largest and mean absolute difference and top-1 agreement of two `(N, V)` logit tables.
fn agreement(got: &Tensor, want: &Tensor) -> candle_core::Result<serde_json::Value> {
    let diff = (got - want)?.abs()?;
    let agree = got
        .argmax(D::Minus1)?
        .eq(&want.argmax(D::Minus1)?)?
        .to_dtype(DType::F32)?
        .mean_all()?
        .to_scalar::<f32>()?;
    Ok(serde_json::json!({
        "max_abs_diff": diff.max_all()?.to_scalar::<f32>()?,
        "mean_abs_diff": diff.mean_all()?.to_scalar::<f32>()?,
        "top1_agreement": agree,
    }))
}

/// Decodes the last [`DECODE_CHECK_TOKENS`] of `ids` `(1, T)` one token at a time after a
/// prefill of the rest, in a batch of two rows (`ids` and `ids` rotated by a third), and
/// compares each step's logits with `reference` (row 0's, `(T, V)`) and with lamar's one-call
/// logits of each row.
fn compare_decoding(
    model: &qwen35::Qwen35Model,
    ids: &Tensor,
    reference: &Tensor,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let t = ids.dim(1)?;
    let n = DECODE_CHECK_TOKENS.min(t / 2).max(1);
    let split = t - n;
    let rotated = Tensor::cat(
        &[&ids.narrow(1, t / 3, t - t / 3)?, &ids.narrow(1, 0, t / 3)?],
        1,
    )?;
    let rows = Tensor::cat(&[ids, &rotated], 0)?;
    let mut cache = model.new_cache();
    cache.reserve(t);
    let mut steps = vec![model.forward_last(&rows.narrow(1, 0, split)?, None, &mut cache)?];
    // Through CUDA graphs when they are on (the logits are the graph's buffer: copied).
    let mut slot = model.graph_slot();
    let columns: Vec<Vec<u32>> = rows.t()?.to_vec2()?;
    for column in &columns[split..t - 1] {
        steps.push(
            model
                .decode_step_graphed(column, &mut cache, &mut slot)?
                .copy()?,
        );
    }
    // steps[j] predicts position split + j: the logits of position split - 1 + j.
    let decoded = Tensor::stack(&steps, 1)?.to_dtype(DType::F32)?; // (2, n, V)
    let reference = reference.narrow(0, split - 1, n)?;
    let own = |row: usize| -> candle_core::Result<Tensor> {
        let mut cache = model.new_cache();
        let logits = model.forward(&rows.narrow(0, row, 1)?, &mut cache)?;
        logits
            .squeeze(0)?
            .narrow(0, split - 1, n)?
            .to_dtype(DType::F32)
    };
    // The sampler's greedy choice (a fused kernel on CUDA) against the definition, computed
    // on the host in f64: the first largest logit (as torch's argmax; ties are common among
    // bf16 logits) and its log-softmax.
    let flat = decoded.reshape((2 * n, ()))?;
    let (tokens, log_probs) = Sampler::new(SamplingParams::default()).next(&flat)?;
    let mut same = 0;
    let mut worst = 0f64;
    for (row, values) in flat.to_vec2::<f32>()?.iter().enumerate() {
        let (mut best, mut at) = (f32::NEG_INFINITY, 0);
        for (i, &v) in values.iter().enumerate() {
            if v > best {
                (best, at) = (v, i);
            }
        }
        let sum: f64 = values.iter().map(|&v| (v as f64 - best as f64).exp()).sum();
        same += usize::from(tokens[row] as usize == at);
        worst = worst.max((log_probs[row] as f64 + sum.ln()).abs());
    }
    Ok(serde_json::json!({
        "greedy_sampler_same_token": same as f64 / tokens.len().max(1) as f64,
        "greedy_sampler_log_prob_max_abs_diff": worst,
        "decoded_tokens": n,
        "graph_replays": slot.replays,
        "graph_failure": slot.failure,
        "row0_vs_logits": agreement(&decoded.get(0)?, &reference)?,
        "row0_vs_lamar_one_call": agreement(&decoded.get(0)?, &own(0)?)?,
        "row1_vs_lamar_one_call": agreement(&decoded.get(1)?, &own(1)?)?,
    }))
}

/// Greedy generation as `generate_each` runs it (several steps per CUDA graph, the choice made
/// on the device) against eager steps picked on the host, for two random prompts of 200 tokens
/// and 48 new tokens: the share of equal tokens and the largest log-probability difference.
fn compare_greedy_graphs(
    model: &qwen35::Qwen35Model,
    device: &Device,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    const NEW: usize = 48;
    let vocab = model.config().vocab_size as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let prompts: Vec<Vec<u32>> = (0..2)
        .map(|_| (0..200).map(|_| rng.random_range(0..vocab)).collect())
        .collect();
    let mut sampler = Sampler::new(SamplingParams::default());
    let graphed = model.generate_each(
        &prompts,
        &[NEW, NEW],
        &Decoding::default(),
        &mut sampler,
        device,
        |_| {},
    )?;
    // Eager steps, one token at a time.
    let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
    let mut cache = model.new_cache();
    let mut logits =
        model.forward_last(&Tensor::from_vec(flat, (2, 200), device)?, None, &mut cache)?;
    let mut eager = vec![(Vec::new(), Vec::new()); 2];
    for _ in 0..NEW {
        let (tokens, log_probs) = sampler.next(&logits)?;
        for row in 0..2 {
            eager[row].0.push(tokens[row]);
            eager[row].1.push(log_probs[row]);
        }
        logits =
            model.forward_last(&Tensor::from_vec(tokens, (2, 1), device)?, None, &mut cache)?;
    }
    let (mut same, mut total, mut worst) = (0usize, 0usize, 0f32);
    for (g, (tokens, log_probs)) in graphed.iter().zip(&eager) {
        for (i, (&t, &lp)) in tokens.iter().zip(log_probs).enumerate() {
            total += 1;
            if g.tokens.get(i) == Some(&t) {
                same += 1;
                worst = worst.max((g.log_probs[i] - lp).abs());
            }
        }
    }
    Ok(serde_json::json!({
        "tokens": total,
        "same_token_share": same as f64 / total.max(1) as f64,
        "log_prob_max_abs_diff": worst,
    }))
}
