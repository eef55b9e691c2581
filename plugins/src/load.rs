//! Turning a `.wasm` file into a checked, compiled component.
//!
//! Plugins built with the SDK for `wasm32-unknown-unknown` are core modules carrying their
//! interface in a custom section; lamar wraps them into components itself (wit-component,
//! about a millisecond), so authors need no extra tool. Ready-made components are accepted too.
//! Before compiling, lamar checks that the plugin imports nothing but the shared types
//! interface (`lamar:plugin/types`, types only) and exports the interface of
//! the expected kind and version.

use crate::error::PluginError;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The package and version of the plugin interface this lamar implements.
pub const INTERFACE_PACKAGE: &str = "lamar:plugin";
/// See [`INTERFACE_PACKAGE`].
pub const INTERFACE_VERSION: &str = "1.0.0";

/// The kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Exports `lamar:plugin/voter`.
    Voter,
    /// Exports `lamar:plugin/reward`.
    Reward,
}

impl PluginKind {
    /// The interface name without version (`voter`, `reward`).
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Voter => "voter",
            PluginKind::Reward => "reward",
        }
    }

    /// The full export name, e.g. `lamar:plugin/voter@1.0.0`.
    pub fn export_name(self) -> String {
        format!(
            "{INTERFACE_PACKAGE}/{}@{INTERFACE_VERSION}",
            self.interface()
        )
    }
}

/// The component form of a plugin file (core modules are wrapped, imports refused).
pub(crate) fn component_bytes(plugin: &str, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
    let not_a_plugin = |message: String| PluginError::NotAPlugin {
        plugin: plugin.to_string(),
        message,
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(not_a_plugin("not a WebAssembly file".into()));
    }
    if bytes[4..8] != [1, 0, 0, 0] {
        // A component already; its imports are checked after compilation.
        return Ok(bytes.to_vec());
    }
    let imports = core_imports(bytes).map_err(|e| not_a_plugin(format!("invalid module: {e}")))?;
    if !imports.is_empty() {
        return Err(PluginError::ForbiddenImport {
            plugin: plugin.to_string(),
            imports: imports.join(", "),
        });
    }
    wit_component::ComponentEncoder::default()
        .module(bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            not_a_plugin(format!(
                "{e:#} (was it built with lamar-plugin-sdk for wasm32-unknown-unknown?)"
            ))
        })
}

/// `module.name` of every import of a core module.
fn core_imports(bytes: &[u8]) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::ImportSection(reader) = payload? {
            for import in reader.into_imports() {
                let import = import?;
                names.push(format!("{}.{}", import.module, import.name));
            }
        }
    }
    Ok(names)
}

/// Compiles a component and checks its imports and exports against `kind`.
pub(crate) fn compile(
    engine: &Engine,
    plugin: &str,
    component: &[u8],
    kind: PluginKind,
) -> Result<Component, PluginError> {
    let compiled = Component::from_binary(engine, component).map_err(|e| PluginError::Load {
        plugin: plugin.to_string(),
        message: format!("{e:#}"),
    })?;
    let ty = compiled.component_type();
    // Everything a plugin imports is refused, but the shared types interface, which defines
    // types only (no function, so no capability).
    let imports: Vec<String> = ty
        .imports(engine)
        .filter(|(name, import)| !is_shared_types(engine, name, &import.ty))
        .map(|(name, _)| name.to_string())
        .collect();
    if !imports.is_empty() {
        return Err(PluginError::ForbiddenImport {
            plugin: plugin.to_string(),
            imports: imports.join(", "),
        });
    }
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let wanted = kind.export_name();
    if exports.contains(&wanted) {
        return Ok(compiled);
    }
    let found = if exports.is_empty() {
        "no interface".to_string()
    } else {
        exports.join(", ")
    };
    Err(PluginError::WrongInterface {
        plugin: plugin.to_string(),
        found,
        expected: wanted,
    })
}

/// The name under which plugins import the shared types (`lamar:plugin/types@1.0.0`).
pub fn shared_types_name() -> String {
    format!("{INTERFACE_PACKAGE}/types@{INTERFACE_VERSION}")
}

/// Whether an import is the shared types interface of this version: an instance that exports
/// types and nothing else.
fn is_shared_types(
    engine: &Engine,
    name: &str,
    item: &wasmtime::component::types::ComponentItem,
) -> bool {
    use wasmtime::component::types::ComponentItem;
    let ComponentItem::ComponentInstance(instance) = item else {
        return false;
    };
    name == shared_types_name()
        && instance
            .exports(engine)
            .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_)))
}

/// The kind a compiled component implements, from its exports (`None`: neither).
pub(crate) fn kind_of(engine: &Engine, component: &Component) -> Option<PluginKind> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    [PluginKind::Voter, PluginKind::Reward]
        .into_iter()
        .find(|k| exports.contains(&k.export_name()))
}
