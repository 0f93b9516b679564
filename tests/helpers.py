"""Shared by several test files (tests/ is on sys.path under pytest's default import mode)."""

import builtins
import contextlib

# HF config overrides small enough to build and run in milliseconds at 32 px and 28 px
TINY_HF = {
    "vit": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=4),
    "deit": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=4),
    "swin": dict(embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4, patch_size=4),
    "levit": dict(hidden_sizes=[32, 48, 64], num_attention_heads=[1, 2, 2], depths=[1, 1, 1], key_dim=[8, 8, 8],
                  down_ops=[["Subsample", 8, 1, 2, 2, 2], ["Subsample", 8, 2, 2, 2, 2]]),
    "convnext": dict(hidden_sizes=[8, 16, 32], depths=[1, 1, 1], num_stages=3, patch_size=2),
}


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """A CLI refusal: exit 2, exactly one stderr line starting with 'error: ', no traceback; returns the line."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@contextlib.contextmanager
def without_executorch(monkeypatch):
    """``import executorch...`` fails inside the block, as on a machine without the [edge] extra."""
    from edgeprune.export import executorch as et_lib

    real_import = builtins.__import__

    def no_executorch(name, *args, **kwargs):
        if name.startswith("executorch"):
            raise ImportError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    et_lib.executorch.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_executorch)
    try:
        yield
    finally:
        monkeypatch.undo()
        et_lib.executorch.cache_clear()


@contextlib.contextmanager
def pruned_neurons_at_their_means(model, stats):
    """Inside the block, ``model`` (the unpruned one) runs with every neuron VBP pruned (``stats``: its VbpStats)
    replaced by its mean at the input of its block's output layer: what the pruned and folded model must equal."""

    def replace(block):
        def hook(module, args):
            h = args[0].clone()
            h[..., block.pruned] = block.mean[block.pruned].to(h.dtype)
            return (h,)
        return hook

    handles = [model.get_submodule(b.mlp_out).register_forward_pre_hook(replace(b)) for b in stats.blocks.values()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
