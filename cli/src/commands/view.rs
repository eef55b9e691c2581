//! `lamar view`: write the ensemble viewer as a self-contained static site.

use anyhow::Result;
use clap::Args;
use lamar_wasm::site::{SiteInputs, write_site};
use std::path::PathBuf;

/// Write the ensemble viewer, with your data preloaded, as a static site.
///
/// The site (index.html and a few scripts) opens straight from disk or from any static server;
/// everything runs in the browser through WebAssembly and nothing leaves the machine. It shows
/// every model's spans, the merged result and the gold as separate lines under the text, the
/// clusters and model weights behind each merged span, scores per system and per document, and
/// sliders for the consensus thresholds that recompute live. More files can be dropped onto the
/// page. The WebAssembly package is compiled into lamar when wasm/build-web.sh built it first;
/// --pkg names another.
#[derive(Args, Debug)]
pub struct ViewArgs {
    /// Folder of raw texts (`<id>.txt`).
    #[arg(long)]
    pub raw_text_dir: PathBuf,
    /// Predictions JSON of each model.
    #[arg(long, num_args = 1.., required = true)]
    pub predictions: Vec<PathBuf>,
    /// Folder of gold JSON files (enables scores).
    #[arg(long)]
    pub gold_dir: Option<PathBuf>,
    /// Demographics (enables the worst-group and final scores).
    #[arg(long)]
    pub stats_csv: Option<PathBuf>,
    /// Only these documents (a split file: one id per line).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// GRPO rollout logs to show (`rollouts.jsonl` of `lamar train grpo`: every completion
    /// with its rewards and advantage, grouped by step); more can be dropped onto the page.
    #[arg(long)]
    pub rollouts: Vec<PathBuf>,
    /// Retrieval results to show (`neighbours.jsonl` of `lamar pseudo retrieve`: each MedDec
    /// document beside the unlabeled notes it was given, with their scores).
    #[arg(long)]
    pub retrieval: Vec<PathBuf>,
    /// Notes to show in the retrieval page (JSON Lines with file_id and text or raw_text: the
    /// chosen notes `lamar pseudo retrieve --inference-input` wrote); the documents' own texts
    /// come from --raw-text-dir.
    #[arg(long)]
    pub notes: Vec<PathBuf>,
    /// Folder to write the site into.
    #[arg(long)]
    pub out: PathBuf,
    /// The viewer's WebAssembly package (wasm-bindgen output of lamar-wasm: a folder with
    /// lamar_wasm.js and lamar_wasm_bg.wasm). Default: the package compiled into this binary
    /// (when wasm/build-web.sh had built it before lamar was built), else
    /// target/lamar-web/pkg under the current folder.
    #[arg(long)]
    pub pkg: Option<PathBuf>,
    /// Refuse predictions with spans outside their text (negative offsets, or past the text's
    /// end) instead of warning about each (the page never draws them).
    #[arg(long)]
    pub strict: bool,
}

impl ViewArgs {
    /// What goes into the site.
    pub fn site_inputs(&self) -> SiteInputs {
        SiteInputs {
            raw_text_dir: self.raw_text_dir.clone(),
            predictions: self.predictions.clone(),
            gold_dir: self.gold_dir.clone(),
            stats_csv: self.stats_csv.clone(),
            split: self.split.clone(),
            rollouts: self.rollouts.clone(),
            retrieval: self.retrieval.clone(),
            notes: self.notes.clone(),
            pkg: crate::viewer_package::choose(self.pkg.as_deref()),
            strict: self.strict,
        }
    }
}

/// Runs `lamar view`.
pub fn run(args: &ViewArgs) -> Result<()> {
    let report = write_site(&args.site_inputs(), &args.out)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "viewer written to {} ({} documents, {} models{}): open {}",
        args.out.display(),
        report.documents,
        args.predictions.len(),
        if report.has_gold { ", with gold" } else { "" },
        report.index.display()
    );
    Ok(())
}
