//! GRPO's arithmetic, independent of any model: the advantages of a generation batch from its
//! rewards ([`advantage`]: GDPO's normalise-then-sum and plain GRPO's sum-then-normalise) and
//! DAPO's clipped token-level loss with its derivative per token log-probability ([`dapo`]).
//! `lamar-model`'s GRPO trainer computes the log-probabilities and back-propagates the
//! derivatives; the formulas are `lamar-spec.md` §6.3's, checked against PyTorch
//! (`tests/golden/grpo`, made by `core/tests/python/golden_grpo.py`).

pub mod advantage;
pub mod dapo;

pub use advantage::{
    AdvantageError, AdvantageOptions, Advantages, Aggregation, RewardScale, advantages,
};
pub use dapo::{ClipRange, CompletionTokens, DapoLoss, dapo_loss};
