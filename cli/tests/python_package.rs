//! The Python package (`python/`): builds the wheel with maturin, installs it into a fresh
//! virtual environment with the pinned test tools (`python/requirements-test.txt`, from PyPI on
//! first use) and runs its pytest suite, which compares every function with this crate's
//! `lamar` binary and with the reference implementations' golden outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

#[test]
fn the_python_package_passes_its_test_suite() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let root = target.join("python-package");
    let (venv, wheels) = (root.join("venv"), root.join("wheels"));
    for dir in [&venv, &wheels] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    let python = venv.join("bin/python");
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "-r"])
            .arg(repo.join("python/requirements-test.txt")),
        "pip install -r python/requirements-test.txt",
    );
    run(
        Command::new(venv.join("bin/maturin"))
            .args(["build", "--release", "--locked", "--quiet", "-m"])
            .arg(repo.join("python/Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .env("CARGO_TARGET_DIR", &target),
        "maturin build",
    );
    let wheel = only_wheel(&wheels);
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--no-deps")
            .arg(&wheel),
        "pip install the wheel",
    );
    // From outside the source tree, so that the installed package is the one imported.
    run(
        Command::new(&python)
            .current_dir(&root)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--strict-markers",
            ])
            .arg(repo.join("python/tests"))
            .env("LAMAR_CLI", env!("CARGO_BIN_EXE_lamar")),
        "pytest python/tests",
    );
}

fn only_wheel(dir: &Path) -> PathBuf {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "expected one wheel in {}", dir.display());
    wheels.into_iter().next().unwrap()
}
