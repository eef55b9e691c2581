//! A trainable LoRA adapter held beside the frozen model: per projection (by module path), `A`
//! `(r, in)` and `B` `(out, r)` as f32 variables, applied unmerged as `s·(x Aᵀ) Bᵀ` when the
//! model runs with it ([`Qwen35Model::hidden_states_with`]). The model's weights are never
//! touched, so one loaded model serves any number of adapters.
//!
//! Initialised as PEFT initialises LoRA (`init_lora_weights=True`): `A` Kaiming-uniform with
//! `a = √5` (uniform in `±1/√in`), `B` zero, so a fresh adapter changes nothing. Saved in PEFT's
//! format (`adapter_config.json`, `adapter_model.safetensors` with
//! `base_model.model.<path>.lora_{A,B}.weight`), which [`crate::lora::LoraAdapter`] and PEFT load.

use crate::qwen35::Qwen35Model;
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// The module names PEFT's `target_modules="all-linear"` picks in Qwen3.5's text model.
pub const ALL_LINEAR: [&str; 12] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "in_proj_qkv",
    "in_proj_z",
    "in_proj_b",
    "in_proj_a",
    "out_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The shape and scaling of an adapter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraShape {
    /// Rank `r`.
    pub rank: usize,
    /// `α`.
    pub alpha: f64,
    /// Rank-stabilised scaling `α/√r` (else `α/r`).
    pub rslora: bool,
}

impl LoraShape {
    /// The factor `s` of the delta.
    pub fn scale(&self) -> f64 {
        let r = self.rank as f64;
        if self.rslora {
            self.alpha / r.sqrt()
        } else {
            self.alpha / r
        }
    }
}

/// The dtype an adapter's products `s·(x Aᵀ) Bᵀ` run in. The weights, their gradients and
/// the optimiser's state stay f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdapterProducts {
    /// In f32, `x` cast up, as PEFT computes LoRA with f32 adapter weights (the default: the
    /// reference's numbers).
    #[default]
    F32,
    /// In the model's dtype (bf16 on the GPU): `A` and `B` cast down for the products, which
    /// run on tensor cores and move half the bytes; the gradients reach the f32 weights
    /// through the casts. Faster, slightly less exact.
    ModelDtype,
}

impl std::str::FromStr for AdapterProducts {
    type Err = String;

    /// `f32` or `model`.
    fn from_str(text: &str) -> std::result::Result<AdapterProducts, String> {
        match text {
            "f32" => Ok(AdapterProducts::F32),
            "model" => Ok(AdapterProducts::ModelDtype),
            other => Err(format!(
                "adapter products `{other}`: expected `f32` or `model` (the model's dtype)"
            )),
        }
    }
}

/// A trainable adapter: `A` and `B` variables per module path.
pub struct TrainableLora {
    shape: LoraShape,
    pairs: BTreeMap<String, (Var, Var)>,
    /// Products without gradient tracking ([`TrainableLora::frozen`]).
    frozen: bool,
    /// The dtype of the products ([`TrainableLora::with_products`]).
    products: AdapterProducts,
}

