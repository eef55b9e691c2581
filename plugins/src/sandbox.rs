//! The sandbox: what a plugin may use. Plugins get no imports at all (no WASI), a fuel budget
//! per call (deterministic, counts executed instructions), a memory cap per instance and a
//! bounded stack. Fuel rather than wall-clock epochs: the same plugin and input stop at the
//! same point on every machine, and no timer thread is needed.

use wasmtime::{Config, Engine, ResourceLimiter};

/// Resource limits for every plugin of a [`crate::PluginHost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call (about one unit per WebAssembly instruction).
    pub fuel_per_call: u64,
    /// Linear memory cap per plugin instance, in bytes.
    pub memory_bytes: usize,
    /// WebAssembly stack, in bytes.
    pub stack_bytes: usize,
}

impl Default for Limits {
    /// 2·10⁹ fuel per call (about a second of work), 256 MiB of memory, 1 MiB of stack.
    fn default() -> Self {
        Limits {
            fuel_per_call: 2_000_000_000,
            memory_bytes: 256 << 20,
            stack_bytes: 1 << 20,
        }
    }
}

/// The wasmtime engine configuration for plugins.
pub(crate) fn engine(limits: &Limits) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.max_wasm_stack(limits.stack_bytes);
    config.wasm_component_model(true);
    Engine::new(&config)
}

/// Per-instance state: the memory cap, and whether the plugin ran into it.
pub(crate) struct Guard {
    pub(crate) memory_bytes: usize,
    pub(crate) hit_memory_cap: bool,
}

impl ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit_memory_cap = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}
