"""Model zoo and model specs: ``create`` any supported model, ``save``/``load`` safe checkpoints.

Specs: zoo names (``lenet300``, ``lenet5``, ``vgg11``, ``vgg16``, ``resnet20``, ``resnet56``, ``resnet18``,
``vit``, ``unet-tiny``, ``kws-cnn1d``; also as ``zoo:<name>``), ``hf:<hub id or folder>``, ``hf-config:<model_type>``,
``timm:<name>``, ``torchvision:<name>``, ``smp:<arch>[-<encoder>]`` and ``path/to/file.py:factory`` (a factory in your
own file). Every classifier maps [B, C, H, W] images to [B, num_classes] logits (``kws-cnn1d``: sequences [B, C, L]);
segmentation models (``unet-tiny``, ``smp:``, torchvision's segmentation models, ``hf-config:segformer-b0``..``b5``:
:mod:`edgeprune.models.segmentation`) to per-pixel logits [B, num_classes, h, w]; detectors (``torchvision:`` detection
builders, ``yolo:``, ``hf-config:detr`` / ``hf-config:yolos``: :mod:`edgeprune.models.hf_detection`) follow torchvision's
detection API. ``list_names("timm" | "torchvision" | "hf-config")`` lists
what the optional libraries build; timm and torchvision models take ``weights=PATH`` (a local file).

``save`` writes any ``nn.Module``; a model of your own class (no spec) loads back into a fresh instance
with ``load(path, model=MyNet(...))``, physically pruned layers resized to their saved shapes.
"""

from edgeprune.models.adapters import list_names
from edgeprune.models.checkpoint import load, load_meta, save
from edgeprune.models.registry import create, list_models, register

# importing the families registers their builders
from edgeprune.models import kws, lenet, resnet, unet, vgg, vit  # noqa: E402,F401  isort: skip
from edgeprune.models._common import (  # noqa: E402
    first_line,
    input_shape,
    load_state,
    logits_of,
    logits_only,
    loss_logits,
    probe_input,
    unwrapped,
)
from edgeprune.models.hf import HFImageClassifier  # noqa: E402
from edgeprune.models.plain import plain  # noqa: E402

__all__ = ["create", "list_models", "list_names", "save", "load", "load_meta", "register", "HFImageClassifier", "logits_of",
           "loss_logits", "first_line", "input_shape", "logits_only", "load_state", "plain", "probe_input", "unwrapped"]
