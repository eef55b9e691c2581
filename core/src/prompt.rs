//! The task prompt: the instruction text the tagging model reads, with the document in its
//! `{raw_text}` field.
//!
//! A prompt is a versioned asset, not code. lamar ships its own
//! ([`TaskPrompt::builtin`], `core/assets/prompts/lamar-tagging-v1.txt`: the same nine tags and
//! rules as LAMAR's, in lamar's words); [`TaskPrompt::from_file`] loads any other, so an adapter
//! trained on another prompt (for example the reference system's, recognised by its SHA-256,
//! [`REFERENCE_PROMPT_SHA256`]) is run with the prompt it was trained on.
//!
//! Filling follows Python's `str.format(raw_text=…)`, which is how the reference fills its
//! prompt: `{{` and `}}` stand for single braces, `{raw_text}` for the document, and braces
//! inside the document are never interpreted. Anything else `str.format` would reject or
//! interpret (other fields, conversions, format specs, lone braces) is refused when the prompt
//! is loaded, with its line and column.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// SHA-256 of the reference system's `prompt/prompt.txt` (LAMAR,
/// <https://github.com/biodatlab/medexact-lamar> at commit `2c0d9c5`).
pub const REFERENCE_PROMPT_SHA256: &str =
    "f0bcaf9b1df3092c8a9ec9e7beddd1f5c5a221470ba245c5b372e77f3749d40c";

/// Name of the built-in prompt (its file name without extension).
pub const BUILTIN_NAME: &str = "lamar-tagging-v1";

const BUILTIN_TEXT: &str = include_str!("../assets/prompts/lamar-tagging-v1.txt");

/// Why a prompt could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a format string with only a `{raw_text}` field.
    #[error("{origin}:{line}:{column}: {message}")]
    Format {
        /// File name, or `built-in`.
        origin: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// One piece of a parsed prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    RawText,
}

/// A task prompt, checked and split at its `{raw_text}` fields.
#[derive(Debug, Clone)]
pub struct TaskPrompt {
    text: String,
    origin: String,
    pieces: Vec<Piece>,
}

impl TaskPrompt {
    /// lamar's own prompt.
    pub fn builtin() -> TaskPrompt {
        TaskPrompt::from_text(BUILTIN_TEXT, "built-in")
            .expect("the built-in prompt is a valid format string")
    }

    /// A prompt from a UTF-8 file, used exactly as written (no trimming, no newline added).
    pub fn from_file(path: &Path) -> Result<TaskPrompt, PromptError> {
        let text = std::fs::read_to_string(path).map_err(|source| PromptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        TaskPrompt::from_text(&text, &path.display().to_string())
    }

    /// A prompt from text; `origin` names it in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<TaskPrompt, PromptError> {
        let pieces = parse(text).map_err(|(at, message)| {
            let before: String = text.chars().take(at).collect();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            PromptError::Format {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        })?;
        Ok(TaskPrompt {
            text: text.to_string(),
            origin: origin.to_string(),
            pieces,
        })
    }

    /// The prompt with `raw_text` in place of every `{raw_text}` (Python `str.format`).
    pub fn fill(&self, raw_text: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + raw_text.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::RawText => out.push_str(raw_text),
            }
        }
        out
    }

    /// The text as loaded (braces unreplaced).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where it came from: a file name or `built-in`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Lower-case hex SHA-256 of the UTF-8 text, to tell prompts apart in logs and outputs.
    pub fn sha256(&self) -> String {
        Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A short description: origin, hash prefix, and which known prompt this is.
    pub fn describe(&self) -> String {
        let hash = self.sha256();
        let known = if hash == REFERENCE_PROMPT_SHA256 {
            " (the LAMAR reference prompt)"
        } else if self.text == BUILTIN_TEXT {
            " (lamar-tagging-v1)"
        } else {
            ""
        };
        format!("{} sha256:{}{known}", self.origin, &hash[..12])
    }
}

/// Splits a `str.format` template whose only field is `raw_text`; errors carry the character
/// index of the fault.
fn parse(text: &str) -> Result<Vec<Piece>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                literal.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                literal.push('}');
                i += 2;
            }
            '}' => {
                return Err((i, "single '}' (write '}}' for a literal brace)".into()));
            }
            '{' => {
                let Some(close) = chars[i + 1..].iter().position(|&c| c == '}') else {
                    return Err((
                        i,
                        "'{' without a closing '}' (write '{{' for a literal brace)".into(),
                    ));
                };
                let field: String = chars[i + 1..i + 1 + close].iter().collect();
                if field != "raw_text" {
                    return Err((
                        i,
                        format!(
                            "unknown field {{{field}}}: the only field a prompt may use is \
                             {{raw_text}} (write '{{{{' and '}}}}' for literal braces)"
                        ),
                    ));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::RawText);
                i += close + 2;
            }
            c => {
                literal.push(c);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    if !pieces.contains(&Piece::RawText) {
        return Err((
            chars.len(),
            "the prompt has no {raw_text} field, so the document would never reach the model"
                .into(),
        ));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_replaces_the_field_and_its_braces_stay_literal() {
        let p = TaskPrompt::from_text("Tag {{this}}:\n{raw_text}\nEnd {raw_text}", "t").unwrap();
        assert_eq!(p.fill("a {b} }}"), "Tag {this}:\na {b} }}\nEnd a {b} }}");
    }

    #[test]
    fn the_builtin_prompt_names_every_tag_and_ends_with_the_document() {
        let p = TaskPrompt::builtin();
        for c in crate::category::Category::ALL {
            assert!(p.text().contains(&format!("<{}>", c.tag())), "{}", c.tag());
        }
        assert!(p.fill("NOTE").ends_with("## Discharge summary\nNOTE"));
        assert_ne!(p.sha256(), REFERENCE_PROMPT_SHA256);
        assert!(p.describe().contains("lamar-tagging-v1"));
    }

    #[test]
    fn what_python_would_reject_or_interpret_is_refused_with_its_place() {
        let err = |t: &str| TaskPrompt::from_text(t, "p.txt").unwrap_err().to_string();
        assert!(err("a\nb } {raw_text}").starts_with("p.txt:2:3: single '}'"));
        assert!(err("{raw_text} {").starts_with("p.txt:1:12: '{' without"));
        assert!(err("{raw_text!r}").contains("unknown field {raw_text!r}"));
        assert!(err("{raw_text:>5}").contains("unknown field"));
        assert!(err("{} {raw_text}").contains("unknown field {}"));
        assert!(err("no field here").contains("no {raw_text} field"));
    }

    #[test]
    fn files_are_read_verbatim_and_missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("lamar-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.txt");
        std::fs::write(&path, "Do it.\n{raw_text}\n").unwrap();
        let p = TaskPrompt::from_file(&path).unwrap();
        assert_eq!(p.fill("x"), "Do it.\nx\n");
        assert!(p.describe().starts_with(&path.display().to_string()));
        let missing = TaskPrompt::from_file(&dir.join("none.txt")).unwrap_err();
        assert!(missing.to_string().contains("none.txt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
