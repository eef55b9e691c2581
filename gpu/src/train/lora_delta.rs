//! An adapter's delta `s·(x Aᵀ) Bᵀ` as one differentiable operation with its backward written
//! out, for training passes ([`super::lora::TrainableLora::delta`]).
//!
//! Through candle's autograd the two products' backward costs more than the four products it
//! needs: each matrix product differentiates both factors and every gradient is summed into a
//! zero tensor of its node's size first, a `(T × out)` pass each; the scale and the casts add
//! their own passes. Here the forward pass runs untracked and keeps `x` (in the products'
//! dtype), the small `(T × r)` intermediate and the factors; the backward pass is, with `g` the
//! output's gradient in the products' dtype,
//!
//! ```text
//! dB = gᵀ L      dL = s·g B      dA = dLᵀ x      dx = dL A      (L = s·x Aᵀ)
//! ```
//!
//! four products and no pass over `(T × out)` but the cast of `g`. The gradients of `A` and `B`
//! come back in their own dtype (f32).

use super::ops::Computed;
use candle_core::{CustomOp3, DType, Result, Tensor};

/// `s·(x Aᵀ) Bᵀ` in `x`'s dtype, the products in `dtype`, differentiable in `x`, `a` `(r, in)`
/// and `b` `(out, r)`.
pub fn tracked_delta(
    x: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    dtype: DType,
) -> Result<Tensor> {
    tracked(x, None, a, b, scale, dtype)
}

/// A frozen projection with the adapter's delta, `x Wᵀ + s·(x Aᵀ) Bᵀ`, as one operation of
/// `x`, `A` and `B`: `product` is `x Wᵀ`, computed untracked (whole, contiguous, in `x`'s
/// dtype), `weight` the frozen `W` `(out, in)`. The backward pass is [`tracked_delta`]'s with
/// `∂L/∂out · W` added to `x`'s gradient. One node instead of three (the product passed
/// through, the delta, their sum) spares candle's autograd two zero-initialised sums of the
/// output's size.
#[allow(clippy::too_many_arguments)]
pub fn tracked_projection(
    x: &Tensor,
    product: &Tensor,
    weight: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    dtype: DType,
) -> Result<Tensor> {
    tracked(x, Some((product, weight)), a, b, scale, dtype)
}

/// [`tracked_delta`], plus the frozen `(product, weight)` of [`tracked_projection`] when given.
fn tracked(
    x: &Tensor,
    base: Option<(&Tensor, &Tensor)>,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    dtype: DType,
) -> Result<Tensor> {
    let Products {
        x_p,
        a_p,
        b_p,
        low,
        delta,
    } = Products::of(&x.detach(), &a.detach(), &b.detach(), scale, dtype)?;
    let (out, base) = match base {
        Some((product, weight)) => ((product + delta)?, Some(weight.clone())),
        None => (delta, None),
    };
    x.apply_op3(
        a,
        b,
        LoraDelta {
            x: x_p,
            a: a_p,
            b: b_p,
            low,
            scale,
            base,
            out: Computed::new(out),
        },
    )
}

/// [`tracked_delta`] without gradients (for a pass that is only kept): the same products.
pub fn untracked_delta(
    x: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    dtype: DType,
) -> Result<Tensor> {
    Ok(Products::of(x, a, b, scale, dtype)?.delta)
}

/// The forward pass: the factors in the products' dtype, `L = s·x Aᵀ` and the delta `L Bᵀ` in
/// `x`'s dtype.
struct Products {
    x_p: Tensor,
    a_p: Tensor,
    b_p: Tensor,
    low: Tensor,
    delta: Tensor,
}

impl Products {
    fn of(x: &Tensor, a: &Tensor, b: &Tensor, scale: f64, dtype: DType) -> Result<Products> {
        let x_p = x.to_dtype(dtype)?;
        let (a_p, b_p) = (a.to_dtype(dtype)?, b.to_dtype(dtype)?);
        // The scale goes on the `(…, r)` intermediate, the smallest tensor of the three.
        let low = (x_p.broadcast_matmul(&a_p.t()?)? * scale)?;
        let delta = low
            .broadcast_matmul(&b_p.t()?)?
            .to_dtype(x.dtype())?
            .contiguous()?;
        Ok(Products {
            x_p,
            a_p,
            b_p,
            low,
            delta,
        })
    }
}

