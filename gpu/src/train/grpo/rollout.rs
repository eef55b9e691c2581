//! Rollouts: a group of completions of one prompt, sampled from the policy as it stands (the
//! frozen model with the trainable adapter applied unmerged, [`Qwen35Model::set_policy_adapter`])
//! by the continuous-batching generator, each with the log-probability the sampler saw for
//! every token (the "old" policy of the importance ratio).

use crate::qwen35::Qwen35Model;
use crate::qwen35::generate::Decoding;
use crate::sampling::Sampler;
use candle_core::{Device, Result};

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// The new tokens (the end-of-turn token included when one was drawn).
    pub tokens: Vec<u32>,
    /// Each token's log-probability under the policy that drew it (temperature 1,
    /// untruncated).
    pub log_probs: Vec<f32>,
    /// Whether the completion ended with a stop token (false: cut at the length limit).
    pub finished: bool,
}

/// `count` completions of `prompt`, each at most `limit` tokens, decoding side by side (the
/// prompt is prefilled once; the generator duplicates its cache for every completion).
/// `progress` sees the tokens each decoding step made.
#[allow(clippy::too_many_arguments)]
pub fn sample_group(
    model: &Qwen35Model,
    prompt: &[u32],
    count: usize,
    limit: usize,
    stop: &[u32],
    sampler: &mut Sampler,
    device: &Device,
    progress: impl FnMut(usize),
) -> Result<Vec<Rollout>> {
    let prompts = vec![prompt.to_vec(); count];
    let limits = vec![limit; count];
    let decoding = Decoding {
        stop,
        ..Decoding::default()
    };
    let mut out: Vec<Option<Rollout>> = vec![None; count];
    model.generate_continuous(
        &prompts,
        &limits,
        count,
        &decoding,
        sampler,
        device,
        |k, g| {
            let finished = g.tokens.last().is_some_and(|t| stop.contains(t));
            out[k] = Some(Rollout {
                tokens: g.tokens,
                log_probs: g.log_probs,
                finished,
            });
            Ok(())
        },
        progress,
    )?;
    out.into_iter()
        .enumerate()
        .map(|(k, r)| {
            r.ok_or_else(|| candle_core::Error::Msg(format!("completion {k} was never finished")))
        })
        .collect()
}
