"""Import checkpoints of the authors' SNN-Segmentation code into Spiking-DeepLab.

The authors' ``train.py`` saves ``{"config", "state_dict", "epoch", "max_miou"}``
with ``torch.save``; ``config`` is the wandb run config (plain dicts, lists,
numbers). Their ``SNN_VGG("dl-vgg9")`` holds the same network as our
``dl-vgg9`` under other names::

    authors                         edge-snn
    features.0 .. features.6        convs.conv1 .. convs.conv7   (3x3, no bias)
    bn_features.K.t                 norms.conv{K+1}.steps.t      (scale-only BN per step)
    classifier.0, bn_classifier.0.t convs.conv8, norms.conv8.steps.t (dilation 12)
    classifier.1                    classifier                   (1x1 readout, no BN)

Pooling (AvgPool2d 3/2/1 on spikes after conv2 and conv4), the LIF step, the
non-leaking readout divided by T and the bilinear ``align_corners=True``
upsampling are the same, so on identical input spikes the logits agree to
float rounding (``tests/test_authors_import.py`` proves it against an
independent re-implementation of their forward).

Two caveats, both handled here:

* Their spike test is ``U / theta - 1 > 0``, ours ``U > theta``: identical when
  theta is a power of two (the default 1.0); otherwise a membrane within one
  float32 ulp above theta may fire here and not there.
* Their VOC loader feeds channels in **BGR** order (``img[:, :, ::-1]`` minus
  the Caffe BGR means); our loader gives RGB. By default the first conv's input
  channels of a ``voc2012`` checkpoint are reversed so the imported model reads
  our RGB input; ``channel_order="as-saved"`` keeps their order.

The file is read with ``weights_only=True``: a pickled object that would run
code is refused before anything runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from edge_snn.errors import UserError
from edge_snn.models import SegmentationNet, build_model
from edge_snn.runtime.files import file_sha256
from edge_snn.training.checkpoint import safe_torch_load, save_checkpoint

SOURCE_KIND = "authors-snn-segmentation"
AUTHORS_ARCH = "dl-vgg9"  # their name for Spiking-DeepLab, which is also ours
CHANNEL_ORDERS = ("rgb", "as-saved")

# Our spiking conv -> (their conv module, their per-step BN list).
_LAYER_NAMES = {f"conv{k + 1}": (f"features.{k}", f"bn_features.{k}") for k in range(7)}
_LAYER_NAMES["conv8"] = ("classifier.0", "bn_classifier.0")
_READOUT = "classifier.1"

# Datasets the authors' code knows: name -> (classes, input channels), from their utils/constants.py.
_DATASETS = {"voc2012": (21, 3), "ddd17": (6, 2)}

_CONV_KEY = re.compile(r"convs\.(conv\d+)\.weight")
_NORM_KEY = re.compile(r"norms\.(conv\d+)\.steps\.(\d+)\.(\w+)")


def authors_key(our_key: str) -> str:
    """The authors' state-dict key that holds our state-dict entry ``our_key``."""
    if our_key == "classifier.weight":
        return f"{_READOUT}.weight"
    if m := _CONV_KEY.fullmatch(our_key):
        return f"{_LAYER_NAMES[m[1]][0]}.weight"
    if m := _NORM_KEY.fullmatch(our_key):
        return f"{_LAYER_NAMES[m[1]][1]}.{m[2]}.{m[3]}"
    raise AssertionError(f"no authors' name for edge-snn key {our_key!r}")  # a bug in this table


