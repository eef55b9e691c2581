//! `PIPELINE.toml`: what a run uses and how each of LAMAR's models is trained.
//!
//! Every table is typed and refuses unknown keys, so a misspelt key fails with its line before
//! any work starts. A setting that is left out takes the default of the `lamar` command it is
//! passed to (`lamar train dft --help` and so on): the pipeline never keeps defaults of its own.
//! Relative paths are relative to the folder of the TOML file.

use crate::PipelineError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Folder every stage writes under, one subfolder per stage.
    pub out: PathBuf,
    /// The MedDec documents, or a synthetic corpus made by `lamar synth`.
    pub data: DataConfig,
    /// The base model every variant starts from.
    pub model: ModelConfig,
    /// Model 1: LoRA + Dynamic Fine-Tuning on the training split (always trained: Models 2 and
    /// 3 start from it or from its labels).
    #[serde(default)]
    pub dft: DftConfig,
    /// Model 2: GRPO on top of Model 1 (left out: not trained).
    pub grpo: Option<GrpoConfig>,
    /// Model 3: DFT on the training split plus Model 1's most confident pseudo-labels of
    /// unlabeled notes (left out: not trained).
    pub pseudo: Option<PseudoConfig>,
    /// The encoder baseline: a BERT/RoBERTa token classifier, one more voice of the ensemble
    /// (left out: not trained).
    pub encoder: Option<EncoderConfig>,
    /// Tagging the validation and test documents with every model.
    #[serde(default)]
    pub infer: InferConfig,
    /// Span-Cluster Consensus, its thresholds tuned on the validation split.
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// The browser viewer of every model and the ensemble on the test split.
    #[serde(default)]
    pub view: ViewConfig,
}

/// Where the documents come from: a MedDec layout (all six paths) or `synthetic`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A synthetic corpus (`lamar synth`) instead of MedDec.
    pub synthetic: Option<SyntheticData>,
    /// MedDec's gold JSON folder (`data/`).
    pub gold_dir: Option<PathBuf>,
    /// The raw notes, `ID.txt` each.
    pub raw_text_dir: Option<PathBuf>,
    /// MedDec's `stats.csv` (demographic groups, for the worst-group score).
    pub stats_csv: Option<PathBuf>,
    /// Split files, one document id per line.
    pub train_split: Option<PathBuf>,
    /// See `train_split`.
    pub val_split: Option<PathBuf>,
    /// See `train_split`.
    pub test_split: Option<PathBuf>,
}

/// A synthetic corpus in the MedDec layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticData {
    /// Documents (`lamar synth --docs`).
    pub docs: Option<usize>,
    /// Seed (`lamar synth --seed`).
    pub seed: Option<u64>,
    /// Unlabeled synthetic discharge summaries written into a NOTEEVENTS.csv next to the
    /// corpus, for Model 3 (`lamar synth --unlabeled-notes`).
    pub unlabeled_notes: Option<usize>,
}

/// The base model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A local Hugging Face snapshot folder (config.json, safetensors, tokenizer.json).
    pub snapshot: Option<PathBuf>,
    /// Instead of a snapshot: a tiny randomly initialised Qwen3.5 made with this seed (`lamar
    /// export tiny`), for demos.
    pub tiny_seed: Option<u64>,
    /// Instead of a snapshot: the tiny Qwen3.5 pre-trained to copy windows of notes (`lamar
    /// export tiny --copier`; prompt it with "Tag the decisions:\n{raw_text}"), for demos
    /// where the models learn to tag.
    #[serde(default)]
    pub tiny_copier: bool,
    /// Where to train and tag.
    #[serde(default)]
    pub device: DeviceChoice,
    /// Precision of the frozen weights: `auto`, `f32`, `bf16`, `f16`.
    pub dtype: Option<String>,
    /// A task prompt with a `{raw_text}` field (default: lamar's built-in prompt, LAMAR's).
    pub prompt_file: Option<PathBuf>,
    /// The task prompt itself, instead of `prompt_file` (written to OUT/prompt.txt).
    pub prompt: Option<String>,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when this build has it and a GPU is there, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// An NVIDIA GPU (a build with `--features cuda`).
    Cuda,
}

