//! Tests of lamar's CUDA kernels for training, GRPO's rollouts and sampling against the candle
//! operations they replace, at Qwen3.5-4B's sizes. Compiled only with the `cuda` feature and run on a machine with an NVIDIA GPU
//! (`gpu/tools/gpu-kernel-tests.sh`: the test binary is built where there is no GPU and carried
//! there); without a device they fail, they do not skip.

use super::delta_rule::chunked_delta_rule;
use candle_core::{Device, Tensor, Var};

fn cuda() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA device")
}

/// Seeded uniform numbers in `[low, high)` on `device`.
fn random(shape: &[usize], seed: u64, low: f32, high: f32, device: &Device) -> Tensor {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(low..high)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
        .and_then(|t| t.to_device(device))
        .expect("a random tensor")
}

/// `max |a − b| / max |b|`.
fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
    let scalar = |t: Tensor| t.to_scalar::<f32>().expect("a scalar");
    let diff = scalar((a - b).unwrap().abs().unwrap().max_all().unwrap());
    let size = scalar(b.abs().unwrap().max_all().unwrap());
    diff / size.max(1e-30)
}

/// Rows scaled to unit length, as the layer's L2 norm makes queries and keys.
fn unit_rows(x: Tensor) -> Tensor {
    let norm = x.sqr().unwrap().sum_keepdim(3).unwrap().sqrt().unwrap();
    x.broadcast_div(&norm).unwrap()
}

/// The chunked delta rule with its sequential passes as kernels (forward keeping the states,
/// the adjoint) gives the candle loops' outputs, final state and all five gradients, for one
/// chunk, a few, and many with a partial last chunk (32 value heads, dk = dv = 128).
#[test]
fn delta_rule_kernels_give_the_candle_loops_values_and_gradients() {
    let device = cuda();
    for (t, seed) in [(64, 1), (200, 2), (2_000, 3)] {
        let (b, h, dk, dv) = (1, 32, 128, 128);
        let vars = [
            unit_rows(random(&[b, h, t, dk], seed, -1.0, 1.0, &device))
                .affine(1.0 / (dk as f64).sqrt(), 0.0)
                .unwrap(),
            unit_rows(random(&[b, h, t, dk], seed + 10, -1.0, 1.0, &device)),
            random(&[b, h, t, dv], seed + 20, -1.0, 1.0, &device),
            random(&[b, h, t], seed + 30, 0.05, 0.95, &device),
            random(&[b, h, t], seed + 40, -0.6, -0.001, &device),
        ]
        .map(|x| Var::from_tensor(&x).unwrap());
        let [q, k, v, beta, g] = vars.each_ref().map(|v| v.as_tensor().clone());
        let state = random(&[b, h, dk, dv], seed + 50, -0.5, 0.5, &device);
        let weight = random(&[b, h, t, dv], seed + 60, -1.0, 1.0, &device);
        let run = |kernel: bool| {
            let (out, last) = chunked_delta_rule(&q, &k, &v, &beta, &g, &state, kernel).unwrap();
            let grads = (&out * &weight)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grads: Vec<Tensor> = vars
                .iter()
                .map(|var| grads.get(var.as_tensor()).unwrap().clone())
                .collect();
            (out, last, grads)
        };
        let (want, want_last, want_grads) = run(false);
        let (got, got_last, got_grads) = run(true);
        let error = max_relative(&got, &want);
        assert!(error < 1e-4, "t={t}: outputs off by {error}");
        let error = max_relative(&got_last, &want_last);
        assert!(error < 1e-4, "t={t}: final state off by {error}");
        for (name, (ours, theirs)) in ["q", "k", "v", "beta", "g"]
            .iter()
            .zip(got_grads.iter().zip(&want_grads))
        {
            let error = max_relative(ours, theirs);
            assert!(error < 1e-4, "t={t}: d{name} off by {error}");
        }
    }
}

