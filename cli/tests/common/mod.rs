//! Running the `lamar` binary from the end-to-end tests.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs `lamar` with `args`.
pub fn lamar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lamar"))
        .args(args)
        .output()
        .expect("lamar runs")
}

/// Runs `lamar`, which must succeed; its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = lamar(args);
    assert!(
        out.status.success(),
        "lamar {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `lamar`, which must fail; its standard error.
pub fn fails(args: &[&str]) -> String {
    let out = lamar(args);
    assert!(!out.status.success(), "lamar {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
