#!/usr/bin/env bash
# GPU-host verification (not part of CI, which has no GPU): run through the device tool on an
# H100, from the repository root, with the ignored folder .gpu-carry/ (ort-include/,
# trt-include/: the headers .ci/fetch_*_headers.sh fetched) and, when staged by
# ../shared/device/stage.sh, /tmp/stage (onnxruntime-gpu, TensorRT-RTX, polygraphy).
#   bash .ci/gpu_host.sh [steps...]     steps: build test sanitize compare rtx kernels e2e diag
# Logs and reports go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
carry=${VPTQ_GPU_CARRY:-$PWD/.gpu-carry}
if [ -f /tmp/stage/install.sh ] && [ ! -f /tmp/stage/env.sh ]; then bash /tmp/stage/install.sh; fi
if [ -f /tmp/stage/env.sh ]; then . /tmp/stage/env.sh; fi
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-extra .whl/*.whl
  export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/tmp/site-extra
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
py=$(command -v python3)
steps=${*:-build test sanitize compare rtx}
for step in $steps; do
  echo "=== $step ($(date +%T))"
  case $step in
    build)
      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
      $py -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers()); print('torch', torch.__version__)"
      { cmake -S . -B build/gpu -G Ninja -DVPTQ_WITH_CUDA=ON -DVPTQ_CUDA_ARCHS=90 \
          -DPython_EXECUTABLE=$py -DONNXRUNTIME_INCLUDE_DIR=$carry/ort-include \
          -DTensorRT_INCLUDE_DIR=$carry/trt-include &&
        ninja -C build/gpu && cmake --install build/gpu --prefix vptq_export; } > "$OUT/build.log" 2>&1 \
        || { tail -40 "$OUT/build.log"; exit 1; }
      cat build/gpu/build_report.txt ;;
    test)
      timeout 420 $py -m pytest -q -rs tests 2>&1 | tee "$OUT/pytest.log" | tail -40 ;;
    sanitize)
      # the kernel tools' sanitizer steps (SANITIZER_TIMEOUT / SANITIZER_TESTS apply)
      OUT="$OUT" bash csrc/cuda/tools/device_check.sh memcheck racecheck ;;
    compare)
      work=/tmp/vptq-compare; rm -rf $work
      $py -m vptq_export make-tiny llama -o $work/fp > /dev/null &&
      $py -m vptq_export quantize $work/fp -o $work/ckpt --vector-len 4 --centroids 64 \
          --res-centroids 16 --perm --norm --seed 0 > /dev/null &&
      for dt in float32 float16; do
        $py -m vptq_export export $work/ckpt -o $work/$dt/model.onnx --dtype $dt --no-progress > /dev/null &&
        $py -m vptq_export compare $work/$dt/model.onnx --checkpoint $work/ckpt --backend ort-cuda \
          --steps 16 2>&1 | tee "$OUT/compare_ort_cuda_$dt.txt"
      done
      $py -m vptq_export compare $work/float32/model.onnx --checkpoint $work/ckpt --backend ort-cpu \
          --steps 16 2>&1 | tee "$OUT/compare_ort_cpu_float32.txt" ;;
    rtx)
      timeout 300 $py samples/trtexec/verify_rtx.py --backend tensorrt-rtx --work /tmp/vr \
        --report "$OUT/rtx.json" 2>&1 | tee "$OUT/verify_rtx.log" | tail -30 ;;
    kernels)
      timeout 420 $py benchmarks/bench_kernels.py --out "$OUT/bench_kernels.md" > "$OUT/bench_kernels.log" 2>&1
      echo "bench exit $?"; tail -5 "$OUT/bench_kernels.log" ;;
    e2e)
      work=/tmp/vptq-e2e; rm -rf $work
      for cb in ${E2E_CODEBOOKS:-v8-k4096 v8-k65536}; do
        $py -m vptq_export gen-checkpoint --preset llama3-8b --codebook $cb -o $work/$cb > /dev/null &&
        timeout 400 $py benchmarks/e2e_decode.py $work/$cb --workdir $work/$cb-onnx ${E2E_ARGS:-} \
          2>&1 | tee "$OUT/e2e_$cb.txt" | tail -20
        rm -rf $work/$cb $work/$cb-onnx
      done ;;
    diag)
      # Native backtraces for crashes / hangs: libraries each .so links, then suspect runs under
      # gdb (segfault / abort) or attached after DIAG_HANG_S seconds (hang).
      nvcc --version | tail -1
      for f in vptq_export/_kernels*.so vptq_export/lib/*.so; do
        echo "--- $f"; readelf -d "$f" | grep -E "NEEDED|RPATH|RUNPATH" | sed 's/^ *//'
        ldd "$f" | grep -E "cublas|cudart|stdc" | sed 's/^\t*/  /'
      done
      gdb=$(command -v gdb || command -v cuda-gdb)
      # DIAG_FILE: one shell command a line (the cases)
      while IFS= read -r c <&3; do
        [ -n "$c" ] || continue
        echo "=== diag case: $c"
        n=$((${n:-0}+1)); log="$OUT/diag_$n.log"
        ( eval "$c" ) > "$log" 2>&1 &
        pid=$!; t=0
        while kill -0 $pid 2> /dev/null && [ $t -lt ${DIAG_HANG_S:-120} ]; do sleep 2; t=$((t+2)); done
        if kill -0 $pid 2> /dev/null; then
          echo "still running after ${t}s: attaching"
          for p in $(pgrep -P $pid) $pid; do
            $gdb -q -p $p -batch -ex "thread apply all bt 25" 2>&1 | grep -E "^#|^Thread" | head -80
          done
          kill -9 $pid $(pgrep -P $pid) 2> /dev/null
        fi
        wait $pid; echo "exit $?"; grep -E "^#[0-9]|Program|signal|passed|failed|FAILED|terminate|rror|Fatal|File \"|trace\]" "$log" | tail -70
      done 3< "${DIAG_FILE:-/dev/null}" ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
