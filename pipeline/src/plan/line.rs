//! Command lines as the plan builds them: words, options that are left out when unset, and
//! paths that must be UTF-8; and the model flags every training and tagging command shares.

use super::{Invocation, Resume};
use crate::PipelineError;
use std::path::{Path, PathBuf};

/// Builds command lines: strings, with paths that must be UTF-8.
#[derive(Default)]
pub(super) struct Line(Vec<String>);

impl Line {
    pub(super) fn new(words: &[&str]) -> Line {
        Line(words.iter().map(|w| w.to_string()).collect())
    }
    pub(super) fn arg(mut self, flag: &str, value: impl ToString) -> Line {
        self.0.push(flag.to_string());
        self.0.push(value.to_string());
        self
    }
    pub(super) fn opt<T: ToString>(self, flag: &str, value: &Option<T>) -> Line {
        match value {
            Some(v) => self.arg(flag, v.to_string()),
            None => self,
        }
    }
    pub(super) fn flag(mut self, flag: &str, on: bool) -> Line {
        if on {
            self.0.push(flag.to_string());
        }
        self
    }
    pub(super) fn path(self, flag: &str, path: &Path) -> Result<Line, PipelineError> {
        let text = utf8(path)?;
        Ok(self.arg(flag, text))
    }
    pub(super) fn paths(mut self, flag: &str, paths: &[PathBuf]) -> Result<Line, PipelineError> {
        self.0.push(flag.to_string());
        for p in paths {
            self.0.push(utf8(p)?.to_string());
        }
        Ok(self)
    }
    pub(super) fn done(self) -> Invocation {
        Invocation {
            args: self.0,
            resume: None,
        }
    }
    pub(super) fn resumable(self, checkpoint: PathBuf) -> Invocation {
        Invocation {
            args: self.0,
            resume: Some(Resume {
                flag: "--resume".into(),
                checkpoint,
            }),
        }
    }
}

pub(super) fn utf8(path: &Path) -> Result<&str, PipelineError> {
    path.to_str().ok_or_else(|| PipelineError::Invalid {
        key: "a path".into(),
        message: format!("{} is not valid UTF-8", path.display()),
    })
}

/// The model settings every training and tagging command shares.
pub(super) struct ModelArgs {
    pub(super) snapshot: PathBuf,
    pub(super) device: &'static str,
    pub(super) dtype: Option<String>,
    pub(super) prompt: Option<PathBuf>,
}

impl ModelArgs {
    pub(super) fn add(&self, line: Line, with_dtype: bool) -> Result<Line, PipelineError> {
        let mut line = line.arg("--device", self.device);
        if with_dtype {
            line = line.opt("--dtype", &self.dtype);
        }
        match &self.prompt {
            Some(p) => line.path("--prompt-file", p),
            None => Ok(line),
        }
    }
}
