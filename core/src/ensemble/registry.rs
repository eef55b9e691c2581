//! The built-in voters by name: the one table the command line (`--voter`), the viewer and the
//! pipeline read, so that a new voter is added in one place.

use super::Voter;
use super::scc::{BoundaryVote, SccParams, SpanClusterConsensus};
use super::voters::{Intersection, Majority, Union, WeightedBoundaryFusion};

/// The built-in voters' names, in the order they are offered.
pub const VOTER_NAMES: [&str; 5] = ["scc", "majority", "union", "intersection", "wbf"];

/// Why a voter could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VoterError {
    /// No built-in voter has this name.
    #[error("unknown voter {0:?} (one of {names})", names = VOTER_NAMES.join(", "))]
    Unknown(String),
    /// A consensus threshold is NaN or infinite.
    #[error("{name} must be a finite number, not {value}")]
    NotFinite {
        /// The threshold.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

/// How a built-in voter is set up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VoterSettings {
    /// Span-Cluster Consensus thresholds (also the clusters of weighted boundary fusion).
    pub params: SccParams,
    /// Span-Cluster Consensus's boundary rule.
    pub boundary: BoundaryVote,
    /// Whether the consensus records its explanation (weights, clusters) beside the spans.
    pub explain: bool,
}

/// Checks that every threshold is a finite number.
pub fn check_thresholds(params: &SccParams) -> Result<(), VoterError> {
    for (name, value) in [
        ("min_cluster_iou", params.min_cluster_iou),
        ("min_pairwise_iou", params.min_pairwise_iou),
        ("min_cluster_support", params.min_cluster_support),
        ("min_iou_same_cat", params.min_iou_same_cat),
    ] {
        if !value.is_finite() {
            return Err(VoterError::NotFinite { name, value });
        }
    }
    Ok(())
}

/// The built-in voter called `name` (one of [`VOTER_NAMES`], any case), set up as `settings`
/// say; its thresholds must be finite.
pub fn voter_by_name(name: &str, settings: &VoterSettings) -> Result<Box<dyn Voter>, VoterError> {
    check_thresholds(&settings.params)?;
    let params = settings.params;
    Ok(match name.to_ascii_lowercase().as_str() {
        "scc" => Box::new(SpanClusterConsensus {
            params,
            boundary: settings.boundary,
            spans_only: !settings.explain,
        }),
        "majority" => Box::new(Majority),
        "union" => Box::new(Union),
        "intersection" => Box::new(Intersection),
        "wbf" => Box::new(WeightedBoundaryFusion { params }),
        _ => return Err(VoterError::Unknown(name.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_makes_the_voter_of_that_name() {
        for name in VOTER_NAMES {
            let voter = voter_by_name(name, &VoterSettings::default()).unwrap();
            assert_eq!(voter.name(), name);
        }
        assert_eq!(
            voter_by_name("MAJORITY", &VoterSettings::default())
                .unwrap()
                .name(),
            "majority"
        );
    }

    #[test]
    fn unknown_names_and_bad_thresholds_are_refused() {
        assert_eq!(
            voter_by_name("borda", &VoterSettings::default()).err(),
            Some(VoterError::Unknown("borda".into()))
        );
        let mut settings = VoterSettings::default();
        settings.params.min_cluster_support = f64::NAN;
        let err = voter_by_name("scc", &settings).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("min_cluster_support must be a finite number")
        );
    }
}
