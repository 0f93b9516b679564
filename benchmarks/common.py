"""Shared by the benchmark scripts: the provenance block stored beside every result."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from edgeprune.measure import machine_info
from edgeprune.utils.io import write_json, write_text

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SECTIONS = ROOT / "sections"


def git_revision(where: Path = ROOT) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=where, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=where).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_revision() -> dict:
    """The edgeprune that ran, where it is not this checkout's (a worktree sharing another tree's install)."""
    import edgeprune

    source = Path(edgeprune.__file__).resolve().parents[2]
    return {} if source == ROOT.parent else {"package_revision": git_revision(source)}


def provenance() -> dict:
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_revision": git_revision(),
        **package_revision(),
        "machine": machine_info(),
        "load_average_at_save": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def save(name: str, result: dict, section_md: str) -> Path:
    """Write results/<name>.json (with provenance) and sections/<name>.md (the README table)."""
    path = write_json(RESULTS / f"{name}.json", {**provenance(), **result})
    write_text(SECTIONS / f"{name}.md", section_md.rstrip() + "\n")
    return path


def shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("EDGEPRUNE_DATA"), ROOT.parent.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


def timing_parser(description: str, name: str, repeats: int) -> argparse.ArgumentParser:
    """A timing benchmark's options: the core it runs on, how many timings per condition, its results' name."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--name", default=name)
    return parser


def pin_to_core(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check --core and --repeats, then run this process on that core alone."""
    if args.core not in os.sched_getaffinity(0) or args.repeats < 2:
        parser.error(f"--core {args.core}: allowed {sorted(os.sched_getaffinity(0))}" if args.repeats >= 2
                     else "--repeats must be >= 2")
    os.sched_setaffinity(0, {args.core})