/// The delta, computed before the operation runs, passed through; its backward is written out.
struct LoraDelta {
    /// `x` in the products' dtype.
    x: Tensor,
    /// `A` and `B` in the products' dtype.
    a: Tensor,
    b: Tensor,
    /// `s·x Aᵀ`.
    low: Tensor,
    scale: f64,
    /// The frozen weight `W` `(out, in)` when the output includes `x Wᵀ`
    /// ([`tracked_projection`]).
    base: Option<Tensor>,
    out: Computed,
}

impl CustomOp3 for LoraDelta {
    fn name(&self) -> &'static str {
        "lora-delta"
    }

    super::ops::computed_forward!(3, out, "lora_delta");

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, rank, input) = (self.b.dim(0)?, self.a.dim(0)?, self.a.dim(1)?);
        let g = grad.to_dtype(self.x.dtype())?.reshape(((), out))?;
        let low = self.low.reshape(((), rank))?;
        let xs = self.x.reshape(((), input))?;
        let d_b = g.t()?.matmul(&low)?;
        let d_low = (g.matmul(&self.b)? * self.scale)?;
        let d_a = d_low.t()?.matmul(&xs)?;
        let mut d_x = d_low
            .matmul(&self.a)?
            .to_dtype(x.dtype())?
            .reshape(x.shape())?;
        if let Some(weight) = &self.base {
            let through = grad.broadcast_matmul(&weight.to_dtype(grad.dtype())?)?;
            d_x = (through.to_dtype(x.dtype())? + d_x)?;
        }
        Ok((
            Some(d_x),
            Some(d_a.to_dtype(a.dtype())?),
            Some(d_b.to_dtype(b.dtype())?),
        ))
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
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
        let scalar = |t: Tensor| t.to_scalar::<f32>().unwrap();
        let diff = scalar((a - b).unwrap().abs().unwrap().max_all().unwrap());
        diff / scalar(b.abs().unwrap().max_all().unwrap()).max(1e-30)
    }

    #[test]
    fn the_written_backward_gives_autograds_value_and_gradients() {
        let (t, input, rank, out, scale) = (7, 12, 4, 10, 0.7);
        let x = Var::from_tensor(&random(&[1, t, input], 1)).unwrap();
        let a = Var::from_tensor(&random(&[rank, input], 2)).unwrap();
        let b = Var::from_tensor(&random(&[out, rank], 3)).unwrap();
        let upstream = random(&[1, t, out], 4);
        // The delta alone (tracked_delta), and with a frozen projection (tracked_projection).
        for weight in [None, Some(random(&[out, input], 5))] {
            let run = |written: bool| {
                let (xt, at, bt) = (x.as_tensor(), a.as_tensor(), b.as_tensor());
                let y = match (&weight, written) {
                    (None, true) => tracked_delta(xt, at, bt, scale, DType::F32).unwrap(),
                    (Some(w), true) => {
                        let product = xt.detach().broadcast_matmul(&w.t().unwrap()).unwrap();
                        tracked_projection(xt, &product, w, at, bt, scale, DType::F32).unwrap()
                    }
                    (_, false) => {
                        let low = xt.broadcast_matmul(&at.t().unwrap()).unwrap();
                        let delta = low.broadcast_matmul(&bt.t().unwrap()).unwrap() * scale;
                        match &weight {
                            None => delta.unwrap(),
                            Some(w) => (xt.broadcast_matmul(&w.t().unwrap()).unwrap()
                                + delta.unwrap())
                            .unwrap(),
                        }
                    }
                };
                let grads = (&y * &upstream)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
                (y, grad(&x), grad(&a), grad(&b))
            };
            let got = run(true);
            let want = run(false);
            let base = weight.is_some();
            for (what, g, w) in [
                ("output", &got.0, &want.0),
                ("x's gradient", &got.1, &want.1),
                ("A's gradient", &got.2, &want.2),
                ("B's gradient", &got.3, &want.3),
            ] {
                assert_eq!(
                    g.dims(),
                    w.dims(),
                    "{what} (with the frozen product: {base})"
                );
                let d = max_relative(g, w);
                assert!(
                    d < 1e-6,
                    "{what} differs by {d} (with the frozen product: {base})"
                );
            }
        }
    }
}
