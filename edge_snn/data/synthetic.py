"""Built-in synthetic event-camera segmentation scenes, as a drone camera sees them.

No downloads: every sample is generated on the fly from ``(seed, split, index)``,
so tests, demos and smoke trainings work anywhere and give the same data on
every machine.

Scene model (lengths in pixels at 64x64; they scale with ``min(H, W) / 64``,
speeds are in pixels per event window, so ``timesteps`` and ``substeps`` only
change how finely the same motion is sampled):

* **Background** ("ground" seen from above): a smooth low-frequency texture
  (four separable wave products, periods 14-48 px) plus a faint fine texture
  (periods 2.5-4 px, amplitude 0.02-0.03). The camera translates, so the whole
  ground drifts 3-8 px per window: sparse events where the ground has gradient.
* **Objects**, 1..``max_objects`` per scene, each of a class with its own shape
  and texture, so a class can be told apart by local appearance:

  ============  ===============================  =================================
  class         shape (at 64x64)                 texture / motion
  ============  ===============================  =================================
  vehicle (1)   rounded box 16-28 x 10-15 px     bold stripes across it (period
                oriented along its heading       5-7 px); drives 8-16 px / window
  person (2)    ellipse 12-18 x 15-22 px         fine isotropic speckle (cells of
                                                 2.2-3 px); walks 3-6 px / window
  building (3)  box 18-30 px, sometimes with a   grid of dark windows (period
                corner notch (L shape)           7-10 px); moves with the ground
                                                 plus 10-35 % parallax
  ============  ===============================  =================================

  Objects also shrink or grow by up to 6 % over the window (altitude change),
  and are drawn buildings first, then vehicles, then persons (occlusion).

Intensity frames are rendered at ``timesteps * substeps + 1`` instants and
quantised to 12 bits (a sensor ADC). :func:`events_from_frames` turns them into
ON/OFF event counts with a DVS pixel model; the label map is the object classes
at the *end* of the window (class 0 = background), the moment a network that
has seen the whole window is asked about. The static variant
(:func:`render_image_sample`) renders the same scene in colour at that instant.

Determinism: every random draw comes from one ``numpy.random.Generator``
(PCG64) per sample, seeded with ``SeedSequence((domain, seed, split, index))``,
and only draws whose algorithms use exact arithmetic (``random``, ``integers``)
are used. Rendering uses only correctly rounded operations (``+ - * / sqrt``,
``floor``), with our own polynomial wave and logarithm instead of libm/SIMD
``sin``/``log`` (whose last bits differ between CPUs), and no BLAS. So the same
inputs give bit-identical outputs on any machine with the same numpy.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edge_snn.errors import UserError

__all__ = [
    "CLASS_NAMES",
    "SPLITS",
    "LOG_EPS",
    "SceneConfig",
    "render_event_sample",
    "render_image_sample",
    "render_intensity_frames",
    "events_from_frames",
]

CLASS_NAMES: tuple[str, ...] = ("background", "vehicle", "person", "building")
_VEHICLE, _PERSON, _BUILDING = 1, 2, 3
_DRAW_ORDER = {_BUILDING: 0, _VEHICLE: 1, _PERSON: 2}  # bottom to top

SPLITS: tuple[str, ...] = ("train", "val", "test")

LOG_EPS = 0.05
"""Dark offset in ``log(I + LOG_EPS)`` (intensity units, I in [0, 1]): it plays
the part of the photodiode's dark current, keeps the log finite at I = 0 and
bounds the event rate in dark regions."""

_ADC_LEVELS = 4095  # 12-bit intensity frames
_IMAGE_LEVELS = 255  # 8-bit colour images
_SEED_DOMAIN = 0x5E_DA7A  # separates these streams from any other use of the same seed
_REF_SIZE = 64.0  # the resolution the lengths in the module docstring refer to
_MIN_SIZE = 8


@dataclass(frozen=True)
class SceneConfig:
    """What to generate. Sample ``i`` is a pure function of ``(seed, split, i)``.

    height, width: frame size in pixels (any size >= 8; geometry scales with
        ``min(height, width) / 64``).
    timesteps: event frames per sample (T).
    substeps: rendered intensity frames per event frame: the DVS model sees
        ``timesteps * substeps + 1`` frames, finer steps resolve fast edges.
    contrast_threshold: DVS contrast threshold C, in log-intensity units.
    noise_rate: background-activity noise, events per pixel per event frame
        (split evenly between ON and OFF).
    max_objects: objects per scene are drawn uniformly from 1..max_objects
        (0 gives background-only scenes).
    seed: dataset seed.
    threshold_jitter: per-pixel relative spread of C (uniform in
        ``C * (1 +- threshold_jitter)``), fixed per sample, like pixel mismatch.
    """

    height: int = 64
    width: int = 64
    timesteps: int = 20
    substeps: int = 4
    contrast_threshold: float = 0.15
    noise_rate: float = 0.002
    max_objects: int = 3
    seed: int = 0
    threshold_jitter: float = 0.03

    def __post_init__(self) -> None:
        for name, low in (("height", _MIN_SIZE), ("width", _MIN_SIZE), ("timesteps", 1),
                          ("substeps", 1), ("max_objects", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UserError(f"synthetic scene: {name} must be an integer >= {low}, got {value!r}")
        _check_dvs_parameters("synthetic scene", self.contrast_threshold, self.noise_rate, self.threshold_jitter)


def _check_dvs_parameters(where: str, contrast_threshold, noise_rate, threshold_jitter) -> None:
    def real(value) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

    if not (real(contrast_threshold) and 0 < contrast_threshold < np.inf):
        raise UserError(f"{where}: contrast_threshold must be > 0 (log units, e.g. 0.15), got {contrast_threshold!r}")
    if not (real(noise_rate) and 0 <= noise_rate <= 1):
        raise UserError(f"{where}: noise_rate is events per pixel per frame and must be in [0, 1] "
                        f"(e.g. 0.002), got {noise_rate!r}")
    if not (real(threshold_jitter) and 0 <= threshold_jitter < 1):
        raise UserError(f"{where}: threshold_jitter must be in [0, 1) (e.g. 0.03), got {threshold_jitter!r}")


# ----------------------------------------------------------------------------
# Deterministic elementary functions (only correctly rounded operations)
# ----------------------------------------------------------------------------

def _wave(t: np.ndarray) -> np.ndarray:
    """A cosine-like wave of period 1: ``w(0) = 1``, ``w(1/2) = -1``, C1-smooth.

    ``w(t) = 2 s(|2 frac(t) - 1|) - 1`` with the smoothstep ``s(x) = x^2 (3 - 2x)``;
    within 2 % of ``cos(2 pi t)`` and exact on every machine.
    """
    tri = np.abs(2 * (t - np.floor(t)) - 1)
    return tri * tri * (6 - 4 * tri) - 1


def _square(t: np.ndarray, sharpness: float) -> np.ndarray:
    """Square-ish wave of period 1 in [-1, 1]; edges about ``1 / sharpness`` of a half period wide."""
    return np.clip(sharpness * _wave(t), -1, 1)


_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_ATANH_COEFFS = tuple(1.0 / k for k in range(21, 0, -2))  # 1/21, 1/19, ..., 1/1


def _log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive float64 values, bit-identical on every machine.

    ``x = m 2^e`` with ``m`` in [sqrt(1/2), sqrt(2)); ``log m = 2 atanh(z)``,
    ``z = (m - 1) / (m + 1)``, ``|z| <= 0.172``; the odd series to ``z^21`` is
    accurate to a few ulp.
    """
    m, e = np.frexp(x)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2, m)
    e = e - low
    z = (m - 1) / (m + 1)
    z2 = z * z
    poly = np.full_like(z, _ATANH_COEFFS[0])
    for c in _ATANH_COEFFS[1:]:
        poly = poly * z2 + c
    return 2 * z * poly + e * _LN2


