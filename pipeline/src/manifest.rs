//! A stage's manifest (`STAGE/manifest.json`): the commands it ran, lamar's version, and a
//! fingerprint of every file it read and wrote. A stage is skipped when all of them are as
//! recorded, and continued where it stopped when it was interrupted with the same inputs.
//!
//! A fingerprint is the SHA-256 of a file's bytes (of a folder: of every file's relative path
//! and bytes, in path order). Hashing is skipped when the sizes and modification times of all
//! the files equal those recorded, so checking a multi-gigabyte snapshot costs a few `stat`s.

use crate::PipelineError;
use crate::plan::Stage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's file name inside a stage's folder.
pub const MANIFEST: &str = "manifest.json";

/// What a path held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// SHA-256 of the contents, hex; empty when the path does not exist.
    pub sha256: String,
    /// Files (1 for a file, 0 when absent).
    pub files: u64,
    /// Bytes in all.
    pub bytes: u64,
    /// SHA-256 of every file's relative path, size and modification time: when it is
    /// unchanged, `sha256` is taken as unchanged too.
    pub stat: String,
}

/// A stage's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The stage.
    pub stage: String,
    /// lamar's version that ran it.
    pub lamar_version: String,
    /// Its commands (arguments after `lamar`), without resume flags.
    pub commands: Vec<Vec<String>>,
    /// Fingerprints of what it read.
    pub inputs: BTreeMap<String, Fingerprint>,
    /// Fingerprints of what it wrote (when finished).
    pub outputs: BTreeMap<String, Fingerprint>,
    /// Commands that have completed.
    pub commands_done: usize,
    /// Whether every command completed.
    pub finished: bool,
    /// Seconds its commands took, over all its runs.
    pub seconds: f64,
}

