"""hf:<folder> loads a local model with a new head; hub ids fail offline with a clear message."""

import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from edgeprune.errors import ConfigError, DependencyError  # noqa: E402
from edgeprune.models import create, load, save  # noqa: E402


@pytest.fixture
def vit_folder(tmp_path):
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64, image_size=32, patch_size=8, num_labels=3)
    folder = tmp_path / "tiny-vit"
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    return folder


def test_local_folder_gets_a_new_head_and_round_trips(vit_folder, tmp_path):
    model = create(f"hf:{vit_folder}", num_classes=6).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 6)
    assert model.edgeprune_build["hf_config"]["hidden_size"] == 32
    path = save(model, tmp_path / "vit.pt")
    vit_folder.rename(tmp_path / "gone")  # the checkpoint alone must rebuild the model
    again = load(path)
    torch.testing.assert_close(again(x), model(x))


def test_hub_id_offline_asks_for_a_local_directory():
    with pytest.raises(DependencyError, match="offline.*local directory"):
        create("hf:google/vit-base-patch16-224", local_files_only=True)


def test_missing_local_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        create(f"hf:{tmp_path / 'nope'}")


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` raise ImportError
    with pytest.raises(DependencyError, match=r"pip install 'edgeprune\[hf\]'"):
        create("hf-config:vit")
