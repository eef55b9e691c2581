//! GRPO (issue 19, LAMAR's Model 2), the parts that touch the model: sampling a group of
//! completions from the policy as it stands ([`rollout`]), the policy-gradient update of one
//! group ([`update`]: DAPO's loss and the optional KL penalty, back-propagated through the
//! training pass), and what a run logs ([`report`]: step reports, rollout records, curves).
//! The arithmetic independent of the model (advantages, the loss's derivatives, scoring with
//! weighted rewards, built in or plugins) is `lamar_core::grpo`'s.
//!
//! [`job`] joins them into a whole run (`lamar train grpo`): data order, checkpoints with the
//! data position, the logs and curves.

pub mod job;
pub mod report;
pub mod rollout;
pub mod update;
