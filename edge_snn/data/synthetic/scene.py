"""Scene description: every random draw of a sample happens here, from one generator per sample."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from edge_snn.data.synthetic.config import (
    BUILDING,
    CLASS_NAMES,
    DRAW_ORDER,
    PERSON,
    REF_SIZE,
    SEED_DOMAIN,
    SPLITS,
    VEHICLE,
    SceneConfig,
)
from edge_snn.data.synthetic.exact_math import unit_vector
from edge_snn.errors import UserError

@dataclass(frozen=True)
class SceneObject:
    cls: int
    end: tuple[float, float]  # centre (x, y) at the end of the window, px
    velocity: tuple[float, float]  # on screen, px per window
    axis: tuple[float, float]  # unit vector of the object's local u axis
    start_scale: float  # scale at t = 0; it is 1 at t = 1
    half: tuple[float, float]  # half length (along u) and half width, px at scale 1
    corner: float  # corner radius of the box (vehicle), px
    notch: tuple[float, float, float, float]  # building notch: sign_u, sign_v, frac_u, frac_v (0 = none)
    base: float  # mean intensity of the texture
    amp: float  # texture amplitude
    period: float  # texture period / speckle cell, px at scale 1
    phase: tuple[float, float]
    speckle: np.ndarray | None  # person: random cell values in [-1, 1]
    tint: tuple[float, float, float]
    radius: float  # bounding radius, px at scale 1


@dataclass(frozen=True)
class Scene:
    height: int
    width: int
    ego: tuple[float, float]  # apparent ground motion on screen, px per window
    mean: float
    terms: np.ndarray  # [K, 5] rows of (amp, fx, phase_x, fy, phase_y), frequencies in 1/px
    hue: np.ndarray  # [4] (fx, phase_x, fy, phase_y) of the colour-mixing field
    tints: np.ndarray  # [2, 3] the two ground colours mixed by the hue field
    objects: tuple[SceneObject, ...]


_GROUND_TINTS = ((0.75, 1.0, 0.6), (0.9, 1.05, 0.55), (1.05, 0.9, 0.7), (0.95, 0.95, 1.0), (1.1, 1.0, 0.8))
_VEHICLE_TINTS = ((1.25, 0.35, 0.3), (0.35, 0.55, 1.25), (1.1, 1.1, 1.1), (1.2, 1.05, 0.3), (0.7, 0.7, 0.75))
_PERSON_TINTS = ((1.2, 0.4, 0.5), (0.4, 1.1, 0.5), (0.5, 0.5, 1.2), (1.2, 1.0, 0.4), (1.0, 0.6, 1.1), (0.9, 0.9, 0.9))
_BUILDING_TINTS = ((1.0, 1.0, 1.0), (1.2, 0.75, 0.6), (1.1, 1.0, 0.85), (0.85, 0.95, 1.1))


def _pick_tint(rng: np.random.Generator, palette) -> tuple[float, float, float]:
    base = palette[int(rng.integers(len(palette)))]
    jitter = rng.uniform(0.9, 1.1, size=3)
    return tuple(float(c * j) for c, j in zip(base, jitter))


def sample_object(rng: np.random.Generator, cls: int, *, height: int, width: int, scale: float,
                   ego: tuple[float, float]) -> SceneObject:
    s = scale
    end = (float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height))
    axis = unit_vector(rng)
    start_scale = float(rng.uniform(0.94, 1.06))
    phase = (float(rng.random()), float(rng.random()))
    notch = (0.0, 0.0, 0.0, 0.0)
    speckle = None
    corner = 0.0
    if cls == VEHICLE:
        half = (float(rng.uniform(8, 14) * s), float(rng.uniform(5, 7.5) * s))
        corner = 0.35 * half[1]
        speed = float(rng.uniform(8, 16) * s)
        velocity = (ego[0] + speed * axis[0], ego[1] + speed * axis[1])
        bright = rng.random() < 0.5
        base = float(rng.uniform(0.7, 0.85) if bright else rng.uniform(0.12, 0.25))
        amp = float(rng.uniform(0.18, 0.25)) * (-1 if bright else 1)
        period = max(float(rng.uniform(5, 7) * s), 3.0)
        tint = _pick_tint(rng, _VEHICLE_TINTS)
        radius = float(np.sqrt(half[0] ** 2 + half[1] ** 2))  # not hypot: libm, may differ by 1 ulp
    elif cls == PERSON:
        half = (float(rng.uniform(7.5, 11) * s), float(rng.uniform(6, 9) * s))
        direction = unit_vector(rng)
        speed = float(rng.uniform(3, 6) * s)
        velocity = (ego[0] + speed * direction[0], ego[1] + speed * direction[1])
        base = float(rng.uniform(0.35, 0.65))
        amp = float(rng.uniform(0.35, 0.45))
        period = max(float(rng.uniform(2.2, 3.0) * s), 1.6)
        cells = int(np.ceil(2 * half[0] / period)) + 3
        speckle = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
        tint = _pick_tint(rng, _PERSON_TINTS)
        radius = half[0]
    elif cls == BUILDING:
        half = (float(rng.uniform(9, 15) * s), float(rng.uniform(9, 15) * s))
        if rng.random() < 0.5:
            signs = rng.integers(0, 2, size=2) * 2 - 1
            notch = (float(signs[0]), float(signs[1]), float(rng.uniform(0.35, 0.6)), float(rng.uniform(0.35, 0.6)))
        parallax = float(rng.uniform(1.1, 1.35))
        velocity = (ego[0] * parallax, ego[1] * parallax)
        base = float(rng.uniform(0.45, 0.7))
        amp = float(rng.uniform(0.25, 0.35))
        period = max(float(rng.uniform(7, 10) * s), 4.0)
        tint = _pick_tint(rng, _BUILDING_TINTS)
        radius = float(np.sqrt(half[0] ** 2 + half[1] ** 2))  # not hypot: libm, may differ by 1 ulp
    else:  # pragma: no cover - classes come from rng.integers(1, 4)
        raise AssertionError(cls)
    return SceneObject(cls=cls, end=end, velocity=velocity, axis=axis, start_scale=start_scale, half=half,
                   corner=corner, notch=notch, base=base, amp=amp, period=period, phase=phase,
                   speckle=speckle, tint=tint, radius=radius)


def sample_scene(rng: np.random.Generator, config: SceneConfig) -> Scene:
    h, w = config.height, config.width
    s = min(h, w) / REF_SIZE
    ego_dir = unit_vector(rng)
    ego_speed = float(rng.uniform(3, 8) * s)
    ego = (ego_speed * ego_dir[0], ego_speed * ego_dir[1])
    mean = float(rng.uniform(0.4, 0.6))
    # Low-frequency ground (periods 14-48 px) and faint fine texture (2.5-4 px).
    low = [(rng.uniform(0.04, 0.08), 1 / (rng.uniform(14, 48) * s), rng.random(),
            1 / (rng.uniform(14, 48) * s), rng.random()) for _ in range(4)]
    fine = [(rng.uniform(0.02, 0.03), 1 / max(rng.uniform(2.5, 4) * s, 2.5), rng.random(),
             1 / max(rng.uniform(2.5, 4) * s, 2.5), rng.random()) for _ in range(2)]
    terms = np.array(low + fine, dtype=np.float64)
    hue = np.array([1 / (rng.uniform(20, 60) * s), rng.random(), 1 / (rng.uniform(20, 60) * s), rng.random()])
    tints = np.array([_pick_tint(rng, _GROUND_TINTS), _pick_tint(rng, _GROUND_TINTS)], dtype=np.float32)
    count = int(rng.integers(1, config.max_objects + 1)) if config.max_objects > 0 else 0
    classes = rng.integers(1, len(CLASS_NAMES), size=count)
    objects = [sample_object(rng, int(c), height=h, width=w, scale=s, ego=ego) for c in classes]
    objects.sort(key=lambda o: DRAW_ORDER[o.cls])  # stable: ties keep draw order
    return Scene(height=h, width=w, ego=ego, mean=mean, terms=terms, hue=hue, tints=tints,
                  objects=tuple(objects))


def sample_rng(config: SceneConfig, split: str, index: int) -> np.random.Generator:
    if split not in SPLITS:
        raise UserError(f"synthetic scene: unknown split {split!r}; use one of {', '.join(SPLITS)}")
    try:
        index = operator.index(index)
    except TypeError:
        raise UserError(f"synthetic scene: sample index must be an integer, got {index!r}") from None
    if index < 0:
        raise UserError(f"synthetic scene: sample index must be >= 0, got {index}")
    entropy = [SEED_DOMAIN, int(config.seed), SPLITS.index(split), index]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
