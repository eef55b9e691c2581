#!/usr/bin/env bash
# Runs the tests of lamar's CUDA kernels on a machine with an NVIDIA GPU (no Rust needed): the
# unit tests of lamar-model built with the `cuda` feature (gpu/tools/build-cuda.sh writes them to
# target/cuda/lamar-model-tests.gz), filtered to those that need a GPU (`kernel_tests`), then
# the whole library's tests on CUDA's build for good measure.
#
# Usage: gpu/tools/gpu-kernel-tests.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$1
mkdir -p "$OUT"
WORK=$(mktemp -d)
gunzip -c target/cuda/lamar-model-tests.gz >"$WORK/tests" && chmod +x "$WORK/tests"
LIBS=$(python3 -c 'import nvidia, os; print(":".join(sorted({os.path.dirname(os.path.join(r, f)) for p in nvidia.__path__ for r, _, fs in os.walk(p) for f in fs if f.startswith(("libcublas", "libcurand", "libcudart"))})))')
export LD_LIBRARY_PATH=$LIBS:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$WORK/tests" kernel_tests --test-threads 1 2>&1 | tee "$OUT/kernel-tests.txt"
