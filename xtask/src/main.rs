//! `cargo xtask demo [DEMO ARGS…]`: the README's main job as one command on a fresh clone.
//!
//! It builds what `lamar demo` needs beyond the binary, then runs it: the example plugins for
//! WebAssembly (the demo's plugin voters and reward), the viewer's package
//! (`wasm/build-web.sh`, which `lamar` then compiles in), and `lamar demo` itself, release
//! build, with any further arguments passed on (`cargo xtask demo --docs 60`). Each step is
//! printed before it runs; the first that fails stops it with its exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The example plugins the demo loads.
const PLUGINS: [&str; 3] = [
    "lamar-plugin-boundary-vote",
    "lamar-plugin-majority-voter",
    "lamar-plugin-exact-match-reward",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs `program args` in the workspace, printing it first; an error names the step.
fn step(program: &str, args: &[&str]) -> Result<(), String> {
    println!("xtask: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn demo(rest: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    step("rustup", &["target", "add", "wasm32-unknown-unknown"])?;
    let mut plugins = vec![
        "build",
        "--locked",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
    ];
    for p in PLUGINS {
        plugins.extend(["-p", p]);
    }
    step(&cargo, &plugins)?;
    step("./wasm/build-web.sh", &[])?;
    let mut run = vec![
        "run",
        "--release",
        "--locked",
        "-p",
        "lamar-cli",
        "--",
        "demo",
    ];
    run.extend(rest.iter().map(String::as_str));
    step(&cargo, &run)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        _ => Err("usage: cargo xtask demo [lamar demo's arguments…]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
