//! The ensemble viewer as a self-contained static site: the page (`wasm/web/`), the viewer's
//! WebAssembly package (wasm-bindgen output, inlined as base64 so that the page opens straight
//! from disk) and the data, preloaded. The data goes through the same [`Workbench`] the page
//! runs, so bad input fails here, naming the file, instead of in the browser.

use crate::workbench::Workbench;
use base64::Engine;
use lamar_core::formats::predictions::{
    parse_predictions, predictions_to_string, spans_outside_text,
};
use lamar_core::formats::raw_text::read_raw_text;
use lamar_core::formats::split::read_split;
use lamar_core::formats::{FormatError, read_utf8, write_atomic};
use lamar_core::grpo::parse_rollouts;
use lamar_core::pseudo::embeddings::read_notes;
use lamar_core::pseudo::neighbours::parse_matches;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The page's own files, compiled in.
const PAGE: [(&str, &str); 3] = [
    ("index.html", include_str!("../web/index.html")),
    ("viewer.css", include_str!("../web/viewer.css")),
    ("viewer.js", include_str!("../web/viewer.js")),
];

/// What goes into a site.
#[derive(Debug, Clone)]
pub struct SiteInputs {
    /// Folder of raw texts (`<id>.txt`).
    pub raw_text_dir: PathBuf,
    /// Predictions JSON of each model.
    pub predictions: Vec<PathBuf>,
    /// Folder of gold JSON files (enables scores).
    pub gold_dir: Option<PathBuf>,
    /// Demographics (enables the worst-group and final scores).
    pub stats_csv: Option<PathBuf>,
    /// Only the documents of this split file.
    pub split: Option<PathBuf>,
    /// GRPO rollout logs (`rollouts.jsonl` of `lamar train grpo`).
    pub rollouts: Vec<PathBuf>,
    /// Retrieval results (`neighbours.jsonl` of `lamar pseudo retrieve`).
    pub retrieval: Vec<PathBuf>,
    /// Notes to show beside them (JSON Lines with `file_id` and `text` or `raw_text`: the
    /// chosen notes `lamar pseudo retrieve --inference-input` wrote, or the extracted notes).
    pub notes: Vec<PathBuf>,
    /// The viewer's WebAssembly package.
    pub pkg: ViewerPackage,
    /// Refuse predictions with spans outside their text instead of warning about them.
    pub strict: bool,
}

/// The viewer's WebAssembly package: wasm-bindgen's glue (`lamar_wasm.js`) and module
/// (`lamar_wasm_bg.wasm`).
#[derive(Debug, Clone)]
pub enum ViewerPackage {
    /// A folder holding both files (`wasm/build-web.sh` writes `target/lamar-web/pkg`).
    Folder(PathBuf),
    /// Both files' contents, e.g. compiled into a binary so that it writes sites from any
    /// folder.
    Bytes {
        /// `lamar_wasm.js`.
        glue: &'static str,
        /// `lamar_wasm_bg.wasm`.
        module: &'static [u8],
    },
}

