//! Fine-tuning the encoder baseline (lamar-spec §9): the whole encoder and a fresh linear head
//! trained on BIO labels with cross-entropy, AdamW, a linear warm-up then cosine decay; each
//! step a batch of random crops of at most the encoder's length, one per document, as the
//! reference's data loader draws them.
//!
//! The trained model is written as a transformers token-classification checkpoint:
//! `model.safetensors` (every tensor under transformers' names), `config.json` (the base's,
//! with the 19 labels), the tokenizer files, `metrics.jsonl` (one line per step, flushed as
//! it is made) and `loss.svg`.

use super::EncoderError;
use super::config::EncoderConfig;
use super::model::{Dropout, TokenClassifier, token_cross_entropy};
use super::tiny::normal_tensor;
use super::tokens::{EncoderTokenizer, padded_batch};
use crate::train::checkpoint::{Checkpoints, Fingerprint};
use crate::train::metrics::{Logged, MetricsLog, read_metrics, step_chart};
use crate::train::optim::{AdamW, AdamWConfig, warmup_cosine, warmup_steps};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use lamar_core::Span;
use lamar_core::bio::{self, LABELS};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A document and its gold spans.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledText {
    /// Document id.
    pub id: String,
    /// The text.
    pub text: String,
    /// Gold spans (code points of `text`).
    pub spans: Vec<Span>,
}

/// The recipe; the defaults are the reference's.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderTrainConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Share of the steps spent warming up.
    pub warmup_ratio: f64,
    /// Passes over the documents.
    pub epochs: usize,
    /// Crops per step.
    pub batch_size: usize,
    /// Longest window in tokens, special tokens included (at most what the position
    /// embeddings allow).
    pub max_tokens: usize,
    /// Seed of the head's initialisation, the crops, the order and dropout.
    pub seed: u64,
}

impl Default for EncoderTrainConfig {
    fn default() -> Self {
        EncoderTrainConfig {
            learning_rate: 2e-5,
            weight_decay: 0.001,
            warmup_ratio: 0.05,
            epochs: 250,
            batch_size: 32,
            max_tokens: 512,
            seed: 3407,
        }
    }
}

/// One optimiser step, as logged in `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderStep {
    /// 1-based step.
    pub step: usize,
    /// Steps in the run.
    pub total_steps: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean cross-entropy per labelled token.
    pub loss: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Labelled tokens in the step.
    pub tokens: usize,
    /// Seconds the step took.
    pub seconds: f64,
}

impl Logged for EncoderStep {
    fn step(&self) -> usize {
        self.step
    }
}

/// What a training run did.
#[derive(Debug, Clone)]
pub struct EncoderOutcome {
    /// The last step.
    pub last: EncoderStep,
    /// Documents trained on.
    pub documents: usize,
    /// Gold spans placed on tokens, and those left out (start on no token; overlapping a
    /// span placed before).
    pub placed: usize,
    /// Gold spans whose start lies on no token.
    pub unplaced: usize,
    /// Gold spans left out because an earlier span holds their tokens (BIO cannot nest).
    pub overlapping: usize,
    /// The loss curve (SVG).
    pub curve: PathBuf,
}

/// A document ready for training: its tokens and their labels.
struct Prepared {
    ids: Vec<u32>,
    labels: Vec<u8>,
}

/// Renames a base checkpoint's tensor to the token classifier's name, or drops it (pooler,
/// language-model heads). Old BERT checkpoints call layer-norm parameters gamma and beta.
fn classifier_name(name: &str, prefix: &str) -> Option<String> {
    let name = name
        .replace("LayerNorm.gamma", "LayerNorm.weight")
        .replace("LayerNorm.beta", "LayerNorm.bias");
    let inner = name
        .strip_prefix(prefix)
        .and_then(|n| n.strip_prefix('.'))
        .unwrap_or(&name);
    if inner.starts_with("embeddings.") || inner.starts_with("encoder.") {
        if inner.ends_with("position_ids") {
            return None;
        }
        Some(format!("{prefix}.{inner}"))
    } else if name.starts_with("classifier.") {
        Some(name)
    } else {
        None
    }
}

