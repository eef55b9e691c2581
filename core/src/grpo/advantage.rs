//! Advantages of a generation batch: groups of `G` completions of one prompt, each scored by
//! several rewards, turned into one advantage per completion as TRL 0.28's `GRPOTrainer` does
//! (`lamar-spec.md` §6.3).
//!
//! * [`Aggregation::NormalizeThenSum`] (GDPO, LAMAR's choice): each reward normalised within its
//!   group, `r̂ₖ = (rₖ − nanmean_G rₖ) / (nanstd_G rₖ + 1e-4)`, summed with weights (`nansum`), then
//!   normalised over the whole batch, `A = (R − mean R) / (std R + 1e-4)`.
//! * [`Aggregation::SumThenNormalize`] (plain GRPO): the weighted sum first, then
//!   `A = R − mean_G R`, divided by `std + 1e-4` of the group ([`RewardScale::Group`]), of the
//!   batch ([`RewardScale::Batch`]) or not at all ([`RewardScale::None`]).
//!
//! Every standard deviation is the unbiased one (Bessel's correction, as `torch.std`). A missing
//! reward (`None`: a reward plugin that failed under `--on-plugin-error skip`, TRL's `None`) is
//! NaN in TRL's arithmetic: left out of the means and deviations of its reward, and out of the
//! sum.

/// How several rewards become one number per completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    /// GDPO: normalise each reward within its group, sum, normalise over the batch.
    #[default]
    NormalizeThenSum,
    /// GRPO: sum the rewards, then normalise within the group (see [`RewardScale`]).
    SumThenNormalize,
}

/// What [`Aggregation::SumThenNormalize`] divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RewardScale {
    /// The group's standard deviation.
    #[default]
    Group,
    /// The whole batch's standard deviation.
    Batch,
    /// Nothing (Dr. GRPO): the advantage is the reward minus its group's mean.
    None,
}

/// The advantage settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvantageOptions {
    /// Completions per prompt (`G`); the batch is whole groups, one after another.
    pub group_size: usize,
    /// How the rewards are combined.
    pub aggregation: Aggregation,
    /// The divisor of [`Aggregation::SumThenNormalize`].
    pub scale: RewardScale,
    /// One weight per reward (TRL's `reward_weights`; all 1 when unset).
    pub weights: Vec<f64>,
}

/// Added to every standard deviation before dividing (TRL's constant).
pub const STD_EPSILON: f64 = 1e-4;

/// The advantages of a batch, one per completion, and which groups carry no signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One advantage per completion, in batch order.
    pub values: Vec<f64>,
    /// Per group: every reward is the same across its completions (ignoring missing ones),
    /// so its completions teach nothing (DAPO's dynamic sampling drops such groups).
    pub zero_variance: Vec<bool>,
}

/// Why advantages cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdvantageError {
    /// The batch is not whole groups, or a group size of 0.
    #[error("{completions} completions do not make whole groups of {group_size}")]
    Groups {
        /// Completions in the batch.
        completions: usize,
        /// The group size asked for.
        group_size: usize,
    },
    /// A completion has another number of rewards than there are weights.
    #[error("completion {completion} has {got} rewards, expected {expected} (one per weight)")]
    Rewards {
        /// The completion's index.
        completion: usize,
        /// Its rewards.
        got: usize,
        /// The number of weights.
        expected: usize,
    },
}

/// Mean of the present values; NaN when none is.
fn nan_mean(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (sum, count) = values
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// Unbiased standard deviation of the present values (NaN with fewer than two), as TRL's
/// `nanstd`: the mean square deviation times `n / (n − 1)`, then the root.
fn nan_std(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let mean = nan_mean(values.clone());
    let present: Vec<f64> = values.filter(|v| !v.is_nan()).collect();
    let n = present.len();
    if n < 2 {
        return f64::NAN;
    }
    let variance = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    (variance * n as f64 / (n - 1) as f64).sqrt()
}

/// The mean of `values`; `None` without any.
pub fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Unbiased standard deviation (`torch.std`); 0 for fewer than two values, as TRL uses zeros
/// when there is one completion.
pub fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let square = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    (square / (values.len() - 1) as f64).sqrt()
}

