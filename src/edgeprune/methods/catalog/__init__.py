"""The registered methods, one module each. Importing this package fills the registry (the one place)."""

from edgeprune.methods.catalog import baselines, mix_and_match, reconvene, structured, vbp  # noqa: F401