impl DeviceChoice {
    /// The value of the commands' `--device`.
    pub fn as_arg(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        }
    }
}

/// `lamar train dft`'s settings (Models 1 and 3); each left out takes the command's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DftConfig {
    /// `dft` or `ce`.
    pub loss: Option<String>,
    /// LoRA rank.
    pub rank: Option<usize>,
    /// LoRA alpha.
    pub alpha: Option<f64>,
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// Share of the steps warming up.
    pub warmup_ratio: Option<f64>,
    /// AdamW weight decay.
    pub weight_decay: Option<f64>,
    /// Rows per optimiser step.
    pub accumulation: Option<usize>,
    /// Passes over the data.
    pub epochs: Option<usize>,
    /// Longest sequence in tokens.
    pub max_length: Option<usize>,
    /// Seed of the adapter and the data order.
    pub seed: Option<u64>,
    /// Optimiser steps between checkpoints.
    pub checkpoint_every: Option<usize>,
    /// TF32 tensor cores for the adapter's products on CUDA.
    #[serde(default)]
    pub tf32: bool,
    /// Train (Models 1-3) on windows of whole lines of the notes of at most this many
    /// characters (`lamar tag --window-chars`), for quick runs with small models; tagging
    /// still reads whole notes. LAMAR trains on whole notes (left out).
    pub window_chars: Option<usize>,
}

/// `lamar train grpo`'s settings (Model 2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoConfig {
    /// Rewards: built-in names or plugin paths, each optionally `=WEIGHT`.
    pub rewards: Option<Vec<String>>,
    /// Completions per prompt.
    pub generations: Option<usize>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Min-p of the sampler.
    pub min_p: Option<f64>,
    /// Most tokens per completion.
    pub max_completion: Option<usize>,
    /// LoRA rank of the new adapter.
    pub rank: Option<usize>,
    /// LoRA alpha.
    pub alpha: Option<f64>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Passes over the data.
    pub epochs: Option<usize>,
    /// Stop after this many steps.
    pub max_steps: Option<usize>,
    /// Seed of the adapter and the data order.
    pub seed: Option<u64>,
    /// Seed of the sampler.
    pub sampling_seed: Option<u64>,
    /// Steps between checkpoints.
    pub checkpoint_every: Option<usize>,
}

/// Model 3's pseudo-labels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudoConfig {
    /// MIMIC-III's NOTEEVENTS.csv(.gz); with a synthetic corpus that has `unlabeled_notes`,
    /// the one `lamar synth` wrote.
    pub noteevents: Option<PathBuf>,
    /// `hashed` (dependency-free) or `qwen3` (needs `embedding_model`).
    pub embedder: Option<String>,
    /// A Qwen3-Embedding snapshot folder, for `embedder = "qwen3"`.
    pub embedding_model: Option<PathBuf>,
    /// Dimensions of the hashed embedder.
    pub dim: Option<usize>,
    /// Notes retrieved per document.
    pub k: Option<usize>,
    /// Candidates per document before the unique assignment.
    pub candidates: Option<usize>,
    /// `cpu` or `gpu` (wgpu) for the nearest-neighbour search.
    pub retrieve_device: Option<String>,
    /// Entropy quantile at or below which pseudo-labels are kept.
    pub quantile: Option<f64>,
}

/// The encoder baseline: `lamar train encoder`'s settings (each left out takes the command's
/// default) and its base checkpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// A local BERT/RoBERTa/XLM-R checkpoint folder (config.json, safetensors, tokenizer.json).
    pub model: Option<PathBuf>,
    /// Instead of a checkpoint: a tiny random BERT made with this seed (`lamar export
    /// tiny-encoder`), for demos.
    pub tiny_seed: Option<u64>,
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// AdamW weight decay.
    pub weight_decay: Option<f64>,
    /// Share of the steps warming up.
    pub warmup_ratio: Option<f64>,
    /// Passes over the documents.
    pub epochs: Option<usize>,
    /// Crops per optimiser step.
    pub batch_size: Option<usize>,
    /// Longest window in tokens (training and tagging).
    pub max_tokens: Option<usize>,
    /// Seed of the head, the crops, the order and dropout.
    pub seed: Option<u64>,
    /// Optimiser steps between checkpoints.
    pub checkpoint_every: Option<usize>,
}

