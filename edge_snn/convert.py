"""ANN-to-SNN conversion: the baseline the paper's directly trained SNNs are compared with.

Kim, Chough & Panda (PAPER.md) compare BPTT-trained Spiking-DeepLab/FCN
against SNNs *converted* from their ANN twins; the authors' conversion path
crashes (PAPER.md, "Known defects"), so this module implements the standard
data-based method it stands for: weight normalization (Diehl et al., IJCNN
2015) with percentile-robust scaling and reset by subtraction (Rueckauer et
al., Front. Neurosci. 2017) and, optionally, channel-wise scales (Kim et al.,
"Spiking-YOLO", AAAI 2020). Which exact variant the paper ran is not confirmed.

Why it works: an integrate-and-fire neuron (leak 1) with soft reset driven by
a constant current ``I`` fires at rate ``r = clip(I / theta, 0, 1)`` in the
limit of many steps, i.e. it computes a clipped ReLU. If every layer's rate
equals its ANN activation divided by a scale ``lambda_l`` then

    I_l = (W_l (lambda_{l-1} r_{l-1}) + b_l) / lambda_l = z_l / lambda_l,

so with ``theta = 1`` the SNN reproduces the ANN exactly, up to clipping at
rate 1 for ``z_l > lambda_l`` and the quantization of a rate over T steps.
``lambda_l`` is the ``percentile`` (99.99 by default; 100 = the maximum) of
layer l's positive ANN activations over calibration data, times ``scale``;
``mode="channel"`` takes one lambda per output channel.

The ANN twin is ``conv -> BN (scale a, shift s) -> ReLU``; the SNN is
``conv -> BNTT (scale only) -> IF``. Each BN is folded into the conv and the
normalization applied on the way:

    W'[o, i] = a[o] * W[o, i] * lambda_src[i] / lambda_l[o]      shift'[o] = s[o] / lambda_l[o]

The SNN has no conv bias and its BNTT no bias parameter, so the shift is
carried by the BNTT *running mean*: each of the T sets gets scale 1 (weight
``sqrt(1 + eps)`` over running variance 1) and ``running_mean = -shift'``, so
that ``bn_t(x) = x + shift'`` at every step. (Putting ``a`` into the BN
instead would need ``mean = -s / a``, which breaks for ``a`` near 0.) The
exporter's folded BNTT tables carry that shift like any other.

Skip connections and transposed convs of Spiking-FCN are linear maps between
spiking layers and are normalized by the same rule: inputs multiplied by the
source layer's lambda, outputs divided by the lambda of the neuron they feed
(the readout keeps ANN units, lambda 1), biases divided likewise. The
converted SNN uses IF neurons (leak 1.0) and threshold 1.0.

Event inputs: the ANN twin reads the event frames summed over time
(:func:`edge_snn.training.evaluate.predict_batch`), the SNN one frame per
step, so the input layer gets ``lambda_input = mean|ANN input| / mean|SNN
input per step|``, measured on the calibration samples (1 for images).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import nn

from edge_snn.errors import UserError
from edge_snn.models import build_model
from edge_snn.models.base import SegmentationNet
from edge_snn.models.bntt import BNTT
from edge_snn.models.torch_ops import TorchOps

MODES = ("layer", "channel")
INPUT, OUTPUT = "input", "output"
# Linear modules that are not followed by their own BN + neuron: which neuron's
# current they feed (OUTPUT: the readout accumulator; None: another linear map).
_TARGETS = {
    "dl-vgg9": {"classifier": OUTPUT},
    "fcn-vgg9": {"skip1": OUTPUT, "skip2": "up2", "skip3": "up1", "skip4": None,
                 "deconv1": "up1", "deconv2": "up2", "deconv3": OUTPUT},
}
SAMPLE_BUDGET = 4_000_000  # activation values kept per layer for the percentile


@dataclass
class Conversion:
    """What :func:`convert_model` did: the per-layer scales and the settings."""

    mode: str
    percentile: float
    scale: float
    timesteps: int
    lambdas: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> [C], "input" included

    def summary(self) -> dict:
        """JSON-able record (saved in the converted checkpoint)."""
        return {
            "method": "weight normalization (Diehl 2015; Rueckauer 2017 percentile, reset by subtraction)",
            "mode": self.mode, "percentile": self.percentile, "scale": self.scale, "timesteps": self.timesteps,
            "lambda_max": {k: float(v.max()) for k, v in self.lambdas.items()},
            "lambda_mean": {k: float(v.mean()) for k, v in self.lambdas.items()},
        }


# --- calibration ---------------------------------------------------------------
class _ActivationOps(TorchOps):
    """Runs an ANN body and hands every ReLU output (one per neuron layer, in order) to ``sink``."""

    def __init__(self, sink):
        super().__init__()
        self.sink = sink

    def relu(self, x):
        y = super().relu(x)
        self.sink(y)
        return y


class _ActivationSample:
    """Per layer: the exact per-channel maximum and a bounded random sample of activations."""

    def __init__(self, batches: int, seed: int = 0):
        self.batches = max(1, batches)
        self.generator = torch.Generator().manual_seed(seed)
        self.maxima: dict[str, torch.Tensor] = {}
        self.values: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, act: torch.Tensor) -> None:
        per_channel = act.detach().transpose(0, 1).reshape(act.shape[1], -1).float()  # [C, positions]
        peak = per_channel.amax(1)
        self.maxima[name] = torch.maximum(self.maxima[name], peak) if name in self.maxima else peak
        keep = max(1, SAMPLE_BUDGET // (per_channel.shape[0] * self.batches))
        if per_channel.shape[1] > keep:
            per_channel = per_channel[:, torch.randperm(per_channel.shape[1], generator=self.generator)[:keep]]
        self.values.setdefault(name, []).append(per_channel)

    def scales(self, name: str, mode: str, percentile: float) -> torch.Tensor:
        """lambda per channel ``[C]``: the percentile of the positive activations (1 where a unit never fires)."""
        peak = self.maxima[name]
        if percentile >= 100:  # the exact maximum, not the sample's
            lam = peak if mode == "channel" else peak.max().expand_as(peak)
        else:
            values = torch.cat(self.values[name], 1)
            if mode == "layer":
                lam = _positive_percentile(values.reshape(-1), percentile).expand_as(peak)
            else:
                lam = torch.stack([_positive_percentile(row, percentile) for row in values])
        return torch.where(lam > 0, lam, torch.ones_like(lam)).clone()


def _positive_percentile(values: torch.Tensor, percentile: float) -> torch.Tensor:
    positive = values[values > 0].numpy()
    return torch.tensor(float(np.percentile(positive, percentile)) if positive.size else 0.0)


@torch.no_grad()
def calibrate(ann: SegmentationNet, batches: Iterable[torch.Tensor], *, mode: str = "layer",
              percentile: float = 99.99, scale: float = 1.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """lambda ``[C]`` per neuron layer of ``ann``: ``scale`` x the ``percentile`` of its ReLU outputs.

    ``batches`` are ANN inputs ``[B, C, H, W]`` (what :func:`predict_batch` feeds the twin).
    """
    _check_settings(mode, percentile, scale)
    batches = list(batches)
    if not batches:
        raise UserError("conversion needs calibration data: pass at least one sample (--samples N)")
    ann.eval()
    sample = _ActivationSample(len(batches), seed)
    for x in batches:
        activations: list[torch.Tensor] = []
        # The body is the model's single definition of its layers; running it with recording
        # ops (instead of hooks) also sees the ReLUs that are not modules.
        ann._body(_ActivationOps(activations.append), x, {}, 0, 1)
        if len(activations) != len(ann.spiking_layers):
            raise RuntimeError(f"{ann.arch}: {len(activations)} ReLUs for {len(ann.spiking_layers)} neuron layers")
        for name, act in zip(ann.spiking_layers, activations):
            sample.add(name, act)
    return {name: scale * sample.scales(name, mode, percentile) for name in ann.spiking_layers}


def _check_settings(mode: str, percentile: float, scale: float) -> None:
    if mode not in MODES:
        raise UserError(f"unknown normalization mode {mode!r}; choose one of {', '.join(MODES)}")
    if not 0 < percentile <= 100:
        raise UserError(f"percentile must be in (0, 100], got {percentile}")
    if not scale > 0:
        raise UserError(f"scale must be positive, got {scale}")


# --- weight normalization ---------------------------------------------------------
def _linear_modules(model: SegmentationNet):
    """``(state-dict prefix, name, module, source layer, target)`` of every conv / deconv, in module order.

    A backbone conv's target is its own neuron layer (through its BN).
    """
    targets = _TARGETS[model.arch]
    for path, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            name = path.split(".")[-1]
            target = name if name in model.convs else targets[name]
            yield path, name, module, model.conv_inputs[name], target


def _channel_scale(lambdas: dict, key, channels: int) -> torch.Tensor:
    if key in lambdas:
        return lambdas[key]
    return torch.ones(channels)  # the readout, or a linear map feeding another one: ANN units


@torch.no_grad()
def normalized_parameters(ann: SegmentationNet, lambdas: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Fold each BN into its conv and apply the normalization.

    Returns ``(weights, shifts)``: state-dict entries (``convs.conv1.weight``,
    ``skips.skip1.bias`` ...) of the normalized linear maps, and per neuron
    layer with a BN the shift ``s / lambda`` its current gets.
    """
    weights, shifts = {}, {}
    for path, name, module, source, target in _linear_modules(ann):
        if module.groups != 1:
            raise UserError(f"{path}: grouped convolutions are not supported by the conversion")
        w = module.weight.detach().clone()
        transposed = isinstance(module, nn.ConvTranspose2d)  # weight [in, out, k, k], else [out, in, k, k]
        c_in, c_out = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
        lam_in = _channel_scale(lambdas, source, c_in)
        lam_out = _channel_scale(lambdas, target, c_out)
        gain = torch.ones(c_out)
        if name in ann.convs:  # conv -> BN: fold the BN (ANN twin: one set, [1, C])
            bn_scale, bn_shift = ann.norms[name].folded()
            gain = bn_scale[0]
            shifts[name] = bn_shift[0] / lam_out
        if transposed:
            w = w * lam_in.view(-1, 1, 1, 1) * (gain / lam_out).view(1, -1, 1, 1)
        else:
            w = w * (gain / lam_out).view(-1, 1, 1, 1) * lam_in.view(1, -1, 1, 1)
        weights[f"{path}.weight"] = w
        if module.bias is not None:
            weights[f"{path}.bias"] = module.bias.detach() / lam_out
    return weights, shifts


