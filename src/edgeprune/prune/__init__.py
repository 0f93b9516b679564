"""Pruning: unstructured masks (``masks``) and structured, physical removal (``surgery``)."""
