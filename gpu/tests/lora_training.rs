//! The trainable LoRA adapter beside the frozen model (issue 17): PEFT's initialisation covers
//! every linear layer and changes nothing; the trainable path computes what lamar's PEFT loader
//! computes for the saved adapter (unmerged and merged); gradients of the chunked DFT loss reach
//! every `A` and `B` and agree with the dense loss's.

mod common;

use common::{golden, max_abs_diff};

use candle_core::{D, DType, Device, Tensor};
use lamar_model::lora::LoraAdapter;
use lamar_model::qwen35;
use lamar_model::train::data::Example;
use lamar_model::train::gradients::{Backward, example_gradients, policy_gradients};
use lamar_model::train::lora::{ALL_LINEAR, AdapterProducts, LoraShape, TrainableLora};
use lamar_model::train::loss::{HeadLoss, LossKind, head_loss, surrogate};
use std::sync::Arc;

fn ids() -> Tensor {
    let ids: Vec<u32> = (0..70u32).map(|k| (k * 53 + 7) % 256).collect();
    Tensor::from_vec(ids, (1, 70), &Device::Cpu).unwrap()
}

/// The final hidden states of `n` positions from `from` of one sequence, with the adapter.
fn hidden_at(
    model: &qwen35::Qwen35Model,
    ids: &Tensor,
    lora: &Arc<TrainableLora>,
    from: usize,
    n: usize,
) -> Tensor {
    model
        .hidden_states_with(ids, None, Some(lora.clone()))
        .unwrap()
        .squeeze(0)
        .unwrap()
        .narrow(0, from, n)
        .unwrap()
}

const SHAPE: LoraShape = LoraShape {
    rank: 4,
    alpha: 8.0,
    rslora: true,
};

