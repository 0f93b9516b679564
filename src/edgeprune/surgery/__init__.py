"""Surgery: the one place that changes a model's structure, over torch-pruning's dependency graph.

``graph`` traces a model (:func:`~edgeprune.surgery.graph.build_graph`), ``search`` bounds and speeds up
torch-pruning's group search, ``groups`` lists coupled channel groups (:func:`~edgeprune.surgery.groups.traced`),
``channels`` removes channels by their original indices, ``structure`` + ``ratios`` remove fractions of every
group by importance (with ``heads``, ``blocks`` and ``fallback`` for attention, untraceable models and retries),
``neurons`` removes MLP hidden neurons, ``depth`` whole residual blocks; ``checks`` says whether the result still
runs. Planning -- which channels, neurons or blocks go -- is the methods' and :mod:`edgeprune.prune`'s.

What ``save`` records of the removed structure is read off the module tree itself (the shape-defining attributes,
``nn.Identity`` for a removed block, ``SplitMultiheadAttention`` for a split attention:
:func:`edgeprune.models._shapes.structure`, which ``load`` resizes a fresh model to), so the code that changes the
structure writes that record: every such change is made here (channels, neurons, heads and their attributes,
blocks, the attention split of :func:`~edgeprune.surgery.heads.split_attention`), none by a method.
"""
