//! GRPO's arithmetic, independent of any model: the advantages of a generation batch from its
//! rewards ([`advantage`]: GDPO's normalise-then-sum and plain GRPO's sum-then-normalise),
//! DAPO's clipped token-level loss with its derivative per token log-probability and the
//! optional KL penalty ([`dapo`]), the rollout log a run keeps and the viewer reads
//! ([`rollouts`]), and scoring a batch with several weighted rewards, built in or
//! plugins, with a policy for rewards that fail ([`scoring`]). `lamar-model`'s GRPO trainer
//! samples the completions, computes the log-probabilities and back-propagates the derivatives;
//! the formulas are `lamar-spec.md` §6.3's, checked against PyTorch (`tests/golden/grpo`, made
//! by `core/tests/python/golden_grpo.py`).

pub mod advantage;
pub mod dapo;
pub mod rollouts;
pub mod scoring;

pub use advantage::{
    AdvantageError, AdvantageOptions, Advantages, Aggregation, RewardScale, advantages, mean,
    sample_std,
};
pub use dapo::{ClipRange, CompletionTokens, DapoLoss, KlPenalty, add_kl_penalty, dapo_loss};
pub use rollouts::{NamedScore, RolloutGroup, RolloutRecord, group_rollouts, parse_rollouts};
pub use scoring::{
    BatchScores, OnRewardError, RewardSource, RewardSpec, RewardSpecError, ScoringError,
    WeightedReward, score_batch,
};