/// An adapter with every `B` set to small random values (a fresh one has `B = 0`, where every
/// `A` gradient vanishes).
fn trained(model: &qwen35::Qwen35Model) -> TrainableLora {
    let lora = TrainableLora::init(model, &ALL_LINEAR, SHAPE, 7, &Device::Cpu).unwrap();
    for (name, var) in lora.named_vars() {
        if name.ends_with("lora_B.weight") {
            let dims = var.dims().to_vec();
            var.set(&Tensor::randn(0f32, 0.05, dims, &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    lora
}

#[test]
fn a_fresh_adapter_covers_every_linear_layer_and_changes_nothing() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = TrainableLora::init(&model, &ALL_LINEAR, SHAPE, 7, &Device::Cpu).unwrap();
    let vars = lora.named_vars();
    // 3 DeltaNet layers × 5 projections + 1 attention layer × 4 + 4 MLPs × 3.
    assert_eq!(vars.len(), 2 * 31);
    for (name, var) in &vars {
        let values: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
        if name.ends_with("lora_B.weight") {
            assert!(values.iter().all(|&v| v == 0.0), "{name} starts at zero");
        } else {
            let bound = 1.0 / (var.dim(1).unwrap() as f32).sqrt();
            assert!(
                values.iter().all(|v| v.abs() <= bound),
                "{name} within ±{bound}"
            );
            assert!(values.iter().any(|&v| v != values[0]), "{name} is random");
        }
    }
    let base = model.hidden_states(&ids(), None).unwrap();
    let with = model
        .hidden_states_with(&ids(), None, Some(Arc::new(lora)))
        .unwrap();
    // Zero deltas; the tracked variables switch the norms and softmax to their differentiable
    // forms, which round differently in the last bits.
    let diff = max_abs_diff(&base, &with);
    assert!(
        diff < 1e-5,
        "a fresh adapter moved the hidden states by {diff}"
    );
}

#[test]
fn the_trainable_path_equals_lamars_peft_loader_on_the_saved_adapter() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let trainable = model
        .hidden_states_with(&ids(), None, Some(lora.clone()))
        .unwrap();
    assert!(max_abs_diff(&trainable, &model.hidden_states(&ids(), None).unwrap()) > 1e-3);
    let dir = tempfile::tempdir().unwrap();
    lora.save_peft(dir.path(), "tests/golden/qwen35_tiny")
        .unwrap();
    for merge in [false, true] {
        let adapter = LoraAdapter::load(dir.path(), merge, &Device::Cpu).unwrap();
        assert_eq!(adapter.modules(), 31);
        let loaded =
            qwen35::load_with_adapter(&golden(), Some(&adapter), DType::F32, &Device::Cpu).unwrap();
        let diff = max_abs_diff(&loaded.hidden_states(&ids(), None).unwrap(), &trainable);
        assert!(diff < 1e-4, "merge {merge}: {diff}");
    }
}

#[test]
fn dft_gradients_reach_every_adapter_variable_and_equal_the_dense_loss() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let ids = ids();
    let targets: Vec<u32> = ids
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
        .into_iter()
        .skip(1)
        .collect();
    // Response positions: all but the last (whose next token is unknown).
    let hidden = hidden_at(&model, &ids, &lora, 0, 69);
    let head = model.lm_head_weight();
    let loss = head_loss(&hidden, &targets, head, LossKind::Dft, 69, 16).unwrap();
    let chunked = surrogate(&hidden, &loss.hidden_grad)
        .unwrap()
        .backward()
        .unwrap();
    // The same loss with full logits, differentiated directly (from the same hidden states).
    let logits = hidden.matmul(&head.t().unwrap()).unwrap();
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
    let y = Tensor::new(targets.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(1)
        .unwrap();
    let ce = log_probs
        .gather(&y, 1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .neg()
        .unwrap();
    let p = ce.neg().unwrap().exp().unwrap().detach();
    let dense_loss = ((p * ce).unwrap().sum_all().unwrap() / 69.0).unwrap();
    let value = f64::from(dense_loss.to_scalar::<f32>().unwrap());
    assert!((loss.weighted_sum / 69.0 - value).abs() < 1e-5);
    let dense = dense_loss.backward().unwrap();
    for (name, var) in lora.named_vars() {
        let got = chunked
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient reached {name}"));
        let largest = got.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(
            largest.to_scalar::<f32>().unwrap() > 0.0,
            "{name}: zero gradient"
        );
        let want = dense.get(var.as_tensor()).unwrap();
        let diff = max_abs_diff(got, want);
        assert!(
            diff < 1e-5,
            "{name}: chunked and dense gradients differ by {diff}"
        );
    }
}

/// One DFT (and cross-entropy) step against PyTorch + PEFT on the same weights
/// (`tests/golden/qwen35_tiny_train`, made by `gpu/tools/make_tiny_train_golden.py`): the loss
/// and the gradient of every LoRA matrix.
#[test]
fn loss_and_gradients_match_pytorch_and_peft() {
    let golden_train = golden().join("../qwen35_tiny_train");
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(TrainableLora::from_peft(&golden_train, &model, &Device::Cpu).unwrap());
    assert_eq!(lora.named_vars().len(), 2 * 31);
    let want =
        candle_core::safetensors::load(golden_train.join("train_step.safetensors"), &Device::Cpu)
            .unwrap();
    let ids = want["input_ids"].to_dtype(DType::U32).unwrap();
    let prompt = want["prompt_tokens"].to_vec1::<i64>().unwrap()[0] as usize;
    let tokens: Vec<u32> = ids.flatten_all().unwrap().to_vec1().unwrap();
    let targets = &tokens[prompt + 1..];
    let n = targets.len();
    for (kind, prefix) in [(LossKind::Dft, "dft"), (LossKind::CrossEntropy, "ce")] {
        let hidden = hidden_at(&model, &ids, &lora, prompt, n);
        let loss = head_loss(&hidden, targets, model.lm_head_weight(), kind, n, 32).unwrap();
        let value = loss.weighted_sum / n as f64;
        let torch_loss = f64::from(want[&format!("{prefix}.loss")].to_vec1::<f32>().unwrap()[0]);
        assert!(
            (value - torch_loss).abs() <= 1e-5 * torch_loss.abs().max(1.0),
            "{prefix} loss: lamar {value}, PyTorch {torch_loss}"
        );
        let grads = surrogate(&hidden, &loss.hidden_grad)
            .unwrap()
            .backward()
            .unwrap();
        for (name, var) in lora.named_vars() {
            let ours = grads.get(var.as_tensor()).unwrap();
            let theirs = &want[&format!("{prefix}.{name}")];
            let scale = theirs
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let diff = max_abs_diff(ours, theirs);
            assert!(
                diff <= 1e-4 * scale.max(1e-6),
                "{prefix} {name}: max |Δ| {diff} against max |grad| {scale}"
            );
        }
    }
}

/// `merge_adapter` writes a snapshot whose model computes what the base model with the adapter
/// computes.
#[test]
fn a_merged_snapshot_equals_the_base_with_its_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    qwen35::random::write_tiny_snapshot(&base, 8).unwrap();
    let model = qwen35::load(&base, DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let adapter = dir.path().join("adapter");
    lora.save_peft(&adapter, "base").unwrap();
    let merged = dir.path().join("merged");
    let modules = lamar_model::train::export::merge_adapter(&base, &adapter, &merged).unwrap();
    assert_eq!(modules, 31);
    for file in ["config.json", "tokenizer.json", "chat_template.jinja"] {
        assert!(merged.join(file).is_file(), "{file} was not copied");
    }
    let ids: Vec<u32> = (0..70u32).map(|k| (k * 97 + 5) % 1000).collect();
    let ids = Tensor::from_vec(ids, (1, 70), &Device::Cpu).unwrap();
    let want = model.hidden_states_with(&ids, None, Some(lora)).unwrap();
    let got = qwen35::load(&merged, DType::F32, &Device::Cpu)
        .unwrap()
        .hidden_states(&ids, None)
        .unwrap();
    let diff = max_abs_diff(&got, &want);
    assert!(diff < 1e-4, "merged snapshot differs by {diff}");
}

/// One sequence of the golden tests' ids, its response from token 30.
fn example() -> Example {
    Example {
        ids: ids().squeeze(0).unwrap().to_vec1().unwrap(),
        response_start: 30,
        truncated: false,
    }
}

/// The DFT loss of `example` (normalised by 40 tokens, head chunks of 16) and the gradient of
/// each of `vars`.
fn dft_gradients(
    model: &qwen35::Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&candle_core::Var],
    example: &Example,
    backward: Backward,
) -> (HeadLoss, Vec<Option<Tensor>>) {
    example_gradients(model, lora, vars, example, LossKind::Dft, 40, 16, backward).unwrap()
}

#[test]
fn recomputing_each_layer_gives_the_gradients_of_keeping_every_activation() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let named = lora.named_vars();
    let vars: Vec<_> = named.iter().map(|(_, v)| *v).collect();
    let example = example();
    let run = |backward| dft_gradients(&model, &lora, &vars, &example, backward);
    let (kept_loss, kept) = run(Backward::KeepAll);
    let (recomputed_loss, recomputed) = run(Backward::Recompute);
    // The same operations, in an order that can round differently (the residual sums).
    let rel =
        (kept_loss.weighted_sum - recomputed_loss.weighted_sum).abs() / kept_loss.weighted_sum;
    assert!(rel < 1e-6, "losses differ by {rel} (relative)");
    for ((name, _), (a, b)) in named.iter().zip(kept.iter().zip(&recomputed)) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        let scale = a
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let diff = max_abs_diff(a, b);
        assert!(scale > 0.0, "{name}: no gradient");
        assert!(
            diff <= 1e-5 * scale + 1e-9,
            "{name}: {diff} (largest {scale})"
        );
    }
}

