#!/usr/bin/env python
"""Which split-K S would a geometry model pick, against the fastest S measured?

Reads an S sweep of the staged-codebook tensor-core kernel (`bench_kernels.py --out sS.md` run
with VPTQ_GEMV_MMA_SPLIT=S for S in 1, 2, 4, 8, 16) and, per row (configuration, shape, dtype,
M), prints the S each model picks, its measured time and its ratio to the fastest measured S.
The models are Python copies of `mma_geometry` in csrc/cuda/dispatch.cu (P = 1, 8 warps per
block): "pair-step" (the IB = 8 kernel's fitted costs), "persistent-grid" (the 12-bit-code and
v6 kernel's: the slowest SM of the persistent grid) and its first form (every block
ceil(tiles / grid) tiles, all shared when two blocks run per SM). Keep them in step with dispatch.cu when either changes.

    python benchmarks/fit_mma_split.py s1.md s2.md s4.md s8.md s16.md [--sms 132]
    python benchmarks/fit_mma_split.py --sweep-doc docs/bench/bench_mma_k4096_h200_2026-11-27.md \
        --sweep-doc docs/bench/bench_mma_v6_split_h200_2026-11-27.md

--sweep-doc reads the sweeps stored in a docs/bench file: sections "## S = N" holding a
bench_kernels.py table each, and compare tables with one "sN µs" column per S (compare_runs.py).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_table import read_rows, row_key, table_rows  # noqa: E402

STEP_COLS = 32        # gpu::kMmaStepCols: columns of one pair-step
CHUNK_UNITS = 4       # gpu::kMmaChunk: units are a multiple of the 4-step index chunk
WARPS = 8             # warps per block (kMmaWarps = kFastWarpsPerBlock)
BLOCKS_PER_SM = 2
PAIR_STEP_ITEM_OVERHEAD = 16.0   # kMmaItemOverhead
WIDE_ITEM_OVERHEAD = 4.0         # kMmaWideItemOverhead
WIDE_SHARED_SM_TIME = 1.33       # kMmaWideSharedSmTime


def candidates(out_features: int, in_features: int, v: int = 8):
    """(S, U, tiles, warp rounds) for S in 1, 2, 4, 8, 16 as mma_geometry enumerates them (G = 1):
    index rows ceil(O / v), two per pair (one for v >= 12: gpu::mma_index_rows_per_pair)."""
    upr = in_features // STEP_COLS
    rows_per_pair = 1 if v >= 12 else 2
    pairs = max(1, (-(-out_features // v) + rows_per_pair - 1) // rows_per_pair)
    for s in (1, 2, 4, 8, 16):
        u = ((upr + s - 1) // s + CHUNK_UNITS - 1) // CHUNK_UNITS * CHUNK_UNITS
        if s > 1 and (upr + u - 1) // u <= s // 2:
            break
        rt = WARPS // s if s < WARPS else 1
        items = rt * s
        yield s, u, (pairs + rt - 1) // rt, (items + WARPS - 1) // WARPS


def pair_step_cost(u, tiles, warp_rounds, sms):
    blocks = sms * BLOCKS_PER_SM
    fill = math.sqrt(blocks / tiles) if tiles < blocks else 1.0
    return (tiles + sms - 1) // sms * warp_rounds * (u + PAIR_STEP_ITEM_OVERHEAD) * fill


def persistent_grid_tile_times(tiles, blocks, sms, shared=WIDE_SHARED_SM_TIME):
    """persistent_grid_tile_times of dispatch.cu: the slowest SM's time in tile times, block b
    taking tiles b, b + grid, ...; SM j runs blocks j and j + sms; two tiles side by side take
    `shared`."""
    grid = min(tiles, blocks)
    q, r = divmod(tiles, grid)
    if grid <= sms:
        return q + (1 if r else 0)
    sm_time = lambda first, second: second * shared + (first - second)  # noqa: E731
    slowest = 0.0
    if r > sms:
        slowest = max(slowest, sm_time(q + 1, q + 1))
    if r > 0:
        slowest = max(slowest, sm_time(q + 1, q))
    if r < sms:
        slowest = max(slowest, sm_time(q, q))
    return slowest


def persistent_grid_cost(u, tiles, warp_rounds, sms, overhead=WIDE_ITEM_OVERHEAD, shared=WIDE_SHARED_SM_TIME):
    return warp_rounds * (u + overhead) * persistent_grid_tile_times(tiles, sms * BLOCKS_PER_SM, sms, shared)


def persistent_grid_first_form_cost(u, tiles, warp_rounds, sms, overhead=WIDE_ITEM_OVERHEAD,
                                    shared=WIDE_SHARED_SM_TIME):
    """The persistent-grid model before the per-SM form: every block ceil(tiles / grid) tiles, all
    shared when the grid has more blocks than SMs (kept for comparison)."""
    grid = min(tiles, sms * BLOCKS_PER_SM)
    return (tiles + grid - 1) // grid * warp_rounds * (u + overhead) * (shared if grid > sms else 1.0)


def vector_len(config: str) -> int:
    """v of a configuration name such as "v6-k4096"."""
    return int(re.match(r"v(\d+)-", config).group(1))


def read_sweep_doc(path: str) -> dict:
    """{(config, shape, dtype, M): {S: µs}} from a docs/bench file (see the module docstring)."""
    measured: dict = {}
    with open(path) as f:
        lines = f.read().splitlines()
    for _, heading, row in table_rows(lines):
        shape = row.get("shape (O x I)", row.get("shape"))
        if "config" not in row or shape is None or "dtype" not in row or "M" not in row:
            continue
        times = measured.setdefault((row["config"], shape, row["dtype"], row["M"]), {})
        section = re.match(r"^#+ S = (\d+)\s*$", heading)
        if section and "µs" in row:
            times[int(section.group(1))] = float(row["µs"])
        elif not section:
            for col, value in row.items():
                sm = re.fullmatch(r"s(\d+) µs", col)
                if sm:
                    times[int(sm.group(1))] = float(value.split("/")[0])
        if not times:
            del measured[row["config"], shape, row["dtype"], row["M"]]
    return measured


def pick(out_features, in_features, cost, sms, v=8):
    costs = {s: cost(u, t, w, sms) for s, u, t, w in candidates(out_features, in_features, v)}
    return min(costs, key=costs.get)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tables", nargs="*", help="sweep tables; S is read from the file name (s<S>.md)")
    ap.add_argument("--sweep-doc", action="append", default=[],
                    help="a docs/bench file with stored sweeps (repeatable)")
    ap.add_argument("--configs", help="comma-separated configurations to keep (default: all)")
    ap.add_argument("--sms", type=int, default=132)
    args = ap.parse_args(argv)
    if not args.tables and not args.sweep_doc:
        ap.error("give sweep tables (s<S>.md) or --sweep-doc FILE")
    measured = {}  # row key -> {S: µs}
    for path in args.sweep_doc:
        found = read_sweep_doc(path)
        if not found:
            raise SystemExit(f"{path}: no S sweep found (no '## S = N' sections, no 'sN µs' columns)")
        for key, times in found.items():
            measured.setdefault(key, {}).update(times)
    for path in args.tables:
        m = re.search(r"s(\d+)\.md$", os.path.basename(path))
        if not m:
            raise SystemExit(f"{path}: expected a file named s<S>.md")
        for row in read_rows(path)[1]:
            measured.setdefault(row_key(row), {})[int(m.group(1))] = float(row["µs"])
    if args.configs:
        keep = set(args.configs.split(","))
        measured = {k: t for k, t in measured.items() if k[0] in keep}
    models = {"pair-step": pair_step_cost, "persistent-grid, first form": persistent_grid_first_form_cost,
              "persistent-grid": persistent_grid_cost}
    print("| config | shape | M | fastest S (µs) | " + " | ".join(f"{n}: S, ÷ fastest" for n in models) + " |")
    print("|---|---|---|---|" + "---|" * len(models))
    worst = {n: 1.0 for n in models}
    for key, times in measured.items():
        config, shape, _dtype, m = key
        o, i = (int(x) for x in shape.split()[-1].split("x"))
        v = vector_len(config)
        best = min(times, key=times.get)
        cells = [config, shape, m, f"{best} ({times[best]:.1f})"]
        for name, cost in models.items():
            s = pick(o, i, cost, args.sms, v)
            ratio = times[s] / times[best] if s in times else float("nan")
            worst[name] = max(worst[name], ratio)
            cells.append(f"{s}, {ratio:.3f}")
        print("| " + " | ".join(cells) + " |")
    print()
    for name, w in worst.items():
        print(f"{name}: worst pick {w:.3f}x of the fastest S")
    # how much the persistent-grid picks depend on its two constants
    shapes = {(key[1], vector_len(key[0])) for key in measured}
    dims = [tuple(int(x) for x in sh.split()[-1].split("x")) + (v,) for sh, v in sorted(shapes)]
    ref = [pick(o, i, persistent_grid_cost, args.sms, v) for o, i, v in dims]
    for overhead in (0.0, 1.0, 2.0, 4.0, 8.0, 16.0):
        for shared in (1.1, 1.25, 1.33, 1.5, 1.7):
            cost = lambda u, t, w, sms: persistent_grid_cost(u, t, w, sms, overhead, shared)  # noqa: E731
            same = [pick(o, i, cost, args.sms, v) for o, i, v in dims] == ref
            print(f"persistent-grid, overhead {overhead:4.1f}, sharing {shared:.2f}: "
                  f"{'same picks' if same else 'picks differ'} on the {len(dims)} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
