#!/usr/bin/env bash
# Sourced by the gpu-*.sh scripts: the set-up every run on the GPU machine repeats.
# (Sourcing it defines functions only; nothing runs.)

# Puts the CUDA runtime, cuBLAS and cuRAND of the machine's NVIDIA Python wheels (PyTorch's)
# on LD_LIBRARY_PATH: lamar's binaries load them at run time.
nvidia_libs() {
  local libs
  libs=$(python3 -c 'import nvidia, os; print(":".join(sorted({os.path.dirname(os.path.join(r, f)) for p in nvidia.__path__ for r, _, fs in os.walk(p) for f in fs if f.startswith(("libcublas", "libcurand", "libcudart"))})))')
  export LD_LIBRARY_PATH=$libs:${LD_LIBRARY_PATH:-}
}

# unpack GZ PATH: a gzipped binary (gpu/tools/build-cuda.sh's outputs) as an executable PATH.
unpack() {
  gunzip -c "$1" >"$2" && chmod +x "$2"
}

# gpu_info OUT_DIR: the card, its driver and memory, to the terminal and OUT_DIR/gpu.txt.
gpu_info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$1/gpu.txt"
}

# install_wheels DIR WHEEL...: the wheels (no dependencies) installed into DIR, put first on
# PYTHONPATH for this run only (the device cannot reach PyPI: the wheels are carried).
install_wheels() {
  local dir=$1
  shift
  pip install -q --no-deps --target "$dir" "$@"
  export PYTHONPATH=$dir${PYTHONPATH:+:$PYTHONPATH}
}

# with_peft WORK_DIR: PEFT (and accelerate) importable, from target/wheels when the machine
# has none (the device has no PEFT: shared/wheels, carried).
with_peft() {
  if ! python3 -c 'import peft' 2>/dev/null; then
    install_wheels "$1/pp" target/wheels/peft-*.whl target/wheels/accelerate-*.whl
  fi
}

# random_4b DIR OUT_DIR: the random full-size Qwen3.5-4B in DIR/snapshot, made by
# gpu/tools/qwen35_4b_reference.py unless DIR already holds it (scripts of one call share it
# through Q4B); its last lines go to OUT_DIR/snapshot.txt.
random_4b() {
  if [ ! -f "$1/snapshot/config.json" ]; then
    python3 gpu/tools/qwen35_4b_reference.py "$1" --no-timing --logit-tokens 8 2>&1 |
      grep -v Warning | tail -2 >"$2/snapshot.txt"
  fi
}
