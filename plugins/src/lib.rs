//! # lamar-plugins
//!
//! Runs user-supplied voting and reward functions as sandboxed WebAssembly plugins with
//! wasmtime, so that anyone can try a new ensemble rule or GRPO reward without forking lamar,
//! and share it as one `.wasm` file that behaves the same on every platform.
//!
//! ## Design
//! * **One contract**: `plugins/wit/lamar-plugin.wit` (WIT, the component model) defines both
//!   plugin kinds; the host bindings here and the guest bindings in `lamar-plugin-sdk` are
//!   generated from it. The component model was chosen over a hand-written core-module ABI:
//!   typed records, lists and strings cross the boundary without a private serialisation
//!   format, any language with a WIT binding generator can write plugins, and its cost (about
//!   0.2 µs per call plus copying) disappears because calls are batched (a voter call carries
//!   whole documents' clusters, a reward call many samples). BENCHMARKS.md has the numbers.
//! * **Versioned**: the interface version is part of the export name
//!   (`lamar:plugin/voter@1.0.0`); a plugin for another version is refused with both named.
//! * **Sandboxed** ([`sandbox`]): no imports at all (no WASI: no files, network or clock), a
//!   fuel budget per call, a memory cap per instance, a bounded stack. Every failure becomes a
//!   [`PluginError`] naming the plugin; lamar itself never crashes and the next call works.
//! * **Fast**: a plugin file is compiled once per [`PluginHost`] (cached by content) and its
//!   instances are pooled across calls and threads.
//!
//! ## Use
//! ```no_run
//! # fn main() -> Result<(), lamar_plugins::PluginError> {
//! use lamar_plugins::{Limits, PluginHost};
//! let host = PluginHost::new(Limits::default())?;
//! let voter = host.load_voter("boundary_vote.wasm".as_ref())?;
//! println!("{}", voter.info().name);
//! # Ok(()) }
//! ```

pub mod error;
pub mod load;
mod pool;
pub mod reward;
pub mod sandbox;
pub mod voter;

pub use error::PluginError;
pub use load::PluginKind;
pub use reward::{RewardInput, RewardPlugin};
pub use sandbox::Limits;
pub use voter::VoterPlugin;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::Component;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What it does.
    pub description: String,
}

/// A compiled plugin in the cache: the file's bytes (to rule out hash collisions) and code.
struct Cached {
    bytes: Vec<u8>,
    component: Component,
}

/// Loads plugins: one wasmtime engine, the sandbox limits, and a cache of compiled plugins.
pub struct PluginHost {
    engine: Engine,
    limits: Limits,
    cache: Mutex<HashMap<u64, Cached>>,
}

/// What `lamar plugin check` reports.
#[derive(Debug, Clone)]
pub struct PluginReport {
    /// Which interface it implements.
    pub kind: PluginKind,
    /// Its own description.
    pub info: PluginInfo,
    /// The interface export name.
    pub interface: String,
    /// File size in bytes.
    pub file_bytes: usize,
}

impl PluginHost {
    /// A host whose plugins run under `limits`.
    pub fn new(limits: Limits) -> Result<PluginHost, PluginError> {
        let engine = sandbox::engine(&limits).map_err(|e| PluginError::Load {
            plugin: "(engine)".into(),
            message: format!("{e:#}"),
        })?;
        Ok(PluginHost {
            engine,
            limits,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The limits plugins run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Loads a voter plugin.
    pub fn load_voter(&self, path: &Path) -> Result<VoterPlugin, PluginError> {
        VoterPlugin::load(self, path)
    }

    /// Loads a reward plugin.
    pub fn load_reward(&self, path: &Path) -> Result<RewardPlugin, PluginError> {
        RewardPlugin::load(self, path)
    }

    /// Loads a plugin of either kind, calls its `info`, and reports what it is.
    pub fn check(&self, path: &Path) -> Result<PluginReport, PluginError> {
        let plugin = path.display().to_string();
        let bytes = read(path)?;
        let component = load::component_bytes(&plugin, &bytes)?;
        let compiled =
            Component::from_binary(&self.engine, &component).map_err(|e| PluginError::Load {
                plugin: plugin.clone(),
                message: format!("{e:#}"),
            })?;
        // Checks imports and version with the kind it claims (voter if it claims none).
        let kind = load::kind_of(&self.engine, &compiled).unwrap_or(PluginKind::Voter);
        let info = match kind {
            PluginKind::Voter => self.load_voter(path)?.info().clone(),
            PluginKind::Reward => self.load_reward(path)?.info().clone(),
        };
        Ok(PluginReport {
            kind,
            info,
            interface: kind.export_name(),
            file_bytes: bytes.len(),
        })
    }

    /// A pool of instances of a plugin file of `kind`: compiled (or taken from the cache),
    /// checked, and linked with nothing; `typed` turns the linked component into the function
    /// that instantiates its typed bindings.
    pub(crate) fn pool<B>(
        &self,
        path: &Path,
        kind: PluginKind,
        typed: impl FnOnce(
            wasmtime::component::InstancePre<sandbox::Guard>,
        ) -> wasmtime::Result<pool::Instantiate<B>>,
    ) -> Result<pool::Pool<B>, PluginError> {
        let (plugin, component) = self.compiled(path, kind)?;
        let mut linker = wasmtime::component::Linker::new(&self.engine);
        // The shared types interface: nothing to provide but the (empty) instance.
        let instantiate = linker
            .instance(&load::shared_types_name())
            .map(|_| ())
            .and_then(|()| linker.instantiate_pre(&component))
            .and_then(typed)
            .map_err(|e| PluginError::Load {
                plugin: plugin.clone(),
                message: format!("{e:#}"),
            })?;
        Ok(pool::Pool::new(
            plugin,
            self.engine.clone(),
            self.limits,
            instantiate,
        ))
    }

    /// The compiled, checked component of a plugin file, from the cache when the same bytes
    /// were loaded before.
    fn compiled(&self, path: &Path, kind: PluginKind) -> Result<(String, Component), PluginError> {
        let plugin = path.display().to_string();
        let bytes = read(path)?;
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let key = hasher.finish();
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(&key)
            && hit.bytes == bytes
        {
            // Same bytes: only the kind needs checking again.
            if load::kind_of(&self.engine, &hit.component) == Some(kind) {
                return Ok((plugin, hit.component.clone()));
            }
        }
        let component = load::component_bytes(&plugin, &bytes)?;
        let compiled = load::compile(&self.engine, &plugin, &component, kind)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                key,
                Cached {
                    bytes,
                    component: compiled.clone(),
                },
            );
        }
        Ok((plugin, compiled))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path).map_err(|source| PluginError::Read {
        plugin: path.display().to_string(),
        source,
    })
}