def import_authors_checkpoint(path, *, channel_order: str = "rgb") -> tuple[SegmentationNet, dict]:
    """Spiking-DeepLab (eval mode) with the weights of the authors' checkpoint at ``path``.

    Returns ``(model, info)``; ``info`` holds ``data`` (dataset, encoding, size,
    class names for an edge-snn checkpoint), ``source`` (provenance, sha256),
    ``epoch`` and ``authors_config`` (their config as saved).
    """
    if channel_order not in CHANNEL_ORDERS:
        raise UserError(f"unknown channel order {channel_order!r}; choose one of {', '.join(CHANNEL_ORDERS)}")
    path = Path(path)
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or not isinstance(ckpt.get("config"), dict):
        found = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(
            f"{path} is not a checkpoint of the authors' SNN-Segmentation train.py (expected a dict with "
            f"'state_dict' and 'config', found {found}); pass the .pth file their training wrote"
        )
    settings = _read_config(ckpt["config"], path)
    model = build_model(
        AUTHORS_ARCH, in_channels=settings["in_channels"], num_classes=settings["num_classes"],
        timesteps=settings["timesteps"], leak=settings["leak"], threshold=settings["threshold"],
    )
    state = _map_state_dict(ckpt["state_dict"], model, path)
    flip = channel_order == "rgb" and settings["dataset"] == "voc2012"
    if flip:  # their conv1 reads B, G, R; ours reads R, G, B
        state["convs.conv1.weight"] = state["convs.conv1.weight"].flip(1)
    model.load_state_dict(state, strict=True)
    model.eval()
    source = {
        "kind": SOURCE_KIND, "file": path.name, "sha256": file_sha256(path),
        "input_channels": "bgr->rgb" if flip else "as-saved",
        "reported_miou": _plain_number(ckpt.get("max_miou")),
    }
    data = {
        "dataset": settings["dataset"], "encoding": settings["encoding"],
        "height": settings["height"], "width": settings["width"], "class_names": settings["class_names"],
    }
    if settings["dataset"] == "voc2012":
        data["normalize"] = "reference"  # (v - Caffe mean) / 255, see edge_snn.data.pixels
    if settings["dataset"] == "ddd17":
        data["frames"] = "consecutive" if settings["thl"] else "repeat"
    epoch = ckpt.get("epoch", 0)
    info = {"data": data, "source": source, "epoch": epoch if isinstance(epoch, int) else 0,
            "authors_config": ckpt["config"]}
    return model, info


def write_imported_checkpoint(path_in, path_out, *, channel_order: str = "rgb") -> dict:
    """Import ``path_in`` and save it as an edge-snn checkpoint at ``path_out`` (atomic). Returns the info dict."""
    model, info = import_authors_checkpoint(path_in, channel_order=channel_order)
    save_checkpoint(
        path_out, model, data=info["data"], epoch=info["epoch"], step_in_epoch=0, metrics={}, history=[],
        optimizer=None, scheduler=None, source=info["source"],
    )
    return info


# --- config -----------------------------------------------------------------
def _read_config(config: dict, path: Path) -> dict[str, Any]:
    """Validate the authors' config and turn it into our builder arguments and data fields."""
    arch = config.get("architecture")
    if arch != AUTHORS_ARCH:
        hint = " (their Spiking-FCN cannot run in their own code)" if arch == "fcn-vgg9" else ""
        raise UserError(
            f"{path} holds architecture {arch!r}{hint}; only their Spiking-DeepLab {AUTHORS_ARCH!r} can be imported"
        )
    if config.get("model_type", "snn") != "snn":
        raise UserError(f"{path} is an {config['model_type']!r} checkpoint; only their SNN (model_type 'snn') can be imported")
    # Switches of their SNN_VGG that change the forward pass in ways ours does not reproduce.
    refusals = (
        (not config.get("bn", True), "was trained without BNTT (bn=False); edge-snn's DeepLab always has it"),
        (bool(config.get("full_prop")), "runs extra zero-input steps without BN (full_prop=True), which edge-snn does not"),
        (bool(config.get("ibt")), "uses negative thresholds (ibt=True, ANN conversion), which edge-snn does not"),
        (config.get("kernel_size", 3) != 3, f"uses kernel_size {config.get('kernel_size')!r}; edge-snn's DeepLab is 3x3"),
    )
    for bad, reason in refusals:
        if bad:
            raise UserError(f"{path} {reason}; it cannot be imported as an equal model")

    name, num_classes, in_channels, labels = _dataset(config.get("dataset"), path)
    timesteps = config.get("timesteps")
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        raise UserError(f"{path}: config 'timesteps' must be a positive integer, got {timesteps!r}")
    leak, threshold = _plain_number(config.get("leak_mem")), _plain_number(config.get("def_threshold"))
    if leak is None or threshold is None or threshold <= 0:
        raise UserError(
            f"{path}: config needs numbers 'leak_mem' and 'def_threshold' > 0, got "
            f"{config.get('leak_mem')!r} and {config.get('def_threshold')!r}"
        )
    height, width = _img_size(config.get("img_size"), path)
    thl = bool(config.get("thl"))
    return dict(
        dataset=name, num_classes=num_classes, in_channels=in_channels, timesteps=timesteps,
        leak=leak, threshold=threshold, height=height, width=width, thl=thl,
        encoding="events" if thl else "poisson",  # thl feeds T event frames as they are; else signed Poisson
        class_names=labels,
    )


