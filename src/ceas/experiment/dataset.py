"""One queryable dataset per grid: the per-round metrics of every cell, with the cell's parameters as columns.

Layout (Hive-style partitions, one per cell, each written atomically when the cell finishes)::

    <grid out>/dataset/cell=<cell name>/part-0.parquet   rows = rounds; columns = the cell's parameters
                                                         (scenario, seed, the swept value, ...), code_version,
                                                         then every metric of the round
    <grid out>/dataset/_grid.json                        the planned cells, parameter columns, last run's counts

The dataset holds exactly the cells of the grid as last run (partitions of cells no longer planned are removed), so
a query never mixes in stale cells. Query it with ``ceas results query <grid out> "SQL"`` (DuckDB; the table is
called ``results``), or from Python::

    import polars as pl
    df = pl.scan_parquet("runs/reproduce-quick/dataset/**/*.parquet", hive_partitioning=True).collect()
    df.group_by("scenario").agg(pl.col("test_accuracy").last())

The tables of ``reproduce`` and ``sweep`` are computed from these files (:func:`read_cells`).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ceas.errors import CeasError, ConfigError
from ceas.experiment import store

__all__ = ["DATASET", "query", "read_cells", "write_cell", "write_manifest"]

DATASET = "dataset"
MANIFEST = "_grid.json"
PART = "part-0.parquet"
PROVENANCE_COLUMNS = ("code_version",)


def partition(root: Path, name: str) -> Path:
    return Path(root) / f"cell={name}"


def write_cell(
    root: Path,
    name: str,
    params: Mapping[str, Any],
    metrics: Sequence[Mapping[str, Any]],
    *,
    code_version: str,
) -> Path:
    """Write one cell's rounds (one row each) with its parameters as leading columns; returns the file.

    Raises
    ------
    ConfigError
        A parameter has the name of a metric (the column would be ambiguous).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    clash = sorted(set(params) & {k for row in metrics[:1] for k in row})
    if clash:
        raise ConfigError(
            f"grid parameter {clash[0]!r} has the name of a metric; allowed: other names"
        )
    head = {**params, "code_version": code_version}
    rows = [{**head, **row} for row in metrics]
    table = pa.Table.from_pylist(rows) if rows else pa.Table.from_pylist([head])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = partition(root, name) / PART
    store.write_bytes_atomic(path, sink.getvalue())
    return path


def prune(root: Path, names: Iterable[str]) -> list[str]:
    """Remove the partitions of cells not in ``names`` (a grid re-planned with fewer cells); returns their names."""
    keep = {f"cell={n}" for n in names}
    gone = []
    for folder in sorted(Path(root).glob("cell=*")) if Path(root).is_dir() else []:
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder.name.removeprefix("cell="))
    return gone


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    store.write_json_atomic(Path(root) / MANIFEST, dict(manifest))


def read_cells(root: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per cell in ``names``: ``{"name", "params", "metrics"}`` read back from its partition (rounds in order)."""
    import pyarrow.parquet as pq

    manifest = json.loads((Path(root) / MANIFEST).read_text())
    params = set(manifest["params"]) | set(PROVENANCE_COLUMNS)
    out = []
    for name in names:
        rows = pq.read_table(partition(root, name) / PART).to_pylist()
        head = {k: v for k, v in rows[0].items() if k in params} if rows else {}
        metrics = [{k: v for k, v in r.items() if k not in params} for r in rows]
        out.append({"name": name, "params": head, "metrics": metrics})
    return out


def _files_glob(path: Path) -> str:
    """The Parquet glob of a grid folder or of its dataset folder; CeasError when it holds no dataset."""
    path = Path(path)
    for root in (path / DATASET, path):
        if root.is_dir() and any(root.glob(f"cell=*/{PART}")):
            return str(root / "*" / "*.parquet")
    raise CeasError(
        f"{str(path)!r} holds no grid dataset; allowed: a folder written by 'ceas reproduce' or 'ceas sweep' "
        f"(or its {DATASET}/ folder)"
    )


def query(path: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` (DuckDB) over the grid dataset at ``path``, visible as the table ``results``.

    Returns the column names and the rows. A bad query is one CeasError line naming DuckDB's complaint.
    """
    import duckdb

    files = _files_glob(path)
    con = duckdb.connect()
    try:
        literal = files.replace("'", "''")  # a view cannot take a prepared parameter
        con.execute(
            f"CREATE VIEW results AS SELECT * FROM read_parquet('{literal}', hive_partitioning = true, "
            "union_by_name = true)"
        )
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CeasError(f"query failed: {first}") from None
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


FORMATS = ("table", "csv", "json")


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    """Rows of a query as aligned text (``table``), CSV or JSON lines; floats keep all their digits."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not a format; allowed: {', '.join(FORMATS)}")
    if fmt == "json":
        return "".join(json.dumps(dict(zip(columns, r)), default=str) + "\n" for r in rows)
    if fmt == "csv":
        import csv

        sink = io.StringIO()
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return sink.getvalue()
    cells = [list(columns)] + [["NULL" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[j]) for row in cells) for j in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n" + f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n"
