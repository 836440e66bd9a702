#!/usr/bin/env bash
# csrc/cuda/tools/device_check.sh: one GPU-host session for the CUDA kernels: build (sm_90 only),
# kernel tests, compute-sanitizer memcheck + racecheck on the quick subset, benchmark.
#   bash csrc/cuda/tools/device_check.sh [steps...]   steps: build baseline-build test memcheck racecheck bench benchq ab ncu
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
    baseline-build)
      # the kernels of an earlier commit, for same-run A/B benchmarks:
      #   git archive REV | tar -x -C build/baseline-src   (here; carry build/baseline-src)
      #   PYTHONPATH=build/baseline-src python3 build/baseline-src/benchmarks/bench_kernels.py ...
      src=${BASELINE_SRC:-build/baseline-src}
      { cmake -S "$src" -B build/gpu-baseline -G Ninja -DVPTQ_CUDA_ARCHS=90 -DPython_EXECUTABLE=$py &&
        ninja -C build/gpu-baseline; } > "$OUT/baseline-build.log" 2>&1 || { tail -40 "$OUT/baseline-build.log"; exit 1; }
      cp build/gpu-baseline/python/_kernels*.so "$src/vptq_export/" ;;
    test)
      timeout 540 $py -m pytest -q -x -p no:cacheprovider tests/test_cuda_kernels.py 2>&1 | tee "$OUT/pytest.log" | tail -25 ;;
    memcheck|racecheck)
      # every kernel instrumented (compute-sanitizer --kernel-name kns=vptq, this project's kernels
      # only, ended in "Internal Sanitizer Error: failed to handle a hardware exception", H100,
      # 2026-11-27); racecheck's hazards are listed per kernel: cuBLAS's nvjet_sm90_* kernels of the
      # tests' references report some of their own. SANITIZER_TIMEOUT: seconds (racecheck of the
      # quick set took more than 300 on an H200); SANITIZER_TESTS: pytest arguments instead of the
      # quick set's fp64 tests (e.g. some of their node ids, to split the run over two calls)
      VPTQ_CUDA_TEST_QUICK=1 timeout ${SANITIZER_TIMEOUT:-300} compute-sanitizer --tool $step --error-exitcode 7 \
        $py -m pytest -q -p no:cacheprovider ${SANITIZER_TESTS:-tests/test_cuda_kernels.py -k matches_fp64} \
        > "$OUT/$step.log" 2>&1; echo "$step exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT/$step.log" | tail -5
      grep -oE "Race reported between [A-Za-z]+ access at [A-Za-z0-9_]+" "$OUT/$step.log" | awk '{print $NF}' | sort | uniq -c ;;
    bench)
      timeout 420 $py benchmarks/bench_kernels.py --out "$OUT/bench.md" > "$OUT/bench.log" 2>&1; echo "bench exit $?"; tail -5 "$OUT/bench.log" ;;
    benchq)
      timeout 200 $py benchmarks/bench_kernels.py --quick --out "$OUT/bench_quick.md" > "$OUT/bench_quick.log" 2>&1; echo "bench exit $?"; tail -3 "$OUT/bench_quick.log" ;;
    ab)
      # Same-call A/B of the baseline (baseline-build first) against this tree: AB_REPS rounds of
      # bench_kernels.py AB_ARGS on each, alternating, with AB_ENV set for both (shell words, e.g.
      # AB_ARGS='--configs v8-k4096 --shapes "8B up"'); tables
      # base_N.md / new_N.md and their side-by-side ab.md (benchmarks/compare_runs.py) in $OUT.
      # With AB_BASE_ENV set, the baseline is this tree with AB_BASE_ENV added (a dispatch knob's
      # A/B in one build; no baseline-build needed); AB_NEW_ENV is added to the other side.
      src=${BASELINE_SRC:-build/baseline-src}
      eval "ab_args=(${AB_ARGS:-})" && eval "ab_env=(${AB_ENV:-})" && eval "ab_base_env=(${AB_BASE_ENV:-})" &&
        eval "ab_new_env=(${AB_NEW_ENV:-})" || exit 1
      [ -n "${AB_BASE_ENV:-}" ] && src=$PWD
      base=() new=()
      for rep in $(seq 1 "${AB_REPS:-2}"); do
        for side in base new; do
          if [ $side = base ]; then root=$src; side_env=("${ab_base_env[@]}"); else root=$PWD; side_env=("${ab_new_env[@]}"); fi
          env "${ab_env[@]}" "${side_env[@]}" PYTHONPATH=$root timeout ${AB_TIMEOUT:-200} $py $root/benchmarks/bench_kernels.py "${ab_args[@]}" \
            --out "$OUT/${side}_$rep.md" > "/tmp/ab_${side}_$rep.log" 2>&1 || { echo "$side $rep failed"; tail -5 "/tmp/ab_${side}_$rep.log"; }
        done
        base+=("$OUT/base_$rep.md"); new+=("$OUT/new_$rep.md")
      done
      (IFS=,; $py benchmarks/compare_runs.py "before=${base[*]}" "after=${new[*]}") > "$OUT/ab.md"; cat "$OUT/ab.md" ;;
    ncu)
      # NCU_CASES: config:kernel-regex:M, one profiled launch each (shape NCU_SHAPE, default 8B up);
      # NCU_METRICS: extra metrics (comma-separated ncu names), printed after the sections
      for case in ${NCU_CASES:-v8-k256-256:gemv_mma:1 v8-k4096-256:gemv_fast:1 v8-k65536:gemv_fast:1 v8-k256-256:dequant:512}; do
        IFS=: read -r c k m <<< "$case"
        log="$OUT/ncu_${c}_${k}_M$m.log"
        timeout 150 ncu --kernel-name regex:$k --launch-skip 3 --launch-count 1 \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
          --section WarpStateStats --section SchedulerStats --section LaunchStats --section ComputeWorkloadAnalysis \
          ${NCU_METRICS:+--metrics $NCU_METRICS} \
          $py benchmarks/bench_kernels.py --configs $c --shapes "${NCU_SHAPE:-8B up}" --rows $m --iters 3 --no-baseline \
          > "$log" 2>&1; echo "--- ncu $c $k M=$m exit $?"
        grep -E "^  [a-z_]+.*\(|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|No Eligible|Issued Warp Per|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Executed Ipc A|Theoretical Occ|Block Limit Shared|Dynamic Shared" "$log" | head -32
        grep -E "^ +(OPT|INF) " "$log" | cut -c1-220 | head -6
        if [ -n "${NCU_METRICS:-}" ]; then grep -E "^ +(${NCU_METRICS//,/|}) " "$log"; fi
      done ;;
  esac
done
