//! Tagging with a fine-tuned encoder: each document in consecutive, non-overlapping windows
//! of the encoder's length (the reference's evaluation windows), the most likely label of
//! every token, and the labels of the whole document decoded into spans
//! ([`lamar_core::bio::decode`], which also closes a span on the last token).

use super::EncoderError;
use super::backbone::InferenceClassifier;
use super::config::EncoderConfig;
use super::tokens::{EncoderTokenizer, consecutive_windows, padded_batch};
use candle_core::{D, Device};
use lamar_core::Span;
use lamar_core::bio::{self, LABELS};
use std::path::Path;

/// A fine-tuned encoder ready to tag texts.
pub struct EncoderTagger {
    model: InferenceClassifier,
    tokenizer: EncoderTokenizer,
    content: usize,
    device: Device,
}

impl EncoderTagger {
    /// Loads the classifier that `lamar train encoder` wrote into `dir`; windows hold at most
    /// `max_tokens` tokens (and never more than the position embeddings allow).
    pub fn load(dir: &Path, max_tokens: usize, device: &Device) -> Result<Self, EncoderError> {
        let config = EncoderConfig::from_dir(dir)?;
        let model = InferenceClassifier::load(dir, &config, LABELS, device)?;
        let tokenizer = EncoderTokenizer::from_dir(dir, &config)?;
        let content = tokenizer.content_tokens(max_tokens.min(config.max_tokens()));
        Ok(EncoderTagger {
            model,
            tokenizer,
            content,
            device: device.clone(),
        })
    }

    /// The spans of `text` (code points).
    pub fn tag(&self, text: &str) -> Result<Vec<Span>, EncoderError> {
        let tokens = self.tokenizer.tokenize(text)?;
        if tokens.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ranges = consecutive_windows(tokens.ids.len(), self.content);
        let windows: Vec<Vec<u32>> = ranges
            .iter()
            .map(|r| self.tokenizer.wrap(&tokens.ids[r.clone()]))
            .collect();
        let (ids, mask) = padded_batch(&windows, self.tokenizer.pad(), &self.device)?;
        let best = self.model.forward(&ids, &mask)?.argmax(D::Minus1)?;
        let best = best.to_vec2::<u32>()?;
        let skip = usize::from(self.tokenizer.wraps());
        let mut labels = Vec::with_capacity(tokens.ids.len());
        for (row, range) in best.iter().zip(&ranges) {
            labels.extend(row[skip..skip + range.len()].iter().map(|&l| l as u8));
        }
        Ok(bio::decode(&labels, &tokens.ranges))
    }
}
