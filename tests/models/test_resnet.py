"""ResNet-18 member network: weights from torchvision's cache path, a local file, or none."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from plankflux.models.components.resnet import build_resnet18


def _reference_state(seed: int = 7) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return resnet18(weights=None).state_dict()


def test_random_init_warns_loudly():
    with pytest.warns(UserWarning, match="will NOT match the paper"):
        net = build_resnet18(14, "none")
    assert net.fc.out_features == 14
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 14)


def test_local_state_dict_loads_backbone_and_fresh_head(tmp_path):
    state = _reference_state()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    net = build_resnet18(5, path)
    assert torch.equal(net.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert net.fc.weight.shape == (5, 512)


def test_imagenet_uses_torchvision_download_path(tmp_path, monkeypatch):
    # torchvision looks in $TORCH_HOME/hub/checkpoints before downloading: put the file there.
    state = _reference_state(seed=11)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = build_resnet18(14, "imagenet")
    assert torch.equal(net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_imagenet_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="model.weights=none"):
        build_resnet18(14, "imagenet")


def test_wrong_file_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a ResNet-18 state dict"):
        build_resnet18(14, path)
    with pytest.raises(FileNotFoundError):
        build_resnet18(14, tmp_path / "absent.pth")
