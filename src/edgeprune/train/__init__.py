"""The one training loop of edgeprune: dense training, fine-tuning of pruned models and KD.

Every method (Mix-and-Match fine-tunes, VBP's KD fine-tune, Reconvene's training from scratch) calls
:func:`fit`. Selection is on the validation split: the best validation epoch's weights are restored at the
end, and early stopping watches it (the task's primary metric: top-1 accuracy for classifiers). Test data never enters this module.

Distributed data parallel: when ``torch.distributed`` is initialised (``torchrun``), :func:`fit` shards the
training set with a DistributedSampler, wraps the model in DDP and only rank 0 shows progress; the caller
lets only rank 0 write files.

User DataLoaders: ``train_data`` / ``val_data`` may be DataLoaders yielding ``(x, y)`` tensor batches. They
are used as they are: their batch size and order win over ``batch_size`` / ``seed`` (the global torch RNG is
seeded with ``seed`` first, so a loader shuffling with it repeats; a loader with a generator of its own gets
that generator re-seeded with ``seed``, so a fit's data order never depends on what ran before it).

Determinism: the same seed gives the same weights — seeded init RNG, data order and augmentation draws (the
runner reseeds them per candidate), and :func:`deterministic` (torch's deterministic algorithms) around
every candidate. Under DDP a user training DataLoader
must already shard with a DistributedSampler (fit calls its ``set_epoch``); anything else is a ConfigError,
since every rank would train on all the data.
"""

from edgeprune.train.config import (
    QUICK_MAX_BATCHES,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    default_config,
    duration_text,
    log_line,
    quick_config,
)
from edgeprune.train.loop import batches_per_epoch, deterministic, fit, kd_loss

__all__ = ["QUICK_MAX_BATCHES", "TrainConfig", "TrainResult", "TrainingDiverged", "batches_per_epoch", "default_config",
           "deterministic", "duration_text", "fit", "kd_loss", "log_line", "quick_config"]
