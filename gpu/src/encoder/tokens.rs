//! Texts as the encoder sees them: tokens with their code-point ranges (the checkpoint's own
//! `tokenizer.json`), windows of at most the encoder's length wrapped in its `[CLS]`/`[SEP]`
//! (`<s>`/`</s>`) tokens, and batches padded to their longest window.

use super::EncoderError;
use super::config::EncoderConfig;
use candle_core::{Device, Tensor};
use lamar_core::bio::TokenRange;
use std::path::{Path, PathBuf};

/// A text's tokens, without special tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizedText {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Each token's half-open code-point range in the text.
    pub ranges: Vec<TokenRange>,
}

/// The encoder's tokenizer and the special tokens that open and close a window.
pub struct EncoderTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    /// `[CLS]`/`<s>` and `[SEP]`/`</s>`, when the vocabulary has them.
    wrap: Option<(u32, u32)>,
    pad: u32,
}

impl EncoderTokenizer {
    /// Loads `DIR/tokenizer.json` (its truncation and padding settings are turned off: lamar
    /// makes the windows).
    pub fn from_dir(dir: &Path, config: &EncoderConfig) -> Result<EncoderTokenizer, EncoderError> {
        let path = dir.join("tokenizer.json");
        let mut inner =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| EncoderError::Config {
                path: path.clone(),
                message: e.to_string(),
            })?;
        inner
            .with_truncation(None)
            .map_err(|e| EncoderError::Config {
                path: path.clone(),
                message: e.to_string(),
            })?
            .with_padding(None);
        let id = |t: &str| inner.token_to_id(t);
        let wrap = match (id("[CLS]"), id("[SEP]"), id("<s>"), id("</s>")) {
            (Some(c), Some(s), _, _) => Some((c, s)),
            (_, _, Some(c), Some(s)) => Some((c, s)),
            _ => None,
        };
        Ok(EncoderTokenizer {
            inner,
            path,
            wrap,
            pad: config.pad_token_id,
        })
    }

    /// The tokens of `text` and their code-point ranges.
    pub fn tokenize(&self, text: &str) -> Result<TokenizedText, EncoderError> {
        let encoding =
            self.inner
                .encode_char_offsets(text, false)
                .map_err(|e| EncoderError::Config {
                    path: self.path.clone(),
                    message: format!("tokenizing: {e}"),
                })?;
        Ok(TokenizedText {
            ids: encoding.get_ids().to_vec(),
            ranges: encoding.get_offsets().to_vec(),
        })
    }

    /// How many of a text's tokens fit a window of `max_tokens` (two fewer when windows are
    /// wrapped in special tokens).
    pub fn content_tokens(&self, max_tokens: usize) -> usize {
        let specials = if self.wrap.is_some() { 2 } else { 0 };
        max_tokens.saturating_sub(specials).max(1)
    }

    /// The ids of a window: `ids` between the special tokens, if any.
    pub fn wrap(&self, ids: &[u32]) -> Vec<u32> {
        match self.wrap {
            Some((open, close)) => {
                let mut out = Vec::with_capacity(ids.len() + 2);
                out.push(open);
                out.extend_from_slice(ids);
                out.push(close);
                out
            }
            None => ids.to_vec(),
        }
    }

    /// Whether windows are wrapped in special tokens.
    pub fn wraps(&self) -> bool {
        self.wrap.is_some()
    }

    /// The padding id.
    pub fn pad(&self) -> u32 {
        self.pad
    }
}

/// Windows of ids (already wrapped) as a padded batch: ids `[n, longest]` and the attention
/// mask (1 on tokens, 0 on padding), on `device`.
pub fn padded_batch(
    windows: &[Vec<u32>],
    pad: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let longest = windows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(windows.len() * longest);
    let mut mask = Vec::with_capacity(windows.len() * longest);
    for w in windows {
        ids.extend_from_slice(w);
        ids.extend(std::iter::repeat_n(pad, longest - w.len()));
        mask.extend(std::iter::repeat_n(1u32, w.len()));
        mask.extend(std::iter::repeat_n(0u32, longest - w.len()));
    }
    let shape = (windows.len(), longest);
    Ok((
        Tensor::from_vec(ids, shape, device)?,
        Tensor::from_vec(mask, shape, device)?,
    ))
}

/// Consecutive, non-overlapping ranges of at most `size` tokens covering `0..tokens` (the
/// reference's evaluation windows).
pub fn consecutive_windows(tokens: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    let size = size.max(1);
    (0..tokens)
        .step_by(size)
        .map(|s| s..(s + size).min(tokens))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_token_once_in_order() {
        assert_eq!(
            consecutive_windows(0, 4),
            Vec::<std::ops::Range<usize>>::new()
        );
        assert_eq!(consecutive_windows(3, 4), vec![0..3]);
        assert_eq!(consecutive_windows(9, 4), vec![0..4, 4..8, 8..9]);
        assert_eq!(consecutive_windows(8, 4), vec![0..4, 4..8]);
    }

    #[test]
    fn batches_are_padded_to_the_longest_window() {
        let (ids, mask) = padded_batch(&[vec![5, 6, 7], vec![8]], 1, &Device::Cpu).expect("batch");
        assert_eq!(
            ids.to_vec2::<u32>().expect("ids"),
            vec![vec![5, 6, 7], vec![8, 1, 1]]
        );
        assert_eq!(
            mask.to_vec2::<u32>().expect("mask"),
            vec![vec![1, 1, 1], vec![1, 0, 0]]
        );
    }
}
