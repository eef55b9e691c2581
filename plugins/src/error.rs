//! Everything that can go wrong with a plugin, each naming the plugin.

use thiserror::Error;

/// A plugin failure. `plugin` is the file the plugin came from (or its name).
#[derive(Debug, Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("{plugin}: cannot read the plugin: {source}")]
    Read {
        /// Plugin file.
        plugin: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a WebAssembly module or component, or not one lamar can turn into a plugin.
    #[error("{plugin}: not a lamar plugin: {message}")]
    NotAPlugin {
        /// Plugin file.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The plugin imports something; plugins may import nothing but the shared types (no files,
    /// network, clock).
    #[error(
        "{plugin}: imports {imports} but lamar plugins may import nothing but lamar's shared types (no files, network or clock)"
    )]
    ForbiddenImport {
        /// Plugin file.
        plugin: String,
        /// The imports, `module.name`, comma-separated.
        imports: String,
    },
    /// The plugin implements another version of the plugin interface.
    #[error("{plugin}: implements {found}, but this lamar needs {expected}")]
    WrongInterface {
        /// Plugin file.
        plugin: String,
        /// What the plugin exports.
        found: String,
        /// What lamar needs.
        expected: String,
    },
    /// wasmtime could not compile or instantiate the plugin.
    #[error("{plugin}: cannot load: {message}")]
    Load {
        /// Plugin file.
        plugin: String,
        /// wasmtime's message.
        message: String,
    },
    /// The plugin used up its fuel (time budget) in one call.
    #[error(
        "{plugin}: stopped after using up its fuel ({fuel} units) in one call; raise --plugin-fuel if it needs more"
    )]
    OutOfFuel {
        /// Plugin file.
        plugin: String,
        /// The per-call budget.
        fuel: u64,
    },
    /// The plugin asked for more memory than allowed.
    #[error("{plugin}: stopped: it tried to use more than {limit_mib} MiB of memory")]
    OutOfMemory {
        /// Plugin file.
        plugin: String,
        /// The cap.
        limit_mib: u64,
    },
    /// The plugin overflowed its stack.
    #[error("{plugin}: stopped: stack overflow")]
    StackOverflow {
        /// Plugin file.
        plugin: String,
    },
    /// The plugin trapped (a panic, an out-of-bounds access, …).
    #[error("{plugin}: crashed: {message}")]
    Trap {
        /// Plugin file.
        plugin: String,
        /// wasmtime's description of the trap.
        message: String,
    },
    /// The plugin returned an error message.
    #[error("{plugin}: the plugin reported an error: {message}")]
    Refused {
        /// Plugin file.
        plugin: String,
        /// Its message.
        message: String,
    },
    /// The plugin returned something that breaks the contract.
    #[error("{plugin}: bad output: {message}")]
    BadOutput {
        /// Plugin file.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// The input cannot be passed to a plugin.
    #[error("{plugin}: cannot pass the input: {message}")]
    Input {
        /// Plugin file.
        plugin: String,
        /// What is wrong.
        message: String,
    },
}
