//! Embedding files: one L2-normalised row per note and the notes' ids beside them, as
//! safetensors (`embeddings`: f32 `[notes, dim]`; the ids, as a JSON array, and the embedder's
//! name in the header's metadata), so that Python reads them with `safetensors.numpy.load_file`.
//! Also the notes to embed ([`read_notes`]: `lamar pseudo extract`'s output or `lamar tag`'s
//! rows) and lamar's dependency-free embedder ([`hashed_embedding`]).

use crate::formats::{FormatError, read_utf8, write_atomic};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Embeddings of notes.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingFile {
    /// The notes' ids, one per row.
    pub ids: Vec<String>,
    /// Values per row.
    pub dim: usize,
    /// `ids.len() × dim` values, row-major.
    pub data: Vec<f32>,
    /// Which embedder made them.
    pub embedder: String,
}

/// The tensor's name in the file.
const TENSOR: &str = "embeddings";

impl EmbeddingFile {
    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), FormatError> {
        let invalid = |message: String| FormatError::Invalid {
            path: path.display().to_string(),
            location: TENSOR.into(),
            message,
        };
        if self.data.len() != self.ids.len() * self.dim {
            return Err(invalid(format!(
                "{} values for {} rows of {}",
                self.data.len(),
                self.ids.len(),
                self.dim
            )));
        }
        let bytes: Vec<u8> = self.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![self.ids.len(), self.dim], &bytes)
            .map_err(|e| invalid(e.to_string()))?;
        let metadata = HashMap::from([
            (
                "ids".to_string(),
                serde_json::to_string(&self.ids).expect("strings serialise"),
            ),
            ("embedder".to_string(), self.embedder.clone()),
        ]);
        let buffer = safetensors::serialize([(TENSOR, view)], Some(metadata))
            .map_err(|e| invalid(e.to_string()))?;
        write_atomic(path, &buffer)
    }

    /// Reads a file [`EmbeddingFile::write`] wrote.
    pub fn read(path: &Path) -> Result<EmbeddingFile, FormatError> {
        let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
        let invalid = |location: &str, message: String| FormatError::Invalid {
            path: path.display().to_string(),
            location: location.into(),
            message,
        };
        let (_, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| invalid("header", format!("not a safetensors file: {e}")))?;
        let info = metadata.metadata().clone().unwrap_or_default();
        let ids: Vec<String> = serde_json::from_str(
            info.get("ids")
                .ok_or_else(|| invalid("metadata", "no ids".into()))?,
        )
        .map_err(|e| invalid("metadata.ids", e.to_string()))?;
        let tensors =
            SafeTensors::deserialize(&bytes).map_err(|e| invalid("header", e.to_string()))?;
        let view = tensors
            .tensor(TENSOR)
            .map_err(|e| invalid(TENSOR, e.to_string()))?;
        let shape = view.shape();
        if view.dtype() != Dtype::F32 || shape.len() != 2 || shape[0] != ids.len() {
            return Err(invalid(
                TENSOR,
                format!(
                    "expected f32 [{}, dim], found {:?} {shape:?}",
                    ids.len(),
                    view.dtype()
                ),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(EmbeddingFile {
            ids,
            dim: shape[1],
            data,
            embedder: info.get("embedder").cloned().unwrap_or_default(),
        })
    }
}

/// A note to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its document id.
    pub file_id: String,
    /// Its text.
    pub text: String,
    /// Its `DESCRIPTION` (`Report`, `Addendum`), when the file has one.
    pub description: Option<String>,
}

/// The notes of a JSON Lines file: `file_id` and `text` (`lamar pseudo extract`) or
/// `raw_text` (`lamar tag`, `lamar infer`'s input); blank lines skipped.
pub fn read_notes(path: &Path) -> Result<Vec<Note>, FormatError> {
    let text = read_utf8(path)?;
    let mut notes = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| FormatError::Invalid {
            path: path.display().to_string(),
            location: format!("line {}", k + 1),
            message,
        };
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let field = |name: &str| row.get(name).and_then(|v| v.as_str());
        let (Some(id), Some(body)) = (
            field("file_id"),
            field("text").or_else(|| field("raw_text")),
        ) else {
            return Err(bad(
                "expected a \"file_id\" and a \"text\" or \"raw_text\" string".into(),
            ));
        };
        notes.push(Note {
            file_id: id.to_string(),
            text: body.to_string(),
            description: field("description").map(String::from),
        });
    }
    Ok(notes)
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// lamar's embedder for users without model weights: a hashed bag of words. Words (runs of
/// letters and digits, lower-cased) are hashed (FNV-1a) into `dim` buckets with a sign from the
/// hash's top bit, each bucket gets `sign · (1 + ln count)`, and the vector is L2-normalised
/// (a text without words gives zeros). Deterministic on every platform.
pub fn hashed_embedding(text: &str, dim: usize) -> Vec<f32> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let buckets = dim.max(1) as u64;
    let mut v = vec![0f32; buckets as usize];
    let mut words: Vec<(&String, &u32)> = counts.iter().collect();
    words.sort(); // a fixed summation order
    for (word, &count) in words {
        let h = fnv1a(word.as_bytes());
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[(h % buckets) as usize] += sign * (1.0 + (count as f32).ln());
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_with_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.safetensors");
        let file = EmbeddingFile {
            ids: vec!["a".into(), "b".into()],
            dim: 3,
            data: vec![1.0, 0.0, 0.0, 0.0, 0.6, 0.8],
            embedder: "hashed-3".into(),
        };
        file.write(&path).unwrap();
        assert_eq!(EmbeddingFile::read(&path).unwrap(), file);
        let wrong = EmbeddingFile { dim: 4, ..file };
        assert!(wrong.write(&path).is_err());
    }

    #[test]
    fn similar_notes_embed_close_and_the_embedding_is_normalised() {
        let a = hashed_embedding("Started aspirin for chest pain.", 256);
        let b = hashed_embedding("started ASPIRIN for chest pain, again", 256);
        let c = hashed_embedding("Hemodialysis three times weekly via fistula", 256);
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(dot(&a, &b) > 0.7 && dot(&a, &c).abs() < 0.3);
        assert!(hashed_embedding("", 8).iter().all(|&x| x == 0.0));
        assert_eq!(a, hashed_embedding("Started aspirin for chest pain.", 256));
    }

    #[test]
    fn notes_come_from_extracted_or_tagged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.jsonl");
        std::fs::write(
            &path,
            "{\"file_id\":\"1\",\"text\":\"x\"}\n\n{\"file_id\":\"2\",\"raw_text\":\"y\"}\n",
        )
        .unwrap();
        let notes = read_notes(&path).unwrap();
        let pairs: Vec<(&str, &str)> = notes
            .iter()
            .map(|n| (n.file_id.as_str(), n.text.as_str()))
            .collect();
        assert_eq!(pairs, [("1", "x"), ("2", "y")]);
        std::fs::write(&path, "{\"id\":\"1\"}\n").unwrap();
        let err = read_notes(&path).unwrap_err().to_string();
        assert!(
            err.contains("n.jsonl: line 1: expected a \"file_id\""),
            "{err}"
        );
    }
}
