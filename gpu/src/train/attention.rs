//! Causal attention for training in blocks of queries: no `[T × T]` matrix ever exists, in the
//! forward pass or the backward pass.
//!
//! The plain form (scores, softmax, values as three candle operations) keeps the scores and the
//! probabilities of every head for the backward pass: at 24,576 tokens and 16 heads that is
//! 19 GB per matrix in bf16. Here the queries are taken a block at a time; a block's scores
//! cover only the keys it may see (causality), its probabilities are turned into its output at
//! once, and only the output and each query's log-sum-exp of scores are kept. The backward pass
//! recomputes each block's probabilities from the log-sum-exp (FlashAttention-2's backward:
//! `dV += Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ∘ (dP − rowsum(dO ∘ O))`, `dQ = dS·K·scale`,
//! `dK += dSᵀ·Q·scale`). Every product is a batched matrix product (tensor cores on CUDA);
//! memory is a few `[block × T]` matrices. Grouped-query attention stacks the query heads that
//! share a key/value head along the rows, so keys and values are never copied per head.
//!
//! The result is an ordinary candle operation with its own backward ([`causal_attention`]):
//! the forward runs untracked and a custom operation passes its output through, carrying the
//! gradients of the queries, keys and values back (the pattern of
//! [`super::ops::frozen_linear`]).

use candle_core::{CustomOp3, D, DType, Result, Tensor};

/// Queries per block: enough rows for large matrix products, few enough that a block's
/// `[heads × block × T]` scores stay near `budget` bytes in f32.
pub fn block_rows(heads: usize, keys: usize) -> usize {
    const BUDGET: usize = 1 << 29;
    (BUDGET / (4 * heads * keys.max(1))).clamp(64, 2048)
}

