//! Which viewer package `lamar view` and `lamar demo` write: the one named on the command line,
//! else the one compiled in (`cli/build.rs`), else `target/lamar-web/pkg` under the current
//! folder.

use lamar_wasm::site::ViewerPackage;
use std::path::{Path, PathBuf};

/// Where a checkout's build script writes the package (`wasm/build-web.sh`).
pub const CHECKOUT_PACKAGE: &str = "target/lamar-web/pkg";

/// The package compiled into this binary, if it was built when the binary was.
pub fn embedded() -> Option<ViewerPackage> {
    #[cfg(lamar_viewer_embedded)]
    {
        Some(ViewerPackage::Bytes {
            glue: include_str!(concat!(env!("OUT_DIR"), "/viewer/lamar_wasm.js")),
            module: include_bytes!(concat!(env!("OUT_DIR"), "/viewer/lamar_wasm_bg.wasm")),
        })
    }
    #[cfg(not(lamar_viewer_embedded))]
    {
        None
    }
}

/// `explicit` (a `--pkg` folder) if given, else the compiled-in package, else the checkout's
/// folder.
pub fn choose(explicit: Option<&Path>) -> ViewerPackage {
    match explicit {
        Some(dir) => ViewerPackage::Folder(dir.to_path_buf()),
        None => {
            embedded().unwrap_or_else(|| ViewerPackage::Folder(PathBuf::from(CHECKOUT_PACKAGE)))
        }
    }
}

/// Whether `package` can be written (a folder holding both files, or compiled in), and if not,
/// the folder that lacks them.
pub fn missing(package: &ViewerPackage) -> Option<&Path> {
    match package {
        ViewerPackage::Folder(dir)
            if !(dir.join("lamar_wasm.js").is_file()
                && dir.join("lamar_wasm_bg.wasm").is_file()) =>
        {
            Some(dir)
        }
        _ => None,
    }
}
