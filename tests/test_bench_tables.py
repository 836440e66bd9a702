"""benchmarks/compare_runs.py: the A/B table the kernel benchmark docs are made with, checked on
hand-written bench_kernels.py tables (means, ratios and speeds worked out by hand below)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

from compare_runs import compare, parse_variant  # noqa: E402

HEADER = ("card: test card\n\n| config | shape (O x I) | dtype | M | µs | GB/s | cuBLAS fp16 µs | kernel |\n"
          "|---|---|---|---|---|---|---|---|\n")


def _table(tmp_path: Path, name: str, rows: list[tuple[str, str, str, int, float, float]]) -> str:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"| {c} | {s} | {d} | {m} | {us} | 1 | {cub} | `k` |\n"
                                     for c, s, d, m, us, cub in rows))
    return str(path)


def _cells(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_means_ratios_and_speed_against_cublas(tmp_path):
    a1 = _table(tmp_path, "a1.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 100.0, 30.0),
                                    ("v8-k65536", "8B up 14336x4096", "fp16", 512, 150.0, 90.0)])
    a2 = _table(tmp_path, "a2.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 110.0, 31.0),
                                    ("v8-k65536", "8B up 14336x4096", "fp16", 512, 160.0, 91.0)])
    b1 = _table(tmp_path, "b1.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 84.0, 30.0),
                                    ("v8-k65536", "8B up 14336x4096", "fp16", 512, 155.0, 90.0)])
    b2 = _table(tmp_path, "b2.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 84.0, 30.0),
                                    ("v8-k65536", "8B up 14336x4096", "fp16", 512, 155.0, 90.0)])
    rows = _cells(compare([("before", [a1, a2]), ("after", [b1, b2])]))
    # means: before 105 / 155, after 84 / 155; cuBLAS from the reference's first table: 30 / 90
    assert rows[0] == ["v8-k256-256", "8B up 14336x4096", "fp16", "32", "100.0 / 110.0", "84.0 / 84.0",
                       "0.800", "30.0", "0.29x", "0.36x"]
    assert rows[1] == ["v8-k65536", "8B up 14336x4096", "fp16", "512", "150.0 / 160.0", "155.0 / 155.0",
                       "1.000", "90.0", "0.58x", "0.58x"]


def test_rows_missing_from_a_table_are_left_out(tmp_path):
    a = _table(tmp_path, "a.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 100.0, 30.0),
                                  ("v8-k256-256", "8B up 14336x4096", "fp16", 512, 150.0, 90.0)])
    b = _table(tmp_path, "b.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 512, 120.0, 90.0)])
    rows = _cells(compare([("before", [a]), ("after", [b])]))
    assert [r[3] for r in rows] == ["512"]
    assert rows[0][6] == "0.800"


def test_bad_input_is_named(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("card: x\n")
    with pytest.raises(SystemExit, match="empty.md: no bench_kernels.py table rows"):
        compare([("before", [str(empty)])])
    with pytest.raises(SystemExit, match="expected NAME=TABLE"):
        parse_variant("before")
    a = _table(tmp_path, "a.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 100.0, 30.0)])
    b = _table(tmp_path, "b.md", [("v8-k65536", "8B up 14336x4096", "fp16", 32, 100.0, 30.0)])
    with pytest.raises(SystemExit, match="no .* row is in every table"):
        compare([("before", [a]), ("after", [b])])


def test_command_line(tmp_path):
    a = _table(tmp_path, "a.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 100.0, 30.0)])
    b = _table(tmp_path, "b.md", [("v8-k256-256", "8B up 14336x4096", "fp16", 32, 50.0, 30.0)])
    out = subprocess.run([sys.executable, str(BENCH_DIR / "compare_runs.py"), f"base={a}", f"new={b}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].startswith("| config | shape | dtype | M | base µs | new µs | new ÷ base |")
    assert "| 0.500 |" in out


# ------------------------------------------------------------------ benchmarks/fit_mma_split.py

def _slowest_sm_by_simulation(tiles: int, blocks: int, sms: int, shared: float) -> float:
    """Block by block: block b takes tiles b, b + grid, ...; block b sits on SM b % sms (the first
    sms blocks one per SM, the next ones second on each). An SM runs its blocks' tiles side by side
    while both have one left (each pair costing `shared`), then the rest alone (1 each)."""
    grid = min(tiles, blocks)
    per_sm: dict[int, list[int]] = {}
    for b in range(grid):
        per_sm.setdefault(b % sms, []).append(len(range(b, tiles, grid)))
    slowest = 0.0
    for counts in per_sm.values():
        both = min(counts) if len(counts) == 2 else 0
        slowest = max(slowest, both * shared + (sum(counts) - 2 * both))
    return slowest


@pytest.mark.parametrize("sms", [132, 7])
def test_persistent_grid_closed_form_matches_a_simulation(sms):
    from fit_mma_split import persistent_grid_tile_times

    for blocks in (sms, 2 * sms):
        for tiles in range(1, 6 * sms + 3):
            want = _slowest_sm_by_simulation(tiles, blocks, sms, 1.33)
            got = persistent_grid_tile_times(tiles, blocks, sms, 1.33)
            assert got == pytest.approx(want), (tiles, blocks, sms)
    # by hand: 342 tiles on 264 blocks of 132 SMs: 78 SMs run 2 tiles side by side, then 1 alone
    assert persistent_grid_tile_times(342, 264, 132, 1.33) == pytest.approx(2.33)
    assert persistent_grid_tile_times(171, 264, 132, 1.33) == pytest.approx(1.33)


def test_sweep_doc_reader(tmp_path):
    from fit_mma_split import read_sweep_doc

    doc = tmp_path / "sweep.md"
    row = "| v6-k4096 | 8B up 14336x4096 | fp16 | 1 | {us} | 1 | `k` |\n"
    head = "| config | shape (O x I) | dtype | M | µs | GB/s | kernel |\n|---|---|---|---|---|---|---|\n"
    doc.write_text("# title\n\n## S = 1\n\ncard: x\n\n" + head + row.format(us=43.4) +
                   "\n## S = 2\n\n" + head + row.format(us=35.1) +
                   "\n## 3. compare\n\n| config | shape | dtype | M | def µs | s1 µs | s4 µs |\n"
                   "|---|---|---|---|---|---|---|\n"
                   "| v8-k4096 | 8B q/o 4096x4096 | fp16 | 8 | 11.0 / 11.0 | 25.8 | 11.4 |\n")
    assert read_sweep_doc(str(doc)) == {
        ("v6-k4096", "8B up 14336x4096", "fp16", "1"): {1: 43.4, 2: 35.1},
        ("v8-k4096", "8B q/o 4096x4096", "fp16", "8"): {1: 25.8, 4: 11.4},
    }
