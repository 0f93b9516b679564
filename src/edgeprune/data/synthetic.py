"""Random images with a learnable class signal, for tests and smoke runs (no files needed).

Each class has a smooth prototype (a random 4×4 pattern upsampled to the image size); an example is
its class prototype plus Gaussian pixel noise, quantised to uint8. A small CNN separates the classes
after a few steps; nearest-class-mean gets close to 100% at the default noise.

Spec: ``synthetic`` or ``synthetic:classes=10,channels=3,size=32,n=512,test=128,noise=0.25,seed=0``
(``n`` is the train+val pool, ``test`` defaults to n // 4, ``seed`` fixes the data itself).
"""

from __future__ import annotations

import torch

from edgeprune.data.base import RawData
from edgeprune.errors import ConfigError

DEFAULTS = {"classes": 10, "channels": 3, "size": 32, "n": 512, "test": None, "noise": 0.25, "seed": 0}
_LIMITS = {  # key -> (type, min, max)
    "classes": (int, 2, 1000), "channels": (int, 1, 4), "size": (int, 4, 512), "n": (int, 2, 1_000_000),
    "test": (int, 1, 1_000_000), "noise": (float, 0.0, 10.0), "seed": (int, 0, 2**63 - 1),
}


def parse_options(text: str | None) -> dict:
    """``'classes=4,size=8'`` -> the full option dict; ConfigError on unknown keys or bad values."""
    opts = dict(DEFAULTS)
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _LIMITS:
            raise ConfigError(
                f"synthetic option {item!r} is not key=value with a known key; allowed: {', '.join(DEFAULTS)}"
            )
        kind, lo, hi = _LIMITS[key]
        try:
            parsed = kind(value.strip())
        except ValueError:
            raise ConfigError(f"synthetic option {key}={value!r} is not a{'n int' if kind is int else ' number'}") from None
        if not lo <= parsed <= hi:
            raise ConfigError(f"synthetic option {key}={parsed} is out of range; allowed {lo}..{hi}")
        opts[key] = parsed
    if opts["test"] is None:
        opts["test"] = max(opts["n"] // 4, opts["classes"])
    return opts


def load_synthetic(options: str | None = None) -> RawData:
    """Generate the dataset described by ``options`` (see the module docstring)."""
    o = parse_options(options)
    gen = torch.Generator().manual_seed(o["seed"])
    coarse = torch.rand(o["classes"], o["channels"], 4, 4, generator=gen)
    protos = torch.nn.functional.interpolate(coarse, size=(o["size"], o["size"]), mode="bilinear", align_corners=False)
    protos = 0.15 + 0.7 * protos  # keep noise room on both sides before clamping

    def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(count) % o["classes"])[torch.randperm(count, generator=gen)]
        noise = torch.randn(count, o["channels"], o["size"], o["size"], generator=gen)
        x = (protos[labels] + o["noise"] * noise).clamp_(0.0, 1.0)
        return x.mul_(255.0).round_().to(torch.uint8), labels

    train_x, train_y = sample(o["n"])
    test_x, test_y = sample(o["test"])
    return RawData(
        name="synthetic", train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y,
        classes=[f"class{k}" for k in range(o["classes"])], mean=None, std=None,
        augment=False, crop_padding=max(1, o["size"] // 16), hflip=False, notes={"options": o},
    )
