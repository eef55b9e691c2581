#!/usr/bin/env bash
# Build the CUDA `lamar` binary on a machine without a GPU (or with one).
#
# Needs Python 3 with venv and network access to PyPI the first time. NVIDIA's wheels provide
# nvcc 13.0 (pinned: the CUDA 13.0 driver cannot JIT newer PTX), the CUDA runtime, cuBLAS,
# cuRAND and NVRTC. When no driver is installed, a stub `libcuda.so` (soname libcuda.so.1, one
# empty function per driver symbol cudarc references) satisfies the linker; at run time the real
# driver library is loaded.
#
# Usage: gpu/tools/build-cuda.sh [extra cargo args]
#   LAMAR_CUDA_ENV   venv holding the wheels          (default: ./target/cuda-env)
#   CUDA_COMPUTE_CAP GPU architecture, 90 = Hopper     (default: 90)
# Output: target/cuda/release/lamar, and gzipped to carry to a GPU host: target/cuda/lamar.gz and
# target/cuda/qwen35-bench.gz (cli/src/bin/qwen35-bench/) and target/cuda/train-bench.gz
# (cli/src/bin/train-bench.rs) and target/cuda/train-parity.gz (cli/src/bin/train-parity.rs)
# and target/cuda/grpo-bench.gz (cli/src/bin/grpo-bench.rs), target/cuda/embed-bench.gz and
# target/cuda/retrieval-bench.gz (cli/src/bin/{embed,retrieval}-bench.rs),
# and lamar-model's unit tests with the CUDA kernels' tests as target/cuda/lamar-model-tests.gz.
#   LAMAR_BINS       the binaries to build and gzip    (default: all seven above; naming fewer,
#                    e.g. "qwen35-bench train-bench retrieval-bench", saves their links)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR=$ROOT/target/cuda
# shellcheck source=gpu/tools/cuda-env.sh
source gpu/tools/cuda-env.sh
STUBS=$CARGO_TARGET_DIR/stubs
mkdir -p "$STUBS"
export RUSTFLAGS="-L native=$STUBS -L native=$CUDA/lib"

build() { cargo build --release --locked -p lamar-cli --features cuda "$@"; }

if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so ' && [ ! -s "$STUBS/libcuda.so" ]; then
  # No driver here: a stub libcuda with every driver entry point cudarc declares (taken from
  # its bindings; its rlibs hold LLVM bitcode only under LTO, so `nm` cannot list them).
  CUDARC_VERSION=$(grep -A1 '^name = "cudarc"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
  cargo fetch --locked >/dev/null
  CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$CUDARC_VERSION" | head -1)
  WORK=$(mktemp -d)
  grep -ohE '(fn |link_name = ")cu[A-Z][A-Za-z0-9_]*' "$CUDARC/src/driver/sys/mod.rs" |
    sed -E 's/^(fn |link_name = ")//' | sort -u | awk '{print "void " $1 "(void){}"}' >"$WORK/stub.c"
  gcc -shared -fPIC -o "$STUBS/libcuda.so" -Wl,-soname,libcuda.so.1 "$WORK/stub.c"
  echo "libcuda stub: $(wc -l <"$WORK/stub.c") driver symbols"
  rm -rf "$WORK"
fi
read -r -a BINS <<<"${LAMAR_BINS:-lamar qwen35-bench train-bench train-parity grpo-bench embed-bench retrieval-bench}"
BIN_ARGS=()
for bin in "${BINS[@]}"; do BIN_ARGS+=(--bin "$bin"); done
build "${BIN_ARGS[@]}" "$@"
# lamar-model's tests with the `cuda` feature (the CUDA kernels' tests among them), to run on a
# GPU machine (gpu/tools/gpu-kernel-tests.sh).
TESTS=$(cargo test --release --locked -p lamar-model --features cuda --lib --no-run \
  --message-format=json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lamar_model":
        print(m["executable"])')
gzip -c "$TESTS" >"$CARGO_TARGET_DIR/lamar-model-tests.gz"
for bin in "${BINS[@]}"; do
  gzip -c "$CARGO_TARGET_DIR/release/$bin" >"$CARGO_TARGET_DIR/$bin.gz"
done
ls -l "$CARGO_TARGET_DIR"/*.gz
