"""The role table: one :class:`LayerRole` per prunable weight and norm layer, in forward order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Sequence

ROLES = ("norm", "patch_embed", "classifier", "attn_qkv", "attn_proj", "mlp_in", "mlp_out", "conv", "linear")
SMALL_NUMEL = 10_000

@dataclass(frozen=True)
class LayerRole:
    """The role of one layer. ``param_name`` is ``"<module>.weight"`` for prunable weights, None for norms."""

    module_name: str
    param_name: str | None
    role: str
    small: bool
    depth: float
    order: int
    numel: int
    shape: tuple[int, ...]
    partner: str | None = None


@dataclass(frozen=True)
class RoleTable(Sequence[LayerRole]):
    """The roles of a model's layers in forward order (norms included, ``param_name=None``)."""

    entries: tuple[LayerRole, ...]
    num_classes: int | None = None
    _by_param: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._by_param.update({e.param_name: e for e in self.entries if e.param_name})

    def __getitem__(self, i):
        return self.entries[i]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LayerRole]:
        return iter(self.entries)

    def prunable(self) -> list[LayerRole]:
        """Entries with a prunable weight (everything but norms), in forward order."""
        return [e for e in self.entries if e.param_name]

    def by_param(self, name: str) -> LayerRole:
        """The entry of parameter ``name`` (``"<module>.weight"``); KeyError if it is not prunable."""
        try:
            return self._by_param[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a prunable weight of this model") from None

    def by_role(self, role: str) -> list[LayerRole]:
        return [e for e in self.entries if e.role == role]

    def mlp_pairs(self) -> list[tuple[LayerRole, LayerRole]]:
        """(mlp_in, mlp_out) entries of every MLP block, in forward order (a gated block's first input layer)."""
        by_module = {e.module_name: e for e in self.entries}
        return [(e, by_module[e.partner]) for e in self.entries if e.role == "mlp_in" and e.partner in by_module
                and by_module[e.partner].partner == e.module_name]

    def gates(self, mlp_out: str) -> tuple[str, ...]:
        """The other input layers of a gated MLP block whose output layer is ``mlp_out`` (none for a plain MLP)."""
        main = next((e.partner for e in self.entries if e.module_name == mlp_out and e.role == "mlp_out"), None)
        return tuple(e.module_name for e in self.entries
                     if e.role == "mlp_in" and e.partner == mlp_out and e.module_name != main)

    def counts(self) -> dict[str, int]:
        """role -> number of entries (every role of ROLES present, zeros included)."""
        c = Counter(e.role for e in self.entries)
        return {r: c.get(r, 0) for r in ROLES}

    def rows(self) -> list[list]:
        """Rows for printing: order, module, role, small, depth, shape, numel, partner."""
        return [
            [e.order, e.module_name or "(root)", e.role, "yes" if e.small else "", round(e.depth, 3),
             "x".join(map(str, e.shape)), e.numel, e.partner or ""]
            for e in self.entries
        ]

    COLUMNS = ("#", "module", "role", "small", "depth", "shape", "numel", "partner")


