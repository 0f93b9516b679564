"""Reconstruction after structural removal: re-fit the layers that lost inputs so they give the dense model's outputs.

A layer that lost input channels (the consumer of removed channels, neurons or heads) is re-fitted in closed form:
its weight and bias solve a ridge least-squares problem whose inputs are the *pruned* model's inputs to that layer on
calibration images and whose target is the *dense* model's output of the same layer (its kept output channels).
Layers are fitted one after another in forward order, each fed by the layers fitted before it (sequential, as in
OBC / SparseGPT), so errors do not pile up. VBP's mean-shift is the special case of re-fitting the bias alone.

The ridge term pulls toward the kept weights (not toward zero): with few images the layer stays what it was.
Memory is bounded: one ``(d+1)²`` float64 Gram matrix per layer, ``d`` = kept inputs × kernel size, and at most
``rows`` sampled positions per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Removed = dict[str, dict]  # module name -> {"out": [original indices], "in": [original indices]}
MAX_DIM = 8192  # layers with more inputs (kept channels × kernel) than this keep their weights (Gram memory)


class _Stop(Exception):
    """Ends a forward pass once the hooked layer has run (the rest of the model is not needed)."""


@dataclass
class LayerFit:
    """One re-fitted layer: its residual error relative to the target's variance, before and after."""

    name: str
    rows: int
    before: float
    after: float


def fittable(module: nn.Module) -> bool:
    """Linear layers and ungrouped 1-D/2-D convolutions with zero padding."""
    if isinstance(module, nn.Linear):
        return True
    return (isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups == 1
            and module.padding_mode == "zeros" and not isinstance(module.padding, str))


def _rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as one row per output position: ``[positions, d]``."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv1d):
        x, (k, d, p, s) = x.unsqueeze(2), ((1, *module.kernel_size), (1, *module.dilation), (0, *module.padding),
                                           (1, *module.stride))
    else:
        k, d, p, s = module.kernel_size, module.dilation, module.padding, module.stride
    cols = F.unfold(x, k, dilation=d, padding=p, stride=s)  # [B, d, L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _targets(module: nn.Module, y: torch.Tensor, kept_out: list[int]) -> torch.Tensor:
    if isinstance(module, nn.Linear):
        return y.reshape(-1, y.shape[-1])[:, kept_out]
    return y[:, kept_out].flatten(2).transpose(1, 2).reshape(-1, len(kept_out))


def _captured(model: nn.Module, module: nn.Module, x: torch.Tensor, want_input: bool) -> torch.Tensor:
    """The first input (or output) of ``module`` while ``model`` runs on ``x``; the rest of the forward is skipped."""
    seen = []

    def hook(mod, args, output):
        seen.append(args[0] if want_input else output)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x.to(module.weight.device))
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise RuntimeError("the layer did not run")
    return seen[0].detach().double().cpu()  # the normal equations are summed on the CPU in float64


class _Normal:
    """Running sums of the normal equations ``[X 1]ᵀ[X 1]``, ``[X 1]ᵀY`` and the target's moments."""

    def __init__(self, d: int, out: int):
        self.gram = torch.zeros(d + 1, d + 1, dtype=torch.float64)
        self.cross = torch.zeros(d + 1, out, dtype=torch.float64)
        self.y_sum, self.y_sq, self.rows = torch.zeros(out, dtype=torch.float64), 0.0, 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        self.gram += x.T @ x
        self.cross += x.T @ y
        self.y_sum += y.sum(0)
        self.y_sq += float((y * y).sum())
        self.rows += len(x)

    def error(self, w: torch.Tensor) -> float:
        """Residual sum of squares of ``[X 1] w`` against Y, over the target's total variance."""
        residual = float((w * (self.gram @ w)).sum() - 2 * (w * self.cross).sum()) + self.y_sq
        variance = self.y_sq - float((self.y_sum ** 2).sum()) / max(self.rows, 1)
        return max(residual, 0.0) / max(variance, 1e-12)

    def solve(self, w0: torch.Tensor, ridge: float, intercept: bool = True) -> torch.Tensor:
        """The ridge solution pulled toward ``w0``; without ``intercept`` the bias row stays ``w0``'s."""
        d = len(self.gram) - 1
        lam = ridge * float(self.gram.diagonal()[:d].mean()) + 1e-8
        k = d + 1 if intercept else d
        eye = torch.eye(k, dtype=torch.float64) * lam
        fixed = self.gram[:k, d:] @ w0[d:] if not intercept else 0.0  # the kept bias's share of the target
        w = torch.linalg.solve(self.gram[:k, :k] + eye, self.cross[:k] - fixed + lam * w0[:k])
        return w if intercept else torch.cat([w, w0[d:]], 0)