/// Softmax attention of `q` `(B, H, T, hd)` over `k`, `v` `(B, KVH, S, hd)` (H a multiple of
/// KVH, `S ≥ T`): the queries are the last `T` of the `S` positions, so query `i` sees keys
/// `0..=S − T + i` (with `S = T`, the usual causal square; with `S > T`, a continuation that
/// also sees everything before it). Scores are scaled by `scale`; `(B, H, T, hd)` in `q`'s
/// dtype. Differentiable in all three (see the module's documentation); `block` is the number
/// of queries per block ([`block_rows`] chooses one). With `kernel`, bf16 inputs on CUDA with
/// head size 256 and `S = T` run lamar's flash-attention kernels instead, forward and backward
/// (`kernels::flash_attention`; the blocks are their reference); with head size 128 (the
/// Qwen3-Embedding encoder's), the forward only.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    block: usize,
    kernel: bool,
) -> Result<Tensor> {
    let (b, h, t, hd) = q.dims4()?;
    let (kb, kvh, kt, khd) = k.dims4()?;
    if kb != b || kt < t || khd != hd || kvh == 0 || h % kvh != 0 || v.dims() != k.dims() {
        candle_core::bail!(
            "causal_attention: queries {:?}, keys {:?}, values {:?} do not fit",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    let (q0, k0, v0) = (
        q.detach().contiguous()?,
        k.detach().contiguous()?,
        v.detach().contiguous()?,
    );
    let blocks = Blocks {
        scale,
        block: block.max(1),
        // lamar's kernels take the causal square only.
        kernel: kernel && kt == t,
        offset: kt - t,
    };
    let (out, lse) = blocks.forward(&q0, &k0, &v0)?;
    if !(q.track_op() || k.track_op() || v.track_op()) {
        return Ok(out);
    }
    q.apply_op3(
        k,
        v,
        Attention {
            blocks,
            result: super::ops::Computed::new(out.clone()),
            out,
            lse,
            inputs: [q0, k0, v0],
        },
    )
}

/// The blocked computation.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    scale: f64,
    block: usize,
    /// Whether lamar's flash-attention kernels run where they take the inputs.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    kernel: bool,
    /// Keys before the first query (`S − T`).
    offset: usize,
}

/// One block of queries `r0..r1`: its rows stacked by key/value head, and the keys it sees
/// (`0..keys`, `keys = offset + r1`).
struct Block {
    r0: usize,
    rows: usize,
    keys: usize,
}

impl Blocks {
    fn each(&self, t: usize) -> impl Iterator<Item = Block> + '_ {
        (0..t).step_by(self.block).map(move |r0| {
            let r1 = (r0 + self.block).min(t);
            Block {
                r0,
                rows: r1 - r0,
                keys: self.offset + r1,
            }
        })
    }

    /// `(B, KVH, n·rows, hd)`: the block's rows of `x` `(B, H, T, hd)`, heads grouped by
    /// key/value head.
    fn rows_of(x: &Tensor, kvh: usize, block: &Block) -> Result<Tensor> {
        let (b, h, _, hd) = x.dims4()?;
        x.narrow(2, block.r0, block.rows)?.contiguous()?.reshape((
            b,
            kvh,
            (h / kvh) * block.rows,
            hd,
        ))
    }

    /// The block's scaled, masked scores in f32, `(B, KVH, n, rows, keys)`.
    fn scores(&self, qb: &Tensor, k: &Tensor, block: &Block, n: usize) -> Result<Tensor> {
        let (b, kvh, _, _) = k.dims4()?;
        let keys = k.narrow(2, 0, block.keys)?;
        let s = (qb.matmul(&keys.t()?)?.to_dtype(DType::F32)? * self.scale)?;
        // Query r0 + i (position offset + r0 + i) sees keys 0..=offset + r0 + i.
        let device = qb.device();
        let first = self.offset + block.r0;
        let query = Tensor::arange(first as u32, (first + block.rows) as u32, device)?
            .reshape((block.rows, 1))?;
        let key = Tensor::arange(0u32, block.keys as u32, device)?.reshape((1, block.keys))?;
        let mask = key.broadcast_gt(&query)?.where_cond(
            &Tensor::full(f32::NEG_INFINITY, (block.rows, block.keys), device)?,
            &Tensor::zeros((block.rows, block.keys), DType::F32, device)?,
        )?;
        s.reshape((b, kvh, n, block.rows, block.keys))?
            .broadcast_add(&mask)
    }

    /// The output `(B, H, T, hd)` in `q`'s dtype and each query's log-sum-exp of scores
    /// `(B, H, T)` in f32.
    fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        #[cfg(feature = "cuda")]
        if self.kernel
            && let Some(pair) = crate::kernels::flash_attention::flash_forward(q, k, v, self.scale)?
        {
            return Ok(pair);
        }
        let (b, h, t, hd) = q.dims4()?;
        let kvh = k.dim(1)?;
        let n = h / kvh;
        let (mut outs, mut lses) = (Vec::new(), Vec::new());
        for block in self.each(t) {
            let qb = Self::rows_of(q, kvh, &block)?;
            let s = self.scores(&qb, k, &block, n)?;
            // Every query sees key 0, so each row's maximum is finite.
            let max = s.max_keepdim(D::Minus1)?;
            let e = s.broadcast_sub(&max)?.exp()?;
            let sum = e.sum_keepdim(D::Minus1)?;
            let p = e.broadcast_div(&sum)?;
            let lse = (max + sum.log()?)?;
            let values = v.narrow(2, 0, block.keys)?;
            let o = p
                .to_dtype(q.dtype())?
                .reshape((b, kvh, n * block.rows, block.keys))?
                .matmul(&values)?;
            outs.push(o.reshape((b, h, block.rows, hd))?);
            lses.push(lse.reshape((b, h, block.rows))?);
        }
        Ok((Tensor::cat(&outs, 2)?, Tensor::cat(&lses, 2)?))
    }

    /// The gradients of `q`, `k`, `v` (in their dtype) for the gradient `dout` of the output.
    fn backward(
        &self,
        [q, k, v]: [&Tensor; 3],
        out: &Tensor,
        lse: &Tensor,
        dout: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        #[cfg(feature = "cuda")]
        if self.kernel
            && let Some(grads) = crate::kernels::flash_attention::flash_backward(
                [q, k, v],
                out,
                lse,
                dout,
                self.scale,
            )?
        {
            return Ok(grads);
        }
        let (b, h, t, hd) = q.dims4()?;
        let kvh = k.dim(1)?;
        let n = h / kvh;
        let dtype = q.dtype();
        let dout = dout.to_dtype(dtype)?.contiguous()?;
        // rowsum(dO ∘ O), f32, (B, H, T, 1).
        let delta =
            (dout.to_dtype(DType::F32)? * out.to_dtype(DType::F32)?)?.sum_keepdim(D::Minus1)?;
        let mut dq = Vec::new();
        let s = k.dim(2)?;
        let mut dk = Tensor::zeros((b, kvh, s, hd), DType::F32, q.device())?;
        let mut dv = dk.clone();
        for block in self.each(t) {
            let rows = n * block.rows;
            let qb = Self::rows_of(q, kvh, &block)?;
            let dob = Self::rows_of(&dout, kvh, &block)?;
            let lse_b = lse
                .narrow(2, block.r0, block.rows)?
                .reshape((b, kvh, n, block.rows, 1))?;
            let delta_b = Self::rows_of(&delta, kvh, &block)?; // (B, KVH, rows, 1)
            let p = self
                .scores(&qb, k, &block, n)?
                .broadcast_sub(&lse_b)?
                .exp()?
                .reshape((b, kvh, rows, block.keys))?;
            let keys = k.narrow(2, 0, block.keys)?;
            let values = v.narrow(2, 0, block.keys)?;
            let dv_part = p.to_dtype(dtype)?.t()?.matmul(&dob)?;
            let dp = dob.matmul(&values.t()?)?.to_dtype(DType::F32)?;
            let ds = (p * dp.broadcast_sub(&delta_b)?)?.to_dtype(dtype)?;
            let dq_b = (ds.matmul(&keys)?.to_dtype(DType::F32)? * self.scale)?;
            dq.push(dq_b.reshape((b, h, block.rows, hd))?);
            let dk_part = (ds.t()?.matmul(&qb)?.to_dtype(DType::F32)? * self.scale)?;
            let pad = s - block.keys;
            dk = (dk + dk_part.pad_with_zeros(2, 0, pad)?)?;
            dv = (dv + dv_part.to_dtype(DType::F32)?.pad_with_zeros(2, 0, pad)?)?;
        }
        Ok((
            Tensor::cat(&dq, 2)?.to_dtype(dtype)?,
            dk.to_dtype(dtype)?,
            dv.to_dtype(dtype)?,
        ))
    }
}

