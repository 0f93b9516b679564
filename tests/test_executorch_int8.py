"""PT2E INT8 (XNNPACK quantizer, per-channel weights, calibrated on training batches) gives a smaller .pte
that runs in the ExecuTorch runtime, agrees with its simulated reference and stays close to FP32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from byom.userdata import loaders, trained_model
from edgeprune.errors import ConfigError
from edgeprune.export import Program, et_accuracy, export_executorch
from edgeprune.export.executorch import calibration_batches

pytest.importorskip("executorch")


@pytest.mark.slow
def test_int8_pte_close_to_fp32(tmp_path):
    model = trained_model()
    train, _, test = loaders()
    x = next(iter(test))[0][:64]
    with pytest.raises(ConfigError, match="needs calibration data"):
        export_executorch(model, tmp_path / "q.pte", x, int8=True)
    fp32 = export_executorch(model, tmp_path / "m.pte", x)
    q = export_executorch(model, tmp_path / "q.pte", x, int8=True,
                          calibration=calibration_batches(train, batches=4, batch_size=32))

    assert q["int8"] and q["quantization"]["calibration_images"] == 4 * 64  # a DataLoader keeps its own batch size
    assert "per-channel" in q["quantization"]["scheme"]
    assert q["bytes"] < fp32["bytes"]  # a 3.6k-weight model: the program itself is most of the file
    logits = Program(tmp_path / "q.pte").run(x)
    with torch.no_grad():
        ref = model(x).numpy()
    # XNNPACK's integer kernels vs the PT2E simulation in PyTorch: a few quantization steps of the logits
    assert q["max_abs_diff"] < 0.05 * np.abs(ref).max()
    assert np.abs(logits - ref).max() == pytest.approx(q["max_abs_diff_fp32"], rel=1e-5)
    assert (logits.argmax(1) == ref.argmax(1)).mean() >= 0.95
    acc32, _ = et_accuracy(Program(tmp_path / "m.pte"), test)
    acc8, _ = et_accuracy(Program(tmp_path / "q.pte"), test)
    assert acc32 > 0.5 and abs(acc32 - acc8) <= 0.03, (acc32, acc8)
