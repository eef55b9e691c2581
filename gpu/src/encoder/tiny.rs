//! A tiny randomly initialised BERT ([`EncoderConfig::tiny`]) on lamar's tiny tokenizer: the
//! base the demo and the tests fine-tune, with no downloaded weights.

use super::EncoderError;
use super::config::EncoderConfig;
use super::model::TokenClassifier;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use lamar_core::bio::LABELS;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A normal draw with standard deviation `stdev` (Box–Muller).
fn normal(rng: &mut ChaCha8Rng, stdev: f64) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * stdev) as f32
}

/// A tensor of `shape` with normal values of standard deviation `stdev` drawn from `rng`
/// (Candle's own random tensors cannot be seeded on the CPU).
pub(crate) fn normal_tensor(
    rng: &mut ChaCha8Rng,
    shape: &candle_core::Shape,
    stdev: f64,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..shape.elem_count())
        .map(|_| normal(rng, stdev))
        .collect();
    Tensor::from_vec(values, shape, device)
}

/// Writes a tiny random BERT base checkpoint into `dir` (`config.json`, `model.safetensors`
/// without a head, `tokenizer.json`): weights normal with standard deviation 0.02 from `seed`,
/// layer norms 1 and biases 0, as transformers initialises them.
pub fn write_tiny_encoder(dir: &Path, seed: u64) -> Result<(), EncoderError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EncoderError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (name, tokenizer) = crate::qwen35::random::TINY_CHAT_FILES[0];
    std::fs::write(dir.join(name), tokenizer).map_err(io(&dir.join(name)))?;
    let vocab = tokenizers::Tokenizer::from_file(dir.join(name))
        .map_err(|e| EncoderError::Config {
            path: dir.join(name),
            message: e.to_string(),
        })?
        .get_vocab_size(true);
    let config = EncoderConfig::tiny(vocab);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    TokenClassifier::new(&config, LABELS, vb)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors = std::collections::BTreeMap::new();
    {
        let data = varmap.data().lock().map_err(|_| EncoderError::Poisoned)?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            if name.starts_with("classifier.") {
                continue;
            }
            let shape = data[name].shape().clone();
            let tensor = if name.ends_with("LayerNorm.weight") {
                Tensor::ones(&shape, DType::F32, &Device::Cpu)?
            } else if name.ends_with("bias") {
                Tensor::zeros(&shape, DType::F32, &Device::Cpu)?
            } else {
                normal_tensor(&mut rng, &shape, config.initializer_range, &Device::Cpu)?
            };
            tensors.insert(name.clone(), tensor);
        }
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &weights)?;
    let config_path = dir.join("config.json");
    let mut json = serde_json::to_value(&config).map_err(|e| EncoderError::Config {
        path: config_path.clone(),
        message: e.to_string(),
    })?;
    if let Some(map) = json.as_object_mut() {
        map.insert("architectures".into(), serde_json::json!(["BertModel"]));
    }
    std::fs::write(&config_path, json.to_string()).map_err(io(&config_path))?;
    Ok(())
}
