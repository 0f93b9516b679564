"""MACs with torch.utils.flop_counter.FlopCounterMode: dense, per layer, and sparsity-effective.

Effective MACs assume a sparse kernel skips every multiply by a pruned weight: each Conv/Linear layer's
MACs are scaled by its weight density; all other MACs (attention matmuls, norms) stay dense.

torch's counter has formulas for the CUDA attention kernels only; the CPU kernel of
``scaled_dot_product_attention`` (``aten._scaled_dot_product_flash_attention_for_cpu``) gets the same
formula here (2·B·H·L·S·(E + Ev) FLOPs: Q·Kᵀ and the product with V), so attention matrix products are
counted on CPU as on GPU. An LSTM on CPU runs in oneDNN's ``aten.mkldnn_rnn_layer``, which gets its matrix products'
formula too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from edgeprune.measure.size import PRUNABLE_TYPES
from edgeprune.models.mha import plain_attention


@dataclass
class MacsReport:
    dense: int
    effective: int
    per_layer: dict[str, int] = field(default_factory=dict)  # prunable module name -> dense MACs
    # module name -> MACs channel pruning cannot thin there: the convolutions its own forward ran outside any conv
    # layer (F.conv2d on a bare parameter), or a recurrent layer's (whose hidden width is kept)
    fixed: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"macs": self.dense, "effective_macs": self.effective}


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one CPU attention call (the counter passes tensor arguments as shapes)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _onednn_rnn_flops(input_shape, weight_ih_shape, weight_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one layer and direction of an LSTM in oneDNN's CPU kernel: both weight matrices multiply one vector
    per time step and sequence (torch's counter has no formula for the kernel; GRU and RNN reach it as matmuls)."""
    steps = math.prod(input_shape[:-1])
    return 2 * steps * (math.prod(weight_ih_shape) + math.prod(weight_hh_shape))


def _custom_mapping() -> dict:
    ops = [getattr(torch.ops.aten, name, None) for name in ("_scaled_dot_product_flash_attention_for_cpu",
                                                            "_scaled_dot_product_fused_attention_overrideable")]
    mapping = {op: _cpu_sdpa_flops for op in ops if op is not None}
    if hasattr(torch.ops.aten, "mkldnn_rnn_layer"):
        mapping[torch.ops.aten.mkldnn_rnn_layer] = _onednn_rnn_flops
    return mapping


@torch.no_grad()
def macs(model: nn.Module, example: torch.Tensor) -> MacsReport:
    """Count MACs of one forward pass on ``example`` (batch included: pass a batch of 1 for per-image)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    # the counter's module tracker hooks the gradients of module inputs: under no_grad a view of a parameter
    # (timm CaiT's cls_token.expand) still requires grad but has no grad_fn, and the hook asserts
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in trainable:
            p.requires_grad_(False)
        with counter, plain_attention():
            model(example)
    finally:
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)
    counts = counter.get_flop_counts()
    total = sum(counts.get("Global", {}).values()) // 2
    root = type(model).__name__
    per_layer, saved = {}, 0.0
    for name, module in model.named_modules():
        if not isinstance(module, PRUNABLE_TYPES) or not name:
            continue
        layer = sum(counts.get(f"{root}.{name}", {}).values()) // 2
        if layer == 0:
            continue
        per_layer[name] = layer
        w = module.weight
        density = int(torch.count_nonzero(w)) / w.numel()
        saved += layer * (1.0 - density)
    return MacsReport(dense=int(total), effective=int(round(total - saved)), per_layer=per_layer,
                      fixed=_fixed(model, counts))


def _fixed(model: nn.Module, counts: dict) -> dict[str, int]:
    """Per module, the MACs of :attr:`MacsReport.fixed`: a recurrent layer's own; for a module that is no conv layer,
    the convolution MACs counted in it beyond those of its children (the counter counts an operation in every module
    on the stack)."""
    root = type(model).__name__

    def counted(name: str, op=None) -> int:
        ops = counts.get(f"{root}.{name}" if name else root, {})
        return sum(ops.values()) if op is None else ops.get(op, 0)

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            own = counted(name)
        elif isinstance(module, nn.modules.conv._ConvNd):
            continue
        else:
            conv = torch.ops.aten.convolution
            own = counted(name, conv) - sum(counted(f"{name}.{child}" if name else child, conv)
                                            for child, _ in module.named_children())
        if own > 0:
            found[name] = own // 2
    return found