impl ViewerPackage {
    /// The glue and the module, read from the folder or as compiled in.
    fn load(&self) -> Result<(String, Vec<u8>), SiteError> {
        match self {
            ViewerPackage::Folder(dir) => {
                let glue = dir.join("lamar_wasm.js");
                let module = dir.join("lamar_wasm_bg.wasm");
                if !glue.is_file() || !module.is_file() {
                    return Err(SiteError::MissingPackage(dir.clone()));
                }
                let bytes = std::fs::read(&module).map_err(|e| FormatError::io(&module, e))?;
                Ok((read_utf8(&glue)?, bytes))
            }
            ViewerPackage::Bytes { glue, module } => Ok((glue.to_string(), module.to_vec())),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteReport {
    /// The page to open.
    pub index: PathBuf,
    /// Documents in the site.
    pub documents: usize,
    /// Whether gold was loaded.
    pub has_gold: bool,
    /// What the workbench warned about (documents without raw text, …) and predicted spans
    /// outside their text (each with its file, entry and index; the page does not draw them).
    pub warnings: Vec<String>,
}

/// Why a site could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The WebAssembly package is not there.
    #[error(
        "{0}: the viewer's WebAssembly package is missing (build it with wasm/build-web.sh, \
         which needs wasm-bindgen-cli 0.2.130)"
    )]
    MissingPackage(PathBuf),
    /// A file could not be read or written.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Predicted spans lie outside their text and `strict` was asked for.
    #[error("{} predicted span(s) lie outside their text:\n{}", .0.len(), .0.join("\n"))]
    OutsideText(Vec<String>),
    /// A file's contents were refused by the workbench.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn sorted_files(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, FormatError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| FormatError::io(dir, e))?
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

/// The names the models' lanes carry: each file's name, or, where two files share it (every
/// model of a pipeline writes `test.json`), its folder and name (`infer-dft/test.json`), or
/// else its whole path.
pub fn model_names(paths: &[PathBuf]) -> Vec<String> {
    let with_folder = |path: &Path| -> String {
        match path.parent().and_then(|p| p.file_name()) {
            Some(folder) => format!("{}/{}", folder.to_string_lossy(), file_name(path)),
            None => path.display().to_string(),
        }
    };
    let unique = |names: &[String]| {
        names.iter().collect::<std::collections::HashSet<_>>().len() == names.len()
    };
    for name in [file_name, with_folder] {
        let names: Vec<String> = paths.iter().map(|p| name(p)).collect();
        if unique(&names) {
            return names;
        }
    }
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Writes the site into `out` (created if missing).
pub fn write_site(inputs: &SiteInputs, out: &Path) -> Result<SiteReport, SiteError> {
    let (glue, module) = inputs.pkg.load()?;
    let keep: Option<HashSet<String>> = match &inputs.split {
        Some(path) => Some(read_split(path)?.into_iter().collect()),
        None => None,
    };
    let wanted = |id: &str| keep.as_ref().is_none_or(|k| k.contains(id));
    let invalid = |path: &Path, message: String| SiteError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut bench = Workbench::new();
    let mut raw_texts = serde_json::Map::new();
    let mut text_lengths = HashMap::new();
    for path in sorted_files(&inputs.raw_text_dir, "txt")? {
        let name = file_name(&path);
        if !wanted(name.trim_end_matches(".txt")) {
            continue;
        }
        let text = read_raw_text(&path)?;
        text_lengths.insert(
            name.trim_end_matches(".txt").to_string(),
            text.chars().count(),
        );
        bench.add_raw_text(&name, &text);
        raw_texts.insert(name, json!(text));
    }
    let mut gold = Vec::new();
    if let Some(dir) = &inputs.gold_dir {
        for path in sorted_files(dir, "json")? {
            let name = file_name(&path);
            if !wanted(name.trim_end_matches(".json").trim_end_matches('_')) {
                continue;
            }
            let text = read_utf8(&path)?;
            bench
                .add_gold(&name, &text)
                .map_err(|e| invalid(&path, e))?;
            gold.push(json!({"name": name, "json": text}));
        }
    }
    let stats = match &inputs.stats_csv {
        Some(path) => {
            let name = file_name(path);
            let csv = read_utf8(path)?;
            bench.set_stats(&name, &csv).map_err(|e| invalid(path, e))?;
            Some(json!({"name": name, "csv": csv}))
        }
        None => None,
    };
    let mut predictions = Vec::new();
    let mut outside = Vec::new();
    for (path, name) in inputs
        .predictions
        .iter()
        .zip(model_names(&inputs.predictions))
    {
        let mut text = read_utf8(path)?;
        let files = parse_predictions(&text, &path.display().to_string())?;
        for problem in spans_outside_text(&files, |id| text_lengths.get(id).copied()) {
            if wanted(&problem.file_name) {
                outside.push(format!("{}: {problem}", path.display()));
            }
        }
        if keep.is_some() {
            // Keep only the split's documents (the page gets less to load).
            let kept: Vec<_> = files.into_iter().filter(|f| wanted(&f.file_name)).collect();
            text = predictions_to_string(&kept);
        }
        bench
            .add_predictions(&name, &text)
            .map_err(|e| invalid(path, e))?;
        predictions.push(json!({"name": name, "json": text}));
    }
    if inputs.strict && !outside.is_empty() {
        return Err(SiteError::OutsideText(outside));
    }
    let mut rollouts = Vec::new();
    for path in &inputs.rollouts {
        let text = read_utf8(path)?;
        parse_rollouts(&text, &path.display().to_string())?;
        rollouts.push(json!({"name": file_name(path), "jsonl": text}));
    }
    let mut retrieval = Vec::new();
    for path in &inputs.retrieval {
        let text = read_utf8(path)?;
        parse_matches(&text, &path.display().to_string())?;
        retrieval.push(json!({"name": file_name(path), "jsonl": text}));
    }
    let mut notes = Vec::new();
    for path in &inputs.notes {
        read_notes(path)?;
        notes.push(json!({"name": file_name(path), "jsonl": read_utf8(path)?}));
    }
    let data = json!({
        "rawTexts": raw_texts,
        "gold": gold,
        "stats": stats,
        "predictions": predictions,
        "rollouts": rollouts,
        "retrieval": retrieval,
        "notes": notes,
    });
    std::fs::create_dir_all(out).map_err(|e| FormatError::io(out, e))?;
    for (name, contents) in PAGE {
        write_atomic(&out.join(name), contents.as_bytes())?;
    }
    write_atomic(&out.join("lamar_wasm.js"), glue.as_bytes())?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&module);
    write_atomic(
        &out.join("lamar_wasm_bytes.js"),
        format!("window.LAMAR_WASM_BASE64 = \"{encoded}\";\n").as_bytes(),
    )?;
    write_atomic(
        &out.join("data.js"),
        format!("window.LAMAR_DATA = {data};\n").as_bytes(),
    )?;
    Ok(SiteReport {
        index: out.join("index.html"),
        documents: bench.documents().len(),
        has_gold: bench.has_gold(),
        warnings: bench.warnings().into_iter().chain(outside).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_named_by_file_then_by_folder_when_names_repeat() {
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            model_names(&paths(&["a/model_0.json", "b/model_1.json"])),
            ["model_0.json", "model_1.json"]
        );
        assert_eq!(
            model_names(&paths(&[
                "out/infer-dft/test.json",
                "out/consensus/test.json"
            ])),
            ["infer-dft/test.json", "consensus/test.json"]
        );
        assert_eq!(
            model_names(&paths(&["x/m/test.json", "y/m/test.json"])),
            ["x/m/test.json", "y/m/test.json"]
        );
    }
}
