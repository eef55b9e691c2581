# Sourced by build-cuda.sh and check-cuda.sh (from the repository root): NVIDIA's CUDA 13.0
# toolkit wheels in a venv, exported as CUDA_HOME and on PATH, for candle's and lamar's nvcc
# builds. Needs Python 3 with venv and access to PyPI the first time.
#   LAMAR_CUDA_ENV   venv holding the wheels          (default: ./target/cuda-env)
#   CUDA_COMPUTE_CAP GPU architecture, 90 = Hopper     (default: 90)
ENV_DIR=${LAMAR_CUDA_ENV:-$PWD/target/cuda-env}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
if [ ! -x "$ENV_DIR/bin/python" ] || [ ! -d "$ENV_DIR"/lib/python3*/site-packages/nvidia/cu13 ]; then
  python3 -m venv "$ENV_DIR"
  # nvcc is pinned: the CUDA 13.0 driver cannot JIT newer PTX.
  "$ENV_DIR/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85
  "$ENV_DIR/bin/pip" install -q --no-deps nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 \
    nvidia-cuda-nvrtc==13.0.88
fi
CUDA=$(echo "$ENV_DIR"/lib/python3*/site-packages/nvidia/cu13)
# The wheels ship versioned sonames only; the linker wants the plain names.
(cd "$CUDA/lib" && for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done &&
  ln -sf libcurand.so.10 libcurand.so)
export CUDA_HOME=$CUDA PATH=$CUDA/bin:$PATH
