//! Predicted spans outside their document's text, as `evaluate` and `ensemble` report them
//! (`view` reports them through the site's warnings): one warning per span on standard error, or with `--strict` an error listing them.

use anyhow::{Result, bail};
use lamar_core::formats::predictions::OutsideText;
use std::path::PathBuf;

/// Reports `found` (each span with its predictions file): warnings, or an error when `strict`.
pub fn report(found: &[(PathBuf, OutsideText)], strict: bool) -> Result<()> {
    let lines: Vec<String> = found
        .iter()
        .map(|(path, problem)| format!("{}: {problem}", path.display()))
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    if strict {
        bail!(
            "{} predicted span(s) lie outside their text (--strict):\n{}",
            lines.len(),
            lines.join("\n")
        );
    }
    for line in &lines {
        eprintln!("warning: {line} (not scored or merged)");
    }
    Ok(())
}
