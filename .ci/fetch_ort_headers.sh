#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ API headers (Debian trixie `libonnxruntime-dev`, headers and CMake
# config only, ~85 KB) into a cache directory and print the include directory on stdout.
#   usage: bash .ci/fetch_ort_headers.sh [CACHE_DIR]
# The headers are never committed: this runs at build/CI time. Debian 12 has no such package, so
# a temporary apt source list for trixie is used (no change to the system's apt configuration).
# Progress goes to stderr; exit status != 0 when the headers cannot be fetched.
set -euo pipefail
cache=${1:-${VPTQ_CI_CACHE:-$HOME/.cache/vptq-ci}}
dest="$cache/onnxruntime-dev"
inc="$dest/root/usr/include/onnxruntime"
if [ -f "$inc/onnxruntime_c_api.h" ]; then echo "$inc"; exit 0; fi
command -v apt-get >/dev/null || { echo "apt-get not found: cannot fetch libonnxruntime-dev" >&2; exit 1; }
mkdir -p "$dest/apt/lists/partial" "$dest/apt/archives/partial" "$dest/debs"
src="$dest/apt/trixie.list"
mirror=${VPTQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
echo "deb [trusted=yes] $mirror trixie main" > "$src"
apt_opts=(-o "Dir::Etc::SourceList=$src" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
          -o "Acquire::Check-Valid-Until=false")
echo "fetching libonnxruntime-dev from Debian trixie ..." >&2
apt-get "${apt_opts[@]}" update >&2
(cd "$dest/debs" && apt-get "${apt_opts[@]}" download libonnxruntime-dev >&2)
deb=$(ls "$dest"/debs/libonnxruntime-dev_*.deb | head -n1)
rm -rf "$dest/root"
dpkg -x "$deb" "$dest/root"
# Packaged headers may live in /usr/include/onnxruntime or /usr/include/onnxruntime/core/session.
if [ ! -f "$inc/onnxruntime_c_api.h" ]; then
  found=$(dirname "$(find "$dest/root" -name onnxruntime_c_api.h | head -n1)")
  [ -n "$found" ] && [ -f "$found/onnxruntime_c_api.h" ] || { echo "no onnxruntime_c_api.h in $deb" >&2; exit 1; }
  inc=$found
fi
rm -rf "$dest/apt/lists" "$dest/apt/archives" "$dest/apt"/*.bin
echo "$inc"
