//! LoRA adapters in PEFT's format (`adapter_config.json` + `adapter_model.safetensors`), applied
//! to the model's projections either unmerged (`y = xWᵀ + s·(xAᵀ)Bᵀ`) or merged into the base
//! weights at load (`W' = W + s·BA`, as fast as the base model). The scale `s` is `α/r`, or
//! `α/√r` with `use_rslora`.

use crate::train::lora::{LoraShape, TrainableLora};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The fields of `adapter_config.json` lamar reads.
#[derive(Debug, Clone, Deserialize)]
struct AdapterConfig {
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    rank_pattern: HashMap<String, serde_json::Value>,
    #[serde(default)]
    alpha_pattern: HashMap<String, serde_json::Value>,
    #[serde(default)]
    peft_type: Option<String>,
}

/// Why an adapter folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `adapter_config.json` is not JSON or lacks fields.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A PEFT feature lamar does not implement.
    #[error("{path}: {what} is not supported (plain LoRA and rsLoRA are)")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The feature.
        what: String,
    },
    /// The weights could not be read.
    #[error("{path}: {source}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// Why.
        source: candle_core::Error,
    },
}

/// A loaded adapter: per module path (e.g. `model.layers.0.mlp.up_proj`), its `A` `(r, in)` and
/// `B` `(out, r)`.
pub struct LoraAdapter {
    scale: f64,
    pairs: HashMap<String, (Tensor, Tensor)>,
    /// Apply by merging into the base weights at load.
    pub merge: bool,
}

/// The rank, alpha and scaling of the PEFT adapter in `dir` (`adapter_config.json`), refusing
/// what lamar does not implement (DoRA, biases, per-module ranks, other PEFT types, rank 0).
pub fn read_adapter_shape(dir: &Path) -> std::result::Result<LoraShape, AdapterError> {
    let config_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|source| AdapterError::Io {
        path: config_path.clone(),
        source,
    })?;
    let config: AdapterConfig =
        serde_json::from_str(&text).map_err(|source| AdapterError::Config {
            path: config_path.clone(),
            source,
        })?;
    let unsupported = |what: &str| AdapterError::Unsupported {
        path: config_path.clone(),
        what: what.to_string(),
    };
    if config.peft_type.as_deref().is_some_and(|t| t != "LORA") {
        return Err(unsupported("a non-LoRA adapter"));
    }
    if config.use_dora {
        return Err(unsupported("DoRA"));
    }
    if config.bias.as_deref().is_some_and(|b| b != "none") {
        return Err(unsupported("LoRA biases"));
    }
    if !config.rank_pattern.is_empty() || !config.alpha_pattern.is_empty() {
        return Err(unsupported("per-module ranks or alphas"));
    }
    if config.r == 0 {
        return Err(unsupported("rank 0"));
    }
    Ok(LoraShape {
        rank: config.r,
        alpha: config.lora_alpha,
        rslora: config.use_rslora,
    })
}

impl LoraAdapter {
    /// Reads a PEFT adapter folder.
    pub fn load(
        dir: &Path,
        merge: bool,
        device: &Device,
    ) -> std::result::Result<LoraAdapter, AdapterError> {
        let scale = read_adapter_shape(dir)?.scale();
        let weights_path = dir.join("adapter_model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, device).map_err(|source| {
            AdapterError::Weights {
                path: weights_path.clone(),
                source,
            }
        })?;
        let mut halves: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (key, tensor) in tensors {
            let module = key.strip_prefix("base_model.model.").unwrap_or(&key);
            let tensor = tensor
                .to_dtype(DType::F32)
                .map_err(|source| AdapterError::Weights {
                    path: weights_path.clone(),
                    source,
                })?;
            if let Some(m) = module.strip_suffix(".lora_A.weight") {
                halves.entry(m.to_string()).or_default().0 = Some(tensor);
            } else if let Some(m) = module.strip_suffix(".lora_B.weight") {
                halves.entry(m.to_string()).or_default().1 = Some(tensor);
            }
        }
        let mut pairs = HashMap::new();
        for (module, (a, b)) in halves {
            match (a, b) {
                (Some(a), Some(b)) => {
                    pairs.insert(module, (a, b));
                }
                _ => {
                    return Err(AdapterError::Unsupported {
                        path: weights_path.clone(),
                        what: format!("{module} with only one of lora_A/lora_B"),
                    });
                }
            }
        }
        Ok(LoraAdapter {
            scale,
            pairs,
            merge,
        })
    }

    /// Modules the adapter changes.
    pub fn modules(&self) -> usize {
        self.pairs.len()
    }

    /// The factor `s` of the deltas.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Each changed module's path and its `A` `(r, in)` and `B` `(out, r)`, in f32.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &Tensor, &Tensor)> {
        self.pairs.iter().map(|(m, (a, b))| (m.as_str(), a, b))
    }
}

/// A projection without bias, possibly with an unmerged LoRA pair, known by its module path
/// (e.g. `model.layers.0.mlp.up_proj`), under which a trainable adapter finds its pair.
pub struct Projection {
    path: String,
    kind: ProjectionKind,
}

