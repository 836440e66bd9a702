"""Export at real model scale: wall time and peak RSS of `vptq-export export` on random-code
checkpoints with Llama-3.1-8B shapes (2-bit v8-k65536, no residual) and a wider one (70B
shapes, first N layers), each generated and exported in its own subprocess.

    python benchmarks/export_scale.py                         # default cases, ~10 GB of disk
    python benchmarks/export_scale.py --cases 8b --dtypes float16 --workdir /big/disk

Bar (issue 3): an 8B-shaped export in <= 3 min on 2 cores with peak RSS <= 2 GB, and peak RSS
flat in model size. Peak RSS is the exporting child's own `ru_maxrss` (os.wait4 on that child:
the same number resource.getrusage(RUSAGE_CHILDREN) reports when it is the only child).
Checkpoints and exports are deleted after each case unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    # name: (preset, codebook, layers)
    "8b": ("llama3-8b", "v8-k65536", None),
    "70b-12l": ("llama3-70b", "v8-k65536", 12),
    "tiny": ("tiny", "v8-k4096", None),
}


def run_child(cmd: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit status) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss * 1024, proc.returncode


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["8b", "70b-12l"], choices=tuple(CASES))
    ap.add_argument("--dtypes", nargs="+", default=["float16", "float32"],
                    choices=("float32", "float16", "bfloat16"))
    ap.add_argument("--workdir", help="where checkpoints and exports go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep checkpoints and exports")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vptq-export-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "vptq_export"]
    results = []
    try:
        for case in args.cases:
            preset, codebook, layers = CASES[case]
            ckpt = work / f"ckpt-{case}"
            gen = py + ["gen-checkpoint", "--preset", preset, "--codebook", codebook,
                        "-o", str(ckpt), "--overwrite", "--no-progress"]
            if layers:
                gen += ["--layers", str(layers)]
            wall, rss, rc = run_child(gen)
            if rc:
                raise SystemExit(f"gen-checkpoint failed ({rc}) for case {case}")
            ckpt_bytes = du(ckpt)
            print(f"[{case}] gen-checkpoint {wall:.1f} s, peak RSS {rss / 2**20:.0f} MiB, "
                  f"{ckpt_bytes / 2**30:.2f} GiB", flush=True)
            for dtype in args.dtypes:
                out = work / f"onnx-{case}-{dtype}" / "model.onnx"
                wall, rss, rc = run_child(py + ["export", str(ckpt), "-o", str(out),
                                                "--dtype", dtype, "--no-progress"])
                if rc:
                    raise SystemExit(f"export failed ({rc}) for case {case} {dtype}")
                size = du(out.parent)
                row = {"case": case, "preset": preset, "codebook": codebook, "layers": layers,
                       "dtype": dtype, "checkpoint_gib": round(ckpt_bytes / 2**30, 3),
                       "onnx_gib": round(size / 2**30, 3), "export_s": round(wall, 1),
                       "peak_rss_mib": round(rss / 2**20)}
                results.append(row)
                print(f"[{case}] export {dtype}: {wall:.1f} s, peak RSS {rss / 2**20:.0f} MiB, "
                      f"output {size / 2**30:.2f} GiB", flush=True)
                if not args.keep:
                    shutil.rmtree(out.parent)
            if not args.keep:
                shutil.rmtree(ckpt)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    info = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "results": results}
    print(json.dumps(info, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
