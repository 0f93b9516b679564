"""results/zoo.json and sections/zoo.md from results/zoo.jsonl (written by benchmarks/zoo.py)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from common import save

from zoo import JSONL, STAGES, done_specs


def write(specs: list[str]) -> None:
    rows = done_specs()
    print(f"{len(rows)} rows in {JSONL.name}")
