//! `lamar ensemble`: merge several models' predictions.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use lamar_core::ensemble::input::read_models;
use lamar_core::ensemble::registry::{VOTER_NAMES, VoterSettings, check_thresholds, voter_by_name};
use lamar_core::ensemble::scc::{BoundaryVote, SccParams};
use lamar_core::ensemble::{explanations_json, merge_all, prediction_files};
use lamar_core::formats::predictions::{
    OutsideText, read_predictions, spans_outside_text, write_predictions,
};
use lamar_core::formats::raw_text::{raw_text_path, read_raw_text};
use lamar_core::formats::{read_utf8, write_atomic};
use lamar_plugins::PluginHost;
use std::collections::HashMap;
use std::path::PathBuf;

/// Which voter merges the models: a built-in one (by its name in
/// [`VOTER_NAMES`]) or a plugin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterChoice {
    /// A built-in voter, by name.
    Builtin(String),
    /// A `.wasm` voter plugin.
    Plugin(PathBuf),
}

impl std::str::FromStr for VoterChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.ends_with(".wasm") {
            return Ok(VoterChoice::Plugin(PathBuf::from(s)));
        }
        let name = s.to_ascii_lowercase();
        if VOTER_NAMES.contains(&name.as_str()) {
            return Ok(VoterChoice::Builtin(name));
        }
        Err(format!(
            "unknown voter {s:?}: use {} or a .wasm plugin file",
            VOTER_NAMES.join(", ")
        ))
    }
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
    /// Merging rule: scc (Span-Cluster Consensus), majority (exact spans most models
    /// predicted), union, intersection, wbf (SCC clusters, weight-averaged boundaries snapped
    /// to observed ones), or a voter plugin file (`*.wasm`, see `lamar plugin check`) that
    /// decides SCC's clusters.
    #[arg(long, default_value = "scc")]
    pub voter: VoterChoice,
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
    /// Folder of raw texts (`<id>.txt`): with it, spans past their text's end are reported too
    /// (without it, only negative offsets).
    #[arg(long)]
    pub raw_text_dir: Option<PathBuf>,
    /// Refuse predictions with spans outside their text instead of warning about each (the
    /// voters drop negative offsets either way).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub limits: super::plugin::LimitsArgs,
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
        check_thresholds(&p)?;
        Ok(p)
    }

    /// The settings of a built-in voter.
    fn voter_settings(&self) -> Result<VoterSettings> {
        Ok(VoterSettings {
            params: self.scc_params()?,
            boundary: match self.boundary {
                BoundaryKind::Joint => BoundaryVote::Joint,
                BoundaryKind::Independent => BoundaryVote::Independent,
            },
            explain: self.explain.is_some(),
        })
    }
}

/// Runs `lamar ensemble`.
pub fn run(args: &EnsembleArgs) -> Result<()> {
    super::outside::report(&outside_text(args)?, args.strict)?;
    let raw = read_models(&args.predictions)?;
    let (name, merged) = match &args.voter {
        VoterChoice::Builtin(name) => {
            let voter = voter_by_name(name, &args.voter_settings()?)?;
            (voter.name().to_string(), merge_all(&raw, voter.as_ref()))
        }
        VoterChoice::Plugin(path) => {
            let params = args.scc_params()?;
            let host = PluginHost::new(args.limits.limits())?;
            let voter = host.load_voter(path)?;
            let merged = voter.merge_all(&raw, &params, args.explain.is_some())?;
            (format!("plugin {}", voter.info().name), merged)
        }
    };
    let files = prediction_files(&merged);
    write_predictions(&args.out, &files)?;
    if let Some(path) = &args.explain {
        write_atomic(path, explanations_json(&merged)?.as_bytes())?;
    }
    let spans: usize = files.iter().map(|f| f.predictions.len()).sum();
    println!(
        "{name}: merged {} models into {spans} spans over {} documents, written to {}",
        args.predictions.len(),
        files.len(),
        args.out.display()
    );
    Ok(())
}

/// Every predicted span outside its text: negative offsets, and with `--raw-text-dir` ends past
/// the text (documents without a text file there are checked for negative offsets only).
fn outside_text(args: &EnsembleArgs) -> Result<Vec<(PathBuf, OutsideText)>> {
    let mut lengths: HashMap<String, Option<usize>> = HashMap::new();
    let mut found = Vec::new();
    for path in &args.predictions {
        let files = read_predictions(path)?;
        if let Some(dir) = &args.raw_text_dir {
            for file in &files {
                if !lengths.contains_key(&file.file_name) {
                    let text_path = raw_text_path(dir, &file.file_name);
                    let len = match text_path.is_file() {
                        true => Some(read_raw_text(&text_path)?.chars().count()),
                        false => None,
                    };
                    lengths.insert(file.file_name.clone(), len);
                }
            }
        }
        let length = |id: &str| lengths.get(id).copied().flatten();
        for problem in spans_outside_text(&files, length) {
            found.push((path.clone(), problem));
        }
    }
    Ok(found)
}
