"""Image (or any) classification: logits [batch, classes], cross-entropy, top-1 accuracy. The default task."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeprune.errors import ModelError
from edgeprune.models import logits_of, loss_logits
from edgeprune.tasks.base import Task


class Classification(Task):
    name = "classification"
    metric = "acc"
    label = "top-1 accuracy"
    own_target_check = False

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = float(label_smoothing)

    def loss(self, output, y):
        return F.cross_entropy(loss_logits(output), y, label_smoothing=self.label_smoothing)

    def distil(self, student, teacher, y, alpha, temperature):
        s, t = loss_logits(student), loss_logits(teacher)
        ce = F.cross_entropy(s, y)
        kl = F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1), log_target=True,
                      reduction="batchmean")
        return alpha * ce + (1.0 - alpha) * temperature * temperature * kl

    def targets_from(self, output, x):
        return logits_of(output).argmax(1)

    def example_statistics(self, output, y):
        return (logits_of(output).argmax(1) == y).cpu()

    def reduce(self, values, index=None):
        correct = values if index is None else values[torch.as_tensor(index)]
        return {"acc": float(correct.float().mean()) if len(correct) else float("nan")}

    def scored_outputs(self, output):
        return [logits_of(output)]

    def check_output(self, model, output, example, data):
        out = logits_of(output)
        if out.ndim != 2:
            raise ModelError(f"{type(model).__name__} returns shape {tuple(out.shape)}; expected logits [batch, classes] "
                             "(another task? pass task='segmentation', 'detection', 'regression' or your own)")
        if data.num_classes is not None and out.shape[1] != data.num_classes:
            raise ModelError(f"{type(model).__name__} has {out.shape[1]} outputs but the data has {data.num_classes} classes")
