//! Training checkpoints: the adapter (PEFT format), the optimiser's moments and the step, in
//! `DIR/checkpoint`, replaced atomically so that a run killed at any moment finds the last
//! complete one.
//!
//! A checkpoint is written into `DIR/checkpoint.tmp` (every file flushed to disk, `state.json`
//! last), then swapped in by two renames: `checkpoint` → `checkpoint.old`, `checkpoint.tmp` →
//! `checkpoint`. A run killed between the two renames leaves no `checkpoint`; [`Checkpoints::last`]
//! then finishes the swap (the complete `.tmp`) or rolls it back (`.old`). `state.json` also
//! holds a fingerprint of the data and the settings: resuming with others is refused, since the
//! replayed data order and schedule would not be the ones the checkpoint continued.

use super::lora::TrainableLora;
use super::optim::AdamW;
use candle_core::{Device, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where checkpoints go and how often.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    /// Folder of the run; the last checkpoint is `DIR/checkpoint` (adapter, optimiser, state).
    pub dir: PathBuf,
    /// Optimiser steps between checkpoints (one is also written at each epoch's end).
    pub every: usize,
    /// Continue from `DIR/checkpoint` when there is one: the adapter passed in must hold its
    /// weights ([`TrainableLora::from_peft`] of [`Checkpoints::last`]).
    pub resume: bool,
}

