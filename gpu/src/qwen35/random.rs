//! Randomly initialised snapshots: a `config.json` and a `model.safetensors` with every weight
//! the text model reads, drawn from a seeded stream. For demos, tests and benchmarks that need
//! a model of some shape but no trained weights (nothing useful comes out of one).

use super::config::Qwen35Config;
use super::model::Qwen35Model;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Writes `config.json` (the given text) and `model.safetensors` (f32, text-only key names
/// `model.*`) into `dir`. Matrices are uniform in `±1/√fan_in`, token embeddings (and an untied
/// head) in `±0.5`; norm weights, decay and bias parameters small.
pub fn write_random_snapshot(dir: &Path, config_json: &str, seed: u64) -> Result<()> {
    let config = Qwen35Config::from_json(config_json).map_err(candle_core::Error::wrap)?;
    // Building the model on a variable map records every weight's name and shape.
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    Qwen35Model::new(&config, vb)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut names: Vec<(String, candle_core::Var)> = vars
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in names {
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let fan_in = *dims.last().unwrap_or(&1) as f32;
        let bound = if name.ends_with("embed_tokens.weight") || name == "lm_head.weight" {
            // Token vectors of norm ≈ √(hidden/12): the frozen (tied) head's logits then span
            // a useful range, so that a LoRA adapter trained on this model can make any token
            // likely (with ±1/√hidden every logit stays near 0 and training stalls).
            0.5
        } else if dims.len() >= 2 {
            fan_in.sqrt().recip()
        } else {
            0.1
        };
        let values: Vec<f32> = (0..count)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, dims, &Device::Cpu)?)?;
        debug_assert!(!name.is_empty());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), config_json)?;
    vars.save(dir.join("model.safetensors"))
}

/// The configuration of a tiny text model (3 DeltaNet layers + 1 attention layer, width 64,
/// the layout of the golden test model) for a vocabulary of `vocab` tokens.
pub fn tiny_config(vocab: usize) -> String {
    serde_json::json!({
        "architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text",
        "vocab_size": vocab, "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
        "linear_key_head_dim": 16, "linear_value_head_dim": 16, "linear_conv_kernel_dim": 4,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
        "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"],
        "rope_parameters": {"rope_theta": 10000.0, "partial_rotary_factor": 0.25}
    })
    .to_string()
}

/// The tiny tokenizer and chat template lamar's tests and demo use (a byte-level BPE of 1,200
/// tokens trained on the synthetic corpus, with Qwen's chat special tokens and Qwen3's chat
/// template; made by `gpu/tools/make_chat_golden.py`).
pub const TINY_CHAT_FILES: [(&str, &str); 3] = [
    (
        "tokenizer.json",
        include_str!("../../assets/tiny-chat/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_str!("../../assets/tiny-chat/tokenizer_config.json"),
    ),
    (
        "chat_template.jinja",
        include_str!("../../assets/tiny-chat/chat_template.jinja"),
    ),
];

/// Writes a complete tiny random snapshot into `dir`: [`TINY_CHAT_FILES`], then a
/// [`tiny_config`] model sized to that tokenizer with random weights from `seed`. Something
/// `lamar infer` can load without any downloaded weights (it tags nothing useful).
pub fn write_tiny_snapshot(dir: &Path, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in TINY_CHAT_FILES {
        std::fs::write(dir.join(name), text)?;
    }
    let vocab = crate::tokenizer::TextTokenizer::from_snapshot(dir)
        .map_err(candle_core::Error::wrap)?
        .vocab_size();
    write_random_snapshot(dir, &tiny_config(vocab), seed)
}

/// The tiny model pre-trained to copy (`tests/golden/qwen35_tiny_copier`, see its README):
/// given the prompt `Tag the decisions:\n{raw_text}` filled with a window of at most 160
/// characters of a synthetic note, it answers with the window, untagged. Its configuration and
/// weights; the tokenizer and chat template are [`TINY_CHAT_FILES`].
const COPIER_FILES: [(&str, &[u8]); 3] = [
    (
        "config.json",
        include_bytes!("../../../tests/golden/qwen35_tiny_copier/config.json"),
    ),
    (
        "generation_config.json",
        include_bytes!("../../../tests/golden/qwen35_tiny_copier/generation_config.json"),
    ),
    (
        "model.safetensors",
        include_bytes!("../../../tests/golden/qwen35_tiny_copier/model.safetensors"),
    ),
];

/// The prompt the tiny copier was pre-trained with.
pub const COPIER_PROMPT: &str = "Tag the decisions:\n{raw_text}";

/// Writes the tiny copier (`tests/golden/qwen35_tiny_copier`, compiled in) into `dir`: a
/// starting point from which
/// LoRA training learns to tag in minutes on a CPU, where a random tiny model cannot even
/// learn to copy.
pub fn write_tiny_copier(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in TINY_CHAT_FILES {
        std::fs::write(dir.join(name), text)?;
    }
    for (name, bytes) in COPIER_FILES {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 8, "linear_num_key_heads": 1, "linear_num_value_heads": 2,
        "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_conv_kernel_dim": 4,
        "rms_norm_eps": 1e-6, "layer_types": ["linear_attention", "full_attention"],
        "tie_word_embeddings": true,
        "rope_parameters": {"rope_theta": 10000.0, "partial_rotary_factor": 0.5}}"#;

    #[test]
    fn weights_follow_the_seed_and_the_stated_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        write_random_snapshot(&a, CONFIG, 7).unwrap();
        write_random_snapshot(&b, CONFIG, 7).unwrap();
        write_random_snapshot(&c, CONFIG, 8).unwrap();
        let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
        assert_eq!(bytes(&a), bytes(&b), "one seed, one snapshot");
        assert_ne!(bytes(&a), bytes(&c), "another seed, other weights");
        let weights =
            candle_core::safetensors::load(a.join("model.safetensors"), &Device::Cpu).unwrap();
        assert!(weights.contains_key("model.layers.1.self_attn.q_proj.weight"));
        assert!(weights.contains_key("model.layers.0.linear_attn.A_log"));
        for (name, t) in &weights {
            let dims = t.dims();
            let bound = if name.ends_with("embed_tokens.weight") {
                0.5
            } else if dims.len() >= 2 {
                (*dims.last().unwrap() as f32).sqrt().recip()
            } else {
                0.1
            };
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                v.iter().all(|x| x.abs() <= bound),
                "{name} outside ±{bound}"
            );
            assert!(
                v.len() < 2 || v.iter().any(|x| *x != v[0]),
                "{name} is constant"
            );
        }
    }

    #[test]
    fn a_random_snapshot_generates_what_its_logits_say() {
        let dir = tempfile::tempdir().unwrap();
        write_random_snapshot(dir.path(), CONFIG, 7).unwrap();
        let model = super::super::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
        let out = model.greedy(&[1, 2, 3], 5, None, &Device::Cpu).unwrap();
        assert_eq!(out.len(), 5);
        // Each greedy token (cached decoding) is the argmax of the cache-free forward pass over
        // everything before it, and the logits are not flat.
        let mut seq = vec![1u32, 2, 3];
        for &token in &out {
            let ids = Tensor::new(seq.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = model.forward_sequence(&ids, None).unwrap();
            let last: Vec<f32> = logits
                .squeeze(0)
                .unwrap()
                .get(seq.len() - 1)
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(last.iter().any(|x| *x != last[0]), "flat logits");
            let best = (0..last.len())
                .max_by(|&i, &j| last[i].total_cmp(&last[j]))
                .unwrap();
            assert_eq!(token as usize, best, "after {seq:?}");
            seq.push(token);
        }
    }
}