/// A policy-gradient step (GRPO's, through `policy_gradients`) with the weights DFT would give
/// (`w_t = p_t / N`) computes DFT's gradients; negated weights negate every gradient; the
/// reported log-probabilities are those of the DFT pass.
#[test]
fn policy_gradients_with_dfts_weights_are_dfts_gradients() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let named = lora.named_vars();
    let vars: Vec<_> = named.iter().map(|(_, v)| *v).collect();
    let example = example();
    let tokens = example.ids.len() - example.response_start;
    let (dft_loss, dft) = example_gradients(
        &model,
        &lora,
        &vars,
        &example,
        LossKind::Dft,
        tokens,
        16,
        Backward::Recompute,
    )
    .unwrap();
    assert_eq!(dft_loss.log_probs.len(), tokens);
    let weights: Vec<f64> = dft_loss
        .log_probs
        .iter()
        .map(|&l| f64::from(l).exp() / tokens as f64)
        .collect();
    let run = |weights: &[f64]| {
        policy_gradients(
            &model,
            &lora,
            &vars,
            &example,
            weights,
            1.0,
            16,
            Backward::Recompute,
        )
        .unwrap()
    };
    let (policy_loss, policy) = run(&weights);
    assert_eq!(policy_loss.log_probs, dft_loss.log_probs);
    let negated: Vec<f64> = weights.iter().map(|w| -w).collect();
    let (_, flipped) = run(&negated);
    for (((name, _), a), (b, c)) in named.iter().zip(&dft).zip(policy.iter().zip(&flipped)) {
        let (a, b, c) = (
            a.as_ref().unwrap(),
            b.as_ref().unwrap(),
            c.as_ref().unwrap(),
        );
        let scale = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(scale > 0.0, "{name}: no gradient");
        let diff = max_abs_diff(a, b);
        assert!(diff <= 1e-5 * scale, "{name}: {diff} (largest {scale})");
        let diff = max_abs_diff(&b.neg().unwrap(), c);
        assert!(diff <= 1e-5 * scale, "{name}: negated weights, {diff}");
    }
}