/// What to do with a stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Finished with these inputs, commands and version, its outputs untouched: skip it.
    UpToDate,
    /// Interrupted with the same inputs: continue after `commands_done` commands.
    Resume {
        /// Commands already complete.
        commands_done: usize,
    },
    /// Run from the start, for this reason.
    Run(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io(path: &Path, e: std::io::Error) -> PipelineError {
    PipelineError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Every file under `path` (itself when a file), with its path relative to `path`, sorted.
fn files_of(path: &Path) -> Result<Vec<(String, PathBuf)>, PipelineError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![(String::new(), path.to_path_buf())]);
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else {
                let rel = p
                    .strip_prefix(path)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The fingerprint of `path`, reusing `known`'s hash when nothing was modified since.
pub fn fingerprint(path: &Path, known: Option<&Fingerprint>) -> Result<Fingerprint, PipelineError> {
    if !path.exists() {
        return Ok(Fingerprint {
            sha256: String::new(),
            files: 0,
            bytes: 0,
            stat: String::new(),
        });
    }
    let files = files_of(path)?;
    let mut stat = Sha256::new();
    let mut bytes = 0;
    for (rel, p) in &files {
        let meta = std::fs::metadata(p).map_err(|e| io(p, e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        stat.update(format!("{rel}\0{}\0{modified}\n", meta.len()).as_bytes());
        bytes += meta.len();
    }
    let stat = hex(&stat.finalize());
    if let Some(k) = known
        && k.stat == stat
        && !k.sha256.is_empty()
    {
        return Ok(k.clone());
    }
    let mut sha = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for (rel, p) in &files {
        sha.update(rel.as_bytes());
        sha.update([0]);
        let mut file = std::fs::File::open(p).map_err(|e| io(p, e))?;
        loop {
            let n = file.read(&mut buffer).map_err(|e| io(p, e))?;
            if n == 0 {
                break;
            }
            sha.update(&buffer[..n]);
        }
        sha.update([0]);
    }
    Ok(Fingerprint {
        sha256: hex(&sha.finalize()),
        files: files.len() as u64,
        bytes,
        stat,
    })
}

/// Fingerprints of `paths`, keyed by their display form, reusing `known`.
pub fn fingerprints(
    paths: &[PathBuf],
    known: Option<&BTreeMap<String, Fingerprint>>,
) -> Result<BTreeMap<String, Fingerprint>, PipelineError> {
    paths
        .iter()
        .map(|p| {
            let key = p.display().to_string();
            let f = fingerprint(p, known.and_then(|k| k.get(&key)))?;
            Ok((key, f))
        })
        .collect()
}

/// The stage's commands as recorded.
pub fn command_lines(stage: &Stage) -> Vec<Vec<String>> {
    stage.commands.iter().map(|c| c.args.clone()).collect()
}

impl Manifest {
    /// The manifest in `stage`'s folder, if there is one.
    pub fn read(stage: &Stage) -> Result<Option<Manifest>, PipelineError> {
        let path = stage.dir.join(MANIFEST);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| PipelineError::Manifest {
                        path,
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Writes it into `stage`'s folder atomically (a temporary file renamed).
    pub fn write(&self, stage: &Stage) -> Result<(), PipelineError> {
        std::fs::create_dir_all(&stage.dir).map_err(|e| io(&stage.dir, e))?;
        let path = stage.dir.join(MANIFEST);
        let temporary = stage.dir.join(format!("{MANIFEST}.partial"));
        let text = serde_json::to_string_pretty(self).map_err(|e| PipelineError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&temporary, text).map_err(|e| io(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io(&path, e))
    }
}

/// What to do with `stage`, given its previous manifest and the fingerprints of its inputs now.
pub fn status(
    stage: &Stage,
    version: &str,
    previous: Option<&Manifest>,
    inputs: &BTreeMap<String, Fingerprint>,
) -> Result<Status, PipelineError> {
    let Some(previous) = previous else {
        return Ok(Status::Run("never run".into()));
    };
    if previous.lamar_version != version {
        return Ok(Status::Run(format!(
            "lamar's version changed ({} → {version})",
            previous.lamar_version
        )));
    }
    if previous.commands != command_lines(stage) {
        return Ok(Status::Run(
            "its commands changed (the pipeline file)".into(),
        ));
    }
    for (path, now) in inputs {
        if previous.inputs.get(path).map(|f| &f.sha256) != Some(&now.sha256) {
            return Ok(Status::Run(format!("{path} changed")));
        }
    }
    if !previous.finished {
        return Ok(Status::Resume {
            commands_done: previous.commands_done,
        });
    }
    for path in &stage.outputs {
        let key = path.display().to_string();
        let recorded = previous.outputs.get(&key);
        let now = fingerprint(path, recorded)?;
        if now.files == 0 {
            return Ok(Status::Run(format!("{key} is missing")));
        }
        if recorded.map(|f| &f.sha256) != Some(&now.sha256) {
            return Ok(Status::Run(format!(
                "{key} was changed since it was written"
            )));
        }
    }
    Ok(Status::UpToDate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Invocation;

    fn stage(dir: &Path) -> Stage {
        Stage {
            name: "s".into(),
            about: String::new(),
            dir: dir.join("s"),
            commands: vec![Invocation {
                args: vec!["tag".into()],
                resume: None,
            }],
            inputs: vec![dir.join("in.txt")],
            outputs: vec![dir.join("s/out")],
        }
    }

    fn finished(stage: &Stage) -> Manifest {
        Manifest {
            stage: "s".into(),
            lamar_version: "1".into(),
            commands: command_lines(stage),
            inputs: fingerprints(&stage.inputs, None).unwrap(),
            outputs: fingerprints(&stage.outputs, None).unwrap(),
            commands_done: 1,
            finished: true,
            seconds: 0.0,
        }
    }

    #[test]
    fn a_stage_is_up_to_date_until_an_input_output_command_or_version_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = stage(dir.path());
        std::fs::write(dir.path().join("in.txt"), "a").unwrap();
        std::fs::create_dir_all(dir.path().join("s/out/deep")).unwrap();
        std::fs::write(dir.path().join("s/out/deep/x"), "x").unwrap();
        let now = |m: &Manifest| {
            let inputs = fingerprints(&s.inputs, Some(&m.inputs)).unwrap();
            status(&s, "1", Some(m), &inputs).unwrap()
        };
        let inputs = fingerprints(&s.inputs, None).unwrap();
        assert_eq!(
            status(&s, "1", None, &inputs).unwrap(),
            Status::Run("never run".into())
        );
        let m = finished(&s);
        assert_eq!(now(&m), Status::UpToDate);
        // Round trip through the file.
        m.write(&s).unwrap();
        assert_eq!(Manifest::read(&s).unwrap().unwrap(), m);

        let inputs = fingerprints(&s.inputs, Some(&m.inputs)).unwrap();
        assert!(
            matches!(status(&s, "2", Some(&m), &inputs).unwrap(), Status::Run(why) if why.contains("version"))
        );
        let mut other = m.clone();
        other.commands[0].push("--more".into());
        assert!(matches!(now(&other), Status::Run(why) if why.contains("commands")));
        let mut interrupted = m.clone();
        interrupted.finished = false;
        assert_eq!(now(&interrupted), Status::Resume { commands_done: 1 });

        std::fs::write(dir.path().join("s/out/deep/x"), "y").unwrap();
        assert!(matches!(now(&m), Status::Run(why) if why.contains("was changed")));
        std::fs::remove_dir_all(dir.path().join("s/out")).unwrap();
        assert!(matches!(now(&m), Status::Run(why) if why.contains("missing")));
        std::fs::write(dir.path().join("in.txt"), "b").unwrap();
        assert!(matches!(now(&m), Status::Run(why) if why.contains("in.txt changed")));
        // An interrupted stage whose inputs changed starts again.
        assert!(matches!(now(&interrupted), Status::Run(_)));
    }

    #[test]
    fn fingerprints_hash_names_and_bytes_and_reuse_the_hash_while_nothing_was_touched() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(a.join("x"), "1").unwrap();
        std::fs::write(b.join("y"), "1").unwrap();
        let fa = fingerprint(&a, None).unwrap();
        assert_ne!(
            fa.sha256,
            fingerprint(&b, None).unwrap().sha256,
            "names count"
        );
        assert_eq!((fa.files, fa.bytes), (1, 1));
        // With the stat unchanged, a recorded hash is trusted (it is not recomputed).
        let mut known = fa.clone();
        known.sha256 = "recorded".into();
        assert_eq!(fingerprint(&a, Some(&known)).unwrap().sha256, "recorded");
        let absent = fingerprint(&dir.path().join("none"), None).unwrap();
        assert_eq!(absent.files, 0);
    }
}
