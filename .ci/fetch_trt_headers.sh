#!/usr/bin/env bash
# Fetch the TensorRT C++ headers (from the PyPI wheel `kernel-lens`, which ships TensorRT 10.x
# headers under kernel_lens/include/tensorrt/, Apache-2.0) into a cache directory and print the
# include directory (the one holding NvInfer.h) on stdout. Never commit the headers.
#   usage: bash .ci/fetch_trt_headers.sh [CACHE_DIR]
# Progress goes to stderr; exit status != 0 when the headers cannot be fetched.
set -euo pipefail
cache=${1:-${VPTQ_CI_CACHE:-$HOME/.cache/vptq-ci}}
dest="$cache/tensorrt-headers"
find_inc() { find "$dest/unpacked" -name NvInfer.h -path '*include/tensorrt*' 2>/dev/null | head -n1; }
hdr=$(find_inc || true)
if [ -n "$hdr" ]; then dirname "$hdr"; exit 0; fi
mkdir -p "$dest/wheel"
py=$(command -v python3 || command -v python) || { echo "python not found" >&2; exit 1; }
echo "downloading the kernel-lens wheel (TensorRT headers) ..." >&2
"$py" -m pip download --no-deps --only-binary=:all: -d "$dest/wheel" kernel-lens >&2
whl=$(ls "$dest"/wheel/kernel_lens-*.whl | head -n1)
rm -rf "$dest/unpacked"
mkdir -p "$dest/unpacked"
"$py" - "$whl" "$dest/unpacked" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    members = [n for n in z.namelist() if n.startswith("kernel_lens/include/tensorrt/")]
    if not members:
        sys.exit(f"{whl} has no kernel_lens/include/tensorrt/")
    z.extractall(out, members)
PY
hdr=$(find_inc || true)
[ -n "$hdr" ] || { echo "no NvInfer.h in $whl" >&2; exit 1; }
dirname "$hdr"
