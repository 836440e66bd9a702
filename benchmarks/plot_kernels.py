#!/usr/bin/env python
"""Plot % of measured HBM copy bandwidth per configuration and shape (M = 1, fp16) from a table
written by `benchmarks/bench_kernels.py --out TABLE.md`.

    pip install matplotlib
    python benchmarks/plot_kernels.py docs/bench/bench_kernels_h200_2026-11-26.md -o docs/bench/kernels_pct_hbm.png
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_table import read_rows  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--m", default="1")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    card, rows = read_rows(args.table)
    rows = [r for r in rows if r["dtype"] == args.dtype and r["M"] == args.m]
    if not rows:
        raise SystemExit(f"{args.table}: no rows with dtype {args.dtype} and M {args.m}")
    configs = list(dict.fromkeys(r["config"] for r in rows))
    shapes = list(dict.fromkeys(r["shape (O x I)"] for r in rows))
    pct = {(r["config"], r["shape (O x I)"]): float(r["% HBM (copy bw)"].rstrip("%")) for r in rows}
    width = 0.8 / len(shapes)
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for j, shape in enumerate(shapes):
        xs = [i + (j - (len(shapes) - 1) / 2) * width for i in range(len(configs))]
        ax.bar(xs, [pct.get((c, shape), 0.0) for c in configs], width, label=shape)
    ax.set_xticks(range(len(configs)), configs, rotation=15)
    ax.set_ylabel("% of measured HBM copy bandwidth")
    ax.set_title(f"VPTQGemm decode, M = {args.m}, {args.dtype}: bytes moved / time vs copy bandwidth\n"
                 f"{card.replace('card: ', '')}", fontsize=9)
    for target, label in ((80, "k ≤ 256 target 80%"), (55, "k 1024-8192 target 55%")):
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
        ax.text(len(configs) - 0.5, target + 1, label, ha="right", fontsize=8, color="grey")
    ax.set_ylim(0, 90)
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(rows)} bars)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
