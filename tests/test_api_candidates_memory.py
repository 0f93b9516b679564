"""edgeprune.prune keeps one candidate's model at a time beside the best so far: Mix-and-Match's 33 candidates of
a ViT-B held at once are 14 GB, which the kernel's OOM killer ended in the zoo run."""

import gc
import weakref

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.runs import job as job_lib


def test_prune_holds_no_candidates_model_but_the_best_while_the_next_one_runs(monkeypatch):
    alive, most = weakref.WeakSet(), [0]
    run = job_lib.Job.run

    def counted(self, cand, progress=False):
        gc.collect()
        most[0] = max(most[0], len(alive))
        record, decision = run(self, cand, progress)
        if decision is not None:
            alive.add(decision.model)
        return record, decision

    monkeypatch.setattr(job_lib.Job, "run", counted)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    pruned = edgeprune.prune(model, data_lib.load("digits"), method="mix_and_match", finetune=0, criteria=["magnitude"])
    assert len(pruned.candidates) >= 5 and most[0] == 1
    assert pruned.model in alive and pruned.record is max(
        (r for r in pruned.candidates if r["status"] == "ok"), key=lambda r: r["val_acc"])