/// A fingerprint of what a run trains on and how (hex SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// Hashes every token of every example and the settings' debug form.
    pub fn of(examples: &[super::data::Example], settings: &impl std::fmt::Debug) -> Self {
        let mut hash = Sha256::new();
        for e in examples {
            hash.update((e.ids.len() as u64).to_le_bytes());
            hash.update((e.response_start as u64).to_le_bytes());
            for id in &e.ids {
                hash.update(id.to_le_bytes());
            }
        }
        hash.update(format!("{settings:?}").as_bytes());
        Fingerprint::from_digest(hash)
    }

    /// The fingerprint a finished hash gives (its digest in hex), for trainers that hash
    /// other data than [`Fingerprint::of`] does.
    pub fn from_digest(hash: Sha256) -> Self {
        Fingerprint(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Flushes a file's contents to disk.
fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}

impl Checkpoints {
    fn named(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("checkpoint{suffix}"))
    }

    /// The folder of the last complete checkpoint (`DIR/checkpoint`), first finishing or
    /// rolling back a swap that a killed run left half done.
    pub fn last(&self) -> PathBuf {
        let (last, fresh, old) = (self.named(""), self.named(".tmp"), self.named(".old"));
        if !last.exists() {
            if fresh.join("state.json").is_file() {
                let _ = std::fs::rename(&fresh, &last);
            } else if old.exists() {
                let _ = std::fs::rename(&old, &last);
            }
        }
        last
    }

    /// Whether there is a checkpoint to resume from.
    pub fn exists(&self) -> bool {
        self.last().join("state.json").is_file()
    }

    /// The optimiser step of the last checkpoint, if there is one.
    pub fn step(&self) -> Option<usize> {
        self.value("step").map(|s| s as usize)
    }

    /// A number the last checkpoint's state holds (`step`, or one a trainer added with
    /// `Checkpoints::write_with`, such as GRPO's position in the data), if there is one.
    pub fn value(&self, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.last().join("state.json")).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        state[key].as_u64()
    }

    /// Writes the adapter, the optimiser's moments and the step, then swaps them in.
    pub(crate) fn write(
        &self,
        lora: &TrainableLora,
        optimiser: &AdamW,
        step: usize,
        fingerprint: &Fingerprint,
    ) -> Result<()> {
        self.write_with(lora, optimiser, step, fingerprint, &[])
    }

    /// [`Checkpoints::write`] with more numbers in the state (read back with
    /// [`Checkpoints::value`]).
    pub(crate) fn write_with(
        &self,
        lora: &TrainableLora,
        optimiser: &AdamW,
        step: usize,
        fingerprint: &Fingerprint,
        extra: &[(&str, u64)],
    ) -> Result<()> {
        self.write_files(
            |dir| {
                lora.save_peft(dir, "checkpoint")?;
                Ok(vec!["adapter_model.safetensors", "adapter_config.json"])
            },
            optimiser,
            step,
            fingerprint,
            extra,
        )
    }

    /// Writes a checkpoint of any trainer: `save` writes the weights into the fresh folder and
    /// names the files it wrote; then the optimiser's moments, the step and `extra` numbers,
    /// every file flushed, swapped in atomically.
    pub(crate) fn write_files(
        &self,
        save: impl FnOnce(&Path) -> Result<Vec<&'static str>>,
        optimiser: &AdamW,
        step: usize,
        fingerprint: &Fingerprint,
        extra: &[(&str, u64)],
    ) -> Result<()> {
        let fresh = self.named(".tmp");
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)?;
        let mut files = save(&fresh)?;
        let mut moments = HashMap::new();
        for (k, (m, v)) in optimiser.moments().iter().enumerate() {
            moments.insert(format!("m.{k}"), m.clone());
            moments.insert(format!("v.{k}"), v.clone());
        }
        candle_core::safetensors::save(&moments, fresh.join("optimizer.safetensors"))?;
        files.push("optimizer.safetensors");
        for file in files {
            sync(&fresh.join(file))?;
        }
        let mut state = serde_json::json!({
            "step": step,
            "optimizer_steps": optimiser.steps(),
            "fingerprint": fingerprint.0,
        });
        for (key, value) in extra {
            state[*key] = serde_json::json!(value);
        }
        std::fs::write(fresh.join("state.json"), state.to_string())?;
        sync(&fresh.join("state.json"))?;
        let (last, old) = (self.named(""), self.named(".old"));
        let _ = std::fs::remove_dir_all(&old);
        if last.exists() {
            std::fs::rename(&last, &old)?;
        }
        std::fs::rename(&fresh, &last)?;
        // Make the renames themselves durable (directories can be opened for this on Unix).
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// The step and optimiser state of the last checkpoint, if resuming and there is one;
    /// refuses a checkpoint made with other data or settings.
    pub(crate) fn read(
        &self,
        optimiser: &mut AdamW,
        fingerprint: &Fingerprint,
        device: &Device,
    ) -> Result<usize> {
        if !self.resume || !self.exists() {
            return Ok(0);
        }
        let state_path = self.last().join("state.json");
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path)?)
            .map_err(candle_core::Error::wrap)?;
        if state["fingerprint"].as_str() != Some(fingerprint.0.as_str()) {
            candle_core::bail!(
                "{}: this checkpoint was made with other training data or settings; resume with \
                 the same ones, or start afresh without --resume",
                state_path.display()
            );
        }
        let number = |key: &str| {
            state[key].as_u64().ok_or_else(|| {
                candle_core::Error::Msg(format!("{}: no {key}", state_path.display()))
            })
        };
        let (step, steps) = (number("step")? as usize, number("optimizer_steps")?);
        let tensors =
            candle_core::safetensors::load(self.last().join("optimizer.safetensors"), device)?;
        let pairs = (0..optimiser.moments().len())
            .map(|k| {
                let get = |name: String| {
                    tensors.get(&name).cloned().ok_or_else(|| {
                        candle_core::Error::Msg(format!("checkpoint without {name}"))
                    })
                };
                Ok((get(format!("m.{k}"))?, get(format!("v.{k}"))?))
            })
            .collect::<Result<_>>()?;
        optimiser.restore(steps, pairs)?;
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_cut_short_is_finished_or_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints {
            dir: dir.path().to_path_buf(),
            every: 1,
            resume: true,
        };
        let put = |name: &str, step: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("state.json"), step).unwrap();
        };
        let step = || std::fs::read_to_string(c.last().join("state.json")).unwrap();
        // Killed after the old checkpoint moved aside, the new one complete: finished.
        put("checkpoint.old", "1");
        put("checkpoint.tmp", "2");
        assert_eq!(step(), "2");
        // Killed while writing the new one (no state.json yet): the old one comes back.
        std::fs::remove_dir_all(dir.path().join("checkpoint")).unwrap();
        put("checkpoint.old", "1");
        std::fs::create_dir_all(dir.path().join("checkpoint.tmp")).unwrap();
        std::fs::remove_file(dir.path().join("checkpoint.tmp/state.json")).ok();
        assert_eq!(step(), "1");
        assert!(c.exists());
    }
}
