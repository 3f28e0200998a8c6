"""Paper-style joint augmentation of an input and its label map.

The reference code (Intelligent-Computing-Lab-Yale/SNN-Segmentation,
``data/ddd17/dataset.py``) draws one random horizontal flip, scale, translation
and rotation per sample and applies the *same* geometry to input and label
(imgaug ``Fliplr`` + ``Affine``). We keep that idea, with two deliberate
differences:

* the label is resampled with nearest neighbour and pixels that come from
  outside the frame become 255 (void), so the loss ignores them; the reference
  filled them with 0, which is a real class ("background" / "flat");
* ranges default to a milder (0.75..1.25 scale, 10 % shift, 10 degrees) setting
  than the reference's (0.5..2, 25 %, 15 degrees); pass them explicitly to match.

Inputs may be images ``[C, H, W]`` or event clips ``[T, P, H, W]``: all leading
dimensions share one geometry, so every timestep of a clip moves together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from edge_snn.errors import UserError

IGNORE_INDEX = 255


@dataclass(frozen=True)
class AffineParams:
    """One draw of the random geometry, in output-image terms.

    ``scale`` > 1 zooms in; ``shift`` is (dx, dy) as fractions of width and
    height; ``angle_deg`` rotates counter-clockwise.
    """

    flip: bool
    scale: float
    shift: tuple[float, float]
    angle_deg: float

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.shift == (0.0, 0.0) and self.angle_deg == 0.0


class Augment:
    """Random flip + scale + translate + rotate, applied jointly to ``(x, label)``.

    Args:
        flip: horizontal flip with probability 0.5 (default True).
        scale: ``(low, high)`` zoom factor range, or None for no scaling
            (default (0.75, 1.25)).
        translate: maximum shift as a fraction of width/height, per axis
            (default 0.1).
        rotate_deg: maximum rotation in degrees, either direction (default 10).
        seed: seed of the internal generator. None derives it from
            ``torch.initial_seed()``, which DataLoader workers already make
            distinct; an explicit seed is offset by the worker id so workers
            never repeat each other's draws.
        fill: value given to input pixels that come from outside the frame
            (default 0: "no signal" for normalized images and event counts).

    Call ``aug(x, label)`` for a random draw, or ``aug(x, label, generator=g)``
    to control the randomness yourself; ``aug.apply(x, label, params)`` replays
    a fixed draw.
    """

    def __init__(
        self,
        flip: bool = True,
        scale: tuple[float, float] | None = (0.75, 1.25),
        translate: float = 0.1,
        rotate_deg: float = 10.0,
        seed: int | None = None,
        fill: float = 0.0,
    ) -> None:
        if scale is not None and not (0 < scale[0] <= scale[1]):
            raise UserError(f"augment scale range {scale} is invalid: use 0 < low <= high, e.g. (0.75, 1.25)")
        if not 0 <= translate < 1:
            raise UserError(f"augment translate={translate} must be a fraction in [0, 1)")
        if rotate_deg < 0:
            raise UserError(f"augment rotate_deg={rotate_deg} must be >= 0 (it is a +/- range)")
        self.flip = flip
        self.scale = scale
        self.translate = float(translate)
        self.rotate_deg = float(rotate_deg)
        self.seed = seed
        self.fill = float(fill)
        self._generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return (
            f"Augment(flip={self.flip}, scale={self.scale}, translate={self.translate}, "
            f"rotate_deg={self.rotate_deg}, seed={self.seed})"
        )

    def __getstate__(self) -> dict:
        # A generator cannot be pickled to spawned workers; each worker makes its own.
        state = self.__dict__.copy()
        state["_generator"] = None
        return state

    def _own_generator(self) -> torch.Generator:
        if self._generator is None:
            info = torch.utils.data.get_worker_info()
            if self.seed is None:
                seed = torch.initial_seed()
            else:
                seed = self.seed + (0 if info is None else 1_000_003 * (info.id + 1))
            self._generator = torch.Generator().manual_seed(seed % (2**63))
        return self._generator

    def sample(self, generator: torch.Generator | None = None) -> AffineParams:
        """Draw one geometry. Uses ``generator`` if given, else the internal one."""
        g = generator if generator is not None else self._own_generator()
        u = torch.rand(5, generator=g, dtype=torch.float64).tolist()
        flip = self.flip and u[0] < 0.5
        scale = 1.0 if self.scale is None else self.scale[0] + u[1] * (self.scale[1] - self.scale[0])
        shift = ((2 * u[2] - 1) * self.translate, (2 * u[3] - 1) * self.translate)
        angle = (2 * u[4] - 1) * self.rotate_deg
        return AffineParams(flip=flip, scale=scale, shift=shift, angle_deg=angle)

    def __call__(
        self, x: torch.Tensor, label: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(x, label, self.sample(generator))

    def apply(self, x: torch.Tensor, label: torch.Tensor, params: AffineParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply ``params`` to ``x`` ([..., H, W], float) and ``label`` ([H, W], int64)."""
        if x.shape[-2:] != label.shape[-2:] or label.dim() != 2:
            raise ValueError(f"input {tuple(x.shape)} and label {tuple(label.shape)} must share H, W")
        if params.flip:
            x = torch.flip(x, dims=(-1,))
            label = torch.flip(label, dims=(-1,))
        if params.is_identity:
            return x, label
        theta = _inverse_affine(params, height=x.shape[-2], width=x.shape[-1])
        return _warp_input(x, theta, self.fill), _warp_label(label, theta)


