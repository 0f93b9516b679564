"""Tables of results: group records that differ only by seed (mean ± std), write CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgeprune.utils.io import write_text

SETTING_KEYS = ("kind", "criterion", "strategy", "matched_to")
NUMERIC_KEYS = ("sparsity", "val_acc", "test_acc", "int8_acc", "val_acc_pruned", "nonzeros", "effective_macs", "bytes_estimate", "seconds")


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.50 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.0f} B"


def setting_of(record: dict) -> tuple:
    return tuple(record.get(k) for k in SETTING_KEYS)


def write_csv(path: str | Path, records: list[dict]) -> Path:
    """All records, one row each, columns in first-seen order; nested values as JSON-ish strings."""
    columns: list[str] = []
    for r in records:
        for k in r:
            if k not in columns and not isinstance(r[k], dict):
                columns.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("|".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items() if k in columns})
    return write_text(path, buf.getvalue())