def _set_affine(bntt: BNTT, shift: torch.Tensor) -> None:
    """Make every set of ``bntt`` compute ``x + shift`` at inference (scale 1, shift via the running mean)."""
    for bn in bntt.steps:
        bn.running_var.fill_(1.0)
        bn.running_mean.copy_(-shift)
        bn.weight.data.fill_(math.sqrt(1.0 + bn.eps))
        if bn.bias is not None:
            bn.bias.data.zero_()


@torch.no_grad()
def apply_parameters(model: SegmentationNet, weights: dict, shifts: dict) -> SegmentationNet:
    """Load normalized weights and shifts into ``model`` (a converted SNN, or an ANN twin for checking)."""
    state = model.state_dict()
    for key, value in weights.items():
        state[key].copy_(value)
    for name, shift in shifts.items():
        _set_affine(model.norms[name], shift)
    return model.eval()


@torch.no_grad()
def convert_model(ann: SegmentationNet, batches: Iterable[torch.Tensor], *, timesteps: int, mode: str = "layer",
                  percentile: float = 99.99, scale: float = 1.0, input_scale: float = 1.0,
                  seed: int = 0) -> tuple[SegmentationNet, Conversion]:
    """SNN (IF neurons, theta 1, ``timesteps`` BNTT sets) equivalent to ``ann`` after threshold balancing.

    ``batches``: calibration inputs of the ANN. ``input_scale``: lambda of the
    input layer (ANN input / SNN per-step input; 1 for image encodings).
    """
    if ann.spiking:
        raise UserError("conversion takes an ANN twin (spiking=False); this model is already spiking")
    if ann.arch not in _TARGETS:
        raise UserError(f"no conversion rule for architecture {ann.arch!r}")
    if timesteps < 1:
        raise UserError(f"timesteps must be at least 1, got {timesteps}")
    lambdas = calibrate(ann, batches, mode=mode, percentile=percentile, scale=scale, seed=seed)
    lambdas[INPUT] = torch.full((ann.in_channels,), float(input_scale))
    snn = build_model(ann.arch, in_channels=ann.in_channels, num_classes=ann.num_classes, timesteps=timesteps,
                      width=ann.width, spiking=True, leak=1.0, threshold=1.0, surrogate=ann.lif.surrogate)
    apply_parameters(snn, *normalized_parameters(ann, lambdas))
    return snn, Conversion(mode, percentile, scale, timesteps, lambdas)


