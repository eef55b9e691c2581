//! `lamar ensemble`: merge several models' predictions.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use lamar_core::ensemble::input::read_models;
use lamar_core::ensemble::scc::{BoundaryVote, SccParams, SpanClusterConsensus};
use lamar_core::ensemble::voters::{Intersection, Majority, Union, WeightedBoundaryFusion};
use lamar_core::ensemble::{Voter, merge_all};
use lamar_core::formats::predictions::{PredictionFile, write_predictions};
use lamar_core::formats::{read_utf8, write_atomic};
use std::path::PathBuf;

/// Which voter merges the models.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoterKind {
    /// Span-Cluster Consensus (LAMAR).
    Scc,
    /// Exact spans predicted by more than half of the models.
    Majority,
    /// Every span of every model.
    Union,
    /// Exact spans predicted by every model.
    Intersection,
    /// SCC clusters with weight-averaged boundaries snapped to observed ones.
    Wbf,
}

/// Boundary rule of Span-Cluster Consensus.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryKind {
    /// The observed (start, end) with the most weight (LAMAR).
    Joint,
    /// Start and end voted separately.
    Independent,
}

/// Merge several models' predictions into one (Span-Cluster Consensus by default).
///
/// Model k is the k-th --predictions file. For each document and category, Span-Cluster
/// Consensus weights the models by how much they agree with the others, clusters overlapping
/// spans (IoU ≥ --min-cluster-iou), keeps clusters whose models' summed weight reaches
/// --min-cluster-support and gives each the observed boundary with the most weight. It
/// reproduces LAMAR's ensemble/mbr.py exactly. Thresholds come from --params (a JSON file as
/// `lamar tune` writes it) and can be overridden one by one.
#[derive(Args, Debug)]
pub struct EnsembleArgs {
    /// Predictions JSON of each model.
    #[arg(long, num_args = 1.., required = true)]
    pub predictions: Vec<PathBuf>,
    /// Merging rule.
    #[arg(long, value_enum, default_value = "scc")]
    pub voter: VoterKind,
    /// Thresholds as JSON: {"min_cluster_iou", "min_pairwise_iou", "min_cluster_support", "min_iou_same_cat"}.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// IoU that links two spans into a cluster (default 0.1).
    #[arg(long)]
    pub min_cluster_iou: Option<f64>,
    /// IoU that lets two spans match when weighting models (default 0.1).
    #[arg(long)]
    pub min_pairwise_iou: Option<f64>,
    /// Summed model weight a cluster needs (default 0.34).
    #[arg(long)]
    pub min_cluster_support: Option<f64>,
    /// IoU above which two kept spans of one category are merged (default 0.8).
    #[arg(long)]
    pub min_iou_same_cat: Option<f64>,
    /// Boundary rule of Span-Cluster Consensus.
    #[arg(long, value_enum, default_value = "joint")]
    pub boundary: BoundaryKind,
    /// Merged predictions JSON to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write, per document, the model weights and clusters behind the result.
    #[arg(long)]
    pub explain: Option<PathBuf>,
}

impl EnsembleArgs {
    /// The thresholds: --params, then the individual flags.
    pub fn scc_params(&self) -> Result<SccParams> {
        let mut p = match &self.params {
            Some(path) => serde_json::from_str(&read_utf8(path)?).with_context(|| {
                format!("{}: expected the four thresholds as JSON", path.display())
            })?,
            None => SccParams::default(),
        };
        for (value, slot) in [
            (self.min_cluster_iou, &mut p.min_cluster_iou),
            (self.min_pairwise_iou, &mut p.min_pairwise_iou),
            (self.min_cluster_support, &mut p.min_cluster_support),
            (self.min_iou_same_cat, &mut p.min_iou_same_cat),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        for (name, v) in [
            ("min_cluster_iou", p.min_cluster_iou),
            ("min_pairwise_iou", p.min_pairwise_iou),
            ("min_cluster_support", p.min_cluster_support),
            ("min_iou_same_cat", p.min_iou_same_cat),
        ] {
            if !v.is_finite() {
                bail!("{name} must be a finite number, not {v}");
            }
        }
        Ok(p)
    }

    fn voter(&self) -> Result<Box<dyn Voter>> {
        let params = self.scc_params()?;
        let boundary = match self.boundary {
            BoundaryKind::Joint => BoundaryVote::Joint,
            BoundaryKind::Independent => BoundaryVote::Independent,
        };
        Ok(match self.voter {
            VoterKind::Scc => Box::new(SpanClusterConsensus {
                params,
                boundary,
                spans_only: self.explain.is_none(),
            }),
            VoterKind::Majority => Box::new(Majority),
            VoterKind::Union => Box::new(Union),
            VoterKind::Intersection => Box::new(Intersection),
            VoterKind::Wbf => Box::new(WeightedBoundaryFusion { params }),
        })
    }
}

/// Runs `lamar ensemble`.
pub fn run(args: &EnsembleArgs) -> Result<()> {
    let voter = args.voter()?;
    let raw = read_models(&args.predictions)?;
    let merged = merge_all(&raw, voter.as_ref());
    let files: Vec<PredictionFile> = merged
        .iter()
        .map(|(name, m)| PredictionFile::from_spans(name.clone(), &m.spans))
        .collect();
    write_predictions(&args.out, &files)?;
    if let Some(path) = &args.explain {
        let explain: serde_json::Map<String, serde_json::Value> = merged
            .iter()
            .map(|(name, m)| Ok((name.clone(), serde_json::to_value(&m.explanation)?)))
            .collect::<Result<_>>()?;
        write_atomic(path, serde_json::to_string_pretty(&explain)?.as_bytes())?;
    }
    let spans: usize = files.iter().map(|f| f.predictions.len()).sum();
    println!(
        "{}: merged {} models into {spans} spans over {} documents, written to {}",
        voter.name(),
        args.predictions.len(),
        files.len(),
        args.out.display()
    );
    Ok(())
}
