//! Qwen3.5 (hybrid Gated DeltaNet + gated attention), text only: [`config`] reads a Hugging
//! Face `config.json`, [`model`] builds the network from safetensors weights; [`load`] does
//! both for a local snapshot folder.

pub mod cache;
pub mod config;
pub mod continuous;
pub mod delta_rule;
pub mod generate;
pub mod graph;
mod layers;
pub mod model;
pub mod random;
pub mod step;
pub mod stopwatch;

pub use cache::Cache;
pub use generate::{Decoding, Generation, PREFILL_TOKENS};
pub use model::Qwen35Model;
pub use step::FusedKernels;
// The DeltaNet queries' and keys' L2 norm, for training's core of the layer
// (`train::deltanet_core`).
pub(crate) use layers::norm::{l2_eps, l2_normalised};

use crate::lora::LoraAdapter;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use config::Qwen35Config;
use std::path::{Path, PathBuf};

/// Why a model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `config.json` is not a usable Qwen3.5 configuration.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        source: config::ConfigError,
    },
    /// No `*.safetensors` in the folder.
    #[error("{0}: no .safetensors weights in this folder")]
    NoWeights(PathBuf),
    /// Candle could not read or shape the weights.
    #[error("{path}: {source}")]
    Weights {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: candle_core::Error,
    },
}

/// Loads the text model of a local Hugging Face snapshot (`config.json` and sharded
/// `*.safetensors`). Vision and MTP weights, when present, are not read.
pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Qwen35Model, LoadError> {
    load_with_adapter(dir, None, dtype, device)
}

/// [`load`] with a LoRA adapter (see [`crate::lora`]).
pub fn load_with_adapter(
    dir: &Path,
    adapter: Option<&LoraAdapter>,
    dtype: DType,
    device: &Device,
) -> Result<Qwen35Model, LoadError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|source| LoadError::Io {
        path: config_path.clone(),
        source,
    })?;
    let config = Qwen35Config::from_json(&text).map_err(|source| LoadError::Config {
        path: config_path,
        source,
    })?;
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("expected"))
        })
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(LoadError::NoWeights(dir.to_path_buf()));
    }
    let weights = |source| LoadError::Weights {
        path: dir.to_path_buf(),
        source,
    };
    // SAFETY: the weight files are memory-mapped read-only; they must not change while the
    // model is alive, as for every safetensors reader.
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&shards, dtype, device) }.map_err(weights)?;
    Qwen35Model::with_adapter(&config, vb, adapter).map_err(weights)
}

/// Weight groups of a snapshot that the text model does not read (the vision tower, the
/// multi-token-prediction layer), with their tensor counts, from the safetensors headers.
/// Unreadable files are left to [`load`] to report.
pub fn unread_weights(dir: &Path) -> Vec<(String, usize)> {
    let groups = [
        ("model.visual.", "vision tower"),
        ("visual.", "vision tower"),
        ("mtp.", "multi-token-prediction layer"),
        ("model.mtp.", "multi-token-prediction layer"),
    ];
    let mut counts: Vec<(String, usize)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return counts;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|x| x != "safetensors") {
            continue;
        }
        let Some(names) = safetensors_names(&path) else {
            continue;
        };
        for name in names {
            if let Some((_, group)) = groups.iter().find(|(prefix, _)| name.starts_with(prefix)) {
                match counts.iter_mut().find(|(g, _)| g == group) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((group.to_string(), 1)),
                }
            }
        }
    }
    counts
}

/// Tensor names in a safetensors file's header (8-byte length, then JSON).
fn safetensors_names(path: &Path) -> Option<Vec<String>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = usize::try_from(u64::from_le_bytes(len)).ok()?;
    if len > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; len];
    file.read_exact(&mut header).ok()?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).ok()?;
    Some(
        json.into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "__metadata__")
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn vision_and_mtp_weights_are_counted_as_unread() {
        let dir = std::env::temp_dir().join(format!("lamar-unread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let tensors: std::collections::HashMap<String, Tensor> = [
            "model.visual.blocks.0.attn.qkv.weight",
            "model.visual.merger.fc.weight",
            "mtp.fc.weight",
            "model.language_model.norm.weight",
        ]
        .into_iter()
        .map(|n| (n.to_string(), t.clone()))
        .collect();
        candle_core::safetensors::save(&tensors, dir.join("model-00001.safetensors")).unwrap();
        let mut unread = unread_weights(&dir);
        unread.sort();
        assert_eq!(
            unread,
            [
                ("multi-token-prediction layer".to_string(), 1),
                ("vision tower".to_string(), 2)
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
