"""Results on disk: atomic writes, run folders, checkpoints.

Every file is written to a temporary sibling and renamed into place (``os.replace`` is atomic on POSIX), so a run
killed at any instant leaves either the old or the new version of a file, never half of one.

A run folder ``runs/<name>/`` holds ``config.toml`` (the resolved configuration), ``metrics.parquet`` (one row per
round), ``summary.json`` (headline numbers, the plugin modules loaded and the code version that made the run), plots as PNG and ``checkpoint.npz`` (everything needed to resume).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ceas.errors import ResumeError

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.parquet"
SUMMARY = "summary.json"
CONFIG = "config.toml"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Per-round metrics as a Parquet table (one row per round), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({"round": pa.array([], pa.int64())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    write_bytes_atomic(path, sink.getvalue())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def save_checkpoint(path: Path, *, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save arrays plus JSON metadata (round reached, config digest, metrics so far) in one atomic ``.npz``."""
    sink = io.BytesIO()
    np.savez(sink, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    write_bytes_atomic(path, sink.getvalue())


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`. Raises ResumeError if the file is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise ResumeError(
            f"no checkpoint at {str(path)!r}: the run stopped before its first checkpoint, so there is nothing to "
            "resume; run the same command without --resume to start it"
        )
    if not path.is_file():
        raise ResumeError(
            f"checkpoint {str(path)!r} is not a regular file; allowed: a file written by 'ceas run'"
        )
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a .npz archive: truncated or overwritten")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k].copy() for k in npz.files if k != "__meta__"}
            meta = json.loads(bytes(npz["__meta__"]).decode())
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("next_round"), int)
            or "theta" not in arrays
        ):
            raise ValueError("no round counter or parameters in it")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResumeError(
            f"checkpoint {str(path)!r} is unreadable ({reason}); it cannot be resumed: start again with --overwrite"
        ) from None
    return arrays, meta
