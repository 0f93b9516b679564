"""A classifier whose forward returns a dict (``{"embedding": ..., "logits": ...}``) or a tuple
``(logits, features)``: every method prunes it, and its exports keep every output, checked against PyTorch. One whose
eval output is probabilities (``(softmax, logits)`` as Ultralytics' YOLOv8-cls returns) is trained, distilled and
scored as the plain one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgeprune
from byom.mynet import MyNet
from byom.userdata import FAST_OPTIONS, FINETUNE, loaders, trained_model
from edgeprune.export import executorch as et_lib
from edgeprune.export.onnx import export_verified, ort_accuracy, ort_outputs, ort_session
from edgeprune.measure import accuracy


class DictNet(MyNet):
    def forward(self, x):
        x = self.block(self.stem(x))
        x = self.bn(self.pointwise(self.depthwise(x))).relu().mean((2, 3))
        x = x + self.fc2(torch.nn.functional.gelu(self.fc1(x)))
        return {"embedding": x, "logits": self.head(x)}  # the logits are not the first output


class TupleNet(DictNet):
    def forward(self, x):
        out = super().forward(x)
        return out["logits"], out["embedding"]


class ProbabilitiesNet(MyNet):
    """Logits in train mode; ``(softmax(logits), logits)`` in eval mode, as Ultralytics' ``Classify`` head does."""

    def forward(self, x):
        logits = super().forward(x)
        return logits if self.training else (logits.softmax(1), logits)


def _trained(cls):
    model = cls()
    model.load_state_dict(trained_model().state_dict())
    return model.eval()


@pytest.fixture(scope="module")
def dict_model():
    return _trained(DictNet)


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(edgeprune.list_methods()))
def test_every_method_prunes_a_dict_output_classifier_as_it_prunes_the_plain_one(method, dict_model):
    budget = 0.5 if method == "vbp" else 0.6
    pruned, plain = (edgeprune.prune(model, loaders(), method=method, budget=budget, finetune=FINETUNE,
                                     **FAST_OPTIONS.get(method, {})) for model in (dict_model, trained_model()))
    assert pruned.record["status"] == "ok"
    # structured: the embedding is an output of its own, so the layers producing it keep their width (the plain
    # model may narrow them): the two models differ by design
    for key in ("val_acc", "test_acc", "params", "budget_achieved") if method != "structured" else ():
        assert pruned.record[key] == pytest.approx(plain.record[key], abs=1e-6), key
    out = pruned.model.eval()(next(iter(loaders()[2]))[0][:3])
    assert set(out) == {"embedding", "logits"} and out["logits"].shape == (3, 10)


def test_probabilities_are_distilled_and_scored_as_the_logits_they_come_from():
    from edgeprune.scores import weights
    from edgeprune.tasks import Classification

    plain, probable = trained_model(), _trained(ProbabilitiesNet)
    x, y = next(iter(loaders()[0]))
    task = Classification()
    with torch.no_grad():
        logits = plain(x)
        for want, got in ((task.loss(logits, y), task.loss(probable(x), y)),
                          (task.distil(logits, logits, y, 0.5, 4.0), task.distil(logits, probable(x), y, 0.5, 4.0))):
            assert float(got) == pytest.approx(float(want), rel=1e-4)  # probabilities taken as logits: 1.83 for 0.92
    scores = [weights.gradient(m, [(x, y)], loss_fn=None, seed=0, mode="eval") for m in (plain, probable)]
    for name, want in scores[0].items():
        assert torch.allclose(scores[1][name], want, rtol=1e-3, atol=1e-9), name


@pytest.mark.slow
@pytest.mark.parametrize("cls", [DictNet, TupleNet])
def test_onnx_export_keeps_every_output_and_reads_the_logits_by_name(cls, tmp_path):
    model = _trained(cls)
    x = next(iter(loaders()[2]))[0][:8]
    info = export_verified(model, tmp_path / "m.onnx", x)
    session = ort_session(info["path"])
    names = [o.name for o in session.get_outputs()]
    assert len(names) == 2 and "logits" in names
    got = dict(zip(names, ort_outputs(session, x)))
    with torch.no_grad():
        want = model(x)
    logits, embedding = (want["logits"], want["embedding"]) if isinstance(want, dict) else want
    assert np.abs(got["logits"] - logits.numpy()).max() < 1e-4
    assert np.abs(got[next(n for n in names if n != "logits")] - embedding.numpy()).max() < 1e-4
    assert ort_accuracy(session, loaders()[2]) == pytest.approx(accuracy(model, loaders()[2]), abs=0.01)


def test_executorch_export_of_a_dict_output_classifier(dict_model, tmp_path):
    pytest.importorskip("executorch")
    x = next(iter(loaders()[2]))[0][:4]
    info = et_lib.export_executorch(dict_model, tmp_path / "m.pte", x)
    program = et_lib.Program(str(tmp_path / "m.pte"))
    with torch.no_grad():
        want = dict_model(x)["logits"].numpy()
    assert info["max_abs_diff"] < 1e-4 and np.abs(program.run(x) - want).max() < 1e-4
