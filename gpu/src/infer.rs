//! Tagging documents with a model: the prompt (lamar's or the user's), the model's chat
//! template, its tokenizer, batched generation, and the decoded result with its "entropy".
//!
//! [`Tagger`] holds everything loaded from a snapshot; [`plan_batches`] orders documents so that
//! each batch holds prompts of similar length (little padding); [`Tagger::tag`] runs one batch.
//! Writing results and resuming is the caller's (`lamar infer`).

use crate::chat::{ChatError, ChatTemplate};
use crate::lora::{AdapterError, LoraAdapter};
use crate::qwen35::model::{Decoding, Qwen35Model};
use crate::qwen35::{self, LoadError};
use crate::sampling::Sampler;
use crate::tokenizer::{TextTokenizer, TokenizerError};
use candle_core::{DType, Device};
use lamar_core::formats::inference::{DocumentRow, InferenceRecord};
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

    /// Generates for one batch of documents; `progress` gets the tokens of each step.
    pub fn tag(
        &self,
        batch: &[PreparedDocument],
        prefill_tokens: usize,
        sampler: &mut Sampler,
        progress: impl FnMut(usize),
    ) -> Result<Vec<InferenceRecord>, InferError> {
        let prompts: Vec<Vec<u32>> = batch.iter().map(|d| d.prompt_ids.clone()).collect();
        let limits: Vec<usize> = batch.iter().map(|d| d.limit).collect();
        let stop = self.tokenizer.stop_tokens();
        let decoding = Decoding {
            stop,
            prefill_tokens,
        };
        let generations = self.model.generate_each(
            &prompts,
            &limits,
            &decoding,
            sampler,
            &self.device,
            progress,
        )?;
        batch
            .iter()
            .zip(generations)
            .map(|(doc, g)| {
                let finished = g.tokens.last().is_some_and(|t| stop.contains(t));
                Ok(InferenceRecord {
                    file_id: doc.row.file_id.clone(),
                    raw_text: doc.row.raw_text.clone(),
                    predicted: self.tokenizer.decode(&g.tokens, true)?,
                    entropy: g.mean_nll(),
                    new_tokens: g.tokens.len(),
                    finished,
                })
            })
            .collect()
    }
}

/// Splits documents into batches of at most `batch_size`, longest prompts first, each batch
/// of neighbouring lengths (so padding stays small and the slowest batch starts first).
pub fn plan_batches(
    mut docs: Vec<PreparedDocument>,
    batch_size: usize,
) -> Vec<Vec<PreparedDocument>> {
    docs.sort_by(|a, b| {
        b.prompt_ids
            .len()
            .cmp(&a.prompt_ids.len())
            .then_with(|| a.row.file_id.cmp(&b.row.file_id))
    });
    let mut batches = Vec::new();
    let mut rest = docs.into_iter().peekable();
    while rest.peek().is_some() {
        batches.push(rest.by_ref().take(batch_size.max(1)).collect());
    }
    batches
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

    #[test]
    fn batches_hold_neighbouring_lengths_longest_first() {
        let doc = |id: &str, n: usize| PreparedDocument {
            row: DocumentRow {
                file_id: id.into(),
                raw_text: String::new(),
            },
            prompt_ids: vec![1; n],
            limit: 1,
        };
        let docs = vec![
            doc("a", 5),
            doc("b", 50),
            doc("c", 7),
            doc("d", 49),
            doc("e", 6),
        ];
        let ids: Vec<Vec<String>> = plan_batches(docs, 2)
            .into_iter()
            .map(|b| b.into_iter().map(|d| d.row.file_id).collect())
            .collect();
        assert_eq!(ids, [vec!["b", "d"], vec!["c", "e"], vec!["a"]]);
    }
}
