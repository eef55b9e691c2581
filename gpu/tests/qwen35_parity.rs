//! Parity with Hugging Face transformers 5.17 on a tiny random Qwen3.5 text model
//! (`tests/golden/qwen35_tiny`, made by `gpu/tools/make_tiny_qwen35.py`: 3 DeltaNet layers and 1
//! gated-attention layer, every weight perturbed): logits of a 100-token prompt in one call and
//! token by token, and a greedy continuation.

mod common;

use common::{golden, max_abs_diff};

use candle_core::{DType, Device, Tensor};
use lamar_model::qwen35;
use std::path::PathBuf;

fn expected() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(golden().join("expected.safetensors"), &Device::Cpu).unwrap()
}

/// A token tensor of the golden expectations as a flat list of ids.
fn golden_tokens(name: &str) -> Vec<u32> {
    expected()[name]
        .to_dtype(DType::U32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn logits_match_transformers_in_one_call_and_token_by_token() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let ids = want["input_ids"].to_dtype(DType::U32).unwrap();
    let logits = model.forward(&ids, &mut model.new_cache()).unwrap();
    let diff = max_abs_diff(&logits, &want["logits"]);
    eprintln!("prefill: max abs logit difference {diff:e}");
    assert!(diff < 1e-4, "prefill logits differ by {diff}");
    // The same tokens one at a time through the caches.
    let mut cache = model.new_cache();
    let steps: Vec<Tensor> = (0..ids.dim(1).unwrap())
        .map(|t| {
            model
                .forward(&ids.narrow(1, t, 1).unwrap(), &mut cache)
                .unwrap()
        })
        .collect();
    let stepwise = Tensor::cat(&steps, 1).unwrap();
    let diff = max_abs_diff(&stepwise, &want["step_logits"]);
    assert!(diff < 1e-4, "token-by-token logits differ by {diff}");
    assert_eq!(cache.position, 100);
}

#[test]
fn the_cache_free_forward_pass_matches_transformers() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let ids = want["input_ids"].to_dtype(DType::U32).unwrap();
    let logits = model.forward_sequence(&ids, None).unwrap();
    let diff = max_abs_diff(&logits, &want["logits"]);
    assert!(diff < 1e-4, "cache-free logits differ by {diff}");
    // The head over the hidden states a chunk of positions at a time gives the same logits.
    let hidden = model.hidden_states(&ids, None).unwrap();
    let head = model.lm_head_weight();
    let chunk = hidden
        .narrow(1, 40, 30)
        .unwrap()
        .broadcast_matmul(&head.t().unwrap())
        .unwrap();
    let diff = max_abs_diff(&chunk, &want["logits"].narrow(1, 40, 30).unwrap());
    assert!(diff < 1e-4, "chunked head differs by {diff}");
    // A left-padded row's real positions equal the row alone.
    let short: Vec<u32> = golden_tokens("input_ids")[..37].to_vec();
    let mut padded = vec![0u32; 13];
    padded.extend_from_slice(&short);
    let mut mask = vec![0u32; 13];
    mask.extend(std::iter::repeat_n(1u32, 37));
    let padded = Tensor::from_vec(padded, (1, 50), &device).unwrap();
    let mask = Tensor::from_vec(mask, (1, 50), &device).unwrap();
    let logits = model.forward_sequence(&padded, Some(&mask)).unwrap();
    let diff = max_abs_diff(
        &logits.narrow(1, 13, 37).unwrap(),
        &want["logits"].narrow(1, 0, 37).unwrap(),
    );
    assert!(diff < 1e-4, "padded cache-free row differs by {diff}");
}

#[test]
fn greedy_decoding_matches_transformers_token_for_token() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let greedy: Vec<u32> = golden_tokens("greedy");
    let (prompt, continuation) = greedy.split_at(10);
    let got = model
        .greedy(prompt, continuation.len(), None, &device)
        .unwrap();
    assert_eq!(got, continuation);
}