/// Profiling a training step (a stopwatch on the model) splits each layer's backward pass at
/// the stages' marks, once per layer of each kind, and changes no gradient: the marks are
/// identities.
#[test]
fn profiling_marks_split_the_backward_pass_and_change_no_gradient() {
    use lamar_model::qwen35::stopwatch::Stopwatch;
    let mut model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = Arc::new(trained(&model));
    let named = lora.named_vars();
    let vars: Vec<_> = named.iter().map(|(_, v)| *v).collect();
    let example = example();
    let run = |model: &qwen35::Qwen35Model| {
        dft_gradients(model, &lora, &vars, &example, Backward::Recompute)
    };
    let (plain_loss, plain) = run(&model);
    let watch = Arc::new(Stopwatch::new(&Device::Cpu));
    model.set_stopwatch(Some(watch.clone()));
    let (profiled_loss, profiled) = run(&model);
    assert_eq!(plain_loss.weighted_sum, profiled_loss.weighted_sum);
    for ((name, _), (a, b)) in named.iter().zip(plain.iter().zip(&profiled)) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        let scale = max_abs_diff(a, &a.zeros_like().unwrap());
        let diff = max_abs_diff(a, b);
        assert!(
            diff <= 1e-6 * scale + 1e-12,
            "{name}: {diff} (largest {scale})"
        );
    }
    let laps: std::collections::BTreeMap<&str, usize> =
        watch.take().into_iter().map(|(n, _, k)| (n, k)).collect();
    // The golden model: three DeltaNet layers, then one attention layer.
    let (deltanet, attention) = (3, 1);
    for (stage, count) in [
        (
            "backward: MLP gate/up projections (with adapters)",
            deltanet + attention,
        ),
        // Gate and up each carry a mark.
        ("backward: MLP activation", 2 * (deltanet + attention)),
        (
            "backward: MLP down projection (with adapter)",
            deltanet + attention,
        ),
        (
            "backward: residual + post-attention norm",
            deltanet + attention,
        ),
        ("backward: attention mixer", attention),
        (
            "backward: DeltaNet output projection (with adapter)",
            deltanet,
        ),
        ("backward: DeltaNet gated norm", deltanet),
        // The three inputs of the layer's core (`train::deltanet_core`: the convolution's
        // output, b and a) each carry a mark.
        ("backward: DeltaNet delta rule", 3 * deltanet),
        ("backward: DeltaNet norms, gates, layout", deltanet),
        ("backward: DeltaNet convolution", deltanet),
        (
            "backward: DeltaNet input projection (with adapters)",
            deltanet,
        ),
    ] {
        assert_eq!(laps.get(stage), Some(&count), "{stage}: {laps:?}");
    }
}

