//! A snapshot with an adapter merged into its weights (`W' = W + s·BA`, what the reference's
//! `push_to_hub.py` merge writes, offline): every other tensor and the snapshot's configuration,
//! tokenizer and chat template are copied unchanged, so the result loads like the base model.

use candle_core::{DType, Device, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The files of a snapshot besides its weights that a merged copy keeps.
const SNAPSHOT_FILES: [&str; 5] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
];

/// Writes `model_dir` with the PEFT adapter of `adapter_dir` merged into `out_dir`
/// (`model.safetensors` plus the snapshot's other files); returns the number of merged modules.
pub fn merge_adapter(model_dir: &Path, adapter_dir: &Path, out_dir: &Path) -> Result<usize> {
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        adapter_dir.join("adapter_config.json"),
    )?)
    .map_err(candle_core::Error::wrap)?;
    let rank = config["r"].as_f64().unwrap_or(0.0);
    let alpha = config["lora_alpha"].as_f64().unwrap_or(f64::NAN);
    if rank <= 0.0 || !alpha.is_finite() {
        candle_core::bail!("{}: r and lora_alpha must be set", adapter_dir.display());
    }
    let scale = if config["use_rslora"].as_bool().unwrap_or(false) {
        alpha / rank.sqrt()
    } else {
        alpha / rank
    };
    let adapter = candle_core::safetensors::load(
        adapter_dir.join("adapter_model.safetensors"),
        &Device::Cpu,
    )?;
    let mut weights: HashMap<String, Tensor> = HashMap::new();
    let mut shards: Vec<_> = std::fs::read_dir(model_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        candle_core::bail!("{}: no .safetensors weights", model_dir.display());
    }
    for shard in shards {
        weights.extend(candle_core::safetensors::load(&shard, &Device::Cpu)?);
    }
    let mut merged = 0;
    for (name, a) in &adapter {
        let Some(path) = name
            .strip_prefix("base_model.model.")
            .and_then(|n| n.strip_suffix(".lora_A.weight"))
        else {
            continue;
        };
        let b = adapter
            .get(&format!("base_model.model.{path}.lora_B.weight"))
            .ok_or_else(|| candle_core::Error::Msg(format!("{path}: lora_A without lora_B")))?;
        let key = format!("{path}.weight");
        let base = weights.get(&key).ok_or_else(|| {
            candle_core::Error::Msg(format!("the adapter changes {key}, which the model lacks"))
        })?;
        let delta = (b.to_dtype(DType::F32)?.matmul(&a.to_dtype(DType::F32)?)? * scale)?;
        let sum = (base.to_dtype(DType::F32)? + delta)?.to_dtype(base.dtype())?;
        weights.insert(key, sum);
        merged += 1;
    }
    std::fs::create_dir_all(out_dir)?;
    let temporary = out_dir.join("model.safetensors.tmp");
    candle_core::safetensors::save(&weights, &temporary)?;
    std::fs::rename(&temporary, out_dir.join("model.safetensors"))?;
    for file in SNAPSHOT_FILES {
        let from = model_dir.join(file);
        if from.is_file() {
            std::fs::copy(&from, out_dir.join(file))?;
        }
    }
    Ok(merged)
}