/// The sequential passes on tensor cores (3xTF32) give the CUDA-core kernels' values to float's
/// rounding: outputs, last state, the state tape and V' forward; dV' and every dS backward, at
/// Qwen3.5's sizes (C = 64, dk = dv = 128) and at smaller ones that leave warps without a tile
/// (C = 32, dk = dv = 64).
#[test]
fn tensor_core_passes_give_the_cuda_core_kernels_values() {
    use crate::kernels::deltanet_chunks::{
        DeltaNetChunks, PassKernels, deltanet_chunks_backward, deltanet_chunks_keeping,
    };
    let device = cuda();
    for (bh, n, c, dk, dv, seed) in [(8, 6, 64, 128, 128, 1), (3, 5, 32, 64, 64, 2)] {
        let lower = Tensor::tril2(c, candle_core::DType::F32, &device).unwrap();
        let a = random(&[bh, n, c, c], seed + 3, -0.2, 0.2, &device)
            .broadcast_mul(&lower)
            .unwrap();
        let inputs = [
            random(&[bh, n, c, dv], seed, -1.0, 1.0, &device),
            random(&[bh, n, c, dk], seed + 1, -0.1, 0.1, &device),
            random(&[bh, n, c, dk], seed + 2, -0.1, 0.1, &device),
            a,
            random(&[bh, n, dk, c], seed + 4, -0.1, 0.1, &device),
            random(&[bh, n], seed + 5, 0.5, 1.0, &device),
        ];
        let [u, w, q, a, k, d] = &inputs;
        let chunks = DeltaNetChunks {
            u,
            w,
            q,
            a,
            k_carry: k,
            decay: d,
        };
        let state = random(&[bh, dk, dv], seed + 6, -0.5, 0.5, &device);
        let d_out = random(&[bh, n, c, dv], seed + 7, -1.0, 1.0, &device);
        let d_last = random(&[bh, dk, dv], seed + 8, -0.5, 0.5, &device);
        let run = |kernels| {
            let pass = deltanet_chunks_keeping(&chunks, &state, kernels)
                .unwrap()
                .expect("the sizes suit the kernels");
            let (d_fresh, d_after) =
                deltanet_chunks_backward(&chunks, &d_out, Some(&d_last), kernels)
                    .unwrap()
                    .expect("the sizes suit the kernels");
            [
                pass.out,
                pass.last,
                pass.states,
                pass.fresh,
                d_fresh,
                d_after,
            ]
        };
        let want = run(PassKernels::CudaCores);
        let got = run(PassKernels::Fastest);
        // Not the same kernel twice: the tensor cores sum in another order.
        assert!(
            max_relative(&got[0], &want[0]) > 0.0,
            "the tensor-core kernel did not run"
        );
        for (name, (ours, theirs)) in ["O", "last S", "S tape", "V'", "dV'", "dS"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            let error = max_relative(ours, theirs);
            assert!(error < 1e-4, "C={c} dk={dk}: {name} off by {error}");
        }
    }
}

/// The RMS norm's backward kernel gives the candle operations' gradients of `x` and `scale`,
/// for the residual stream's rows (2,560) and the DeltaNet keys' L2 norm (rows of 128), with a
/// partial last block of rows.
#[test]
fn rms_norm_backward_kernel_gives_the_candle_operations_gradients() {
    use super::ops::rms_norm_backward_plain;
    use crate::kernels::norm::rms_norm_backward;
    let device = cuda();
    for (shape, eps, seed) in [
        (vec![3, 2560], 1e-6, 1),
        (vec![1, 1_001, 2560], 1e-6, 2),
        (vec![1, 700, 16, 128], 1e-6 / 128.0, 3),
    ] {
        let width = *shape.last().unwrap();
        let x = random(&shape, seed, -2.0, 2.0, &device);
        let grad = random(&shape, seed + 1, -1.0, 1.0, &device);
        let scale = random(&[width], seed + 2, 0.5, 1.5, &device);
        let (want_dx, want_scale) = rms_norm_backward_plain(&x, &grad, &scale, eps).unwrap();
        let (got_dx, got_scale) = rms_norm_backward(&x, &grad, &scale, eps)
            .unwrap()
            .expect("f32 rows the kernel takes");
        let error = max_relative(&got_dx, &want_dx);
        assert!(error < 1e-5, "{shape:?}: dx off by {error}");
        let error = max_relative(&got_scale, &want_scale);
        assert!(error < 1e-5, "{shape:?}: d_scale off by {error}");
    }
}

