"""Pruning decisions: unstructured masks (``masks``, ``gradual``), and what structured methods plan to remove
(``sensitivity`` + ``rectify``: Reconvene's channels; ``neurons``: VBP's neurons and mean-shift fold). Every
physical removal is :mod:`edgeprune.surgery`'s."""
