//! Tagging documents with a model: the prompt (lamar's or the user's), the model's chat
//! template, its tokenizer, batched generation, and the decoded result with its "entropy".
//!
//! [`Tagger`] holds everything loaded from a snapshot; [`Tagger::tag_all`] runs the documents
//! with continuous batching and hands over each result as it finishes; [`Tagger::tag_into`]
//! appends them to an output file as they finish, which a later run resumes.

use crate::chat::{ChatError, ChatTemplate};
use crate::lora::{AdapterError, LoraAdapter};
use crate::qwen35::{self, LoadError};
use crate::qwen35::{Decoding, Qwen35Model};
use crate::sampling::Sampler;
use crate::tokenizer::{TextTokenizer, TokenizerError};
use candle_core::{DType, Device};
use lamar_core::formats::inference::{DocumentRow, InferenceOutput, InferenceRecord};
use lamar_core::prompt::TaskPrompt;
use std::path::Path;

/// Why tagging could not start or failed (large causes boxed, so results stay small).
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model folder.
    #[error(transparent)]
    Model(Box<LoadError>),
    /// The adapter folder.
    #[error(transparent)]
    Adapter(Box<AdapterError>),
    /// The tokenizer.
    #[error(transparent)]
    Tokenizer(Box<TokenizerError>),
    /// The chat template.
    #[error(transparent)]
    Chat(Box<ChatError>),
    /// Generation failed on the device.
    #[error("generation failed: {0}")]
    Generation(Box<candle_core::Error>),
    /// A result could not be written.
    #[error(transparent)]
    Output(Box<lamar_core::formats::FormatError>),
}