/// Passes the blocked forward pass's output through; its backward is the blocked backward.
struct Attention {
    blocks: Blocks,
    out: Tensor,
    /// The output, handed to the forward pass.
    result: super::ops::Computed,
    lse: Tensor,
    /// The detached, contiguous queries, keys and values the output was computed from.
    inputs: [Tensor; 3],
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    super::ops::computed_forward!(3, result, "causal_attention");

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [q, k, v] = &self.inputs;
        let (dq, dk, dv) = self
            .blocks
            .backward([q, k, v], &self.out, &self.lse, grad)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.5f32..1.5)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The plain form: every score of every head, then softmax, then values (the queries the
    /// last `T` of the keys' `S` positions).
    fn plain(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
        let (b, h, t, hd) = q.dims4().unwrap();
        let (kvh, keys) = (k.dim(1).unwrap(), k.dim(2).unwrap());
        let n = h / kvh;
        let s = (q
            .reshape((b, kvh, n * t, hd))
            .unwrap()
            .matmul(&k.t().unwrap())
            .unwrap()
            * scale)
            .unwrap()
            .reshape((b, kvh, n, t, keys))
            .unwrap();
        let query = Tensor::arange((keys - t) as u32, keys as u32, &Device::Cpu)
            .unwrap()
            .reshape((t, 1))
            .unwrap();
        let key = Tensor::arange(0u32, keys as u32, &Device::Cpu)
            .unwrap()
            .reshape((1, keys))
            .unwrap();
        let mask = key
            .broadcast_gt(&query)
            .unwrap()
            .where_cond(
                &Tensor::full(f32::NEG_INFINITY, (t, keys), &Device::Cpu).unwrap(),
                &Tensor::zeros((t, keys), DType::F32, &Device::Cpu).unwrap(),
            )
            .unwrap();
        let p = super::super::ops::softmax_last_dim(&s.broadcast_add(&mask).unwrap()).unwrap();
        p.reshape((b, kvh, n * t, keys))
            .unwrap()
            .matmul(v)
            .unwrap()
            .reshape((b, h, t, hd))
            .unwrap()
    }

    fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let size = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        diff / size.max(1e-30)
    }

    /// Output and the three gradients equal the plain form's, for blocks that divide the
    /// sequence, that do not, and one block for all; for the causal square and for queries
    /// that continue after 26 earlier keys.
    #[test]
    fn blocks_give_the_plain_forms_values_and_gradients() {
        for (t, keys) in [(37, 37), (11, 37)] {
            blocks_match_the_plain_form(t, keys);
        }
    }

    fn blocks_match_the_plain_form(t: usize, keys: usize) {
        let (b, h, kvh, hd) = (2, 4, 2, 8);
        let scale = 1.0 / (hd as f64).sqrt();
        let q = Var::from_tensor(&random(&[b, h, t, hd], 1)).unwrap();
        let k = Var::from_tensor(&random(&[b, kvh, keys, hd], 2)).unwrap();
        let v = Var::from_tensor(&random(&[b, kvh, keys, hd], 3)).unwrap();
        let weight = random(&[b, h, t, hd], 4);
        let want = plain(&q, &k, &v, scale);
        let want_grads = (&want * &weight)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for block in [1, 5, 8, 37, 64] {
            let got = causal_attention(&q, &k, &v, scale, block, true).unwrap();
            assert!(
                max_relative(&got, &want) < 1e-5,
                "t {t}, keys {keys}, block {block}: output"
            );
            let grads = (&got * &weight)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (name, var) in [("q", &q), ("k", &k), ("v", &v)] {
                let (g, w) = (
                    grads.get(var.as_tensor()).unwrap(),
                    want_grads.get(var.as_tensor()).unwrap(),
                );
                let error = max_relative(g, w);
                assert!(
                    error < 1e-5,
                    "t {t}, keys {keys}, block {block}: gradient of {name} off by {error}"
                );
            }
        }
    }

    #[test]
    fn untracked_inputs_give_a_plain_tensor_and_shapes_are_checked() {
        let q = random(&[1, 2, 6, 4], 5);
        let k = random(&[1, 1, 6, 4], 6);
        let out = causal_attention(&q, &k, &k, 0.5, 4, true).unwrap();
        assert!(!out.track_op());
        assert!(max_relative(&out, &plain(&q, &k, &k, 0.5)) < 1e-6);
        let wrong = random(&[1, 3, 6, 4], 7);
        assert!(causal_attention(&q, &wrong, &wrong, 0.5, 4, true).is_err());
        // Fewer keys than queries: some queries would see nothing.
        let short = random(&[1, 1, 5, 4], 8);
        assert!(causal_attention(&q, &short, &short, 0.5, 4, true).is_err());
        assert_eq!(block_rows(16, 24_576), 341);
        assert_eq!(block_rows(16, 10), 2048);
    }
}