/// How a [`Projection`] computes.
enum ProjectionKind {
    /// `xWᵀ` (base weights, or base with a merged adapter).
    Plain(Linear),
    /// `xWᵀ + s·(xAᵀ)Bᵀ`.
    Lora {
        /// Base projection.
        base: Linear,
        /// `(r, in)`.
        a: Tensor,
        /// `(out, r)`.
        b: Tensor,
        /// `s`.
        scale: f64,
    },
}

impl Projection {
    /// Loads the projection at `vb` (`out × in` weight), applying `adapter` to it when the
    /// adapter has a pair for this module.
    pub fn load(
        in_dim: usize,
        out_dim: usize,
        vb: VarBuilder,
        adapter: Option<&LoraAdapter>,
    ) -> Result<Projection> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let path = vb.prefix();
        let Some((adapter, (a, b))) = adapter.and_then(|ad| ad.pairs.get(&path).map(|p| (ad, p)))
        else {
            return Ok(Projection {
                path,
                kind: ProjectionKind::Plain(Linear::new(weight, None)),
            });
        };
        let (a, b) = (a.to_dtype(weight.dtype())?, b.to_dtype(weight.dtype())?);
        if adapter.merge {
            let delta = (b.matmul(&a)? * adapter.scale)?;
            return Ok(Projection {
                path,
                kind: ProjectionKind::Plain(Linear::new((weight + delta)?, None)),
            });
        }
        Ok(Projection {
            path,
            kind: ProjectionKind::Lora {
                base: Linear::new(weight, None),
                a: a.t()?.contiguous()?,
                b: b.t()?.contiguous()?,
                scale: adapter.scale,
            },
        })
    }

    /// The module path, e.g. `model.layers.0.mlp.up_proj`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `(in, out)` features of the base weight.
    pub fn dims(&self) -> Result<(usize, usize)> {
        let (ProjectionKind::Plain(linear) | ProjectionKind::Lora { base: linear, .. }) =
            &self.kind;
        let (out, input) = linear.weight().dims2()?;
        Ok((input, out))
    }
}

/// `x · Wᵀ` of a plain linear layer: with `gemv` on a CUDA device, lamar's kernel for a few
/// rows (decoding: `kernels::gemv`) where it applies, else candle's matrix product; when `x`
/// is tracked for gradients (training), [`crate::train::ops::frozen_linear`].
pub fn apply_linear(linear: &Linear, x: &Tensor, gemv: bool) -> Result<Tensor> {
    if frozen_for_training(linear, x) {
        // Training with the weight frozen: only the input's gradient is wanted.
        return crate::train::ops::frozen_linear(x, linear.weight());
    }
    #[cfg(feature = "cuda")]
    if gemv && let Some(y) = crate::kernels::gemv::gemv(x, linear.weight())? {
        return Ok(y);
    }
    let _ = gemv;
    linear.forward(x)
}

/// Whether `x` is tracked for gradients and `linear` is frozen without a bias (training's
/// projections: only the input's gradient is wanted).
fn frozen_for_training(linear: &Linear, x: &Tensor) -> bool {
    x.track_op() && !linear.weight().track_op() && linear.bias().is_none()
}

/// In training (see [`frozen_for_training`]), module `path`'s output from its frozen product
/// `product = x Wᵀ` (computed untracked; `weight` the frozen `W`): with a trainable adapter's
/// pair there, the product and the adapter's delta as one operation
/// ([`TrainableLora::project_tracked`]); otherwise the product passed through with the input's
/// gradient ([`crate::train::ops::pass_frozen`]), plus a frozen adapter's delta if any.
fn tracked_part(
    x: &Tensor,
    product: &Tensor,
    weight: &Tensor,
    path: &str,
    trainable: Option<&TrainableLora>,
) -> Result<Tensor> {
    if let Some(t) = trainable
        && let Some(out) = t.project_tracked(path, x, product, weight)?
    {
        return Ok(out);
    }
    let y = crate::train::ops::pass_frozen(x, product, weight)?;
    add_delta(y, path, x, trainable)
}

impl Projection {
    /// The projection of `x`; `gemv` as in [`apply_linear`].
    pub fn project(&self, x: &Tensor, gemv: bool) -> Result<Tensor> {
        self.project_with(x, gemv, None)
    }

    /// [`Projection::project`] plus the trainable adapter's delta for this module, if it has
    /// one.
    pub fn project_with(
        &self,
        x: &Tensor,
        gemv: bool,
        trainable: Option<&TrainableLora>,
    ) -> Result<Tensor> {
        if let ProjectionKind::Plain(linear) = &self.kind
            && frozen_for_training(linear, x)
        {
            let weight = linear.weight();
            let product = x.detach().broadcast_matmul(&weight.t()?)?.contiguous()?;
            return tracked_part(x, &product, weight, &self.path, trainable);
        }
        let y = match &self.kind {
            ProjectionKind::Plain(linear) => apply_linear(linear, x, gemv)?,
            ProjectionKind::Lora { base, a, b, scale } => {
                let low = x.broadcast_matmul(a)?.broadcast_matmul(b)?;
                (apply_linear(base, x, gemv)? + (low * *scale)?)?
            }
        };
        add_delta(y, &self.path, x, trainable)
    }
}

