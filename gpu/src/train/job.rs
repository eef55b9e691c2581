//! One whole fine-tuning run, as `lamar train dft`, the demo and a pipeline start it: a
//! snapshot folder and training rows in, an adapter folder out.
//!
//! [`DftJob::run`] checks every row (a tagged copy that is the raw text with balanced category
//! tags), renders and tokenizes it ([`super::data::example`]), loads the frozen model, makes a
//! fresh adapter or continues the last checkpoint, trains ([`super::trainer::train`]) while
//! logging each step to `OUT/metrics.jsonl`, then writes the adapter in PEFT's format and the
//! loss curve (`OUT/loss.svg`).

use super::checkpoint::Checkpoints;
use super::data::{Example, ExampleError, example};
use super::lora::{ALL_LINEAR, AdapterProducts, LoraShape, TrainableLora};
use super::metrics::{MetricsError, MetricsLog, loss_curve, read_metrics};
use super::trainer::{StepReport, TrainConfig, train};
use crate::chat::{ChatError, ChatTemplate};
use crate::qwen35::stopwatch::Stopwatch;
use crate::qwen35::{self, LoadError};
use crate::tokenizer::{TextTokenizer, TokenizerError};
use candle_core::{DType, Device};
use lamar_core::formats::rows::TrainingRow;
use lamar_core::formats::training::{TaggedRowError, check_tagged_row};
use lamar_core::prompt::TaskPrompt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A row's tagged copy is not a training target.
    #[error("row {row} (document {file_id}): {problem}")]
    BadTarget {
        /// 1-based row.
        row: usize,
        /// The row's document id.
        file_id: String,
        /// What is wrong.
        problem: TaggedRowError,
    },
    /// A row cannot be rendered as a training sequence.
    #[error("row {row} (document {file_id}): {problem}")]
    BadRow {
        /// 1-based row.
        row: usize,
        /// The row's document id.
        file_id: String,
        /// What is wrong.
        problem: ExampleError,
    },
    /// No rows.
    #[error("there are no training rows")]
    NoRows,
    /// A setting out of range.
    #[error("{0}")]
    Setting(String),
    /// The snapshot's weights.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The snapshot's tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The snapshot's chat template.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The metrics file.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The checkpoint to resume does not fit this model.
    #[error("{path}: {source}")]
    Resume {
        /// The checkpoint folder.
        path: PathBuf,
        /// Why it does not fit.
        source: candle_core::Error,
    },
    /// Writing the outputs.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Model 1's adapter (GRPO starts from it merged).
    #[error(transparent)]
    Adapter(#[from] crate::lora::AdapterError),
    /// A reward failed during GRPO and the run stopped (its last checkpoint is intact).
    #[error("step {step}, prompt {prompt_id}")]
    Reward {
        /// The optimiser step being prepared (1-based).
        step: usize,
        /// The prompt's document id.
        prompt_id: String,
        /// The reward and its failure.
        source: lamar_core::grpo::ScoringError,
    },
    /// The computation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A fine-tuning run.
#[derive(Debug, Clone)]
pub struct DftJob {
    /// The frozen model's snapshot folder.
    pub model: PathBuf,
    /// Folder for the adapter, metrics, curve and checkpoint.
    pub out: PathBuf,
    /// The task prompt the raw text is filled into.
    pub prompt: TaskPrompt,
    /// The adapter's rank, alpha and scaling.
    pub shape: LoraShape,
    /// Loss, optimiser, schedule and order.
    pub config: TrainConfig,
    /// Longest sequence in tokens (longer ones are cut at the right, and counted).
    pub max_length: usize,
    /// Optimiser steps between checkpoints.
    pub checkpoint_every: usize,
    /// Continue from `OUT/checkpoint` when there is one.
    pub resume: bool,
    /// Where to train.
    pub device: Device,
    /// Precision of the frozen model.
    pub dtype: DType,
    /// Time every stage of every step (waiting for the device after each: slower) and report
    /// the totals in [`DftOutcome::profile`].
    pub profile: bool,
    /// The dtype of the adapter's products (the weights and their gradients are f32 either
    /// way).
    pub adapter_products: AdapterProducts,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct DftOutcome {
    /// Training sequences.
    pub rows: usize,
    /// Of them, cut at the length limit.
    pub truncated: usize,
    /// The step the run resumed after (0 for a fresh run).
    pub resumed_at: usize,
    /// The last step's report.
    pub last: StepReport,
    /// The loss curve.
    pub curve: PathBuf,
    /// With [`DftJob::profile`]: `(stage, seconds, times)` over the whole run, largest first.
    pub profile: Vec<(&'static str, f64, usize)>,
}

/// Sequences of `rows` for `tokenizer` and `template`, each checked; an error names the row.
pub fn examples(
    rows: &[TrainingRow],
    tokenizer: &TextTokenizer,
    template: &ChatTemplate,
    prompt: &TaskPrompt,
    max_length: usize,
) -> Result<Vec<Example>, TrainError> {
    rows.iter()
        .enumerate()
        .map(|(k, row)| {
            check_tagged_row(row).map_err(|problem| TrainError::BadTarget {
                row: k + 1,
                file_id: row.file_id.clone(),
                problem,
            })?;
            example(
                tokenizer,
                template,
                prompt,
                &row.raw_text,
                &row.gold_span,
                max_length,
            )
            .map_err(|problem| TrainError::BadRow {
                row: k + 1,
                file_id: row.file_id.clone(),
                problem,
            })
        })
        .collect()
}

impl DftJob {
    /// Trains on `rows`; `on_step` sees every optimiser step (after it is logged), and
    /// `on_start` the number of steps the run will take and how many are already done.
    pub fn run(
        &self,
        rows: &[TrainingRow],
        on_start: impl FnOnce(usize, usize),
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<DftOutcome, TrainError> {
        let c = &self.config;
        if self.shape.rank == 0 || c.accumulation == 0 || c.epochs == 0 || self.max_length == 0 {
            return Err(TrainError::Setting(
                "the rank, accumulation, epochs and length limit must be at least 1".into(),
            ));
        }
        if rows.is_empty() {
            return Err(TrainError::NoRows);
        }
        let tokenizer = TextTokenizer::from_snapshot(&self.model)?;
        let template = ChatTemplate::from_snapshot(&self.model)?;
        let examples = examples(rows, &tokenizer, &template, &self.prompt, self.max_length)?;
        let mut model = qwen35::load(&self.model, self.dtype, &self.device)?;
        let stopwatch = self.profile.then(|| Arc::new(Stopwatch::new(&self.device)));
        model.set_stopwatch(stopwatch.clone());
        let checkpoints = Checkpoints {
            dir: self.out.clone(),
            every: self.checkpoint_every,
            resume: self.resume,
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrainError::Io { path, source }
        };
        std::fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let resumed_at = if self.resume {
            checkpoints.step().unwrap_or(0)
        } else {
            0
        };
        let lora = Arc::new(
            if resumed_at > 0 {
                let last = checkpoints.last();
                TrainableLora::from_peft(&last, &model, &self.device)
                    .map_err(|source| TrainError::Resume { path: last, source })?
            } else {
                TrainableLora::init(&model, &ALL_LINEAR, self.shape, c.seed, &self.device)?
            }
            .with_products(self.adapter_products),
        );
        let mut metrics = MetricsLog::open(
            &self.out.join("metrics.jsonl"),
            (resumed_at > 0).then_some(resumed_at),
        )?;
        on_start(
            examples.len().div_ceil(c.accumulation) * c.epochs,
            resumed_at,
        );
        let (mut last, mut write_error) = (None, None);
        train(&model, &lora, &examples, c, Some(&checkpoints), |s| {
            if let Err(e) = metrics.append(s) {
                write_error.get_or_insert(e);
            }
            last = Some(*s);
            on_step(s);
        })?;
        if let Some(e) = write_error {
            return Err(e.into());
        }
        lora.save_peft(&self.out, &self.model.display().to_string())?;
        let reports = read_metrics(metrics.path())?;
        let curve = self.out.join("loss.svg");
        let title = format!("LoRA fine-tuning of {}", self.model.display());
        std::fs::write(&curve, loss_curve(&reports, &title)).map_err(io(&curve))?;
        let last = last.or_else(|| reports.last().copied()).ok_or_else(|| {
            TrainError::Setting("no step ran (the checkpoint is already at the end)".into())
        })?;
        let mut profile = stopwatch.map(|w| w.take()).unwrap_or_default();
        profile.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(DftOutcome {
            profile,
            rows: examples.len(),
            truncated: examples.iter().filter(|e| e.truncated).count(),
            resumed_at,
            last,
            curve,
        })
    }
}
