//! The embeddings of a run in progress, so that a killed `lamar pseudo embed` loses at most the
//! batch it was on: beside the output, `OUT.partial` holds a header line (JSON: the embedder
//! and the width) and then one record per note as it is embedded (the id's length as a
//! little-endian u32, the id's UTF-8 bytes, `dim` little-endian f32s). A rerun reads what is
//! there, drops a torn last record, and appends; the finished run writes the embeddings file
//! and removes this one.

use crate::formats::FormatError;
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// An open partial file, ready for more records.
pub struct PartialEmbeddings {
    file: std::fs::File,
    path: PathBuf,
    dim: usize,
    /// Embeddings recorded so far, by id.
    pub done: HashMap<String, Vec<f32>>,
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Header {
    embedder: String,
    dim: usize,
}

impl PartialEmbeddings {
    /// The partial file of an output path (`OUT.partial`).
    pub fn path_for(out: &Path) -> PathBuf {
        let mut name = out.as_os_str().to_os_string();
        name.push(".partial");
        PathBuf::from(name)
    }

    /// Opens (or starts) the partial file of `out` for `embedder` with `dim` values per row.
    /// A file left by another embedder or width is an error naming both, never mixed in.
    pub fn open(out: &Path, embedder: &str, dim: usize) -> Result<PartialEmbeddings, FormatError> {
        let path = Self::path_for(out);
        let io = |e| FormatError::io(&path, e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let header = Header {
            embedder: embedder.to_string(),
            dim,
        };
        let mut done = HashMap::new();
        let good = if bytes.is_empty() {
            let mut line = serde_json::to_vec(&header).expect("header serialises");
            line.push(b'\n');
            file.write_all(&line).map_err(io)?;
            line.len()
        } else {
            let end = bytes
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(bytes.len());
            let found: Header =
                serde_json::from_slice(&bytes[..end]).map_err(|e| FormatError::Invalid {
                    path: path.display().to_string(),
                    location: "line 1".into(),
                    message: format!("not a lamar partial-embeddings header: {e}"),
                })?;
            if found != header {
                return Err(FormatError::Invalid {
                    path: path.display().to_string(),
                    location: "line 1".into(),
                    message: format!(
                        "left by {} ({} dimensions), not {embedder} ({dim}): remove it to start over",
                        found.embedder, found.dim
                    ),
                });
            }
            let mut at = end + 1;
            while let Some(len) = bytes.get(at..at + 4) {
                let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
                let Some(record) = bytes.get(at + 4..at + 4 + len + 4 * dim) else {
                    break;
                };
                let Ok(id) = std::str::from_utf8(&record[..len]) else {
                    break;
                };
                let values = record[len..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("four bytes")))
                    .collect();
                done.insert(id.to_string(), values);
                at += 4 + len + 4 * dim;
            }
            at.min(bytes.len())
        };
        // Drop a torn last record; append after the good ones.
        file.set_len(good as u64).map_err(io)?;
        file.seek(std::io::SeekFrom::Start(good as u64))
            .map_err(io)?;
        Ok(PartialEmbeddings {
            file,
            path,
            dim,
            done,
        })
    }

    /// Records embeddings and flushes them to disk.
    pub fn record(&mut self, rows: &[(String, Vec<f32>)]) -> Result<(), FormatError> {
        let mut bytes = Vec::new();
        for (id, values) in rows {
            if values.len() != self.dim {
                return Err(FormatError::Invalid {
                    path: self.path.display().to_string(),
                    location: id.clone(),
                    message: format!("{} values, expected {}", values.len(), self.dim),
                });
            }
            bytes.extend((id.len() as u32).to_le_bytes());
            bytes.extend(id.as_bytes());
            bytes.extend(values.iter().flat_map(|x| x.to_le_bytes()));
        }
        let io = |e| FormatError::io(&self.path, e);
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        for (id, values) in rows {
            self.done.insert(id.clone(), values.clone());
        }
        Ok(())
    }

    /// Removes the file (the run is complete).
    pub fn remove(self) -> Result<(), FormatError> {
        std::fs::remove_file(&self.path).map_err(|e| FormatError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_keeps_whole_records_and_drops_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("e.safetensors");
        let mut p = PartialEmbeddings::open(&out, "x", 2).unwrap();
        p.record(&[("a".into(), vec![1.0, 2.0]), ("bé".into(), vec![3.0, 4.0])])
            .unwrap();
        drop(p);
        // A kill in the middle of a record.
        let path = PartialEmbeddings::path_for(&out);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[1, 0, 0, 0, b'c', 0, 0]).unwrap();
        drop(f);
        let mut p = PartialEmbeddings::open(&out, "x", 2).unwrap();
        assert_eq!(p.done.len(), 2);
        assert_eq!(p.done["bé"], vec![3.0, 4.0]);
        p.record(&[("c".into(), vec![5.0, 6.0])]).unwrap();
        drop(p);
        let p = PartialEmbeddings::open(&out, "x", 2).unwrap();
        assert_eq!(p.done.len(), 3);
        assert_eq!(p.done["c"], vec![5.0, 6.0]);
        p.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn another_embedders_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("e.safetensors");
        PartialEmbeddings::open(&out, "x", 2).unwrap();
        let err = PartialEmbeddings::open(&out, "y", 2)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("left by x (2 dimensions), not y (2)"), "{err}");
    }
}