def _stacked(module: nn.Module) -> torch.Tensor:
    """The layer's weight and bias as one ``[d+1, out]`` matrix (the bias row 0 when it has none)."""
    w = module.weight.detach().double().cpu().reshape(module.weight.shape[0], -1).T
    b = module.bias.detach().double().cpu() if module.bias is not None else torch.zeros(w.shape[1], dtype=torch.float64)
    return torch.cat([w, b[None]], 0)


def _write(module: nn.Module, w: torch.Tensor) -> None:
    weight = w[:-1].T.reshape(module.weight.shape).to(module.weight)
    bias = w[-1].to(module.weight)
    with torch.no_grad():
        module.weight.copy_(weight)
        if module.bias is None:  # the fitted intercept (a conv before batch norm has none): a bias of its own
            if bool(bias.any()):
                module.bias = nn.Parameter(bias.clone())
        else:
            module.bias.copy_(bias)


def _fit_layer(pruned: nn.Module, reference: nn.Module, name: str, kept_out: list[int], inputs: Sequence[torch.Tensor],
               ridge: float, rows: int, generator: torch.Generator, new_bias: bool) -> LayerFit | None:
    module, dense = pruned.get_submodule(name), reference.get_submodule(name)
    w0 = _stacked(module)
    if len(w0) - 1 > MAX_DIM:
        return None
    normal = _Normal(len(w0) - 1, w0.shape[1])
    for x in inputs:
        xs = _rows(module, _captured(pruned, module, x, want_input=True))
        ys = _targets(module, _captured(reference, dense, x, want_input=False), kept_out)
        if len(xs) > rows:
            pick = torch.randperm(len(xs), generator=generator)[:rows]
            xs, ys = xs[pick], ys[pick]
        normal.add(xs, ys)
    w = normal.solve(w0, ridge, intercept=new_bias or module.bias is not None)
    before, after = normal.error(w0), normal.error(w)
    if not after < before:  # nothing to gain (or a numerical failure): the layer keeps its weights
        return LayerFit(name, normal.rows, before, before)
    _write(module, w)
    return LayerFit(name, normal.rows, before, after)


def _call_order(model: nn.Module, x: torch.Tensor, names: set[str]) -> list[str]:
    order, handles = [], []
    for name, module in model.named_modules():
        if name in names:
            handles.append(module.register_forward_hook(lambda m, a, o, n=name: order.append(n) if n not in order else None))
    try:
        model(x.to(next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return order


@torch.no_grad()
def reconstruct(pruned: nn.Module, reference: nn.Module, removed: Removed, inputs: Iterable[torch.Tensor], *,
                changed: Iterable[str] = (), ridge: float = 1e-2, rows: int = 4096, seed: int = 0,
                new_bias: bool = True) -> list[LayerFit]:
    """Re-fit, in place and in forward order, every layer of ``pruned`` that lost input channels (``removed``: the
    original indices each module lost, by module name, as the surgery reports them) so that on ``inputs`` (batches of
    model inputs) it gives ``reference``'s (the unpruned model, same module names) output of that layer. Returns one
    :class:`LayerFit` per layer fitted; layers that are not :func:`fittable` or too wide keep their weights.
    ``changed``: more layers to re-fit, whose inputs changed for another reason (they run after a removed block).
    ``new_bias=False``: a layer without a bias is fitted without an intercept (its parameter count stays)."""
    inputs = list(inputs)
    modules, dense = dict(pruned.named_modules()), dict(reference.named_modules())
    names = {n for n in (*(n for n, r in removed.items() if r.get("in")), *changed)
             if n in modules and n in dense and fittable(modules[n]) and type(modules[n]) is type(dense[n])}
    if not names or not inputs:
        return []
    modes = [(m, m.training) for m in (*pruned.modules(), *reference.modules())]
    pruned.eval()
    reference.eval()
    generator = torch.Generator().manual_seed(seed)
    fits = []
    try:
        for name in _call_order(pruned, inputs[0], names):
            gone = set(removed.get(name, {}).get("out", ()))
            kept_out = [i for i in range(dense[name].weight.shape[0]) if i not in gone]
            if len(kept_out) != modules[name].weight.shape[0]:
                continue  # the report and the layer disagree: leave it alone
            fit = _fit_layer(pruned, reference, name, kept_out, inputs, ridge, rows, generator, new_bias)
            if fit is not None:
                fits.append(fit)
    finally:
        for m, training in modes:
            m.training = training
    return fits
