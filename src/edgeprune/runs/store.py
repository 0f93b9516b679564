"""The run directory: config, one JSON record per finished item, artifacts, lock.

Layout::

    RUN_DIR/config.json      the configuration that made the run (a different one is refused)
    RUN_DIR/results.jsonl    one record per finished candidate, appended atomically (flush + fsync)
    RUN_DIR/candidates/      artifacts (checkpoints) written to temp files and moved into place
    RUN_DIR/.lock            pid of the live process writing the run

A crash can leave at most a torn last line in results.jsonl; it is detected, dropped with a warning and
the candidate recomputed. Re-running the same command skips every finished candidate.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeprune.errors import ConfigError
from edgeprune.utils.io import append_jsonl, ensure_dir, read_json, read_jsonl, write_json


class RunStore:
    def __init__(self, run_dir: str | os.PathLike):
        self.root = Path(run_dir)

    # -- configuration ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def results_path(self) -> Path:
        return self.root / "results.jsonl"

    def artifact(self, name: str) -> Path:
        return self.root / "candidates" / name

    def open(self, config: dict, identity_keys: list[str] | None = None) -> "RunStore":
        """Create the run directory for ``config``, or reopen it if it was made by the same configuration.

        ``identity_keys`` are the config keys that change results (default: all); a run made with other
        values is refused, so results of two configurations are never mixed.
        """
        ensure_dir(self.root)
        if self.config_path.exists():
            old = read_json(self.config_path, "run config")
            keys = identity_keys or sorted(set(old) | set(config))
            for key in keys:
                if old.get(key) != config.get(key):
                    raise ConfigError(
                        f"run directory {str(self.root)!r} was made by a different configuration "
                        f"({key}: {old.get(key)!r} there, {config.get(key)!r} now); use another --out or delete it to start fresh"
                    )
        else:
            write_json(self.config_path, config, sealed=True)
        return self

    def config(self) -> dict:
        if not self.config_path.exists():
            raise ConfigError(f"{str(self.root)!r} is not a run directory (no config.json)")
        return read_json(self.config_path, "run config")

    # -- results ------------------------------------------------------------------------------------
    def records(self, repair: bool = True, *, with_lines: bool = False) -> list:
        """All finished records. A corrupt LAST line (a crash mid-write) is dropped with a warning and the
        file truncated to its last good record; a corrupt line before it, a line that is not a record with
        an ``id``, or one whose content hash does not match is a one-line DamagedFileError naming the line."""
        return read_jsonl(self.results_path, repair=repair, with_lines=with_lines, key="id")

    def finished_ids(self) -> set[str]:
        return {r["id"] for r in self.records()}

    def append(self, record: dict) -> None:
        if "id" not in record:
            raise ValueError("a record needs an 'id'")
        append_jsonl(self.results_path, record)
