//! `lamar view`: write the ensemble viewer as a self-contained static site.

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use lamar_core::formats::{read_utf8, write_atomic};
use lamar_wasm::workbench::Workbench;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The page's own files, compiled into lamar.
const PAGE: [(&str, &str); 3] = [
    ("index.html", include_str!("../../../wasm/web/index.html")),
    ("viewer.css", include_str!("../../../wasm/web/viewer.css")),
    ("viewer.js", include_str!("../../../wasm/web/viewer.js")),
];

/// Write the ensemble viewer, with your data preloaded, as a static site.
///
/// The site (index.html and a few scripts) opens straight from disk or from any static server;
/// everything runs in the browser through WebAssembly and nothing leaves the machine. It shows
/// every model's spans, the merged result and the gold as separate lines under the text, the
/// clusters and model weights behind each merged span, scores per system and per document, and
/// sliders for the consensus thresholds that recompute live. More files can be dropped onto the
/// page. The WebAssembly package comes from --pkg (build it with wasm/build-web.sh).
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
    /// Folder to write the site into.
    #[arg(long)]
    pub out: PathBuf,
    /// The viewer's WebAssembly package (wasm-bindgen output of lamar-wasm).
    #[arg(long, default_value = "target/lamar-web/pkg")]
    pub pkg: PathBuf,
}

fn sorted_files(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Runs `lamar view`.
pub fn run(args: &ViewArgs) -> Result<()> {
    let glue = args.pkg.join("lamar_wasm.js");
    let module = args.pkg.join("lamar_wasm_bg.wasm");
    if !glue.is_file() || !module.is_file() {
        bail!(
            "{}: the viewer's WebAssembly package is missing (build it with wasm/build-web.sh, \
             which needs wasm-bindgen-cli 0.2.130)",
            args.pkg.display()
        );
    }
    let keep: Option<std::collections::HashSet<String>> = match &args.split {
        Some(path) => Some(
            lamar_core::formats::split::read_split(path)?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let wanted = |id: &str| keep.as_ref().is_none_or(|k| k.contains(id));
    // Load everything through the same code the page runs, so bad input fails here, naming
    // the file, instead of in the browser.
    let mut bench = Workbench::new();
    let mut raw_texts = serde_json::Map::new();
    for path in sorted_files(&args.raw_text_dir, "txt")? {
        let name = file_name(&path);
        if !wanted(name.trim_end_matches(".txt")) {
            continue;
        }
        let text = lamar_core::formats::raw_text::read_raw_text(&path)?;
        bench.add_raw_text(&name, &text);
        raw_texts.insert(name, json!(text));
    }
    let mut gold = Vec::new();
    if let Some(dir) = &args.gold_dir {
        for path in sorted_files(dir, "json")? {
            let name = file_name(&path);
            if !wanted(name.trim_end_matches(".json").trim_end_matches('_')) {
                continue;
            }
            let text = read_utf8(&path)?;
            bench.add_gold(&name, &text).map_err(anyhow::Error::msg)?;
            gold.push(json!({"name": name, "json": text}));
        }
    }
    let stats = match &args.stats_csv {
        Some(path) => {
            let name = file_name(path);
            let csv = read_utf8(path)?;
            bench.set_stats(&name, &csv).map_err(anyhow::Error::msg)?;
            Some(json!({"name": name, "csv": csv}))
        }
        None => None,
    };
    let mut predictions = Vec::new();
    for path in &args.predictions {
        let name = file_name(path);
        let mut text = read_utf8(path)?;
        if keep.is_some() {
            // Keep only the split's documents (the page gets less to load).
            let files = lamar_core::formats::predictions::parse_predictions(
                &text,
                &path.display().to_string(),
            )?;
            let kept: Vec<_> = files.into_iter().filter(|f| wanted(&f.file_name)).collect();
            text = lamar_core::formats::predictions::predictions_to_string(&kept);
        }
        bench
            .add_predictions(&name, &text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        predictions.push(json!({"name": name, "json": text}));
    }
    for warning in bench.warnings() {
        eprintln!("warning: {warning}");
    }
    let data = json!({
        "rawTexts": raw_texts,
        "gold": gold,
        "stats": stats,
        "predictions": predictions,
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the folder", args.out.display()))?;
    for (name, contents) in PAGE {
        write_atomic(&args.out.join(name), contents.as_bytes())?;
    }
    let glue_text = read_utf8(&glue)?;
    write_atomic(&args.out.join("lamar_wasm.js"), glue_text.as_bytes())?;
    let bytes =
        std::fs::read(&module).with_context(|| format!("{}: cannot read", module.display()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    write_atomic(
        &args.out.join("lamar_wasm_bytes.js"),
        format!("window.LAMAR_WASM_BASE64 = \"{encoded}\";\n").as_bytes(),
    )?;
    write_atomic(
        &args.out.join("data.js"),
        format!("window.LAMAR_DATA = {};\n", serde_json::to_string(&data)?).as_bytes(),
    )?;
    println!(
        "viewer written to {} ({} documents, {} models{}): open {}",
        args.out.display(),
        bench.documents().len(),
        args.predictions.len(),
        if bench.has_gold() { ", with gold" } else { "" },
        args.out.join("index.html").display()
    );
    Ok(())
}
