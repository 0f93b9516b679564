"""A VBP-pruned model exports to ONNX and ONNX Runtime gives the same logits as torch."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgeprune import models
from edgeprune.methods import vbp


@pytest.mark.slow
def test_pruned_vit_exports_and_runs_in_onnxruntime(tmp_path):
    torch.manual_seed(0)
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=2, num_heads=2)
    batches = [(torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    pruned, _ = vbp.prune(model, batches, ratio=0.5)
    pruned.eval()
    x = torch.randn(2, 1, 8, 8)
    path = tmp_path / "pruned.onnx"
    torch.onnx.export(pruned, (x,), str(path), input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    got = session.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        want = pruned(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
