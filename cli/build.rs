//! Compiles the viewer's WebAssembly package into `lamar` when it has been built, so that an
//! installed binary writes the viewer (`lamar view`, `lamar demo`) from any folder.
//!
//! The package is looked for in `$LAMAR_VIEWER_PKG`, else in the workspace's
//! `target/lamar-web/pkg` (what `wasm/build-web.sh` writes). When both of its files are there
//! they are copied next to the build's other outputs and `lamar_viewer_embedded` is set;
//! otherwise the binary reads a package folder at run time (`--pkg`), as before.

use std::path::{Path, PathBuf};

const FILES: [&str; 2] = ["lamar_wasm.js", "lamar_wasm_bg.wasm"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lamar_viewer_embedded)");
    println!("cargo::rerun-if-env-changed=LAMAR_VIEWER_PKG");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let pkg = std::env::var_os("LAMAR_VIEWER_PKG")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/lamar-web/pkg"));
    // A file that does not exist yet makes cargo rerun this script on every build, so that
    // the package is picked up as soon as build-web.sh has written it.
    for file in FILES {
        println!("cargo::rerun-if-changed={}", pkg.join(file).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("viewer");
    std::fs::create_dir_all(&out).expect("OUT_DIR is writable");
    if FILES.iter().all(|f| pkg.join(f).is_file()) {
        for file in FILES {
            copy(&pkg.join(file), &out.join(file));
        }
        println!("cargo::rustc-cfg=lamar_viewer_embedded");
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
