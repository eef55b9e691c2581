#!/usr/bin/env bash
# Retrieval at LAMAR's size on the GPU machine, in one call: lamar's wgpu path (Vulkan on the
# NVIDIA driver: the loader libvulkan.so.1 and libglvnd, which NVIDIA's ICD needs, carried in
# .gl/ as Debian's libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 .debs, see
# the device README; without libglvnd wgpu finds no adapter) and its CPU
# path (cli/src/bin/retrieval-bench.rs), NumPy and PyTorch (gpu/tools/retrieval_baselines.py).
# Usage: gpu/tools/gpu-retrieval-bench.sh OUT_DIR [QUERIES CORPUS DIM CANDIDATES]
# Needs target/cuda/retrieval-bench.gz (gpu/tools/build-cuda.sh). Results in OUT_DIR/*.jsonl.
# GL_DEBS names another folder of the .debs than .gl; RETRIEVAL_BENCH_GZ another build of the
# bench; BASELINE_GZ an earlier build's, run first in the same call (OUT_DIR/baseline.jsonl).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
shift
SHAPE=("${@:-451 60000 2560 100}")
read -r -a S <<<"${SHAPE[*]}"
ARGS=(--queries "${S[0]}" --corpus "${S[1]}" --dim "${S[2]}" --candidates "${S[3]}")
mkdir -p "$OUT"
if ! ldconfig -p | grep -q libGLdispatch; then
  for f in "${GL_DEBS:-.gl}"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
[ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
WORK=$(mktemp -d)
unpack "${RETRIEVAL_BENCH_GZ:-target/cuda/retrieval-bench.gz}" "$WORK/retrieval-bench"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ -n "${BASELINE_GZ:-}" ]; then
  unpack "$BASELINE_GZ" "$WORK/baseline-bench"
  "$WORK/baseline-bench" "${ARGS[@]}" --no-cpu 2>"$OUT/baseline-stderr.txt" |
    tee "$OUT/baseline.jsonl" || tail -5 "$OUT/baseline-stderr.txt"
fi
"$WORK/retrieval-bench" "${ARGS[@]}" 2>"$OUT/lamar-stderr.txt" | tee "$OUT/lamar.jsonl" ||
  tail -5 "$OUT/lamar-stderr.txt"
python3 gpu/tools/retrieval_baselines.py "${S[@]}" | tee "$OUT/baselines.jsonl" || true
rm -rf "$WORK"