@lru_cache(maxsize=1)
def _log_table() -> np.ndarray:
    """``_log(level + LOG_EPS)`` for every 12-bit frame level, as float32 [4096]."""
    levels = (np.arange(_ADC_LEVELS + 1, dtype=np.float32) / np.float32(_ADC_LEVELS)).astype(np.float64)
    table = _log(levels + LOG_EPS).astype(np.float32)
    table.setflags(write=False)
    return table


def _unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly oriented unit vector, by rejection from the square (no trig)."""
    while True:
        a, b = rng.random(2) * 2 - 1
        r2 = a * a + b * b
        if 0.04 < r2 <= 1.0:
            r = float(np.sqrt(r2))
            return float(a) / r, float(b) / r


# ----------------------------------------------------------------------------
# Scene description (all random draws happen here)
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Object:
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
class _Scene:
    height: int
    width: int
    ego: tuple[float, float]  # apparent ground motion on screen, px per window
    mean: float
    terms: np.ndarray  # [K, 5] rows of (amp, fx, phase_x, fy, phase_y), frequencies in 1/px
    hue: np.ndarray  # [4] (fx, phase_x, fy, phase_y) of the colour-mixing field
    tints: np.ndarray  # [2, 3] the two ground colours mixed by the hue field
    objects: tuple[_Object, ...]


_GROUND_TINTS = ((0.75, 1.0, 0.6), (0.9, 1.05, 0.55), (1.05, 0.9, 0.7), (0.95, 0.95, 1.0), (1.1, 1.0, 0.8))
_VEHICLE_TINTS = ((1.25, 0.35, 0.3), (0.35, 0.55, 1.25), (1.1, 1.1, 1.1), (1.2, 1.05, 0.3), (0.7, 0.7, 0.75))
_PERSON_TINTS = ((1.2, 0.4, 0.5), (0.4, 1.1, 0.5), (0.5, 0.5, 1.2), (1.2, 1.0, 0.4), (1.0, 0.6, 1.1), (0.9, 0.9, 0.9))
_BUILDING_TINTS = ((1.0, 1.0, 1.0), (1.2, 0.75, 0.6), (1.1, 1.0, 0.85), (0.85, 0.95, 1.1))


def _pick_tint(rng: np.random.Generator, palette) -> tuple[float, float, float]:
    base = palette[int(rng.integers(len(palette)))]
    jitter = rng.uniform(0.9, 1.1, size=3)
    return tuple(float(c * j) for c, j in zip(base, jitter))


def _sample_object(rng: np.random.Generator, cls: int, *, height: int, width: int, scale: float,
                   ego: tuple[float, float]) -> _Object:
    s = scale
    end = (float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height))
    axis = _unit_vector(rng)
    start_scale = float(rng.uniform(0.94, 1.06))
    phase = (float(rng.random()), float(rng.random()))
    notch = (0.0, 0.0, 0.0, 0.0)
    speckle = None
    corner = 0.0
    if cls == _VEHICLE:
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
    elif cls == _PERSON:
        half = (float(rng.uniform(7.5, 11) * s), float(rng.uniform(6, 9) * s))
        direction = _unit_vector(rng)
        speed = float(rng.uniform(3, 6) * s)
        velocity = (ego[0] + speed * direction[0], ego[1] + speed * direction[1])
        base = float(rng.uniform(0.35, 0.65))
        amp = float(rng.uniform(0.35, 0.45))
        period = max(float(rng.uniform(2.2, 3.0) * s), 1.6)
        cells = int(np.ceil(2 * half[0] / period)) + 3
        speckle = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
        tint = _pick_tint(rng, _PERSON_TINTS)
        radius = half[0]
    elif cls == _BUILDING:
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
    return _Object(cls=cls, end=end, velocity=velocity, axis=axis, start_scale=start_scale, half=half,
                   corner=corner, notch=notch, base=base, amp=amp, period=period, phase=phase,
                   speckle=speckle, tint=tint, radius=radius)


def _sample_scene(rng: np.random.Generator, config: SceneConfig) -> _Scene:
    h, w = config.height, config.width
    s = min(h, w) / _REF_SIZE
    ego_dir = _unit_vector(rng)
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
    objects = [_sample_object(rng, int(c), height=h, width=w, scale=s, ego=ego) for c in classes]
    objects.sort(key=lambda o: _DRAW_ORDER[o.cls])  # stable: ties keep draw order
    return _Scene(height=h, width=w, ego=ego, mean=mean, terms=terms, hue=hue, tints=tints,
                  objects=tuple(objects))


# ----------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------

def _background(scene: _Scene, times: np.ndarray, rgb: bool) -> np.ndarray:
    """Ground texture at ``times`` (fractions of the window), float32 [n, C, H, W].

    The ground point seen at pixel ``(x, y)`` at time t is ``(x, y) - ego * t``;
    each term is a separable product ``amp * w(fx x' + px) * w(fy y' + py)``, so a
    frame costs one outer product per term.
    """
    xs = np.arange(scene.width, dtype=np.float64)[None, :] - scene.ego[0] * times[:, None]  # [n, W]
    ys = np.arange(scene.height, dtype=np.float64)[None, :] - scene.ego[1] * times[:, None]  # [n, H]
    gray = np.full((len(times), scene.height, scene.width), scene.mean, dtype=np.float32)
    for amp, fx, px, fy, py in scene.terms:
        wx = _wave(xs * fx + px).astype(np.float32)
        wy = (amp * _wave(ys * fy + py)).astype(np.float32)
        gray += wy[:, :, None] * wx[:, None, :]
    if not rgb:
        return gray[:, None]
    fx, px, fy, py = scene.hue
    mix = (0.5 + 0.5 * _wave(ys * fy + py)).astype(np.float32)[:, :, None] \
        * (0.5 + 0.5 * _wave(xs * fx + px)).astype(np.float32)[:, None, :]  # [n, H, W] in [0, 1]
    a, b = scene.tints
    tint = a[None, :, None, None] + (b - a)[None, :, None, None] * mix[:, None]
    return gray[:, None] * tint


def _object_sdf(obj: _Object, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to the object's outline in local units (< 0 inside)."""
    hu, hv = obj.half
    if obj.cls == _PERSON:  # ellipse, distance approximated by the scaled radius
        return (np.sqrt((u / hu) ** 2 + (v / hv) ** 2) - 1) * min(hu, hv)
    d = _box_sdf(u, v, hu, hv, obj.corner)
    if obj.cls == _BUILDING and obj.notch[2] > 0:  # cut a box out of one corner: an L-shaped roof
        su, sv, fu, fv = obj.notch
        notch = _box_sdf(u - su * hu, v - sv * hv, fu * hu, fv * hv, 0.0)
        d = np.maximum(d, -notch)
    return d


