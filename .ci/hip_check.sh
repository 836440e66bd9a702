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
# Full code generation (-c) needs the ROCm device libraries of the arch; Debian 12's (ROCm 5.2)
# lack gfx11. Probe each arch; the others get the front-end check (-fsyntax-only -nogpulib), which
# still instantiates every template for that arch.
printf '#include <hip/hip_runtime.h>\n__global__ void probe(float* p) { p[threadIdx.x] = expf(p[0]); }\n' > "$out/probe.hip"
codegen_archs=()
for a in $archs; do
  if hipcc -x hip -std=c++17 --offload-arch="$a" -c "$out/probe.hip" -o "$out/probe.o" >/dev/null 2>&1; then
    codegen_archs+=("--offload-arch=$a")
  else
    echo "hip_check: $a: no ROCm device library here, front-end check only"
  fi
done
common=(-x hip -std=c++17 -Icsrc/include -Icsrc -DVPTQ_HIP_CHECK)
status=0
for src in "${sources[@]}"; do
  ok=1
  hipcc "${common[@]}" "${arch_flags[@]}" -nogpulib -fsyntax-only -Wno-unused-command-line-argument "$src" || ok=0
  if [ $ok = 1 ] && [ ${#codegen_archs[@]} -gt 0 ]; then
    hipcc "${common[@]}" "${codegen_archs[@]}" -c "$src" -o "$out/$(basename "$src").o" || ok=0
  fi
  if [ $ok = 1 ]; then
    echo "hip_check: OK   $src (syntax: $archs; code generation: ${codegen_archs[*]:-none})"
  else
    echo "hip_check: FAIL $src"
    status=1
  fi
done
exit $status