impl TrainableLora {
    /// A fresh adapter on every projection of `model` whose name is in `targets` (for example
    /// [`ALL_LINEAR`]), initialised as PEFT does from a seeded stream, on `device`.
    pub fn init(
        model: &Qwen35Model,
        targets: &[&str],
        shape: LoraShape,
        seed: u64,
        device: &Device,
    ) -> Result<TrainableLora> {
        if shape.rank == 0 {
            candle_core::bail!("a LoRA adapter needs a rank of at least 1");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pairs = BTreeMap::new();
        for (path, input, output) in model.projections()? {
            let name = path.rsplit('.').next().unwrap_or(&path);
            if !targets.contains(&name) {
                continue;
            }
            let bound = 1.0 / (input as f64).sqrt();
            let values: Vec<f32> = (0..shape.rank * input)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let a = Var::from_tensor(&Tensor::from_vec(values, (shape.rank, input), device)?)?;
            let b = Var::zeros((output, shape.rank), DType::F32, device)?;
            pairs.insert(path, (a, b));
        }
        Ok(TrainableLora {
            shape,
            pairs,
            frozen: false,
            products: AdapterProducts::F32,
        })
    }

    /// A trainable copy of a PEFT adapter folder (`adapter_config.json`,
    /// `adapter_model.safetensors`) for `model`: to continue training it, or to check lamar's
    /// training against PyTorch on the same weights. Every pair must belong to a projection of
    /// the model, with its shape.
    pub fn from_peft(dir: &Path, model: &Qwen35Model, device: &Device) -> Result<TrainableLora> {
        let shape = crate::lora::read_adapter_shape(dir).map_err(candle_core::Error::wrap)?;
        let rank = shape.rank;
        let weights_path = dir.join("adapter_model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, device)?;
        let dims: BTreeMap<String, (usize, usize)> = model
            .projections()?
            .into_iter()
            .map(|(path, input, output)| (path, (input, output)))
            .collect();
        let mut pairs = BTreeMap::new();
        for (path, &(input, output)) in &dims {
            let get = |half: &str| tensors.get(&format!("base_model.model.{path}.{half}.weight"));
            let (Some(a), Some(b)) = (get("lora_A"), get("lora_B")) else {
                continue;
            };
            if a.dims() != [rank, input] || b.dims() != [output, rank] {
                candle_core::bail!(
                    "{}: {path} has A {:?} and B {:?}, the model needs ({rank}, {input}) and \
                     ({output}, {rank})",
                    weights_path.display(),
                    a.dims(),
                    b.dims()
                );
            }
            let var = |t: &Tensor| Var::from_tensor(&t.to_dtype(DType::F32)?);
            pairs.insert(path.clone(), (var(a)?, var(b)?));
        }
        if 2 * pairs.len() != tensors.len() {
            candle_core::bail!(
                "{}: {} tensors, of which {} belong to projections of this model",
                weights_path.display(),
                tensors.len(),
                2 * pairs.len()
            );
        }
        Ok(TrainableLora {
            shape,
            pairs,
            frozen: false,
            products: AdapterProducts::F32,
        })
    }

    /// The same adapter (its variables shared, not copied) whose products are not tracked
    /// for gradients: for a forward pass whose activations are only kept, not differentiated
    /// (the first pass of activation checkpointing), so that no graph is built and the
    /// inference kernels may run.
    pub fn frozen(&self) -> TrainableLora {
        TrainableLora {
            shape: self.shape,
            pairs: self.pairs.clone(),
            frozen: true,
            products: self.products,
        }
    }

    /// The same adapter computing its products in `products`' dtype.
    pub fn with_products(mut self, products: AdapterProducts) -> TrainableLora {
        self.products = products;
        self
    }

    /// The dtype the products run in.
    pub fn products(&self) -> AdapterProducts {
        self.products
    }

    /// The adapter's shape.
    pub fn shape(&self) -> LoraShape {
        self.shape
    }

    /// `s·(x Aᵀ) Bᵀ` for module `path` (in `x`'s dtype), or `None` when the adapter has no pair
    /// there.
    pub fn delta(&self, path: &str, x: &Tensor) -> Result<Option<Tensor>> {
        let Some((a, b)) = self.pairs.get(path) else {
            return Ok(None);
        };
        let (a, b, scale) = (a.as_tensor(), b.as_tensor(), self.shape.scale());
        let products = self.products_dtype(x);
        if self.frozen {
            let (a, b) = (a.detach(), b.detach());
            return super::lora_delta::untracked_delta(x, &a, &b, scale, products).map(Some);
        }
        // Tracked: one operation with its backward written out.
        super::lora_delta::tracked_delta(x, a, b, scale, products).map(Some)
    }

    /// The dtype the adapter's products run in for an input `x` ([`AdapterProducts`]).
    fn products_dtype(&self, x: &Tensor) -> DType {
        match self.products {
            AdapterProducts::ModelDtype => x.dtype(),
            AdapterProducts::F32 => DType::F32,
        }
    }

    /// For a tracked input `x` of module `path`, its frozen projection (`product = x Wᵀ`,
    /// computed untracked; `weight` the frozen `W`) with this trainable adapter's delta, as one
    /// operation with its backward written out ([`super::lora_delta::tracked_projection`]).
    /// `None` when the adapter is frozen or has no pair at `path`.
    pub fn project_tracked(
        &self,
        path: &str,
        x: &Tensor,
        product: &Tensor,
        weight: &Tensor,
    ) -> Result<Option<Tensor>> {
        let Some((a, b)) = self.pairs.get(path) else {
            return Ok(None);
        };
        if self.frozen {
            return Ok(None);
        }
        let products = self.products_dtype(x);
        let (a, b, scale) = (a.as_tensor(), b.as_tensor(), self.shape.scale());
        super::lora_delta::tracked_projection(x, product, weight, a, b, scale, products).map(Some)
    }

    /// `y + s·(x Aᵀ) Bᵀ` for module `path` (`y` itself when the adapter has no pair there): the
    /// projection `y` of `x` with this adapter's delta added. A frozen adapter on CUDA does it in
    /// one kernel for a decoding step's few rows (`kernels::lora::lora_add` in CUDA builds), which a
    /// CUDA graph can capture; otherwise it is [`TrainableLora::delta`] and an addition.
    pub fn add_delta(&self, path: &str, x: &Tensor, y: Tensor) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if self.frozen
            && let Some((a, b)) = self.pairs.get(path)
            && let Some(out) = crate::kernels::lora::lora_add(
                x,
                &y,
                a.as_tensor(),
                b.as_tensor(),
                self.shape.scale(),
            )?
        {
            return Ok(out);
        }
        match self.delta(path, x)? {
            Some(delta) => y + delta,
            None => Ok(y),
        }
    }

    /// Every variable under its PEFT name (`base_model.model.<path>.lora_{A,B}.weight`), sorted.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::with_capacity(2 * self.pairs.len());
        for (path, (a, b)) in &self.pairs {
            out.push((format!("base_model.model.{path}.lora_A.weight"), a));
            out.push((format!("base_model.model.{path}.lora_B.weight"), b));
        }
        out
    }

