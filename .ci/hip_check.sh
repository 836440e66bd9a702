#!/usr/bin/env bash
# Compile check of the GPU kernels (csrc/cuda/*.cu) for AMD targets with hipcc: the kernels are
# written once for CUDA and HIP (csrc/include/vptq/gpu_portability.h). Installs Debian's hipcc
# when it is missing (needs root / apt). Exit status != 0 when a source fails to compile.
#   usage: bash .ci/hip_check.sh            (HIP_ARCHS="gfx90a gfx1100" by default)
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${HIP_ARCHS:-"gfx90a gfx1100"}
shopt -s nullglob
sources=(csrc/cuda/*.cu)
if [ ${#sources[@]} -eq 0 ]; then echo "hip_check: no csrc/cuda/*.cu to check"; exit 0; fi
if ! command -v hipcc >/dev/null; then
  echo "hip_check: installing hipcc (Debian package) ..."
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq hipcc >/dev/null \
    || { echo "hip_check: cannot install hipcc"; exit 1; }
fi
# Debian's hipcc picks the NVIDIA platform when nvcc is on PATH: force the AMD (clang) one.
export HIP_PLATFORM=amd HIP_COMPILER=clang
arch_flags=()
for a in $archs; do arch_flags+=("--offload-arch=$a"); done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for src in "${sources[@]}"; do
  # -x hip: compile the .cu file as HIP; -c into a scratch dir (full device code generation).
  if hipcc -x hip -std=c++17 "${arch_flags[@]}" -Icsrc/include -Icsrc -DVPTQ_HIP_CHECK \
       -c "$src" -o "$out/$(basename "$src").o"; then
    echo "hip_check: OK   $src ($archs)"
  else
    echo "hip_check: FAIL $src ($archs)"
    status=1
  fi
done
exit $status