def _inverse_affine(p: AffineParams, *, height: int, width: int) -> torch.Tensor:
    """2x3 matrix for ``affine_grid``: output normalized coords -> input normalized coords.

    The forward map (input -> output) in pixel units about the centre is
    ``out = s * R(angle) * in + shift``; we need its inverse, expressed in
    ``grid_sample``'s normalized coordinates. Working in pixel units (via
    ``half = (W/2, H/2)``) keeps rotation angle-true on non-square frames.
    """
    a = math.radians(p.angle_deg)
    cos, sin = math.cos(a), math.sin(a)
    hw, hh = width / 2.0, height / 2.0
    tx, ty = p.shift[0] * width, p.shift[1] * height
    # Inverse of the forward map (zoom s, then rotate), in centred pixel units.
    # With image y pointing down this forward rotation is counter-clockwise on screen.
    inv = [[cos / p.scale, -sin / p.scale], [sin / p.scale, cos / p.scale]]
    # in = inv @ (out - t) in pixels; normalized coords are pixels / (W/2, H/2).
    m00, m01 = inv[0][0], inv[0][1] * hh / hw
    m10, m11 = inv[1][0] * hw / hh, inv[1][1]
    b0 = -(inv[0][0] * tx + inv[0][1] * ty) / hw
    b1 = -(inv[1][0] * tx + inv[1][1] * ty) / hh
    return torch.tensor([[m00, m01, b0], [m10, m11, b1]], dtype=torch.float32)


def _grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)


def _warp_input(x: torch.Tensor, theta: torch.Tensor, fill: float) -> torch.Tensor:
    """Bilinear resample of all leading channels with one grid; ``fill`` outside."""
    shape = x.shape
    h, w = shape[-2], shape[-1]
    flat = x.reshape(1, -1, h, w).float()
    grid = _grid(theta, h, w)
    if fill == 0.0:
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    else:
        # Blend towards `fill` by how much of each sample fell inside the frame.
        out = F.grid_sample(flat - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    return out.reshape(shape).to(x.dtype)


def _warp_label(label: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Nearest resample; pixels from outside the frame become 255 (void).

    Shifting the classes up by one lets zero padding mean "outside" exactly,
    the same trick ESS uses (uzh-rpg/ess ``utils/labels.py`` shiftUpId/shiftDownId).
    """
    h, w = label.shape
    shifted = (label.to(torch.float32) + 1).reshape(1, 1, h, w)
    out = F.grid_sample(shifted, _grid(theta, h, w), mode="nearest", padding_mode="zeros", align_corners=False)
    out = out.reshape(h, w).round().to(torch.int64) - 1
    out[out < 0] = IGNORE_INDEX
    return out
