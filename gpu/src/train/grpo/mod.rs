//! GRPO (issue 19, LAMAR's Model 2), the parts that touch the model: sampling a group of
//! completions from the policy as it stands ([`rollout`]), the policy-gradient update of one
//! group ([`update`]: DAPO's loss and the optional KL penalty, back-propagated through the
//! training pass), and what a run logs ([`report`]: step reports, rollout records, curves).
//! The arithmetic independent of the model (advantages, the loss's derivatives, scoring with
//! weighted rewards, built in or plugins) is `lamar_core::grpo`'s.
//!
//! Still to come (see the issue): the run itself (`GrpoJob`: data order, checkpoints with the
//! data position, the logs) and `lamar train grpo`.

pub mod report;
pub mod rollout;
pub mod update;