/// Flash attention (bf16, 16 query heads over 4 key/value heads, head size 256) against the
/// blocked candle operations in f32 on the same bf16 inputs: the output and the three
/// gradients are at least as close to that reference as the blocked operations in bf16 are
/// (which round the scores to bf16 before the softmax; the kernels keep them in f32), for a
/// single tile, a partial last tile, and many tiles.
#[test]
fn flash_attention_kernels_are_as_close_to_f32_as_the_blocked_bf16_path() {
    use super::attention::causal_attention;
    use candle_core::DType;
    let device = cuda();
    for (t, seed) in [(64, 1), (200, 2), (1_000, 3)] {
        let (b, h, kvh, hd) = (1, 16, 4, 256);
        let scale = 1.0 / (hd as f64).sqrt();
        let bf16 = |x: Tensor| x.to_dtype(DType::BF16).unwrap();
        let q = bf16(random(&[b, h, t, hd], seed, -2.0, 2.0, &device));
        let k = bf16(random(&[b, kvh, t, hd], seed + 1, -2.0, 2.0, &device));
        let v = bf16(random(&[b, kvh, t, hd], seed + 2, -1.0, 1.0, &device));
        let weight = random(&[b, h, t, hd], seed + 3, -1.0, 1.0, &device);
        let run = |dtype: DType, kernel: bool| {
            let vars = [&q, &k, &v].map(|x| Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap());
            let [qv, kv, vv] = vars.each_ref().map(|x| x.as_tensor().clone());
            let out = causal_attention(&qv, &kv, &vv, scale, 128, kernel).unwrap();
            let out = out.to_dtype(DType::F32).unwrap();
            let grads = (&out * &weight)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut all = vec![out];
            for var in &vars {
                let g = grads.get(var.as_tensor()).unwrap();
                all.push(g.to_dtype(DType::F32).unwrap());
            }
            all
        };
        let reference = run(DType::F32, false);
        let blocked = run(DType::BF16, false);
        let flash = run(DType::BF16, true);
        for (k, name) in ["output", "dq", "dk", "dv"].iter().enumerate() {
            let ours = max_relative(&flash[k], &reference[k]);
            let theirs = max_relative(&blocked[k], &reference[k]);
            println!("t={t} {name}: flash {ours:.2e}, blocked bf16 {theirs:.2e}");
            assert!(
                ours <= 1.5 * theirs + 1e-3,
                "t={t}: {name} off by {ours} (blocked bf16: {theirs})"
            );
        }
    }
}

/// The flash forward kernel for head size 128 (Qwen3-Embedding: 32 query heads over 8
/// key/value heads) against the blocked candle operations in f32 on the same bf16 inputs: at
/// least as close as the blocked operations in bf16, for one tile, a partial last tile and many
/// tiles, and a batch of two.
#[test]
fn flash_forward_for_head_size_128_is_as_close_to_f32_as_the_blocked_bf16_path() {
    use super::attention::causal_attention;
    use crate::kernels::flash_attention::flash_forward;
    use candle_core::DType;
    let device = cuda();
    for (b, t, seed) in [(1, 64, 11), (2, 200, 12), (1, 1_000, 13)] {
        let (h, kvh, hd) = (32, 8, 128);
        let scale = 1.0 / (hd as f64).sqrt();
        let bf16 = |x: Tensor| x.to_dtype(DType::BF16).unwrap();
        let q = bf16(random(&[b, h, t, hd], seed, -2.0, 2.0, &device));
        let k = bf16(random(&[b, kvh, t, hd], seed + 1, -2.0, 2.0, &device));
        let v = bf16(random(&[b, kvh, t, hd], seed + 2, -1.0, 1.0, &device));
        let f32 = |x: &Tensor| x.to_dtype(DType::F32).unwrap();
        let reference = causal_attention(&f32(&q), &f32(&k), &f32(&v), scale, 128, false).unwrap();
        let blocked = f32(&causal_attention(&q, &k, &v, scale, 128, false).unwrap());
        let (flash, _) = flash_forward(&q, &k, &v, scale)
            .unwrap()
            .expect("the kernel takes head size 128");
        let ours = max_relative(&f32(&flash), &reference);
        let theirs = max_relative(&blocked, &reference);
        println!("b={b} t={t}: flash {ours:.2e}, blocked bf16 {theirs:.2e}");
        assert!(
            ours <= 1.5 * theirs + 1e-3,
            "b={b} t={t}: off by {ours} (blocked bf16: {theirs})"
        );
    }
}

