"""Searches: candidates → executor (local | ray) → results store (the run directory)."""

from edgeprune.runs.store import RunStore

__all__ = ["RunStore"]
