//! # lamar-plugins
//!
//! Will host user-supplied voting and reward functions as sandboxed WebAssembly plugins run by
//! wasmtime.
//!
//! **Status: empty.** Nothing here works yet; the work is tracked in the issue "Plugins". It
//! builds on the ensemble API, which does not exist yet either.
