"""Reconvene: structured pruning at initialisation (Eccles, Wong, Varghese, CCGrid 2024).

Pipeline (one pass, before any training):

1. **UPaI** — a PaI criterion (magnitude, random, SNIP, GraSP, SynFlow) scores every Conv/Linear weight of
   the freshly initialised model; one GLOBAL threshold keeps the top (1 − p) fraction
   (:func:`pai_masks`).
2. **Pruning Sensitivity Evaluator** (:func:`evaluate_sensitivity`) — each conv layer's sparsity is
   compared with the global average: by default the unweighted mean of the conv layers' sparsities (or,
   ``weighted=True``, the parameter-weighted one, i.e. ``p``). Layers pruned harder are *insensitive*.
3. **Resilient Layer Rectifier** (:func:`rectify`) — insensitive layers lose output channels physically
   (torch-pruning dependency graph, :mod:`edgeprune.surgery.channels`): ``max(1, round(√density × C_out))``
   channels (``width="sqrt"``, the default; ``"density"``: ``round(density × C_out)``) ranked by their
   per-filter score mass survive (``keep="score_mass"``), or only the all-zero filters go
   (``keep="zero_filters"``, lossless). Consumers lose the matching inputs. Layers coupled
   through a residual sum are one *group*: the group's pooled sparsity (all members' weights together)
   is compared with the average (``group_rule="pooled"``; ``"all"`` needs every member insensitive), and
   the group keeps the width rule's channels of its pooled density, ranked by the members' summed score
   mass.
   Every layer whose shape changed is re-initialised; sensitive layers keep their unstructured masks,
   sliced where their inputs were removed.
4. Train from scratch with :func:`edgeprune.train.fit` (``masks=`` keeps the remaining masks exact).

:func:`generate` is steps 1–3 in one call. Steps 2–3 live in :mod:`edgeprune.prune.rectify` (re-exported
here). The whole method (budgets x seeds, training from scratch, measurements, a resumable run directory,
with the UPaI counterpart at the same ``p`` as candidates of the same sweep) is
``edgeprune.sweep(model, data, method="reconvene", modes=["reconvene", "unstructured"], ...)``
(``edgeprune prune reconvene``).
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from edgeprune import scores as scores_lib
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.measure.size import prunable_weights
from edgeprune.prune.masks import Masks, global_masks
from edgeprune.prune.rectify import (  # noqa: F401  (re-exported: the pipeline's pieces in one namespace)
    GROUP_RULES,
    KEEP_RULES,
    REINIT_RULES,
    WIDTH_RULES,
    check_options,
    default_reinit,
    no_conv_layer,
    rectify,
)
from edgeprune.prune.sensitivity import CONV_TYPES, Sensitivity, evaluate_sensitivity  # noqa: F401  (re-exported)

PAI_SCORES = ("synflow", "snip", "grasp", "magnitude", "random")
#: criteria that need calibration batches
DATA_SCORES = ("snip", "grasp")


def check_score(score: str) -> str:
    """ConfigError unless ``score`` is one of :data:`PAI_SCORES`."""
    if score not in PAI_SCORES:
        raise ConfigError(f"unknown score {score!r}; allowed: {', '.join(PAI_SCORES)}")
    return score


# ---------------------------------------------------------------------------------------------------
# UPaI: scores and one global mask
# ---------------------------------------------------------------------------------------------------


def pai_masks(
    model: nn.Module,
    example_input: torch.Tensor,
    sparsity: float,
    score: str = "synflow",
    batches=None,
    *,
    seed: int = 0,
    score_options: dict | None = None,
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], Masks]:
    """(scores, global keep-masks at ``sparsity``) of ``model`` under the PaI criterion ``score``.

    SynFlow runs iteratively towards ``sparsity`` (100 rounds on the exponential schedule unless
    ``score_options={"rounds": n}``) on an all-ones input of ``example_input``'s shape. The model is not
    modified.
    """
    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    options = dict(score_options or {})
    if score == "synflow":
        options.setdefault("sparsity", sparsity)
        options.setdefault("input_shape", tuple(example_input.shape[1:]))
    if "progress" in scores_lib.REGISTRY[score].options:  # SynFlow's bar over its rounds
        options.setdefault("progress", progress)
    if score in DATA_SCORES and not batches:
        raise ConfigError(f"score {score!r} needs calibration batches (batches=scores.calibration_batches(train, 1, 100))")
    scores = scores_lib.compute(score, model, batches, seed=seed, **options)
    return scores, global_masks(scores, sparsity)


# ---------------------------------------------------------------------------------------------------
# generate = UPaI + PSE + RLR
# ---------------------------------------------------------------------------------------------------


def _weights_summary(model: nn.Module, masks: Masks) -> dict:
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    kept = sum(int(masks[n].count_nonzero()) if n in masks else w.numel() for n, w in weights.items())
    return {"prunable_weights": int(total), "kept_weights": int(kept)}


def generate(model: nn.Module, example_input: torch.Tensor, sparsity: float, score: str = "synflow", batches=None, *,
             seed: int = 0, score_options: dict | None = None, **rectify_options) -> tuple[nn.Module, Masks, dict]:
    """Reconvene on an initialised ``model``: returns ``(pruned_model, masks, info)``; ``model`` is untouched.

    ``model`` to ``score_options`` go to :func:`pai_masks`; ``rectify_options`` are the switches of
    :func:`rectify` (``weighted``, ``keep``, ``group_rule``, ``width``, ``round_to``, ``reinit``, ``reinit_fn``),
    with its defaults where not given.
    ``pruned_model`` is a physically smaller copy, ready to train with ``fit(..., masks=masks)``.
    ``info`` (JSON-able): ``insensitive`` layers, ``structured`` layers (channels removed), per-layer
    ``layers`` rows (UPaI sparsity, verdict, channels before/after, weights before/after), residual
    ``groups`` and what was decided for each, ``removed`` original indices per touched module,
    ``upai`` (kept/total prunable weights of the UPaI mask), ``reconvene`` (the same after rectification,
    over the smaller model), ``seconds`` (scores, rectify, total = the generation time).
    """
    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    check_options(**rectify_options)
    if not any(isinstance(m, CONV_TYPES) for m in model.modules()):
        raise no_conv_layer(model)
    t0 = time.perf_counter()
    scores, masks = pai_masks(model, example_input, sparsity, score, batches, seed=seed, score_options=score_options)
    t_scores = time.perf_counter() - t0
    pruned = copy.deepcopy(model)
    pruned, new_masks, info = rectify(pruned, example_input, masks, scores, **rectify_options)
    total = time.perf_counter() - t0
    info = {
        "sparsity": sparsity,
        "score": score,
        "seed": seed,
        **info,
        "upai": _weights_summary(model, masks),
        "reconvene": _weights_summary(pruned, new_masks),
        "seconds": {"scores": t_scores, "rectify": info["rectify_seconds"], "total": total},
        "generation_seconds": total,
    }
    return pruned, new_masks, info
