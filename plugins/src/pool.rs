//! Instances of one compiled plugin, reused across calls and threads. Each call gets a fresh
//! fuel budget; an instance that failed is dropped (its state cannot be trusted) and the next
//! call gets a new one, so one bad call never poisons the next.

use crate::error::PluginError;
use crate::sandbox::{Guard, Limits};
use std::sync::Mutex;
use wasmtime::{Engine, Store, Trap};

/// A plugin instance: its store and its typed bindings.
pub(crate) struct Instance<B> {
    pub(crate) store: Store<Guard>,
    pub(crate) bindings: B,
}

/// Makes the typed bindings of a new instance in a store.
pub(crate) type Instantiate<B> =
    Box<dyn Fn(&mut Store<Guard>) -> wasmtime::Result<B> + Send + Sync>;

/// Creates instances of a plugin and keeps idle ones.
pub(crate) struct Pool<B> {
    pub(crate) plugin: String,
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    idle: Mutex<Vec<Instance<B>>>,
    instantiate: Instantiate<B>,
}

impl<B> Pool<B> {
    pub(crate) fn new(
        plugin: String,
        engine: Engine,
        limits: Limits,
        instantiate: Instantiate<B>,
    ) -> Self {
        Pool {
            plugin,
            engine,
            limits,
            idle: Mutex::new(Vec::new()),
            instantiate,
        }
    }

    fn new_instance(&self) -> Result<Instance<B>, PluginError> {
        let mut store = Store::new(
            &self.engine,
            Guard {
                memory_bytes: self.limits.memory_bytes,
                hit_memory_cap: false,
            },
        );
        store.limiter(|guard| guard);
        self.refuel(&mut store)?;
        let bindings = (self.instantiate)(&mut store)
            .map_err(|e| self.classify(e, store.data().hit_memory_cap))?;
        Ok(Instance { store, bindings })
    }

    fn refuel(&self, store: &mut Store<Guard>) -> Result<(), PluginError> {
        store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| PluginError::Load {
                plugin: self.plugin.clone(),
                message: format!("{e:#}"),
            })
    }

    /// Runs `call` on an idle instance (or a new one) with a full fuel budget.
    pub(crate) fn with_instance<R>(
        &self,
        call: impl FnOnce(&mut Store<Guard>, &B) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.new_instance()?,
        };
        self.refuel(&mut instance.store)?;
        instance.store.data_mut().hit_memory_cap = false;
        match call(&mut instance.store, &instance.bindings) {
            Ok(result) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(instance);
                }
                Ok(result)
            }
            Err(e) => Err(self.classify(e, instance.store.data().hit_memory_cap)),
        }
    }

    /// Names what stopped a plugin.
    fn classify(&self, error: wasmtime::Error, hit_memory_cap: bool) -> PluginError {
        let plugin = self.plugin.clone();
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                plugin,
                fuel: self.limits.fuel_per_call,
            },
            Some(Trap::StackOverflow) => PluginError::StackOverflow { plugin },
            _ if hit_memory_cap => PluginError::OutOfMemory {
                plugin,
                limit_mib: (self.limits.memory_bytes >> 20) as u64,
            },
            Some(Trap::UnreachableCodeReached) => PluginError::Trap {
                plugin,
                message: "reached `unreachable` (a panic or abort in the plugin)".into(),
            },
            Some(trap) => PluginError::Trap {
                plugin,
                message: trap.to_string(),
            },
            None => PluginError::Trap {
                plugin,
                message: format!("{error:#}"),
            },
        }
    }
}
