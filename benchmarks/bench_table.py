"""Reading the markdown tables `benchmarks/bench_kernels.py --out TABLE.md` writes (shared by
plot_kernels.py and compare_runs.py)."""

from __future__ import annotations


def table_rows(lines: list[str]):
    """(table, heading, row) for every row of every markdown table in `lines`: table counts the
    tables from 0, row is a dict keyed by its table's header cells, heading the last "#" line above
    the table ("" before any)."""
    heading, header, table = "", None, -1
    for line in lines:
        if line.startswith("#"):
            heading, header = line, None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            table += 1
        elif not set(cells[0]) <= set("-"):
            yield table, heading, dict(zip(header, cells))


def read_rows(path: str) -> tuple[str, list[dict]]:
    """(card line, table rows as dicts keyed by the header cells) of a bench_kernels.py table (the
    file's first table)."""
    with open(path) as f:
        lines = f.read().splitlines()
    card = next((l for l in lines if l.startswith("card:")), "")
    return card, [row for table, _, row in table_rows(lines) if table == 0]


def row_key(row: dict) -> tuple[str, str, str, str]:
    """What identifies a measurement: configuration, shape, dtype, M."""
    return row["config"], row["shape (O x I)"], row["dtype"], row["M"]
