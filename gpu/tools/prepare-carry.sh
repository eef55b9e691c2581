#!/usr/bin/env bash
# Gathers everything one GPU call needs into target/carry, one path to name in the device's
# `carry` (which takes at most 64 MiB and 8 paths), for gpu/tools/gpu-session.sh:
#   bin/         the gzipped binaries of gpu/tools/build-cuda.sh named here (default: those the
#                stages kernels, retrieval, prefill, train and parity run);
#   gl/          Debian's Vulkan loader and libglvnd .debs (wgpu on the NVIDIA driver, which
#                ships the Vulkan ICD but no loader);
#   wheels/      PEFT and accelerate (the transformers + PEFT baselines);
#   fla-wheels/  flash-linear-attention, fla-core and einops (the prefill baseline);
#   baseline/    shared/tools/transformers_lora_dft_step.py (the training baseline);
#   kernel-trace/ the CUPTI kernel timer, when gpu/tools/build-kernel-trace.sh has built it.
#
# Usage: gpu/tools/prepare-carry.sh [NAME.gz ...]        (after gpu/tools/build-cuda.sh)
#   SHARED         the outside world's folder            (default: ../shared)
#   BASELINE_BINS  a folder of an earlier build's *.gz, carried as bin/baseline-NAME.gz for
#                  the stages that compare two builds in one call (retrieval)
# Needs network access to Debian's archive for the .debs (once: they are kept in target/gl).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
CARRY=target/carry
NAMES=("${@:-lamar-model-tests.gz retrieval-bench.gz qwen35-bench.gz train-bench.gz train-parity.gz}")
read -r -a NAMES <<<"${NAMES[*]}"
rm -rf "$CARRY"
mkdir -p "$CARRY"/{bin,gl,wheels,fla-wheels,baseline}
for name in "${NAMES[@]}"; do
  [ -f "target/cuda/$name" ] || { echo "target/cuda/$name is missing: run gpu/tools/build-cuda.sh" >&2; exit 1; }
  cp "target/cuda/$name" "$CARRY/bin/"
  if [ -n "${BASELINE_BINS:-}" ] && [ -f "$BASELINE_BINS/$name" ]; then
    cp "$BASELINE_BINS/$name" "$CARRY/bin/baseline-$name"
  fi
done
if ! ls target/gl/*.deb >/dev/null 2>&1; then
  # amd64 whatever this machine is: the GPU machines are x86-64.
  mkdir -p target/gl /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update -q >/dev/null
  (cd target/gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
cp target/gl/*.deb "$CARRY/gl/"
cp "$SHARED"/wheels/peft-*.whl "$SHARED"/wheels/accelerate-*.whl "$CARRY/wheels/"
cp "$SHARED"/wheels/fla_core-*.whl "$SHARED"/wheels/flash_linear_attention-*.whl \
  "$SHARED"/wheels/einops-*.whl "$CARRY/fla-wheels/"
cp "$SHARED"/tools/transformers_lora_dft_step.py "$CARRY/baseline/"
if [ -f target/kernel-trace/libkernel_trace.so ]; then
  mkdir -p "$CARRY/kernel-trace"
  cp target/kernel-trace/libkernel_trace.so target/kernel-trace/libcupti.so.13 "$CARRY/kernel-trace/"
fi
BYTES=$(du -sb "$CARRY" | cut -f1)
echo "target/carry: $((BYTES / 1024 / 1024)) MiB"
ls -l "$CARRY/bin"
if [ "$BYTES" -gt $((60 * 1024 * 1024)) ]; then
  echo "target/carry is over 60 MiB (the device carries 64 MiB with the working tree): name fewer binaries" >&2
  exit 1
fi
echo 'carry: ["target/carry"]; command: bash gpu/tools/gpu-session.sh STAGE...'