/// `y` plus the trainable adapter's delta of module `path` for input `x`, when there is one.
fn add_delta(
    y: Tensor,
    path: &str,
    x: &Tensor,
    trainable: Option<&TrainableLora>,
) -> Result<Tensor> {
    match trainable {
        Some(t) => t.add_delta(path, x, y),
        None => Ok(y),
    }
}

impl Module for Projection {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.project(x, false)
    }
}

/// Several projections of the same input. Plain ones (no adapter, or a merged one) are
/// stacked into one weight matrix at load, so a layer makes one matrix product instead of
/// several (fewer kernel launches, better use of memory bandwidth when decoding); with an
/// unmerged adapter they stay apart.
pub enum FusedProjection {
    /// One stacked matrix and the output width of each part.
    Stacked {
        /// `(Σ out, in)`.
        linear: Linear,
        /// Each part's output width, in order.
        widths: Vec<usize>,
        /// Each part's module path, in order.
        paths: Vec<String>,
    },
    /// The parts as loaded.
    Apart(Vec<Projection>),
}

impl FusedProjection {
    /// Fuses `parts` when they are all plain.
    pub fn new(parts: Vec<Projection>) -> Result<FusedProjection> {
        let weights: Option<Vec<Tensor>> = parts
            .iter()
            .map(|p| match &p.kind {
                ProjectionKind::Plain(l) => Some(l.weight().clone()),
                ProjectionKind::Lora { .. } => None,
            })
            .collect();
        let Some(weights) = weights else {
            return Ok(FusedProjection::Apart(parts));
        };
        let widths = weights.iter().map(|w| w.dim(0)).collect::<Result<_>>()?;
        Ok(FusedProjection::Stacked {
            linear: Linear::new(Tensor::cat(&weights, 0)?, None),
            widths,
            paths: parts.into_iter().map(|p| p.path).collect(),
        })
    }

    /// The stacked weight `(Σ out, in)`, when the parts were fused.
    pub fn stacked_weight(&self) -> Option<&Tensor> {
        match self {
            FusedProjection::Stacked { linear, .. } => Some(linear.weight()),
            FusedProjection::Apart(_) => None,
        }
    }

    /// Each part's output, in order (views of one product when stacked); `gemv` as in
    /// [`apply_linear`].
    pub fn forward(&self, x: &Tensor, gemv: bool) -> Result<Vec<Tensor>> {
        self.forward_with(x, gemv, None)
    }

    /// [`FusedProjection::forward`] plus the trainable adapter's delta of each part that has
    /// one (the base product stays one stacked product).
    pub fn forward_with(
        &self,
        x: &Tensor,
        gemv: bool,
        trainable: Option<&TrainableLora>,
    ) -> Result<Vec<Tensor>> {
        match self {
            FusedProjection::Apart(parts) => parts
                .iter()
                .map(|p| p.project_with(x, gemv, trainable))
                .collect(),
            FusedProjection::Stacked {
                linear,
                widths,
                paths,
            } if frozen_for_training(linear, x) => {
                // Training: each part is its slice of the product with its own input gradient
                // (candle's narrow would send back a zero-padded gradient of the whole product
                // per part, then sum those), and its adapter's delta in the same operation.
                let weight = linear.weight();
                let all = x.detach().broadcast_matmul(&weight.t()?)?;
                let mut start = 0;
                widths
                    .iter()
                    .zip(paths)
                    .map(|(&width, path)| {
                        let product = all.narrow(candle_core::D::Minus1, start, width)?;
                        let rows = weight.narrow(0, start, width)?;
                        start += width;
                        tracked_part(x, &product.contiguous()?, &rows, path, trainable)
                    })
                    .collect()
            }
            FusedProjection::Stacked {
                linear,
                widths,
                paths,
            } => {
                let all = apply_linear(linear, x, gemv)?;
                let mut start = 0;
                widths
                    .iter()
                    .zip(paths)
                    .map(|(&w, path)| {
                        let part = all.narrow(candle_core::D::Minus1, start, w)?;
                        start += w;
                        add_delta(part, path, x, trainable)
                    })
                    .collect()
            }
        }
    }

    /// Each part's module path and `(in, out)` features.
    pub fn parts(&self) -> Result<Vec<(String, usize, usize)>> {
        match self {
            FusedProjection::Apart(parts) => parts
                .iter()
                .map(|p| Ok((p.path.clone(), p.dims()?.0, p.dims()?.1)))
                .collect(),
            FusedProjection::Stacked {
                linear,
                widths,
                paths,
            } => {
                let input = linear.weight().dim(1)?;
                Ok(paths
                    .iter()
                    .zip(widths)
                    .map(|(p, &w)| (p.clone(), input, w))
                    .collect())
            }
        }
    }
}