/// The cosine similarity of two tensors of one shape.
fn cosine(a: &Tensor, b: &Tensor) -> f32 {
    let dot = |x: &Tensor, y: &Tensor| {
        (x * y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

#[test]
fn adapter_products_in_bf16_follow_the_f32_products_and_reach_the_f32_weights() {
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let lora = trained(&model);
    let vars: Vec<_> = lora
        .named_vars()
        .into_iter()
        .map(|(_, v)| v.clone())
        .collect();
    let name = lora.named_vars()[0].0.clone();
    let path = name
        .strip_prefix("base_model.model.")
        .and_then(|p| p.strip_suffix(".lora_A.weight"))
        .unwrap()
        .to_string();
    let a = vars[0].as_tensor();
    let x = Tensor::randn(0f32, 1.0, (1, 9, a.dim(1).unwrap()), &Device::Cpu).unwrap();
    let f32_products = bf16_delta(&lora, &path, &x);
    let lora = lora.with_products(AdapterProducts::ModelDtype);
    assert_eq!(lora.products(), AdapterProducts::ModelDtype);
    // f32 inputs keep f32 products whatever the setting.
    let exact = lora.delta(&path, &x).unwrap().unwrap();
    let bf16_products = bf16_delta(&lora, &path, &x);
    assert_eq!(bf16_products.dtype(), DType::BF16);
    let (f32_products, bf16_products) = (
        f32_products.to_dtype(DType::F32).unwrap(),
        bf16_products.to_dtype(DType::F32).unwrap(),
    );
    let scale = max_abs_diff(&exact, &exact.zeros_like().unwrap());
    assert!(scale > 1e-3, "the delta is not trivially zero");
    // bf16 keeps 8 bits of mantissa: the products agree to about 1 % of the largest value.
    for (what, got) in [
        ("f32 products", &f32_products),
        ("bf16 products", &bf16_products),
    ] {
        let diff = max_abs_diff(&exact, got);
        assert!(diff < 0.02 * scale, "{what}: {diff} against {scale}");
    }
    // The gradients reach the f32 weights through the casts.
    let loss = |delta: Tensor| {
        delta
            .to_dtype(DType::F32)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let exact_grads = loss(lora.delta(&path, &x).unwrap().unwrap())
        .backward()
        .unwrap();
    let bf16_grads = loss(bf16_delta(&lora, &path, &x)).backward().unwrap();
    for var in &vars[..2] {
        let (want, got) = (
            exact_grads.get(var.as_tensor()).unwrap(),
            bf16_grads.get(var.as_tensor()).unwrap(),
        );
        assert_eq!(got.dtype(), DType::F32);
        let similarity = cosine(want, got);
        assert!(similarity > 0.99, "gradient cosine {similarity}");
    }
}

fn bf16_delta(lora: &TrainableLora, path: &str, x: &Tensor) -> Tensor {
    lora.delta(path, &x.to_dtype(DType::BF16).unwrap())
        .unwrap()
        .unwrap()
}
