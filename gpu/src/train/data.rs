//! Training rows (`lamar tag`'s: the raw text and its tagged copy) as token sequences with the
//! position where the response starts: the row rendered as a two-turn conversation by the
//! snapshot's chat template (the task prompt filled with the raw text, then the tagged copy as
//! the assistant's answer, thinking off), tokenized, and the loss restricted to what follows the
//! last `<|im_start|>assistant\n` (the think frame the template writes, the tagged copy,
//! `<|im_end|>` and its newline), as Unsloth's `train_on_responses_only` marks it.

use crate::chat::{ChatError, ChatTemplate, Message};
use crate::tokenizer::{TextTokenizer, TokenizerError};
use lamar_core::prompt::TaskPrompt;

/// One training sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Token ids (prompt, then response), at most the length limit.
    pub ids: Vec<u32>,
    /// Index of the first response token: the loss covers `ids[response_start..]`.
    pub response_start: usize,
    /// Whether the sequence was cut at the length limit (right truncation).
    pub truncated: bool,
}

impl Example {
    /// The positions whose outputs predict the response: position `t` predicts token `t + 1`,
    /// so the response tokens `ids[start..]` are predicted at `start − 1 .. len − 1`. Returns
    /// the first of them and how many there are.
    pub fn predicting_positions(&self) -> (usize, usize) {
        (
            self.response_start - 1,
            self.ids.len() - self.response_start,
        )
    }

    /// The response tokens (the targets of [`Example::predicting_positions`]).
    pub fn response(&self) -> &[u32] {
        &self.ids[self.response_start..]
    }
}

/// Why a row cannot be trained on.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The chat template failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The rendered conversation has no assistant turn marker.
    #[error("the chat template wrote no `<|im_start|>assistant` turn for the response")]
    NoResponseMarker,
    /// The length limit leaves no response token.
    #[error("the prompt alone has {prompt} tokens; the length limit {limit} leaves no response")]
    NoResponseLeft {
        /// Prompt tokens.
        prompt: usize,
        /// The limit.
        limit: usize,
    },
}

/// The sequence of one row: `raw_text` in the task prompt, `tagged` as the answer, at most
/// `max_tokens` tokens.
pub fn example(
    tokenizer: &TextTokenizer,
    template: &ChatTemplate,
    prompt: &TaskPrompt,
    raw_text: &str,
    tagged: &str,
    max_tokens: usize,
) -> Result<Example, ExampleError> {
    let messages = [
        Message::user(prompt.fill(raw_text)),
        Message::assistant(tagged),
    ];
    let text = template.render(&messages, false, false)?;
    let mut ids = tokenizer.encode(&text)?;
    let marker = tokenizer.encode("<|im_start|>assistant\n")?;
    let response_start = (0..=ids.len().saturating_sub(marker.len()))
        .rev()
        .find(|&k| ids[k..].starts_with(&marker))
        .map(|k| k + marker.len())
        .ok_or(ExampleError::NoResponseMarker)?;
    let truncated = ids.len() > max_tokens;
    ids.truncate(max_tokens);
    if response_start >= ids.len() {
        return Err(ExampleError::NoResponseLeft {
            prompt: response_start,
            limit: max_tokens,
        });
    }
    Ok(Example {
        ids,
        response_start,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn snapshot() -> (TextTokenizer, ChatTemplate) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-chat");
        (
            TextTokenizer::from_snapshot(&dir).unwrap(),
            ChatTemplate::from_snapshot(&dir).unwrap(),
        )
    }

    #[test]
    fn the_response_is_what_follows_the_assistant_marker() {
        let (tokenizer, template) = snapshot();
        let prompt = TaskPrompt::builtin();
        let raw = "Pt was started on lasix 40 mg daily.";
        let tagged = "Pt was <drug_decision>started on lasix 40 mg daily</drug_decision>.";
        let e = example(&tokenizer, &template, &prompt, raw, tagged, 100_000).unwrap();
        assert!(!e.truncated);
        // What inference feeds the model is the prompt part, then the empty think frame the
        // template writes with thinking off, which training counts as response.
        let generation = template.generation_prompt(&prompt.fill(raw)).unwrap();
        let prompt_ids = tokenizer.encode(&generation).unwrap();
        assert_eq!(&prompt_ids[..e.response_start], &e.ids[..e.response_start]);
        assert_eq!(
            tokenizer
                .decode(&prompt_ids[e.response_start..], false)
                .unwrap(),
            "<think>\n\n</think>\n\n"
        );
        assert_eq!(&e.ids[..prompt_ids.len()], &prompt_ids[..]);
        let response = tokenizer.decode(&e.ids[e.response_start..], false).unwrap();
        assert_eq!(
            response,
            format!("<think>\n\n</think>\n\n{tagged}<|im_end|>\n")
        );
        // Right truncation keeps the prompt and the start of the response.
        let cut = example(
            &tokenizer,
            &template,
            &prompt,
            raw,
            tagged,
            e.response_start + 3,
        )
        .unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.ids, e.ids[..e.response_start + 3]);
        let err = example(
            &tokenizer,
            &template,
            &prompt,
            raw,
            tagged,
            e.response_start,
        )
        .unwrap_err();
        assert!(matches!(err, ExampleError::NoResponseLeft { .. }), "{err}");
    }
}
