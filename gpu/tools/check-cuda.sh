#!/usr/bin/env bash
# Compiles the CUDA path without a GPU (what CI runs): lamar's and candle's kernels through nvcc
# to PTX, then clippy over lamar-model and lamar-cli (every target) with the CLI's `cuda` feature
# (which turns on lamar-model's), warnings as errors. Nothing is linked, so no driver library is
# needed. Uses the toolkit wheels of cuda-env.sh and its own target folder (target/cuda-check).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=$PWD/target/cuda-check
# shellcheck source=gpu/tools/cuda-env.sh
source gpu/tools/cuda-env.sh
nvcc --version | tail -1
cargo clippy --locked -p lamar-model -p lamar-cli --all-targets --features lamar-cli/cuda -- -D warnings