/// `lamar infer`'s settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferConfig {
    /// Documents decoded together.
    pub batch_size: Option<usize>,
    /// Most new tokens per document.
    pub max_new_tokens: Option<usize>,
    /// New-token limit as a multiple of the document's tokens.
    pub length_factor: Option<f64>,
    /// Tag in windows of whole lines of at most this many characters (`lamar infer
    /// --window-chars`; `lamar offsets` joins them), for models trained on windows; the
    /// pseudo-labels are then windows of the notes too. LAMAR tags whole notes (left out).
    pub window_chars: Option<usize>,
}

/// `lamar tune`'s settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    /// Tuning trials.
    pub trials: Option<usize>,
    /// Tuner seed.
    pub seed: Option<u64>,
}

/// The viewer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// Write the viewer site.
    pub enabled: bool,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig { enabled: true }
    }
}

/// The real MedDec paths of `[data]`, with their keys.
pub(crate) fn meddec_paths(data: &DataConfig) -> [(&'static str, &Option<PathBuf>); 6] {
    [
        ("data.gold_dir", &data.gold_dir),
        ("data.raw_text_dir", &data.raw_text_dir),
        ("data.stats_csv", &data.stats_csv),
        ("data.train_split", &data.train_split),
        ("data.val_split", &data.val_split),
        ("data.test_split", &data.test_split),
    ]
}

impl PipelineConfig {
    /// Parses `text` (the contents of `file`, named in errors) and makes its relative paths
    /// relative to `base`.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<PipelineConfig, PipelineError> {
        let mut config: PipelineConfig = toml::from_str(text).map_err(|e| PipelineError::Toml {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        config.resolve(base);
        Ok(config)
    }

    /// Reads and parses a pipeline file.
    pub fn read(file: &Path) -> Result<PipelineConfig, PipelineError> {
        let text = std::fs::read_to_string(file).map_err(|e| PipelineError::Io {
            path: file.to_path_buf(),
            message: e.to_string(),
        })?;
        PipelineConfig::parse(&text, file, file.parent().unwrap_or(Path::new("")))
    }

    fn resolve(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let join_opt = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                join(p);
            }
        };
        join(&mut self.out);
        let d = &mut self.data;
        for p in [
            &mut d.gold_dir,
            &mut d.raw_text_dir,
            &mut d.stats_csv,
            &mut d.train_split,
            &mut d.val_split,
            &mut d.test_split,
        ] {
            join_opt(p);
        }
        join_opt(&mut self.model.snapshot);
        join_opt(&mut self.model.prompt_file);
        if let Some(encoder) = &mut self.encoder {
            join_opt(&mut encoder.model);
        }
        if let Some(pseudo) = &mut self.pseudo {
            join_opt(&mut pseudo.noteevents);
            join_opt(&mut pseudo.embedding_model);
        }
        if let Some(grpo) = &mut self.grpo {
            // A reward that names a .wasm file is a path.
            for reward in grpo.rewards.iter_mut().flatten() {
                let (name, weight) = match reward.split_once('=') {
                    Some((n, w)) => (n.to_string(), Some(w.to_string())),
                    None => (reward.clone(), None),
                };
                if name.ends_with(".wasm") && Path::new(&name).is_relative() {
                    let path = base.join(&name).to_string_lossy().into_owned();
                    *reward = match weight {
                        Some(w) => format!("{path}={w}"),
                        None => path,
                    };
                }
            }
        }
    }

    /// Checks what can be checked before any work starts: one source of documents and of the
    /// model, the files named exist, the device is available in this build.
    pub fn validate(&self, cuda_built: bool) -> Result<(), PipelineError> {
        let invalid = |key: &str, message: String| PipelineError::Invalid {
            key: key.to_string(),
            message,
        };
        let real = meddec_paths(&self.data);
        let given = real.iter().filter(|(_, p)| p.is_some()).count();
        match (&self.data.synthetic, given) {
            (Some(_), 0) => {}
            (Some(_), _) => {
                return Err(invalid(
                    "data.synthetic",
                    "give either a synthetic corpus or MedDec's paths, not both".into(),
                ));
            }
            (None, 6) => {}
            (None, _) => {
                let missing: Vec<&str> = real
                    .iter()
                    .filter(|(_, p)| p.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                return Err(invalid(
                    missing[0],
                    format!(
                        "missing (MedDec data needs all of: {}; or [data.synthetic])",
                        missing.join(", ")
                    ),
                ));
            }
        }
        for (key, path) in real {
            if let Some(path) = path {
                exists(key, path)?;
            }
        }
        let sources = [
            self.model.snapshot.is_some(),
            self.model.tiny_seed.is_some(),
            self.model.tiny_copier,
        ];
        if sources.iter().filter(|&&s| s).count() != 1 {
            return Err(invalid(
                "model.snapshot",
                "give exactly one of model.snapshot, model.tiny_seed and model.tiny_copier".into(),
            ));
        }
        if let Some(snapshot) = &self.model.snapshot {
            exists("model.snapshot", &snapshot.join("config.json"))?;
        }
        if let Some(prompt) = &self.model.prompt_file {
            exists("model.prompt_file", prompt)?;
            if self.model.prompt.is_some() {
                return Err(invalid(
                    "model.prompt",
                    "give model.prompt or model.prompt_file, not both".into(),
                ));
            }
        }
        if let Some(prompt) = &self.model.prompt
            && !prompt.contains("{raw_text}")
        {
            return Err(invalid(
                "model.prompt",
                "the prompt has no {raw_text} field for the note".into(),
            ));
        }
        if self.model.device == DeviceChoice::Cuda && !cuda_built {
            return Err(invalid(
                "model.device",
                "\"cuda\" needs a lamar built with `--features cuda` (this one runs on the CPU \
                 only)"
                    .into(),
            ));
        }
        if let Some(pseudo) = &self.pseudo {
            let synthetic_notes = self
                .data
                .synthetic
                .as_ref()
                .and_then(|s| s.unlabeled_notes)
                .is_some();
            match (&pseudo.noteevents, synthetic_notes) {
                (Some(path), false) => exists("pseudo.noteevents", path)?,
                (None, true) => {}
                (Some(_), true) => {
                    return Err(invalid(
                        "pseudo.noteevents",
                        "the synthetic corpus already writes its NOTEEVENTS.csv \
                         (data.synthetic.unlabeled_notes)"
                            .into(),
                    ));
                }
                (None, false) => {
                    return Err(invalid(
                        "pseudo.noteevents",
                        "missing: MIMIC-III's NOTEEVENTS.csv (or \
                         data.synthetic.unlabeled_notes)"
                            .into(),
                    ));
                }
            }
            let qwen3 = pseudo.embedder.as_deref() == Some("qwen3");
            match (&pseudo.embedding_model, qwen3) {
                (Some(model), true) => {
                    exists("pseudo.embedding_model", &model.join("config.json"))?
                }
                (None, true) => {
                    return Err(invalid(
                        "pseudo.embedding_model",
                        "missing: embedder = \"qwen3\" needs a Qwen3-Embedding snapshot".into(),
                    ));
                }
                (Some(_), false) => {
                    return Err(invalid(
                        "pseudo.embedding_model",
                        "only used with embedder = \"qwen3\"".into(),
                    ));
                }
                (None, false) => {}
            }
        }
        if let Some(encoder) = &self.encoder {
            match (&encoder.model, encoder.tiny_seed) {
                (Some(model), None) => exists("encoder.model", &model.join("config.json"))?,
                (None, Some(_)) => {}
                _ => {
                    return Err(invalid(
                        "encoder.model",
                        "give exactly one of encoder.model and encoder.tiny_seed".into(),
                    ));
                }
            }
        }
        if let Some(grpo) = &self.grpo {
            for reward in grpo.rewards.iter().flatten() {
                let name = reward.split_once('=').map_or(reward.as_str(), |(n, _)| n);
                if name.ends_with(".wasm") {
                    exists("grpo.rewards", Path::new(name))?;
                }
            }
        }
        Ok(())
    }
}

fn exists(key: &str, path: &Path) -> Result<(), PipelineError> {
    if path.exists() {
        Ok(())
    } else {
        Err(PipelineError::Invalid {
            key: key.to_string(),
            message: format!("{} does not exist", path.display()),
        })
    }
}
