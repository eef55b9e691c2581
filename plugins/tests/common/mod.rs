//! Builds the example and fixture plugins for `wasm32-unknown-unknown` once per test binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const PLUGINS: [&str; 7] = [
    "lamar-plugin-boundary-vote",
    "lamar-plugin-majority-voter",
    "lamar-plugin-exact-match-reward",
    "lamar-plugin-fixture-chaos-voter",
    "lamar-plugin-fixture-chaos-reward",
    "lamar-plugin-fixture-forbidden-import",
    "lamar-plugin-fixture-old-interface",
];

/// The `.wasm` file of a plugin package (built on first use).
pub fn plugin(package: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(&workspace).args([
            "build",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm",
        ]);
        for p in PLUGINS {
            command.args(["-p", p]);
        }
        let status = command
            .status()
            .expect("cargo must be runnable to build the test plugins");
        assert!(
            status.success(),
            "building the plugins for wasm32-unknown-unknown failed (is the target installed? \
             rustup target add wasm32-unknown-unknown)"
        );
        target.join("wasm32-unknown-unknown").join("wasm")
    });
    dir.join(format!("{}.wasm", package.replace('-', "_")))
}
