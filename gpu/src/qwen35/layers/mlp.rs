//! The SwiGLU feed-forward block: `down(silu(gate(x)) · up(x))`.

use crate::lora::{FusedProjection, LoraAdapter, Projection};
use crate::qwen35::config::Qwen35Config;
use crate::qwen35::step::Step;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// SwiGLU feed-forward.
pub(crate) struct Mlp {
    /// `gate_proj` and `up_proj`.
    gate_up: FusedProjection,
    down: Projection,
}

impl Mlp {
    /// Reads `gate_proj`, `up_proj` and `down_proj` under `vb` (with `lora`'s adapters).
    pub(crate) fn load(
        vb: VarBuilder,
        c: &Qwen35Config,
        lora: Option<&LoraAdapter>,
    ) -> Result<Self> {
        Ok(Mlp {
            gate_up: FusedProjection::new(vec![
                Projection::load(c.hidden_size, c.intermediate_size, vb.pp("gate_proj"), lora)?,
                Projection::load(c.hidden_size, c.intermediate_size, vb.pp("up_proj"), lora)?,
            ])?,
            down: Projection::load(c.intermediate_size, c.hidden_size, vb.pp("down_proj"), lora)?,
        })
    }

    /// The block's output for `x` `(B, T, hidden)`; `step.fused` chooses lamar's CUDA kernels,
    /// `step.lora` a trainable adapter. Profiling a tracked pass, marks split its backward into
    /// the down projection, the activation and the gate/up projections (the caller marks `x`).
    pub(crate) fn forward(&self, x: &Tensor, step: &Step) -> Result<Tensor> {
        let (fused, lora) = (step.fused, step.lora.as_deref());
        // Decoding: the activation straight from the stacked gate/up product, in its kernel.
        #[cfg(feature = "cuda")]
        if fused.mlp
            && fused.gemv
            && lora.is_none()
            && let Some(weight) = self.gate_up.stacked_weight()
            && let Some(activated) = crate::kernels::gemv::gemv_swiglu(x, weight)?
        {
            return self.down.project(&activated, true);
        }
        let [gate, up]: [Tensor; 2] = self
            .gate_up
            .forward_with(x, fused.gemv, lora)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("gate/up projection".into()))?;
        let gate = step.mark_backward(&gate, "backward: MLP activation")?;
        let up = step.mark_backward(&up, "backward: MLP activation")?;
        // On CUDA one kernel each way (differentiable where gate or up is tracked).
        let fused_activation = if fused.mlp {
            crate::train::swiglu::silu_mul(&gate, &up)?
        } else {
            None
        };
        let activated = match fused_activation {
            Some(activated) => activated,
            None => gate.silu()?.mul(&up)?,
        };
        let activated =
            step.mark_backward(&activated, "backward: MLP down projection (with adapter)")?;
        self.down.project_with(&activated, fused.gemv, lora)
    }

    /// The block's projections: module path and `(in, out)` features.
    pub(crate) fn projections(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = self.gate_up.parts()?;
        let (input, output) = self.down.dims()?;
        out.push((self.down.path().to_string(), input, output));
        Ok(out)
    }
}
