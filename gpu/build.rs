//! With the `cuda` feature, compiles lamar's own CUDA kernels (`src/kernels/*.cu`) to PTX in
//! `OUT_DIR`; the driver JIT-compiles the PTX for the GPU at first use. Without the feature
//! nothing happens (CI's tests run the CPU path; `gpu/tools/check-cuda.sh` compiles this one).
//!
//! nvcc is `$CUDA_HOME/bin/nvcc` (else `nvcc` on `PATH`), the same one candle's kernels use
//! (`gpu/tools/cuda-env.sh` pins 13.0: the CUDA 13.0 driver cannot JIT newer PTX). The virtual
//! architecture is `compute_$CUDA_COMPUTE_CAP` (default 80, which every GPU since Ampere runs).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=src/kernels");
    println!("cargo::rerun-if-env-changed=CUDA_HOME");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let nvcc = std::env::var_os("CUDA_HOME")
        .map(|home| Path::new(&home).join("bin").join("nvcc"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let cap = cap.trim_end_matches('a');
    let mut sources: Vec<PathBuf> = std::fs::read_dir("src/kernels")
        .expect("src/kernels exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    sources.sort();
    for source in sources {
        let stem = source.file_stem().expect("a .cu file has a stem");
        let ptx = out.join(stem).with_extension("ptx");
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "-std=c++17"])
            .arg(format!("-arch=compute_{cap}"))
            .arg(&source)
            .arg("-o")
            .arg(&ptx)
            .status()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", nvcc.display()));
        assert!(
            status.success(),
            "{} failed on {}",
            nvcc.display(),
            source.display()
        );
    }
}
