#!/usr/bin/env bash
# csrc/cuda/tools/device_check.sh: one GPU-host session for the CUDA kernels: build (sm_90 only),
# kernel tests, compute-sanitizer memcheck + racecheck on the quick subset, benchmark.
#   bash csrc/cuda/tools/device_check.sh [steps...]   steps: build test memcheck racecheck bench benchq
# Logs go to $OUT (the device tool's folder) or ./build/device-out.
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-$PWD/build/device-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PATH=/usr/local/cuda/bin:$PATH
steps=${*:-build test benchq memcheck racecheck}
py=$(command -v python3)
for step in $steps; do
  echo "=== $step ($(date +%T))"
  case $step in
    build)
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
      { cmake -S . -B build/gpu -G Ninja -DVPTQ_CUDA_ARCHS=90 -DPython_EXECUTABLE=$py &&
        ninja -C build/gpu; } > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
      grep "vptq-export:" "$OUT/build.log"
      cp build/gpu/python/_kernels*.so vptq_export/ ;;
    test)
      timeout 240 $py -m pytest -q -x -p no:cacheprovider tests/test_cuda_kernels.py 2>&1 | tee "$OUT/pytest.log" | tail -25 ;;
    memcheck|racecheck)
      VPTQ_CUDA_TEST_QUICK=1 timeout 150 compute-sanitizer --tool $step --error-exitcode 7 \
        $py -m pytest -q -x -p no:cacheprovider tests/test_cuda_kernels.py -k matches_fp64 \
        > "$OUT/$step.log" 2>&1; echo "$step exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT/$step.log" | tail -5 ;;
    bench)
      timeout 420 $py benchmarks/bench_kernels.py --out "$OUT/bench.md" > "$OUT/bench.log" 2>&1; echo "bench exit $?"; tail -5 "$OUT/bench.log" ;;
    benchq)
      timeout 200 $py benchmarks/bench_kernels.py --quick --out "$OUT/bench_quick.md" > "$OUT/bench_quick.log" 2>&1; echo "bench exit $?"; tail -3 "$OUT/bench_quick.log" ;;
    ncu)
      for c in v8-k256-256 v8-k65536; do
        timeout 120 ncu --kernel-name regex:gemv_kernel --launch-skip 3 --launch-count 1 \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
          --section WarpStateStats --section SchedulerStats --section LaunchStats \
          $py benchmarks/bench_kernels.py --configs $c --shapes "8B up" --rows ${NCU_ROWS:-1} --iters 3 --no-baseline \
          > "$OUT/ncu_$c.log" 2>&1; echo "ncu $c exit $?"
        grep -E "Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|No Eligible|L1/TEX Hit|L2 Hit|Stall|Theoretical Occ|Block Limit" "$OUT/ncu_$c.log" | head -30
      done ;;
  esac
done
