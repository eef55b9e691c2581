//! A snapshot with an adapter merged into its weights (`W' = W + s·BA`, what the reference's
//! `push_to_hub.py` merge writes, offline): every other tensor and the snapshot's configuration,
//! tokenizer and chat template are copied unchanged, so the result loads like the base model.

use crate::lora::LoraAdapter;
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
/// The adapter is read and checked as [`LoraAdapter::load`] reads it.
pub fn merge_adapter(model_dir: &Path, adapter_dir: &Path, out_dir: &Path) -> Result<usize> {
    let adapter =
        LoraAdapter::load(adapter_dir, true, &Device::Cpu).map_err(candle_core::Error::wrap)?;
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
    for (path, a, b) in adapter.pairs() {
        let key = format!("{path}.weight");
        let base = weights.get(&key).ok_or_else(|| {
            candle_core::Error::Msg(format!("the adapter changes {key}, which the model lacks"))
        })?;
        let delta = (b.matmul(a)? * adapter.scale())?;
        let sum = (base.to_dtype(DType::F32)? + delta)?.to_dtype(base.dtype())?;
        weights.insert(key, sum);
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
    Ok(adapter.modules())
}
