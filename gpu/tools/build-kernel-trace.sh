#!/usr/bin/env bash
# Builds gpu/tools/kernel_trace.c (a CUPTI kernel timer to preload, for GPU machines without
# Nsight Systems) against CUPTI 13.0 from NVIDIA's wheel, here, without a GPU. Needs network
# access to PyPI the first time.
# cuda.h comes from the CUDA wheels of gpu/tools/cuda-env.sh.
# Output: target/kernel-trace/libkernel_trace.so and libcupti.so.13 beside it (carry both; put
# the folder on LD_LIBRARY_PATH where it runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/kernel-trace
mkdir -p "$OUT"
if [ ! -d "$OUT/wheel/nvidia/cu13/include" ]; then
  python3 -m pip download -q --no-deps "nvidia-cuda-cupti==13.0.85" -d "$OUT"
  python3 -m zipfile -e "$OUT"/nvidia_cuda_cupti-13.0.85-*.whl "$OUT/wheel"
fi
CUPTI=$OUT/wheel/nvidia/cu13
# shellcheck source=gpu/tools/cuda-env.sh
source gpu/tools/cuda-env.sh
cp "$CUPTI/lib/libcupti.so.13" "$OUT/"
gcc -O2 -shared -fPIC -Wall -Wextra -o "$OUT/libkernel_trace.so" gpu/tools/kernel_trace.c \
  -I"$CUPTI/include" -I"$CUDA/include" -L"$OUT" -l:libcupti.so.13 -lpthread -Wl,-rpath,'$ORIGIN'
echo "built $OUT/libkernel_trace.so"