/// A job: fine-tune the encoder checkpoint `model` into `out`. On the CPU, the same job gives
/// the same model, bit for bit.
pub struct EncoderJob {
    /// The base checkpoint (config.json, *.safetensors, tokenizer.json).
    pub model: PathBuf,
    /// Where the trained classifier goes.
    pub out: PathBuf,
    /// The recipe.
    pub config: EncoderTrainConfig,
    /// Where to train.
    pub device: Device,
    /// Optimiser steps between checkpoints (`OUT/checkpoint`: weights, optimiser, step; one
    /// is also written at each epoch's end).
    pub checkpoint_every: usize,
    /// Continue from `OUT/checkpoint` (same data and settings) when there is one.
    pub resume: bool,
}

/// A generator for one purpose (`stream`: 1 the epochs' orders, 2 the steps' crops and dropout)
/// and one index, from the run's seed.
fn derived_rng(seed: u64, stream: u64, index: usize) -> ChaCha8Rng {
    // ChaCha's 2^64 streams of one key are independent; each (stream, index) gets its own.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((stream << 40) | index as u64);
    rng
}

/// What a checkpoint must have been made with: the documents and the settings.
fn fingerprint(
    documents: &[LabelledText],
    settings: &EncoderTrainConfig,
    config: &EncoderConfig,
) -> Fingerprint {
    let mut hash = Sha256::new();
    for doc in documents {
        hash.update(doc.id.as_bytes());
        hash.update([0]);
        hash.update(doc.text.as_bytes());
        hash.update([0]);
        for span in &doc.spans {
            hash.update(format!("{span:?}").as_bytes());
        }
    }
    hash.update(format!("{settings:?}{config:?}").as_bytes());
    Fingerprint::from_digest(hash)
}