def _dataset(dataset, path: Path) -> tuple[str | None, int, int, list[str] | None]:
    """(name, classes, input channels, class names) from their ``dataset`` config entry."""
    if isinstance(dataset, str) and dataset in _DATASETS:
        return (dataset, *_DATASETS[dataset], None)
    if not isinstance(dataset, dict):
        raise UserError(f"{path}: config 'dataset' should be a dict with 'num_cls' and 'input_dim', got {dataset!r}")
    name = dataset.get("name")
    num_cls, input_dim = dataset.get("num_cls"), dataset.get("input_dim")
    if name in _DATASETS:
        num_cls = _DATASETS[name][0] if num_cls is None else num_cls
        input_dim = _DATASETS[name][1] if input_dim is None else input_dim
    for key, value in (("num_cls", num_cls), ("input_dim", input_dim)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{path}: config dataset.{key} must be a positive integer, got {value!r}")
    labels = dataset.get("labels")
    names = None
    if isinstance(labels, dict) and len(labels) == num_cls:
        try:
            names = [str(labels[k]) for k in sorted(labels, key=int)]
        except (TypeError, ValueError):
            names = None
    return (name if isinstance(name, str) else None, num_cls, input_dim, names)


def _img_size(size, path: Path) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return int(size[0]), int(size[1])
    raise UserError(f"{path}: config 'img_size' should be (height, width), got {size!r}")


def _plain_number(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


# --- weights ----------------------------------------------------------------
def _map_state_dict(theirs: dict, model: SegmentationNet, path: Path) -> dict[str, torch.Tensor]:
    """Their tensors under our names; every key used exactly once, every shape checked."""
    ours = model.state_dict()
    wanted = {authors_key(k): k for k in ours}
    unused = sorted(set(map(str, theirs)) - set(wanted), key=_natural)
    if unused:
        raise UserError(
            f"{path}: {len(unused)} state_dict key(s) have no place in Spiking-DeepLab, e.g. {_few(unused)}; "
            f"is it really a dl-vgg9 checkpoint with {model.timesteps} timesteps (config 'timesteps')?"
        )
    missing = sorted(set(wanted) - set(theirs), key=_natural)
    if missing:
        raise UserError(f"{path}: state_dict lacks {len(missing)} key(s), e.g. {_few(missing)}; the checkpoint is incomplete")
    state = {}
    for their_key, our_key in wanted.items():
        tensor = theirs[their_key]
        if not isinstance(tensor, torch.Tensor):
            raise UserError(f"{path}: state_dict[{their_key!r}] is a {type(tensor).__name__}, not a tensor")
        if tuple(tensor.shape) != tuple(ours[our_key].shape):
            raise UserError(
                f"{path}: state_dict[{their_key!r}] has shape {tuple(tensor.shape)}, but {our_key} needs "
                f"{tuple(ours[our_key].shape)}; check config dataset.num_cls / input_dim against the weights"
            )
        state[our_key] = tensor.detach().to(device="cpu", dtype=ours[our_key].dtype)
    return state


def _natural(key: str) -> list:
    return [int(p) if p.isdigit() else p for p in key.split(".")]


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")
