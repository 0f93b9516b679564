"""A MaskBuilder whose scores are larger than SPILL_BYTES keeps them in a mapped temporary file: same masks."""

import gc

import torch

from edgeprune.prune import masks as masks_lib


def _scores():
    gen = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(64, 3, 3, 3, generator=gen),
            "fc.weight": torch.randint(0, 4, (10, 64), generator=gen).float(),  # ties
            "head.weight": torch.randn(10, 10, generator=gen)}


def test_spilled_scores_give_the_same_masks(monkeypatch):
    scores = _scores()
    kept = masks_lib.MaskBuilder(scores)
    monkeypatch.setattr(masks_lib, "SPILL_BYTES", 0)
    spilled = masks_lib.MaskBuilder(scores)
    assert all(spilled._flat[n].data_ptr() != scores[n].data_ptr() for n in scores)  # not the caller's tensors
    for sparsities in ({"conv.weight": 0.3, "fc.weight": 0.55}, {"head.weight": 0.9}):
        assert all(torch.equal(kept.layerwise(sparsities)[n], spilled.layerwise(sparsities)[n]) for n in scores)
    assert all(torch.equal(kept.global_(0.6)[n], spilled.global_(0.6)[n]) for n in scores)


def test_the_temporary_file_goes_with_the_builder(monkeypatch):
    import os
    import tempfile

    monkeypatch.setattr(masks_lib, "SPILL_BYTES", 0)

    def mapped() -> int:  # mappings of unlinked files in the temporary folder
        with open(f"/proc/{os.getpid()}/maps") as maps:
            return sum(f" {tempfile.gettempdir()}/" in line and line.rstrip().endswith("(deleted)") for line in maps)

    before = mapped()
    builder = masks_lib.MaskBuilder(_scores())
    assert mapped() == before + 1
    del builder
    gc.collect()
    assert mapped() == before


def test_the_default_call_gives_the_same_candidates_with_its_scores_spilled(monkeypatch):
    """What users call: every criterion and baseline of the default Mix-and-Match call kept in a mapped file."""
    import edgeprune
    from edgeprune import data as data_lib
    from edgeprune import models

    def call():
        torch.manual_seed(0)
        model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
        pruned = edgeprune.prune(model, data_lib.load("digits"), method="mix_and_match", finetune=0)
        return {r["id"]: (r["status"], r["val_acc"], r["nonzeros"]) for r in pruned.candidates}

    kept = call()
    monkeypatch.setattr(masks_lib, "SPILL_BYTES", 0)
    assert call() == kept and len(kept) >= 10