impl EncoderJob {
    /// Trains on `documents`; `on_start` learns the number of steps and how many a resumed
    /// checkpoint had done, `on_step` sees each step run.
    pub fn run(
        &self,
        documents: &[LabelledText],
        on_start: impl FnOnce(usize, usize),
        mut on_step: impl FnMut(&EncoderStep),
    ) -> Result<EncoderOutcome, EncoderError> {
        if documents.is_empty() {
            return Err(EncoderError::NoDocuments);
        }
        let c = &self.config;
        let config = EncoderConfig::from_dir(&self.model)?;
        let tokenizer = EncoderTokenizer::from_dir(&self.model, &config)?;
        let max_tokens = c.max_tokens.min(config.max_tokens());
        let content = tokenizer.content_tokens(max_tokens);

        // Tokens and labels of every document.
        let (mut placed, mut unplaced, mut overlapping) = (0, 0, 0);
        let mut prepared = Vec::with_capacity(documents.len());
        for doc in documents {
            let tokens = tokenizer.tokenize(&doc.text)?;
            let assignment = bio::assign(&tokens.ranges, &doc.spans);
            placed += assignment.placed;
            unplaced += assignment.unplaced.len();
            overlapping += assignment.overlapping;
            prepared.push(Prepared {
                ids: tokens.ids,
                labels: assignment.labels,
            });
        }

        // The model: the base's tensors and a fresh head in one map, which the model must
        // then read without creating any variable of its own.
        let varmap = VarMap::new();
        let base = super::backbone::read_weights(&self.model, &self.device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
        let mut named: Vec<(String, Var)> = {
            let mut data = varmap.data().lock().map_err(|_| EncoderError::Poisoned)?;
            for (name, tensor) in base {
                if let Some(name) = classifier_name(&name, config.prefix()) {
                    data.insert(name, Var::from_tensor(&tensor.to_dtype(DType::F32)?)?);
                }
            }
            if !data.contains_key("classifier.weight") {
                // A fresh head, seeded (normal weights, zero bias, as transformers makes it).
                let shape = candle_core::Shape::from((LABELS, config.hidden_size));
                let weight =
                    normal_tensor(&mut rng, &shape, config.initializer_range, &self.device)?;
                data.insert("classifier.weight".into(), Var::from_tensor(&weight)?);
                let bias = Tensor::zeros(LABELS, DType::F32, &self.device)?;
                data.insert("classifier.bias".into(), Var::from_tensor(&bias)?);
            }
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &self.device);
        let model = TokenClassifier::new(&config, LABELS, vb)?;
        let made = varmap.all_vars().len();
        if made != named.len() {
            let data = varmap.data().lock().map_err(|_| EncoderError::Poisoned)?;
            let missing: Vec<&str> = data
                .keys()
                .filter(|k| !named.iter().any(|(n, _)| n == *k))
                .map(String::as_str)
                .collect();
            return Err(EncoderError::Config {
                path: self.model.clone(),
                message: format!("the checkpoint lacks {}", missing.join(", ")),
            });
        }
        // Fixed order of the variables for the optimiser.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let vars: Vec<&Var> = named.iter().map(|(_, v)| v).collect();
        let mut optimiser = AdamW::new(
            &vars,
            AdamWConfig {
                weight_decay: c.weight_decay,
                ..AdamWConfig::default()
            },
        )?;

        let batch = c.batch_size.max(1);
        let per_epoch = prepared.len().div_ceil(batch);
        let total = per_epoch * c.epochs.max(1);
        let warmup = warmup_steps(total, c.warmup_ratio);
        std::fs::create_dir_all(&self.out).map_err(|source| EncoderError::Io {
            path: self.out.clone(),
            source,
        })?;
        let checkpoints = Checkpoints {
            dir: self.out.clone(),
            every: self.checkpoint_every.max(1),
            resume: self.resume,
        };
        let fingerprint = fingerprint(documents, c, &config);
        let start = checkpoints.read(&mut optimiser, &fingerprint, &self.device)?;
        if start > 0 {
            let saved = checkpoints.last().join("model.safetensors");
            let tensors = candle_core::safetensors::load(&saved, &self.device)?;
            for (name, var) in &named {
                let tensor = tensors.get(name).ok_or_else(|| EncoderError::Config {
                    path: saved.clone(),
                    message: format!("no {name}"),
                })?;
                var.set(tensor)?;
            }
        }
        let metrics_path = self.out.join("metrics.jsonl");
        let mut metrics =
            MetricsLog::<EncoderStep>::open(&metrics_path, (start > 0).then_some(start))?;
        on_start(total, start);
        let mut step = 0;
        for epoch in 0..c.epochs.max(1) {
            let mut order: Vec<usize> = (0..prepared.len()).collect();
            order.shuffle(&mut derived_rng(c.seed, 1, epoch));
            for chunk in order.chunks(batch) {
                if step < start {
                    // Done before the checkpoint: the order and crops are replayed from the seed.
                    step += 1;
                    continue;
                }
                // Each step draws its crops and dropout from its own generator, so that a
                // resumed run continues exactly as an uninterrupted one.
                let mut rng = derived_rng(c.seed, 2, step);
                let started = std::time::Instant::now();
                let mut windows = Vec::with_capacity(chunk.len());
                let mut window_labels = Vec::with_capacity(chunk.len());
                for &d in chunk {
                    let doc = &prepared[d];
                    let len = doc.ids.len().min(content);
                    let start = if doc.ids.len() > len {
                        rng.random_range(0..=doc.ids.len() - len)
                    } else {
                        0
                    };
                    let labels: Vec<i64> = doc.labels[start..start + len]
                        .iter()
                        .map(|&l| i64::from(l))
                        .collect();
                    let ids = tokenizer.wrap(&doc.ids[start..start + len]);
                    let labels = if tokenizer.wraps() {
                        let mut l = vec![-100];
                        l.extend(labels);
                        l.push(-100);
                        l
                    } else {
                        labels
                    };
                    windows.push(ids);
                    window_labels.push(labels);
                }
                let (ids, mask) = padded_batch(&windows, tokenizer.pad(), &self.device)?;
                let longest = ids.dim(1)?;
                let labels: Vec<i64> = window_labels
                    .iter()
                    .flat_map(|l| {
                        l.iter()
                            .copied()
                            .chain(std::iter::repeat_n(-100, longest - l.len()))
                    })
                    .collect();
                let tokens = labels.iter().filter(|&&l| l >= 0).count();
                let lr = c.learning_rate * warmup_cosine(step, total, warmup);
                let logits = model.forward(&ids, &mask, Some(Dropout::new(&mut rng)))?;
                let loss_value = match token_cross_entropy(&logits, &labels)? {
                    Some(loss) => {
                        let grads = loss.backward()?;
                        let grads: Vec<Tensor> = vars
                            .iter()
                            .map(|v| match grads.get(v.as_tensor()) {
                                Some(g) => Ok(g.clone()),
                                None => v.as_tensor().zeros_like(),
                            })
                            .collect::<candle_core::Result<_>>()?;
                        optimiser.step(&vars, &grads, lr)?;
                        loss.to_dtype(DType::F64)?.to_scalar::<f64>()?
                    }
                    None => 0.0,
                };
                step += 1;
                let report = EncoderStep {
                    step,
                    total_steps: total,
                    epoch,
                    loss: loss_value,
                    learning_rate: lr,
                    tokens,
                    seconds: started.elapsed().as_secs_f64(),
                };
                metrics.append(&report)?;
                on_step(&report);
                if step % checkpoints.every == 0 || step == (epoch + 1) * per_epoch {
                    checkpoints.write_files(
                        |dir| {
                            varmap.save(dir.join("model.safetensors"))?;
                            Ok(vec!["model.safetensors"])
                        },
                        &optimiser,
                        step,
                        &fingerprint,
                        &[],
                    )?;
                }
            }
        }
        self.save(&varmap, &config)?;
        let reports: Vec<EncoderStep> = read_metrics(&metrics_path)?;
        let last = reports.last().cloned().ok_or(EncoderError::NoDocuments)?;
        let curve = self.out.join("loss.svg");
        let svg = step_chart(
            &reports,
            "encoder: cross-entropy per labelled token",
            "nats per token",
            &[("cross-entropy", |r: &EncoderStep| r.loss)],
        );
        std::fs::write(&curve, svg).map_err(|source| EncoderError::Io {
            path: curve.clone(),
            source,
        })?;
        Ok(EncoderOutcome {
            last,
            documents: documents.len(),
            placed,
            unplaced,
            overlapping,
            curve,
        })
    }

    /// Writes the weights, the config with the labels, and the tokenizer files into `out`
    /// (the weights through a temporary file, so a killed run leaves no half-written model).
    fn save(&self, varmap: &VarMap, config: &EncoderConfig) -> Result<(), EncoderError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EncoderError::Io { path, source }
        };
        let weights = self.out.join("model.safetensors");
        let partial = self.out.join("model.safetensors.partial");
        varmap.save(&partial)?;
        std::fs::rename(&partial, &weights).map_err(io(&weights))?;
        let base_config = self.model.join("config.json");
        let text = std::fs::read_to_string(&base_config).map_err(io(&base_config))?;
        let mut json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| EncoderError::Config {
                path: base_config.clone(),
                message: e.to_string(),
            })?;
        let labels = label_names();
        if let Some(map) = json.as_object_mut() {
            let class = match config.family() {
                Ok(super::config::Family::Bert) => "BertForTokenClassification",
                _ => "RobertaForTokenClassification",
            };
            map.insert("architectures".into(), serde_json::json!([class]));
            map.insert("num_labels".into(), serde_json::json!(LABELS));
            map.insert(
                "id2label".into(),
                labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (i.to_string(), serde_json::json!(l)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            );
            map.insert(
                "label2id".into(),
                labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.clone(), serde_json::json!(i)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            );
        }
        let out_config = self.out.join("config.json");
        let pretty = serde_json::to_string_pretty(&json).map_err(|e| EncoderError::Config {
            path: out_config.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&out_config, pretty).map_err(io(&out_config))?;
        for name in TOKENIZER_FILES {
            let from = self.model.join(name);
            if from.is_file() {
                let to = self.out.join(name);
                std::fs::copy(&from, &to).map_err(io(&to))?;
            }
        }
        Ok(())
    }
}