/// The LoRA kernel adds what `TrainableLora::delta`'s products and an addition give, to a
/// column slice of a stacked projection (rows spaced wider than they are long), at ranks 2 and
/// 16, for one to 32 rows; beyond its row limit it declines.
#[test]
fn lora_kernel_adds_the_candle_delta() {
    use candle_core::{D, DType};
    let device = cuda();
    for (k, n, rank, seed) in [(2_560, 1_024, 2, 70), (9_216, 2_560, 16, 80)] {
        let scale = 32.0 / (rank as f64).sqrt();
        let a = random(&[rank, k], seed, -0.05, 0.05, &device);
        let b = random(&[n, rank], seed + 1, -0.05, 0.05, &device);
        for rows in [1, 3, 8, 32] {
            let x32 = random(&[rows, 1, k], seed + 2, -1.0, 1.0, &device);
            let stacked32 = random(&[rows, 1, 2 * n], seed + 3, -1.0, 1.0, &device);
            for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::BF16, 1e-2)] {
                let x = x32.to_dtype(dtype).unwrap();
                let y = stacked32
                    .to_dtype(dtype)
                    .unwrap()
                    .narrow(D::Minus1, n, n)
                    .unwrap();
                let delta = x
                    .to_dtype(DType::F32)
                    .unwrap()
                    .broadcast_matmul(&a.t().unwrap())
                    .unwrap()
                    .broadcast_matmul(&b.t().unwrap())
                    .unwrap()
                    .affine(scale, 0.0)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let expected = (&y + &delta).unwrap().to_dtype(DType::F32).unwrap();
                let got = crate::kernels::lora::lora_add(&x, &y, &a, &b, scale)
                    .unwrap()
                    .expect("the kernel takes a decoding step's rows");
                assert_eq!(got.dims(), &[rows, 1, n]);
                let got = got.to_dtype(DType::F32).unwrap();
                let error = max_relative(&got, &expected);
                // The delta itself is not negligible: the check would see it missing.
                let without = max_relative(&y.to_dtype(DType::F32).unwrap(), &expected);
                println!(
                    "k={k} rank={rank} rows={rows} {dtype:?}: {error:.2e} (no delta: {without:.2e})"
                );
                assert!(error <= tolerance, "rows {rows}, {dtype:?}: off by {error}");
                assert!(
                    without > 10.0 * error.max(1e-6),
                    "the delta is too small to test"
                );
            }
        }
        let many = random(&[33, k], seed + 4, -1.0, 1.0, &device);
        let y = random(&[33, n], seed + 5, -1.0, 1.0, &device);
        assert!(
            crate::kernels::lora::lora_add(&many, &y, &a, &b, scale)
                .unwrap()
                .is_none()
        );
    }
}