    /// Writes the adapter in PEFT's format into `dir` (created if missing): the weights and an
    /// `adapter_config.json` naming the target modules and `base_model` as the base.
    pub fn save_peft(&self, dir: &Path, base_model: &str) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let tensors: Vec<(String, Tensor)> = self
            .named_vars()
            .into_iter()
            .map(|(name, var)| (name, var.as_tensor().clone()))
            .collect();
        // Each file is written beside its final name, then renamed: never half-written.
        let weights = dir.join("adapter_model.safetensors.tmp");
        candle_core::safetensors::save(
            &tensors
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
            &weights,
        )?;
        std::fs::rename(&weights, dir.join("adapter_model.safetensors"))?;
        let mut targets: Vec<&str> = self
            .pairs
            .keys()
            .map(|p| p.rsplit('.').next().unwrap_or(p))
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let config = serde_json::json!({
            "peft_type": "LORA",
            "base_model_name_or_path": base_model,
            "r": self.shape.rank,
            "lora_alpha": self.shape.alpha,
            "use_rslora": self.shape.rslora,
            "lora_dropout": 0.0,
            "bias": "none",
            "use_dora": false,
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "target_modules": targets,
            "rank_pattern": {},
            "alpha_pattern": {},
            "task_type": "CAUSAL_LM",
        });
        let text = serde_json::to_string_pretty(&config).map_err(candle_core::Error::wrap)?;
        let config_path = dir.join("adapter_config.json.tmp");
        std::fs::write(&config_path, text + "\n")?;
        std::fs::rename(&config_path, dir.join("adapter_config.json"))?;
        Ok(())
    }
}
