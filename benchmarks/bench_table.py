"""Reading the markdown tables `benchmarks/bench_kernels.py --out TABLE.md` writes (shared by
plot_kernels.py and compare_runs.py)."""

from __future__ import annotations


def read_rows(path: str) -> tuple[str, list[dict]]:
    """(card line, table rows as dicts keyed by the header cells) of a bench_kernels.py table."""
    with open(path) as f:
        lines = f.read().splitlines()
    card = next((l for l in lines if l.startswith("card:")), "")
    header, rows = None, []
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(cells[0]) <= set("-"):
            rows.append(dict(zip(header, cells)))
    return card, rows


def row_key(row: dict) -> tuple[str, str, str, str]:
    """What identifies a measurement: configuration, shape, dtype, M."""
    return row["config"], row["shape (O x I)"], row["dtype"], row["M"]