/// The sampling kernels draw the tokens the candle path draws from the same seed (the same
/// uniform numbers), with the same log-probabilities, and never a token min-p drops: f32 and
/// bf16 logits over Qwen3.5's vocabulary, tempered and plain log-probabilities.
#[test]
fn sampling_kernels_draw_what_the_candle_path_draws() {
    use crate::sampling::{Sampler, SamplingParams};
    use candle_core::DType;
    let device = cuda();
    let (rows, vocab, steps) = (8, 248_320, 20);
    let logits32 = random(&[rows, vocab], 90, -8.0, 8.0, &device);
    let host: Vec<Vec<f32>> = logits32.to_vec2().unwrap();
    for (temperature, min_p, tempered) in [(1.0, 0.1, true), (0.7, 0.1, false), (1.3, 0.0, true)] {
        for dtype in [DType::F32, DType::BF16] {
            let logits = logits32.to_dtype(dtype).unwrap();
            let host: Vec<Vec<f32>> = if dtype == DType::F32 {
                host.clone()
            } else {
                logits.to_dtype(DType::F32).unwrap().to_vec2().unwrap()
            };
            let draw = |kernels: bool| {
                let mut sampler = Sampler::new(SamplingParams {
                    temperature,
                    top_p: 1.0,
                    min_p,
                    seed: 5,
                });
                if tempered {
                    sampler = sampler.with_tempered_log_probs();
                }
                sampler.kernels = kernels;
                (0..steps)
                    .map(|_| sampler.next(&logits).unwrap())
                    .collect::<Vec<_>>()
            };
            let (ours, theirs) = (draw(true), draw(false));
            let mut same = 0;
            let mut distinct = std::collections::BTreeSet::new();
            for ((tokens, log_probs), (their_tokens, their_log_probs)) in ours.iter().zip(&theirs) {
                for r in 0..rows {
                    distinct.insert(tokens[r]);
                    let row = &host[r];
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let z = (row[tokens[r] as usize] - max) / temperature as f32;
                    assert!(
                        min_p == 0.0 || z >= (min_p as f32).ln() - 1e-5,
                        "a token min-p drops was drawn"
                    );
                    if tokens[r] == their_tokens[r] {
                        same += 1;
                        let diff = (log_probs[r] - their_log_probs[r]).abs();
                        assert!(diff < 1e-4, "log-probability off by {diff}");
                    }
                }
            }
            println!(
                "t={temperature} min_p={min_p} {dtype:?}: {same}/{} draws equal, {} distinct",
                rows * steps,
                distinct.len()
            );
            assert!(
                same + 1 >= rows * steps,
                "{same} of {} draws equal",
                rows * steps
            );
            assert!(distinct.len() > rows * steps / 2, "the draws do not vary");
        }
    }
}

/// The convolution as candle operations (the layer's path off CUDA): `silu(Σ_j w_j ·
/// [history, x][t + j])`.
fn conv_reference(x: &Tensor, history: &Tensor, weight: &Tensor) -> Tensor {
    let (_, t, channels) = x.dims3().unwrap();
    let kernel = weight.dim(1).unwrap();
    let padded = Tensor::cat(&[history, x], 1).unwrap();
    let mut out = x.zeros_like().unwrap();
    for j in 0..kernel {
        let w = weight
            .narrow(1, j, 1)
            .unwrap()
            .reshape((1, 1, channels))
            .unwrap();
        out = (out + padded.narrow(1, j, t).unwrap().broadcast_mul(&w).unwrap()).unwrap();
    }
    out.silu().unwrap()
}