/// The advantages of `rewards` (per completion, one value per reward, `None` where missing).
pub fn advantages(
    rewards: &[Vec<Option<f64>>],
    options: &AdvantageOptions,
) -> Result<Advantages, AdvantageError> {
    let g = options.group_size;
    if g == 0 || !rewards.len().is_multiple_of(g) {
        return Err(AdvantageError::Groups {
            completions: rewards.len(),
            group_size: g,
        });
    }
    let kinds = options.weights.len();
    if let Some((completion, row)) = rewards.iter().enumerate().find(|(_, r)| r.len() != kinds) {
        return Err(AdvantageError::Rewards {
            completion,
            got: row.len(),
            expected: kinds,
        });
    }
    let value = |i: usize, k: usize| rewards[i][k].unwrap_or(f64::NAN);
    let groups: Vec<std::ops::Range<usize>> =
        (0..rewards.len() / g).map(|j| j * g..(j + 1) * g).collect();
    let zero_variance = groups
        .iter()
        .map(|group| {
            (0..kinds).all(|k| {
                let present: Vec<f64> = group
                    .clone()
                    .map(|i| value(i, k))
                    .filter(|v| !v.is_nan())
                    .collect();
                present.windows(2).all(|w| w[0] == w[1])
            })
        })
        .collect();
    let values = match options.aggregation {
        Aggregation::NormalizeThenSum => {
            let mut summed = vec![0.0; rewards.len()];
            for group in &groups {
                for (k, weight) in options.weights.iter().enumerate() {
                    let column = group.clone().map(|i| value(i, k));
                    let (mean, sd) = if g > 1 {
                        (nan_mean(column.clone()), nan_std(column))
                    } else {
                        (nan_mean(column), 0.0)
                    };
                    for i in group.clone() {
                        let normalised = (value(i, k) - mean) / (sd + STD_EPSILON) * weight;
                        if !normalised.is_nan() {
                            summed[i] += normalised;
                        }
                    }
                }
            }
            let mean = summed.iter().sum::<f64>() / summed.len().max(1) as f64;
            let sd = sample_std(&summed);
            summed
                .iter()
                .map(|r| (r - mean) / (sd + STD_EPSILON))
                .collect()
        }
        Aggregation::SumThenNormalize => {
            let summed: Vec<f64> = (0..rewards.len())
                .map(|i| {
                    (0..kinds)
                        .map(|k| value(i, k) * options.weights[k])
                        .filter(|v| !v.is_nan())
                        .sum()
                })
                .collect();
            let batch_sd = sample_std(&summed);
            let mut out = vec![0.0; summed.len()];
            for group in &groups {
                let members = &summed[group.clone()];
                let mean = members.iter().sum::<f64>() / g as f64;
                let divisor = match options.scale {
                    RewardScale::Group => Some(sample_std(members)),
                    RewardScale::Batch => Some(batch_sd),
                    RewardScale::None => None,
                };
                for i in group.clone() {
                    out[i] = match divisor {
                        Some(sd) => (summed[i] - mean) / (sd + STD_EPSILON),
                        None => summed[i] - mean,
                    };
                }
            }
            out
        }
    };
    Ok(Advantages {
        values,
        zero_variance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_deviations_skip_nothing_they_are_given() {
        assert_eq!(mean([1.0, 2.0, 6.0].into_iter()), Some(3.0));
        assert_eq!(mean(std::iter::empty()), None);
        assert_eq!(sample_std(&[2.0]), 0.0);
        assert!((sample_std(&[1.0, 3.0]) - 2f64.sqrt()).abs() < 1e-12);
    }
}