def _box_sdf(u: np.ndarray, v: np.ndarray, hu: float, hv: float, r: float) -> np.ndarray:
    qu = np.abs(u) - (hu - r)
    qv = np.abs(v) - (hv - r)
    outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
    return outside + np.minimum(np.maximum(qu, qv), 0) - r


def _object_texture(obj: _Object, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Grey level of the object's surface at local coordinates (u along its axis)."""
    p = obj.period
    if obj.cls == _VEHICLE:  # stripes across the body (roof panels, windows)
        return obj.base + obj.amp * _square(u / p + obj.phase[0], p / 2.5)
    if obj.cls == _BUILDING:  # grid of dark windows / roof units
        sharp = p / 2.5
        across = np.clip(sharp * _wave(u / p + obj.phase[0]), 0, 1)
        along = np.clip(sharp * _wave(v / p + obj.phase[1]), 0, 1)
        windows = across * along
        return obj.base - obj.amp * windows
    # person: bilinear value noise on cells of size p (clothes, hair, bags)
    grid = obj.speckle
    n = grid.shape[0]
    gu = np.clip(u / p + n / 2, 0, n - 1.001)
    gv = np.clip(v / p + n / 2, 0, n - 1.001)
    iu = np.floor(gu).astype(np.intp)
    iv = np.floor(gv).astype(np.intp)
    fu = gu - iu
    fv = gv - iv
    flat = grid.ravel()
    k = iv * n + iu
    top = flat[k] + fu * (flat[k + 1] - flat[k])
    bottom = flat[k + n] + fu * (flat[k + n + 1] - flat[k + n])
    return obj.base + obj.amp * (top + fv * (bottom - top))


def _object_layer(obj: _Object, times: np.ndarray):
    """Window origins and the object's grey level and signed distance inside the windows.

    Returns ``(x0 [n], y0 [n], gray [n, S, S], sdf_px [n, S, S])``: an S x S
    pixel window per time that follows the object, so the cost does not grow
    with the frame size.
    """
    scale = obj.start_scale + (1 - obj.start_scale) * times  # [n]
    radius = int(np.ceil(obj.radius * max(obj.start_scale, 1.0))) + 2
    size = 2 * radius + 1
    cx = obj.end[0] - (1 - times) * obj.velocity[0]
    cy = obj.end[1] - (1 - times) * obj.velocity[1]
    x0 = np.floor(cx).astype(np.int64) - radius
    y0 = np.floor(cy).astype(np.int64) - radius
    offsets = np.arange(size)
    dx = ((x0[:, None] + offsets[None, :]) - cx[:, None]) / scale[:, None]  # [n, S], local units
    dy = ((y0[:, None] + offsets[None, :]) - cy[:, None]) / scale[:, None]
    cu, cv = obj.axis
    dx = dx.astype(np.float32)
    dy = dy.astype(np.float32)
    u = np.float32(cu) * dx[:, None, :] + np.float32(cv) * dy[:, :, None]
    v = np.float32(-cv) * dx[:, None, :] + np.float32(cu) * dy[:, :, None]
    sdf = _object_sdf(obj, u, v) * scale.astype(np.float32)[:, None, None]
    return x0, y0, _object_texture(obj, u, v), sdf


def _render(scene: _Scene, times: np.ndarray, *, rgb: bool) -> np.ndarray:
    """Frames at ``times``: float32 [n, C, H, W] in [0, 1], C = 3 if ``rgb`` else 1."""
    out = _background(scene, times, rgb)
    h, w = scene.height, scene.width
    for obj in scene.objects:
        x0, y0, gray, sdf = _object_layer(obj, times)
        alpha = np.clip(0.5 - sdf, 0, 1)  # 1 px anti-aliased edge
        if rgb:
            color = gray[:, None] * np.asarray(obj.tint, dtype=np.float32)[None, :, None, None]
        else:
            color = gray[:, None]
        size = gray.shape[-1]
        for k, (top, left) in enumerate(zip(y0.tolist(), x0.tolist())):
            ya, yb = max(top, 0), min(top + size, h)
            xa, xb = max(left, 0), min(left + size, w)
            if ya < yb and xa < xb:
                region = out[k, :, ya:yb, xa:xb]
                window = (k, slice(ya - top, yb - top), slice(xa - left, xb - left))
                region += alpha[window] * (color[k, :, window[1], window[2]] - region)
    return np.clip(out, 0, 1, out=out)


def _label(scene: _Scene) -> np.ndarray:
    """Class of the top-most object covering each pixel centre at the end of the window."""
    label = np.zeros((scene.height, scene.width), dtype=np.int64)
    end = np.ones(1)
    for obj in scene.objects:
        x0, y0, _, sdf = _object_layer(obj, end)
        size = sdf.shape[-1]
        x0, y0 = int(x0[0]), int(y0[0])
        ya, yb = max(y0, 0), min(y0 + size, scene.height)
        xa, xb = max(x0, 0), min(x0 + size, scene.width)
        if ya >= yb or xa >= xb:
            continue
        inside = sdf[0, ya - y0:yb - y0, xa - x0:xb - x0] <= 0
        label[ya:yb, xa:xb][inside] = obj.cls
    return label


def _frame_times(config: SceneConfig) -> np.ndarray:
    count = config.timesteps * config.substeps + 1
    return np.arange(count, dtype=np.float64) / (count - 1)


def _sample_rng(config: SceneConfig, split: str, index: int) -> np.random.Generator:
    if split not in SPLITS:
        raise UserError(f"synthetic scene: unknown split {split!r}; use one of {', '.join(SPLITS)}")
    try:
        index = operator.index(index)
    except TypeError:
        raise UserError(f"synthetic scene: sample index must be an integer, got {index!r}") from None
    if index < 0:
        raise UserError(f"synthetic scene: sample index must be >= 0, got {index}")
    entropy = [_SEED_DOMAIN, int(config.seed), SPLITS.index(split), index]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def _gray_codes(scene: _Scene, config: SceneConfig) -> np.ndarray:
    """12-bit intensity codes [n, H, W] (uint16) of the window's frames."""
    frames = _render(scene, _frame_times(config), rgb=False)[:, 0]
    return np.rint(frames * np.float32(_ADC_LEVELS)).astype(np.uint16)


# ----------------------------------------------------------------------------
# DVS pixel model
# ----------------------------------------------------------------------------

def _dvs(log_frames: np.ndarray, thresholds, timesteps: int, rng: np.random.Generator,
         noise_rate: float) -> np.ndarray:
    """Events from log-intensity frames [n, H, W] (float32); see :func:`events_from_frames`."""
    n, h, w = log_frames.shape
    events = np.zeros((timesteps, 2, h, w), dtype=np.float32)
    reference = log_frames[0].copy()
    for k in range(1, n):  # the one sequential part: the reference depends on the past
        crossings = np.trunc((log_frames[k] - reference) / thresholds)  # signed whole crossings
        reference += crossings * thresholds
        b = (k - 1) * timesteps // (n - 1)
        events[b, 0] += np.maximum(crossings, 0)
        events[b, 1] += np.maximum(-crossings, 0)
    if noise_rate > 0:
        events += rng.random(events.shape, dtype=np.float32) < np.float32(noise_rate / 2)
    return events


def _thresholds(contrast_threshold: float, jitter: float, shape, rng: np.random.Generator):
    if jitter == 0:
        return np.float32(contrast_threshold)
    return (contrast_threshold * (1 + jitter * (2 * rng.random(shape) - 1))).astype(np.float32)


def events_from_frames(frames: np.ndarray, *, contrast_threshold: float, timesteps: int,
                       rng: np.random.Generator, noise_rate: float = 0.0,
                       threshold_jitter: float = 0.0) -> np.ndarray:
    """ON/OFF event counts from intensity frames with an idealised DVS pixel.

    Each pixel keeps a reference ``r`` (initially ``L[0]``) of its log intensity
    ``L = log(I + LOG_EPS)``. At every new frame ``k`` it emits
    ``n = trunc((L[k] - r) / C)`` events (ON if n > 0, OFF if n < 0, i.e. one per
    whole threshold crossed since the last event) and moves ``r += n C``. The
    ``n_frames - 1`` frame transitions are binned evenly into ``timesteps``
    event frames: transition ``k`` (1-based) goes to ``(k - 1) * T // (n_frames - 1)``.
    The log is computed in float64 (our own, machine-independent) and the pixel
    state is kept in float32, exactly as :func:`render_event_sample` does.

    Args:
        frames: intensities [n_frames, H, W] in [0, 1] (any float dtype),
            ``n_frames - 1 >= timesteps``.
        contrast_threshold: C, in log-intensity units (> 0).
        timesteps: number of event frames T.
        rng: generator for threshold jitter and noise (not drawn from when both are 0).
        noise_rate: background-activity noise, events per pixel per event frame,
            split evenly between ON and OFF (default 0).
        threshold_jitter: per-pixel relative spread of C, uniform in
            ``C * (1 +- jitter)`` (default 0).

    Returns:
        float32 [T, 2, H, W]: channel 0 = ON counts, 1 = OFF counts (>= 0).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise UserError(f"events_from_frames: frames must be [n_frames >= 2, H, W], got shape {frames.shape}")
    if not isinstance(timesteps, (int, np.integer)) or not 1 <= timesteps <= frames.shape[0] - 1:
        raise UserError(f"events_from_frames: timesteps must be an integer in 1..n_frames-1 "
                        f"(= {frames.shape[0] - 1}), got {timesteps!r}")
    _check_dvs_parameters("events_from_frames", contrast_threshold, noise_rate, threshold_jitter)
    frames = frames.astype(np.float64)
    if not np.all(np.isfinite(frames)) or frames.min() < 0:
        raise UserError("events_from_frames: frames must be finite intensities >= 0 (scale them to [0, 1])")
    thresholds = _thresholds(float(contrast_threshold), threshold_jitter, frames.shape[1:], rng)
    return _dvs(_log(frames + LOG_EPS).astype(np.float32), thresholds, int(timesteps), rng, noise_rate)


# ----------------------------------------------------------------------------
# Public samplers
# ----------------------------------------------------------------------------

def render_event_sample(index: int, config: SceneConfig = SceneConfig(), *,
                        split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One event-camera sample.

    Returns ``(events, label)``: events float32 [T, 2, H, W] (ON, OFF counts per
    event frame, >= 0), label int64 [H, W] with values in ``0..len(CLASS_NAMES)-1``
    at the end of the window. Equals :func:`events_from_frames` applied to
    :func:`render_intensity_frames` when noise and jitter are 0.
    """
    rng = _sample_rng(config, split, index)
    scene = _sample_scene(rng, config)
    log_frames = _log_table()[_gray_codes(scene, config)]
    thresholds = _thresholds(config.contrast_threshold, config.threshold_jitter,
                             (config.height, config.width), rng)
    events = _dvs(log_frames, thresholds, config.timesteps, rng, config.noise_rate)
    return events, _label(scene)


def render_intensity_frames(index: int, config: SceneConfig = SceneConfig(), *,
                            split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The grey frames behind :func:`render_event_sample` (for panels and debugging).

    Returns ``(frames, label)``: frames float32 [T * substeps + 1, H, W] in
    [0, 1] (12-bit levels), label int64 [H, W] at the last frame.
    """
    rng = _sample_rng(config, split, index)
    scene = _sample_scene(rng, config)
    frames = _gray_codes(scene, config).astype(np.float32) / np.float32(_ADC_LEVELS)
    return frames, _label(scene)


def render_image_sample(index: int, config: SceneConfig = SceneConfig(), *,
                        split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A colour still of the same scene as event sample ``index``, at the end of its window.

    For Poisson rate coding. Returns ``(image, label)``: image float32
    [3, H, W] in [-1, 1] (8-bit levels, ``2 * rgb - 1``), label int64 [H, W],
    identical to the label of :func:`render_event_sample` for the same index.
    """
    rng = _sample_rng(config, split, index)
    scene = _sample_scene(rng, config)
    rgb = _render(scene, np.ones(1), rgb=True)[0]
    codes = np.rint(rgb * np.float32(_IMAGE_LEVELS))
    image = codes / np.float32(_IMAGE_LEVELS / 2) - np.float32(1)
    return np.clip(image, -1, 1).astype(np.float32), _label(scene)