/// The convolution's differentiable kernels (`train::conv`) give the candle operations' output
/// and input gradient in f32, from a zero history and from a given one, at the layer's width.
#[test]
fn convolution_kernels_give_the_candle_operations_values_and_gradients() {
    let device = cuda();
    let channels = 8_192;
    for (t, seed, with_history) in [(5, 1, true), (300, 2, false), (2_000, 3, true)] {
        let x = Var::from_tensor(&random(&[1, t, channels], seed, -2.0, 2.0, &device)).unwrap();
        let weight = random(&[channels, 4], seed + 10, -0.8, 0.8, &device);
        let history = if with_history {
            random(&[1, 3, channels], seed + 20, -2.0, 2.0, &device)
        } else {
            Tensor::zeros((1, 3, channels), candle_core::DType::F32, &device).unwrap()
        };
        let upstream = random(&[1, t, channels], seed + 30, -1.0, 1.0, &device);
        let run = |kernel: bool| {
            let out = if kernel {
                super::conv::causal_conv_silu(x.as_tensor(), &history, &weight)
                    .unwrap()
                    .expect("the kernels apply on CUDA")
            } else {
                conv_reference(x.as_tensor(), &history, &weight)
            };
            let grads = (&out * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (out, grads.get(x.as_tensor()).unwrap().clone())
        };
        let (out, grad) = run(true);
        let (want_out, want_grad) = run(false);
        let (d_out, d_grad) = (
            max_relative(&out, &want_out),
            max_relative(&grad, &want_grad),
        );
        assert!(d_out < 1e-5, "t {t}: output differs by {d_out}");
        assert!(d_grad < 1e-5, "t {t}: input gradient differs by {d_grad}");
    }
}

/// The gated norm's differentiable kernels (`train::gated_norm`) give the gradients of `o` and
/// `z` that candle's operations give, in f32, at the layer's sizes (32 heads of 128).
#[test]
fn gated_norm_kernels_give_the_candle_operations_values_and_gradients() {
    let device = cuda();
    let (nv, dv, eps) = (32, 128, 1e-6);
    for (t, seed) in [(3, 1), (700, 2)] {
        let o = Var::from_tensor(&random(&[1, t, nv, dv], seed, -3.0, 3.0, &device)).unwrap();
        let z = Var::from_tensor(&random(&[1, t, nv * dv], seed + 10, -4.0, 4.0, &device)).unwrap();
        let weight = random(&[dv], seed + 20, 0.5, 1.5, &device);
        let upstream = random(&[1, t, nv * dv], seed + 30, -1.0, 1.0, &device);
        let run = |kernel: bool| {
            let out = if kernel {
                super::gated_norm::gated_rms_norm(o.as_tensor(), z.as_tensor(), &weight, eps)
                    .unwrap()
                    .expect("the kernels apply on CUDA")
            } else {
                let x = o.as_tensor();
                let inverse = (x.sqr().unwrap().mean_keepdim(3).unwrap() + eps)
                    .unwrap()
                    .sqrt()
                    .unwrap()
                    .recip()
                    .unwrap();
                let normed = x
                    .broadcast_mul(&inverse)
                    .unwrap()
                    .broadcast_mul(&weight)
                    .unwrap();
                let gate = z
                    .as_tensor()
                    .reshape((1, t, nv, dv))
                    .unwrap()
                    .silu()
                    .unwrap();
                (normed * gate).unwrap().reshape((1, t, nv * dv)).unwrap()
            };
            let grads = (&out * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
            (out, grad(&o), grad(&z))
        };
        let (out, d_o, d_z) = run(true);
        let (want_out, want_o, want_z) = run(false);
        for (what, got, want) in [
            ("output", &out, &want_out),
            ("o's gradient", &d_o, &want_o),
            ("z's gradient", &d_z, &want_z),
        ] {
            let d = max_relative(got, want);
            assert!(d < 1e-5, "t {t}: {what} differs by {d}");
        }
    }
}

#[test]
fn swiglu_kernels_give_the_candle_operations_values_and_gradients() {
    let device = cuda();
    for (t, width, seed) in [(5, 300, 1), (1_000, 9_216, 2)] {
        let gate = Var::from_tensor(&random(&[1, t, width], seed, -6.0, 6.0, &device)).unwrap();
        let up = Var::from_tensor(&random(&[1, t, width], seed + 10, -2.0, 2.0, &device)).unwrap();
        let upstream = random(&[1, t, width], seed + 20, -1.0, 1.0, &device);
        let run = |kernel: bool| {
            let (g, u) = (gate.as_tensor(), up.as_tensor());
            let out = if kernel {
                super::swiglu::silu_mul(g, u)
                    .unwrap()
                    .expect("the kernels apply on CUDA")
            } else {
                (g.silu().unwrap() * u).unwrap()
            };
            let grads = (&out * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
            (out, grad(&gate), grad(&up))
        };
        let (out, d_gate, d_up) = run(true);
        let (want_out, want_gate, want_up) = run(false);
        for (what, got, want) in [
            ("output", &out, &want_out),
            ("gate's gradient", &d_gate, &want_gate),
            ("up's gradient", &d_up, &want_up),
        ] {
            let d = max_relative(got, want);
            assert!(d < 1e-5, "t {t}: {what} differs by {d}");
        }
    }
}
