#!/usr/bin/env bash
# Runs the tests of lamar's CUDA kernels on a machine with an NVIDIA GPU (no Rust needed): the
# unit tests of lamar-model built with the `cuda` feature (gpu/tools/build-cuda.sh writes them to
# target/cuda/lamar-model-tests.gz), filtered to those that need a GPU (`kernel_tests`), then
# the whole library's tests on CUDA's build for good measure.
#
# Usage: gpu/tools/gpu-kernel-tests.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/lamar-model-tests.gz "$WORK/tests"
nvidia_libs
gpu_info "$OUT"
"$WORK/tests" kernel_tests --test-threads 1 2>&1 | tee "$OUT/kernel-tests.txt"