macro_rules! boxed_from {
    ($($source:ty => $variant:ident),* $(,)?) => {$(
        impl From<$source> for InferError {
            fn from(e: $source) -> Self {
                InferError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    LoadError => Model,
    AdapterError => Adapter,
    TokenizerError => Tokenizer,
    ChatError => Chat,
    candle_core::Error => Generation,
);

/// How many new tokens a document may get: `factor × its own tokens + margin` (the tagged copy
/// is the document plus tags), never more than `max_new_tokens`.
#[derive(Debug, Clone, Copy)]
pub struct TokenBudget {
    /// Hard cap (the reference used 24,576).
    pub max_new_tokens: usize,
    /// Multiple of the document's token count.
    pub factor: f64,
    /// Added to that.
    pub margin: usize,
}

impl Default for TokenBudget {
    fn default() -> Self {
        TokenBudget {
            max_new_tokens: 24_576,
            factor: 2.0,
            margin: 64,
        }
    }
}

impl TokenBudget {
    /// The limit for a document of `tokens` tokens.
    pub fn limit(&self, tokens: usize) -> usize {
        ((tokens as f64 * self.factor).ceil() as usize + self.margin).min(self.max_new_tokens)
    }
}

/// A document ready for generation.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    /// The input row.
    pub row: DocumentRow,
    /// Token ids of the rendered chat prompt.
    pub prompt_ids: Vec<u32>,
    /// New-token limit.
    pub limit: usize,
}

/// Model, tokenizer, chat template and task prompt of one tagging run.
pub struct Tagger {
    model: Qwen35Model,
    tokenizer: TextTokenizer,
    template: ChatTemplate,
    prompt: TaskPrompt,
    device: Device,
    /// Weight groups of the snapshot that text-only tagging does not read.
    pub skipped_weights: Vec<(String, usize)>,
}

impl Tagger {
    /// Loads a snapshot folder (config, weights, `tokenizer.json`, chat template), with an
    /// optional PEFT adapter (merged into the weights when `merge`).
    pub fn load(
        model_dir: &Path,
        adapter: Option<(&Path, bool)>,
        prompt: TaskPrompt,
        dtype: DType,
        device: &Device,
    ) -> Result<Tagger, InferError> {
        let tokenizer = TextTokenizer::from_snapshot(model_dir)?;
        let template = ChatTemplate::from_snapshot(model_dir)?;
        let adapter = match adapter {
            Some((dir, merge)) => Some(LoraAdapter::load(dir, merge, device)?),
            None => None,
        };
        let model = qwen35::load_with_adapter(model_dir, adapter.as_ref(), dtype, device)?;
        Ok(Tagger {
            model,
            tokenizer,
            template,
            prompt,
            device: device.clone(),
            skipped_weights: qwen35::unread_weights(model_dir),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The task prompt.
    pub fn prompt(&self) -> &TaskPrompt {
        &self.prompt
    }

    /// The chat template's origin.
    pub fn template_origin(&self) -> &str {
        self.template.origin()
    }

    /// Renders and tokenizes one document's prompt and works out its token limit.
    pub fn prepare(
        &self,
        row: DocumentRow,
        budget: &TokenBudget,
    ) -> Result<PreparedDocument, InferError> {
        let text = self
            .template
            .generation_prompt(&self.prompt.fill(&row.raw_text))?;
        let prompt_ids = self.tokenizer.encode(&text)?;
        let limit = budget.limit(self.tokenizer.encode(&row.raw_text)?.len());
        Ok(PreparedDocument {
            row,
            prompt_ids,
            limit,
        })
    }

    /// Generates for all documents with `slots` sequences decoding at a time (continuous
    /// batching: a finished document's slot takes the next one at once), longest prompts
    /// first. `record` receives each document's result as soon as it is finished (an error
    /// from it stops the run and is returned); `progress` the tokens of each step.
    pub fn tag_all(
        &self,
        mut documents: Vec<PreparedDocument>,
        slots: usize,
        sampler: &mut Sampler,
        mut record: impl FnMut(InferenceRecord) -> Result<(), InferError>,
        progress: impl FnMut(usize),
    ) -> Result<(), InferError> {
        documents.sort_by(|a, b| {
            b.prompt_ids
                .len()
                .cmp(&a.prompt_ids.len())
                .then_with(|| a.row.file_id.cmp(&b.row.file_id))
        });
        let prompts: Vec<Vec<u32>> = documents.iter().map(|d| d.prompt_ids.clone()).collect();
        let limits: Vec<usize> = documents.iter().map(|d| d.limit).collect();
        let stop = self.tokenizer.stop_tokens();
        let decoding = Decoding {
            stop,
            ..Decoding::default()
        };
        // The first error of `record` stops generation and is what the caller gets.
        let mut failure: Option<InferError> = None;
        let outcome = self.model.generate_continuous(
            &prompts,
            &limits,
            slots,
            &decoding,
            sampler,
            &self.device,
            |k, g| {
                let doc = &documents[k];
                let finished = g.tokens.last().is_some_and(|t| stop.contains(t));
                let result = self
                    .tokenizer
                    .decode(&g.tokens, true)
                    .map_err(InferError::from)
                    .and_then(|predicted| {
                        record(InferenceRecord {
                            file_id: doc.row.file_id.clone(),
                            raw_text: doc.row.raw_text.clone(),
                            predicted,
                            entropy: g.mean_nll(),
                            new_tokens: g.tokens.len(),
                            finished,
                        })
                    });
                result.map_err(|e| {
                    failure = Some(e);
                    candle_core::Error::Msg("stopped: a result could not be recorded".into())
                })
            },
            progress,
        );
        if let Some(e) = failure {
            return Err(e);
        }
        outcome.map_err(InferError::from)
    }
}

/// How [`Tagger::tag_into`] runs.
#[derive(Debug, Clone, Copy)]
pub struct TagSettings {
    /// Documents decoding at a time (continuous batching).
    pub slots: usize,
    /// New-token limit per document.
    pub budget: TokenBudget,
}

/// What [`Tagger::tag_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TagReport {
    /// Documents tagged.
    pub documents: usize,
    /// Their prompt tokens.
    pub prompt_tokens: usize,
    /// New tokens generated.
    pub new_tokens: usize,
    /// Documents that hit their token limit before the end of their tagged copy.
    pub cut: usize,
    /// Seconds spent generating (after the prompts were rendered and tokenized).
    pub generation_seconds: f64,
}

impl Tagger {
    /// Tags `documents` into `output`, each record appended and flushed as soon as its
    /// document finishes (a killed run loses only the documents in flight; the caller passes
    /// [`InferenceOutput::pending`] documents to resume). `on_record` is called after each
    /// record, `on_tokens` with each decoding step's new tokens.
    pub fn tag_into(
        &self,
        documents: Vec<DocumentRow>,
        output: &mut InferenceOutput,
        settings: &TagSettings,
        sampler: &mut Sampler,
        mut on_record: impl FnMut(),
        mut on_tokens: impl FnMut(usize),
    ) -> Result<TagReport, InferError> {
        let prepared = documents
            .into_iter()
            .map(|row| self.prepare(row, &settings.budget))
            .collect::<Result<Vec<_>, _>>()?;
        let mut report = TagReport {
            documents: prepared.len(),
            prompt_tokens: prepared.iter().map(|d| d.prompt_ids.len()).sum(),
            ..TagReport::default()
        };
        let (mut new_tokens, mut cut) = (0, 0);
        let started = std::time::Instant::now();
        self.tag_all(
            prepared,
            settings.slots,
            sampler,
            |record| {
                cut += usize::from(!record.finished);
                output
                    .append(&record)
                    .map_err(|e| InferError::Output(Box::new(e)))?;
                on_record();
                Ok(())
            },
            |n| {
                new_tokens += n;
                on_tokens(n);
            },
        )?;
        report.new_tokens = new_tokens;
        report.cut = cut;
        report.generation_seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_grow_with_the_document_and_stop_at_the_cap() {
        let b = TokenBudget {
            max_new_tokens: 100,
            factor: 1.5,
            margin: 4,
        };
        assert_eq!(b.limit(0), 4);
        assert_eq!(b.limit(10), 19);
        assert_eq!(b.limit(1000), 100);
    }
}
