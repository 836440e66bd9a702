#!/usr/bin/env python
"""Side-by-side table of several bench_kernels.py runs (A/B comparisons in one device call).

Each variant is NAME=TABLE[,TABLE...]: the tables (`bench_kernels.py --out`) of that variant's
repeats. The first variant is the reference. Per row (configuration, shape, dtype, M present in
every table): each repeat's µs, the mean's ratio to the reference's mean, the dense cuBLAS fp16
time from the reference's first table, and each variant's speed against it (cuBLAS µs / mean µs).

    python benchmarks/compare_runs.py before=base_1.md,base_2.md after=new_1.md,new_2.md
"""

from __future__ import annotations

import argparse
import os
import sys
from statistics import fmean

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_table import read_rows, row_key  # noqa: E402


def parse_variant(spec: str) -> tuple[str, list[str]]:
    name, sep, files = spec.partition("=")
    if not sep or not name or not files:
        raise SystemExit(f"variant {spec!r}: expected NAME=TABLE[,TABLE...]")
    return name, files.split(",")


def compare(variants: list[tuple[str, list[str]]]) -> str:
    """The markdown table (see the module docstring)."""
    runs = {}  # name -> list of {key: row}
    for name, files in variants:
        runs[name] = []
        for path in files:
            _, rows = read_rows(path)
            if not rows:
                raise SystemExit(f"{path}: no bench_kernels.py table rows")
            runs[name].append({row_key(r): r for r in rows})
    names = [n for n, _ in variants]
    ref = names[0]
    keys = [k for k in runs[ref][0] if all(k in t for n in names for t in runs[n])]
    if not keys:
        raise SystemExit("no (config, shape, dtype, M) row is in every table")
    head = (["config", "shape", "dtype", "M"] + [f"{n} µs" for n in names] + [f"{n} ÷ {ref}" for n in names[1:]]
            + ["dense cuBLAS fp16 µs"] + [f"{n} vs cuBLAS" for n in names])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        times = {n: [float(t[k]["µs"]) for t in runs[n]] for n in names}
        mean = {n: fmean(times[n]) for n in names}
        cublas = float(runs[ref][0][k]["cuBLAS fp16 µs"])
        cells = list(k) + [" / ".join(f"{x:.1f}" for x in times[n]) for n in names]
        cells += [f"{mean[n] / mean[ref]:.3f}" for n in names[1:]]
        cells += [f"{cublas:.1f}"] + [f"{cublas / mean[n]:.2f}x" for n in names]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="NAME=TABLE[,TABLE...]")
    args = ap.parse_args(argv)
    print(compare([parse_variant(v) for v in args.variants]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
