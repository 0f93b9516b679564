"""Methods: short compositions of the pipeline stages (dense training, Mix-and-Match, VBP, Reconvene)."""
