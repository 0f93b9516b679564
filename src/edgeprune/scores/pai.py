"""Pruning-at-initialisation scores: SNIP, GraSP (and its |·| variant) and SynFlow.

Sign convention: every score is "higher = keep". GraSP's own saliency S(−θ) = −θ ⊙ Hg names the weights to
REMOVE first (largest S), so our ``grasp`` score is its negation θ ⊙ Hg; ``grasp_abs`` = |θ ⊙ Hg| is the
variant Mix-and-Match's baseline code ranks by.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.measure import prunable_weights
from edgeprune.prune.masks import prune_lowest
from edgeprune.scores.registry import criterion
from edgeprune.scores.weights import (
    Batch,
    LossFn,
    Scores,
    batch_gradients,
    batch_loss,
    check_mode,
    scoring_state,
    to_scores,
)


@criterion("snip", "SNIP connection sensitivity |sum_b dL_b/dw * w| (Lee et al. 2019)", needs_data=True)
def snip(model: nn.Module, batches, *, loss_fn, seed, mode: str = "train") -> Scores:
    """|Σ_b g_b ⊙ w|: the gradient of the loss summed over the given batches, times the weight.

    SNIP's normalisation by Σ|g ⊙ w| is a positive constant and does not change any ranking, so it is left out.
    """
    total: dict[str, torch.Tensor] = {}
    for grads in batch_gradients(model, batches, loss_fn, seed=seed, train=check_mode(mode)):
        for n, g in grads.items():
            total[n] = total[n].add_(g) if n in total else g.detach().clone()
    weights = prunable_weights(model)
    return to_scores({n: (g * weights[n].detach()).abs() for n, g in total.items()})


def _hardsigmoid(x, inplace=False):
    return F.relu6(x + 3.0) / 6.0  # the same function, composed of ops that have a double backward


def _normalize(x, p=2.0, dim=1, eps=1e-12, out=None):
    """x / sqrt(|x|² + eps²): equal to F.normalize wherever |x| ≫ eps, and its second derivative at a zero
    vector is finite (the norm's is NaN: Swin-V2's cosine attention over zero-padded window tokens)."""
    if p != 2 or out is not None:
        return F.normalize(x, p, dim, eps, out)
    return x / (x.pow(2).sum(dim, keepdim=True) + eps * eps).sqrt()


class TwiceDifferentiable(TorchFunctionMode):
    """While active, functions whose backward has no usable derivative in PyTorch run as an equal composition
    of ops that have one: ``hardsigmoid`` (MobileNetV3's squeeze-excite gates, as module or function) and
    ``normalize`` at zero vectors."""

    REPLACEMENTS = {F.hardsigmoid: _hardsigmoid, F.normalize: _normalize}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.REPLACEMENTS.get(func, func)(*args, **(kwargs or {}))


class KeepPrecision(TorchFunctionMode):
    """While active, a forward's casts of ``precision`` tensors down to float32 (``.float()``, ``.to(torch.float32)``)
    keep ``precision``: timm's EfficientViT attention casts to float32, where SynFlow's products of |θ| overflow."""

    def __init__(self, precision: torch.dtype):
        super().__init__()
        self.precision = precision

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.float, torch.Tensor.to) and args and getattr(args[0], "dtype", None) == self.precision:
            if func is torch.Tensor.float:
                return args[0]
            args = tuple(self.precision if a is torch.float32 else a for a in args)
            kwargs = {k: (self.precision if v is torch.float32 else v) for k, v in kwargs.items()}
        return func(*args, **kwargs)


def hessian_gradient(model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn | None, *, seed: int,
                     train: bool, temperature: float) -> dict[str, torch.Tensor]:
    """H g over the prunable weights, by double back-propagation (GraSP's Hessian-gradient product).

    L = Σ_b L_b (logits divided by ``temperature``); g = ∂L/∂w is computed first without a graph, then for
    each batch z_b = g · ∂L_b/∂w is differentiated once more, so H g = Σ_b ∂z_b/∂w. Both passes start
    from the same RNG seed, so dropout masks match batch by batch.
    """
    weights = prunable_weights(model)
    names, params = list(weights), list(weights.values())
    g_stop = [torch.zeros_like(p) for p in params]
    hg = [torch.zeros_like(p) for p in params]
    # the fused attention kernels have no double backward; the math kernel is composed of ops that do
    with scoring_state(model, train=train, seed=seed, weights=params), sdpa_kernel(SDPBackend.MATH), TwiceDifferentiable():
        for batch in batches:
            loss = batch_loss(model, batch, loss_fn, params[0], temperature=temperature)
            for acc, g in zip(g_stop, torch.autograd.grad(loss, params, allow_unused=True)):
                if g is not None:
                    acc.add_(g)
        torch.manual_seed(seed)
        for batch in batches:
            loss = batch_loss(model, batch, loss_fn, params[0], temperature=temperature)
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            z = sum((g * gs).sum() for g, gs in zip(grads, g_stop) if g is not None)
            if not isinstance(z, torch.Tensor) or not z.requires_grad:
                continue  # the loss is linear in every weight: H g = 0 for this batch
            for acc, h in zip(hg, torch.autograd.grad(z, params, allow_unused=True)):
                if h is not None:
                    acc.add_(h)
    return dict(zip(names, hg))


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature!r}")
    return float(temperature)


@criterion("grasp", "GraSP, higher = keep: w * (H g) = -S(-w) (Wang et al. 2020), T=200", needs_data=True)
def grasp(model: nn.Module, batches, *, loss_fn, seed, mode: str = "train", temperature: float = 200.0) -> Scores:
    """θ ⊙ Hg. GraSP removes the weights with the largest −θ ⊙ Hg, i.e. keeps the largest θ ⊙ Hg."""
    hg = hessian_gradient(model, batches, loss_fn, seed=seed, train=check_mode(mode),
                          temperature=_check_temperature(temperature))
    weights = prunable_weights(model)
    return to_scores({n: weights[n].detach() * h for n, h in hg.items()})


@criterion("grasp_abs", "|w * (H g)|, the GraSP variant of Mix-and-Match's baseline code, T=1", needs_data=True)
def grasp_abs(model: nn.Module, batches, *, loss_fn, seed, mode: str = "train", temperature: float = 1.0) -> Scores:
    hg = hessian_gradient(model, batches, loss_fn, seed=seed, train=check_mode(mode),
                          temperature=_check_temperature(temperature))
    weights = prunable_weights(model)
    return to_scores({n: (weights[n].detach() * h).abs() for n, h in hg.items()})


# ---------------------------------------------------------------------------------------------------
# SynFlow
# ---------------------------------------------------------------------------------------------------

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _input_shape(model: nn.Module, batches, input_shape) -> tuple[int, ...]:
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        if not shape or any(d <= 0 for d in shape):
            raise ConfigError(f"input_shape must be positive sizes like (3, 32, 32), got {input_shape!r}")
        return shape
    if batches:
        return tuple(batches[0][0].shape[1:])
    build = getattr(model, "edgeprune_build", None)
    if isinstance(build, dict) and "in_channels" in build and "image_size" in build:
        return (int(build["in_channels"]), int(build["image_size"]), int(build["image_size"]))
    raise ConfigError("synflow needs the input shape of one example: pass input_shape=(C, H, W)")


@contextlib.contextmanager
def _tensors_kept(model: nn.Module):
    """Put every module's own parameter and buffer objects back afterwards. torch.func.functional_call does not
    restore a module reached under two names (timm's CoaT: ``mlp3 = mlp2``): without this, the model would keep
    SynFlow's float64 |weights|."""
    saved = [(m, dict(m._parameters), dict(m._buffers)) for m in model.modules()]
    try:
        yield
    finally:
        for module, parameters, buffers in saved:
            module._parameters.update(parameters)
            module._buffers.update(buffers)


def _names_in(net: nn.Module, model: nn.Module) -> dict[str, str]:
    """{name in ``model``: name in ``net``} of the tensors ``net`` shares with ``model`` (identity when net is model)."""
    if net is model:
        return {}
    where = {id(t): n for n, t in (*net.named_parameters(remove_duplicate=False), *net.named_buffers(remove_duplicate=False))}
    return {n: where[id(t)] for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) in where}


@criterion("synflow", "SynFlow |dR/dw * w|, R = sum of the all-ones output of |θ| (Tanaka et al. 2020); data-free",
           needs_data=False)
def synflow(model: nn.Module, batches, *, loss_fn, seed, input_shape=None, sparsity: float | None = None,
            rounds: int | None = None, dtype: str = "float64", progress: bool = True) -> Scores:
    """SynFlow scores, single-shot (no ``sparsity``) or iterative towards ``sparsity``.

    Every parameter is replaced by its absolute value (the model itself is never modified: the forward
    runs through ``torch.func.functional_call`` on |θ| copies), the model is in eval mode (BatchNorm uses
    its running statistics), the input is one all-ones example of ``input_shape`` and R = Σ output.
    Computed in ``dtype`` (float64 by default, as OpenLTH, so deep nets do not overflow). ``progress`` shows a
    transient progress bar over the rounds.

    Iterative (``sparsity`` given, ``rounds`` defaults to 100): round k scores the masked |θ| and prunes
    globally to p_k = 1 − (1 − p)^(k / rounds), never reviving a pruned weight. The returned scores are the
    last round's scores for the kept weights (all >= 0) and k − rounds − 1 (a negative number, earlier
    pruned = lower) for a weight pruned in round k, so the global top-(1−p) of the result is exactly the
    final iterative mask (round(p · N) weights pruned).
    """
    if dtype not in _DTYPES:
        raise ConfigError(f"synflow dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    if sparsity is not None:
        sparsity = check_fraction("synflow sparsity", sparsity)
    rounds = _synflow_rounds(sparsity, rounds)
    shape = _input_shape(model, batches, input_shape)
    weights = prunable_weights(model)
    abs_params, score_once = _synflow_scorer(model, weights, shape, _DTYPES[dtype])
    with scoring_state(model, train=False, seed=seed), _tensors_kept(model):
        if sparsity is None:
            return to_scores(score_once())
        return _synflow_iterative(score_once, abs_params, weights, sparsity, rounds, progress)


def _synflow_rounds(sparsity: float | None, rounds: int | None) -> int:
    """The rounds of a SynFlow call: 1 without a target sparsity, else ``rounds`` (100 by default, an int >= 1)."""
    if sparsity is None:
        if rounds not in (None, 1):
            raise ConfigError(f"synflow with rounds={rounds!r} needs the target sparsity (option sparsity)")
        return 1
    rounds = 100 if rounds is None else rounds
    if not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"synflow rounds must be an integer >= 1, got {rounds!r}")
    return rounds


def _synflow_scorer(model: nn.Module, weights: dict, shape: tuple, precision: torch.dtype):
    """(|θ| copies in ``precision``, a function scoring |grad · θ| of ``weights`` for R = Σ output on an all-ones input)."""
    names = list(weights)
    ref = next(iter(weights.values()))
    abs_params = {n: p.detach().abs().to(precision) for n, p in model.named_parameters()}
    for n in names:
        abs_params[n].requires_grad_(True)
    buffers = {n: (b.to(precision) if b.is_floating_point() else b) for n, b in model.named_buffers()}
    x = torch.ones((1, *shape), dtype=precision, device=ref.device)
    the_task = tasks_lib.current()
    net = the_task.deployable(model)  # a detector: its dense part (the same parameters under other names)
    names_in = _names_in(net, model)

    def score_once(flat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{name: |grad * θ|}, written into ``flat`` (the weights' scores end to end) when given: each gradient is
        dropped as soon as its score is written, so a round holds one set of gradients at most, not also a dict of
        scores and their concatenation."""
        state = {names_in.get(n, n): t for n, t in {**abs_params, **buffers}.items() if net is model or n in names_in}
        with KeepPrecision(precision):
            outputs = the_task.scored_outputs(functional_call(net, state, (x,)))
        params = [abs_params[n] for n in names]
        grads = list(torch.autograd.grad(sum(o.sum() for o in outputs), params, allow_unused=True))
        out, offset = {}, 0
        for i, (n, p) in enumerate(zip(names, params)):
            g, grads[i] = grads[i], None
            part = (flat[offset:offset + p.numel()].view(p.shape) if flat is not None
                    else torch.empty_like(p, requires_grad=False))
            if g is None:
                part.zero_()
            else:
                torch.mul(g.detach(), p.detach(), out=part).abs_()
            out[n], offset = part, offset + p.numel()
        return out

    return abs_params, score_once


def _synflow_iterative(score_once, abs_params: dict, weights: dict, sparsity: float, rounds: int, progress: bool) -> Scores:
    """Iterative SynFlow: score, prune globally to p_k, mask |θ|; see :func:`synflow` for the returned scores."""
    names = list(weights)
    device = next(iter(weights.values())).device
    sizes = [abs_params[n].numel() for n in names]
    total = sum(sizes)
    keep = torch.ones(total, dtype=torch.bool, device=device)
    pruned_round = torch.zeros(total, dtype=torch.int32, device=device)
    bar = Progress(TextColumn("synflow"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=True, disable=not progress)
    # one buffer of scores for every round; a weight pruned earlier scores -inf, so the global selection prunes it
    # again first and then the lowest kept ones. A selection among the kept ones needed their indices (8 bytes a
    # weight) and a copy of their scores: Reconvene on timm's 412M-parameter DeepSeek ViT was killed out of memory
    # in its first minute on a 24 GB machine; with one buffer it ran to the zoo contract's time box.
    flat = torch.empty(total, dtype=abs_params[names[0]].dtype, device=device)
    with bar:
        task = bar.add_task("synflow", total=rounds)
        for k in range(1, rounds + 1):
            score_once(flat)
            flat.masked_fill_(~keep, -math.inf)
            p_k = sparsity if k == rounds else 1.0 - (1.0 - sparsity) ** (k / rounds)
            new_keep = prune_lowest(flat, round(p_k * total))
            pruned_round[keep & ~new_keep] = k
            keep = new_keep
            with torch.no_grad():
                for n, m in zip(names, torch.split(keep, sizes)):
                    abs_params[n].mul_(m.reshape(abs_params[n].shape))
            bar.advance(task)
    earlier = pruned_round.to(flat.dtype).sub_(rounds + 1).masked_fill_(keep, 0.0)
    flat.masked_fill_(~keep, 0.0).add_(earlier)
    del earlier
    return to_scores({n: part.reshape(weights[n].shape) for n, part in zip(names, torch.split(flat, sizes))})