# --- checkpoints --------------------------------------------------------------------
def _input_scale(ann_set, snn_set, indices: list[int], timesteps: int) -> float:
    """mean |ANN input| / mean |SNN per-step input| over event samples (see module docstring)."""
    ann_total = sum(float(ann_set[i][0].sum(0).abs().mean()) for i in indices)
    snn_total = sum(float(snn_set[i][0][:timesteps].mean(0).abs().mean()) for i in indices)
    return ann_total / snn_total if snn_total > 0 else 1.0


def convert_checkpoint(ann_ckpt: str | os.PathLike, out: str | os.PathLike, *, timesteps: int, mode: str = "layer",
                       percentile: float = 99.99, scale: float = 1.0, samples: int = 64, batch_size: int = 16,
                       encoding: str | None = None, data_root: str = "") -> dict:
    """Convert the ANN-twin checkpoint ``ann_ckpt`` into an SNN checkpoint at ``out``.

    Calibration uses ``samples`` training samples of the ANN's own dataset
    (a seeded random subset for on-disk data). ``encoding`` is the converted
    SNN's image encoding (default: the ANN run's; ``direct`` converts best).
    Returns the conversion summary saved in the checkpoint.
    """
    from edge_snn.runtime.files import file_sha256
    from edge_snn.training.checkpoint import open_checkpoint, save_checkpoint
    from edge_snn.training.config import TrainConfig
    from edge_snn.training.datasets import dataset_kind, make_dataset

    _check_settings(mode, percentile, scale)
    if samples < 1:
        raise UserError(f"--samples must be at least 1, got {samples}")
    opened = open_checkpoint(ann_ckpt)
    ann, ckpt = opened.model(), opened.raw
    if ann.spiking:
        raise UserError(f"{ann_ckpt} is a spiking model; conversion takes an ANN-twin checkpoint (spiking=False)")
    ann_config = opened.config(data_root=data_root, hint="conversion calibrates on that data")
    snn_config = TrainConfig.from_dict({**ann_config.to_dict(), "timesteps": timesteps, "leak": 1.0, "threshold": 1.0,
                                        **({"encoding": encoding} if encoding else {})})
    ann_set = make_dataset(ann_config, "train", num_samples=samples)
    count = min(samples, len(ann_set))
    indices = sorted(torch.randperm(len(ann_set), generator=torch.Generator().manual_seed(ann_config.seed))[:count].tolist())
    batches = [torch.stack([ann_set[i][0] for i in indices[k:k + batch_size]]) for k in range(0, count, batch_size)]
    input_scale = 1.0
    if dataset_kind(ann_set) == "events":
        batches = [x.sum(1) for x in batches]  # what the ANN twin reads (predict_batch)
        snn_set = make_dataset(snn_config, "train", num_samples=samples)
        input_scale = _input_scale(ann_set, snn_set, indices, timesteps)
    snn, conversion = convert_model(ann, batches, timesteps=timesteps, mode=mode, percentile=percentile, scale=scale,
                                    input_scale=input_scale, seed=ann_config.seed)
    summary = {**conversion.summary(), "input_scale": input_scale, "calibration_samples": count,
               "source": str(ann_ckpt), "source_sha256": file_sha256(ann_ckpt)}
    data = {**ckpt.get("data", {}), "encoding": "events" if dataset_kind(ann_set) == "events" else snn_config.encoding}
    save_checkpoint(out, snn, data=data, train_config=snn_config.to_dict(), epoch=ckpt.get("epoch", 0),
                    step_in_epoch=0, history=[], seed=ann_config.seed, conversion=summary)
    return summary