/// Tokenizer files copied along with a trained model.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

/// The labels' names as the checkpoint's `id2label` gives them: `B-1` … `I-9`, `O`.
pub fn label_names() -> Vec<String> {
    (0..LABELS as u8)
        .map(|l| match bio::category_of(l) {
            Some(c) if l % 2 == 0 => format!("B-{}", c.id()),
            Some(c) => format!("I-{}", c.id()),
            None => "O".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_tensors_are_renamed_and_heads_dropped() {
        assert_eq!(
            classifier_name("embeddings.word_embeddings.weight", "bert").as_deref(),
            Some("bert.embeddings.word_embeddings.weight")
        );
        assert_eq!(
            classifier_name("roberta.encoder.layer.0.output.LayerNorm.gamma", "roberta").as_deref(),
            Some("roberta.encoder.layer.0.output.LayerNorm.weight")
        );
        assert_eq!(classifier_name("lm_head.dense.weight", "roberta"), None);
        assert_eq!(classifier_name("bert.pooler.dense.weight", "bert"), None);
        assert_eq!(
            classifier_name("bert.embeddings.position_ids", "bert"),
            None
        );
        assert_eq!(
            classifier_name("classifier.bias", "bert").as_deref(),
            Some("classifier.bias")
        );
    }

    #[test]
    fn label_names_follow_the_reference_numbering() {
        let names = label_names();
        assert_eq!(names.len(), 19);
        assert_eq!(names[0], "B-1");
        assert_eq!(names[1], "I-1");
        assert_eq!(names[17], "I-9");
        assert_eq!(names[18], "O");
    }
}
