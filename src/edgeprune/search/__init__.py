"""Searches: candidates → executor (local | ray) → results store (the run directory)."""

from edgeprune.search.store import RunStore

__all__ = ["RunStore"]