/// LAMAR's pseudo-label "entropy" (the mean negative log-likelihood of the generated tokens) as
/// transformers computes it for a greedy continuation (`gpu/tools/make_tiny_entropy_golden.py`).
#[test]
fn entropy_is_the_mean_nll_transformers_gives() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let text = std::fs::read_to_string(golden().join("entropy.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = |key: &str| -> Vec<u32> {
        want[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    };
    let (prompt, tokens) = (ids("prompt"), ids("tokens"));
    let mut sampler = lamar_model::sampling::Sampler::new(Default::default());
    let got = model
        .generate(&[prompt], tokens.len(), &[], &mut sampler, &device)
        .unwrap()
        .remove(0);
    assert_eq!(got.tokens, tokens);
    let log_probs = want["log_probs"].as_array().unwrap();
    assert_eq!(got.log_probs.len(), log_probs.len());
    for (k, (a, b)) in got.log_probs.iter().zip(log_probs).enumerate() {
        let b = b.as_f64().unwrap();
        assert!((f64::from(*a) - b).abs() < 1e-4, "token {k}: {a} vs {b}");
    }
    let mean = want["mean_nll"].as_f64().unwrap();
    assert!(
        (got.mean_nll() - mean).abs() < 1e-5,
        "{} vs {mean}",
        got.mean_nll()
    );
}

#[test]
fn bad_folders_are_reported() {
    let err = qwen35::load(&PathBuf::from("/nonexistent"), DType::F32, &Device::Cpu)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/nonexistent/config.json"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"vocab_size\": 3}").unwrap();
    let err = qwen35::load(dir.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn left_padded_batches_match_each_sequence_alone() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let ids: Vec<u32> = golden_tokens("input_ids");
    // Row 0: 37 real tokens after 63 pads (the pad id is arbitrary); row 1: all 100 tokens.
    let short = &ids[20..57];
    let (pad, width) = (100 - short.len(), 100);
    let mut batch = vec![0u32; pad];
    batch.extend_from_slice(short);
    batch.extend_from_slice(&ids);
    let mut mask = vec![0u32; pad];
    mask.extend(std::iter::repeat_n(1u32, short.len() + width));
    let batch = Tensor::from_vec(batch, (2, width), &device).unwrap();
    let mask = Tensor::from_vec(mask, (2, width), &device).unwrap();
    let mut cache = model.new_cache();
    let logits = model
        .forward_masked(&batch, Some(&mask), &mut cache)
        .unwrap();
    let alone = model
        .forward(
            &Tensor::new(short, &device).unwrap().unsqueeze(0).unwrap(),
            &mut model.new_cache(),
        )
        .unwrap();
    let real = logits
        .narrow(0, 0, 1)
        .unwrap()
        .narrow(1, pad, short.len())
        .unwrap();
    let diff = max_abs_diff(&real, &alone);
    assert!(diff < 1e-4, "padded row differs by {diff}");
    let diff = max_abs_diff(&logits.narrow(0, 1, 1).unwrap(), &want["logits"]);
    assert!(diff < 1e-4, "full row differs by {diff}");
    // One decoding step for both rows, without a mask: still each sequence's own continuation.
    let next = Tensor::from_vec(vec![5u32, 9], (2, 1), &device).unwrap();
    let step = model.forward(&next, &mut cache).unwrap();
    let mut solo = model.new_cache();
    let mut tokens = short.to_vec();
    model
        .forward(
            &Tensor::new(tokens.as_slice(), &device)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
            &mut solo,
        )
        .unwrap();
    tokens.push(5);
    let solo_step = model
        .forward(
            &Tensor::new(&[5u32], &device).unwrap().unsqueeze(0).unwrap(),
            &mut solo,
        )
        .unwrap();
    let diff = max_abs_diff(&step.narrow(0, 0, 1).unwrap(), &solo_step);
    assert!(
        diff < 1e-4,
        "decode step of the padded row differs by {diff}"
    );
}

#[test]
fn batched_generation_gives_each_prompt_its_own_result() {
    use lamar_model::sampling::{Sampler, SamplingParams};
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let ids: Vec<u32> = golden_tokens("input_ids");
    let prompts = vec![
        ids[..10].to_vec(),
        ids[30..33].to_vec(),
        ids[40..61].to_vec(),
    ];
    let greedy = SamplingParams::default();
    let batch = model
        .generate(&prompts, 12, &[], &mut Sampler::new(greedy), &device)
        .unwrap();
    assert_eq!(batch.len(), prompts.len());
    for (prompt, got) in prompts.iter().zip(&batch) {
        let alone = model
            .generate(
                std::slice::from_ref(prompt),
                12,
                &[],
                &mut Sampler::new(greedy),
                &device,
            )
            .unwrap();
        assert_eq!(got.tokens, alone[0].tokens);
        assert_eq!(got.log_probs.len(), got.tokens.len());
        for (a, b) in got.log_probs.iter().zip(&alone[0].log_probs) {
            assert!((a - b).abs() < 1e-4);
        }
        assert_eq!(got.tokens.len(), 12);
        assert!(got.mean_nll() > 0.0);
    }
    // A stop token ends that sequence only, and is kept.
    let stop = batch[1].tokens[3];
    let stopped = model
        .generate(&prompts, 12, &[stop], &mut Sampler::new(greedy), &device)
        .unwrap();
    let first = batch[1].tokens.iter().position(|&t| t == stop).unwrap();
    assert_eq!(stopped[1].tokens, batch[1].tokens[..=first]);
    // Sampling is reproducible for a seed.
    let sampled = SamplingParams {
        temperature: 1.0,
        top_p: 0.9,
        min_p: 0.0,
        seed: 5,
    };
    let a = model
        .generate(&prompts, 8, &[], &mut Sampler::new(sampled), &device)
        .unwrap();
    let b = model
        .generate(&prompts, 8, &[], &mut Sampler::new(sampled), &device)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn each_prompt_keeps_its_own_limit_when_the_batch_shrinks_and_prefills_in_groups() {
    use lamar_model::qwen35::Decoding;
    use lamar_model::sampling::{Sampler, SamplingParams};
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let ids: Vec<u32> = golden_tokens("input_ids");
    let prompts = vec![
        ids[5..20].to_vec(),
        ids[30..33].to_vec(),
        ids[40..61].to_vec(),
        ids[1..2].to_vec(),
    ];
    let limits = [9, 2, 0, 14];
    let greedy = SamplingParams::default();
    // One row per prefill call: the caches of four separate prefills are joined.
    let decoding = Decoding {
        stop: &[],
        prefill_tokens: 1,
    };
    let mut steps = Vec::new();
    let batch = model
        .generate_each(
            &prompts,
            &limits,
            &decoding,
            &mut Sampler::new(greedy),
            &device,
            |n| steps.push(n),
        )
        .unwrap();
    assert_eq!(batch.len(), prompts.len());
    for ((prompt, got), &limit) in prompts.iter().zip(&batch).zip(&limits) {
        assert_eq!(got.tokens.len(), limit);
        let alone = model
            .generate(
                std::slice::from_ref(prompt),
                limit,
                &[],
                &mut Sampler::new(greedy),
                &device,
            )
            .unwrap();
        assert_eq!(got.tokens, alone[0].tokens);
    }
    // Three rows decode at first; the batch shrinks to two after step 2, to one after 9.
    assert_eq!(steps.len(), 14);
    assert_eq!(&steps[..3], &[3, 3, 2]);
    assert_eq!(steps[8], 2);
    assert_eq!(steps[9], 1);
    assert_eq!(steps.iter().sum::<usize>(), 9 + 2 + 14);
}

#[test]
fn continuous_batching_refills_slots_and_matches_each_prompt_alone() {
    use lamar_model::qwen35::Decoding;
    use lamar_model::sampling::{Sampler, SamplingParams};
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let ids: Vec<u32> = golden_tokens("input_ids");
    // Short and long prompts in an order that makes later prompts both shorter than the
    // batch's history (right-aligned into a freed row) and longer (every row shifted right),
    // limits that free slots at different steps, one prompt with no tokens to make, and one
    // prompt three times in a row (prefilled once, its cache duplicated for the others).
    let prompts: Vec<Vec<u32>> = vec![
        ids[0..4].to_vec(),
        ids[10..30].to_vec(),
        ids[10..30].to_vec(),
        ids[10..30].to_vec(),
        ids[40..43].to_vec(),
        ids[50..95].to_vec(),
        ids[5..7].to_vec(),
        ids[60..61].to_vec(),
        ids[20..90].to_vec(),
    ];
    let limits = [3, 9, 5, 7, 2, 6, 0, 11, 4];
    let greedy = SamplingParams::default();
    for slots in [1, 2, 3] {
        let mut got = vec![None; prompts.len()];
        let mut order = Vec::new();
        let mut steps = 0;
        model
            .generate_continuous(
                &prompts,
                &limits,
                slots,
                &Decoding::default(),
                &mut Sampler::new(greedy),
                &device,
                |k, g| {
                    order.push(k);
                    got[k] = Some(g);
                    Ok(())
                },
                |n| {
                    assert!(n <= slots);
                    steps += 1;
                },
            )
            .unwrap();
        assert_eq!(order.len(), prompts.len(), "slots {slots}");
        for (k, prompt) in prompts.iter().enumerate() {
            let alone = model
                .generate(
                    std::slice::from_ref(prompt),
                    limits[k],
                    &[],
                    &mut Sampler::new(greedy),
                    &device,
                )
                .unwrap();
            let g = got[k].as_ref().unwrap();
            assert_eq!(g.tokens, alone[0].tokens, "slots {slots}, prompt {k}");
            assert_eq!(
                g.log_probs.len(),
                g.tokens.len(),
                "slots {slots}, prompt {k}"
            );
            for (a, b) in g.log_probs.iter().zip(&alone[0].log_probs) {
                assert!((a - b).abs() < 1e-4, "slots {slots}, prompt {k}");
            }
        }
        // More slots, fewer steps (a step serves every running sequence).
        if slots == 3 {
            assert!(steps < limits.iter().sum::<usize>());
        }
    }
}

#[test]
fn lora_adapters_match_peft_merged_and_unmerged() {
    use lamar_model::lora::LoraAdapter;
    let device = Device::Cpu;
    let dir = golden().join("../qwen35_tiny_lora");
    let want: std::collections::HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("expected_lora.safetensors"), &device).unwrap();
    let ids = expected()["input_ids"].to_dtype(DType::U32).unwrap();
    let mut outputs = Vec::new();
    for merge in [false, true] {
        let adapter = LoraAdapter::load(&dir, merge, &device).unwrap();
        assert_eq!(
            adapter.modules(),
            25,
            "3 × 3 DeltaNet + 4 attention + 4 × 3 MLP projections"
        );
        let model =
            qwen35::load_with_adapter(&golden(), Some(&adapter), DType::F32, &device).unwrap();
        let logits = model.forward(&ids, &mut model.new_cache()).unwrap();
        let diff = max_abs_diff(&logits, &want["logits"]);
        assert!(
            diff < 1e-4,
            "merge={merge}: logits differ from PEFT by {diff}"
        );
        outputs.push(logits);
    }
    assert!(max_abs_diff(&outputs[0], &outputs[1]) < 1e-4);
    // The adapter changes something.
    assert!(max_abs_diff(&outputs[0], &expected()["logits"]) > 1e-2);
    let err = LoraAdapter::load(&golden(), false, &device).err().unwrap();
    assert!(err.to_string().contains("adapter_config.json"), "{err}");
}

#[test]
fn decoding_steps_through_the_graph_api_match_transformers() {
    // On the CPU `decode_step_graphed` runs each step eagerly; on CUDA the same calls capture
    // and replay a graph (checked on the GPU by `qwen35-bench --reference`). Either way the
    // caller's contract is this one: one token per row per call, logits of that step.
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let ids = golden_tokens("input_ids");
    let split = 60;
    let mut cache = model.new_cache();
    let prompt = Tensor::new(&ids[..split], &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    model.forward_last(&prompt, None, &mut cache).unwrap();
    let mut slot = model.graph_slot();
    for (t, &token) in ids.iter().enumerate().skip(split) {
        let logits = model
            .decode_step_graphed(&[token], &mut cache, &mut slot)
            .unwrap();
        let reference = want["step_logits"]
            .narrow(1, t, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let diff = max_abs_diff(&logits, &reference);
        assert!(diff < 1e-4, "step {t}: logits differ by {diff}");
    }
    assert_eq!(cache.position, ids.len());
    assert_eq!((slot.captures, slot.replays, slot.failure), (0, 0, None));
}

#[test]
fn fused_kernel_choices_parse() {
    use lamar_model::qwen35::FusedKernels;
    assert_eq!(FusedKernels::parse("all"), Ok(FusedKernels::ALL));
    assert_eq!(FusedKernels::parse("none"), Ok(FusedKernels::NONE));
    let some = FusedKernels::parse("deltanet, gemv").unwrap();
    assert!(
        some.deltanet
            && some.gemv
            && !some.attention
            && !some.norm
            && !some.mlp
            && !some.chunks
            && !some.flash
    );
    assert!(FusedKernels::parse("chunks").unwrap().chunks);
    assert!(FusedKernels::parse("flash").unwrap().flash);
    let error = FusedKernels::parse("deltanet,flashy").unwrap_err();
    assert!(error.contains("\"flashy\""), "{error}");
}
