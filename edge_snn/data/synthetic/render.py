"""Rendering a scene at given times (fractions of the window): grey or colour frames and the label map."""

from __future__ import annotations

import numpy as np

from edge_snn.data.synthetic.config import ADC_LEVELS, BUILDING, PERSON, VEHICLE, SceneConfig
from edge_snn.data.synthetic.exact_math import square, wave
from edge_snn.data.synthetic.scene import Scene, SceneObject

def _background(scene: Scene, times: np.ndarray, rgb: bool) -> np.ndarray:
    """Ground texture at ``times`` (fractions of the window), float32 [n, C, H, W].

    The ground point seen at pixel ``(x, y)`` at time t is ``(x, y) - ego * t``;
    each term is a separable product ``amp * w(fx x' + px) * w(fy y' + py)``, so a
    frame costs one outer product per term.
    """
    xs = np.arange(scene.width, dtype=np.float64)[None, :] - scene.ego[0] * times[:, None]  # [n, W]
    ys = np.arange(scene.height, dtype=np.float64)[None, :] - scene.ego[1] * times[:, None]  # [n, H]
    gray = np.full((len(times), scene.height, scene.width), scene.mean, dtype=np.float32)
    for amp, fx, px, fy, py in scene.terms:
        wx = wave(xs * fx + px).astype(np.float32)
        wy = (amp * wave(ys * fy + py)).astype(np.float32)
        gray += wy[:, :, None] * wx[:, None, :]
    if not rgb:
        return gray[:, None]
    fx, px, fy, py = scene.hue
    mix = (0.5 + 0.5 * wave(ys * fy + py)).astype(np.float32)[:, :, None] \
        * (0.5 + 0.5 * wave(xs * fx + px)).astype(np.float32)[:, None, :]  # [n, H, W] in [0, 1]
    a, b = scene.tints
    tint = a[None, :, None, None] + (b - a)[None, :, None, None] * mix[:, None]
    return gray[:, None] * tint


def _object_sdf(obj: SceneObject, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to the object's outline in local units (< 0 inside)."""
    hu, hv = obj.half
    if obj.cls == PERSON:  # ellipse, distance approximated by the scaled radius
        return (np.sqrt((u / hu) ** 2 + (v / hv) ** 2) - 1) * min(hu, hv)
    d = _box_sdf(u, v, hu, hv, obj.corner)
    if obj.cls == BUILDING and obj.notch[2] > 0:  # cut a box out of one corner: an L-shaped roof
        su, sv, fu, fv = obj.notch
        notch = _box_sdf(u - su * hu, v - sv * hv, fu * hu, fv * hv, 0.0)
        d = np.maximum(d, -notch)
    return d


def _box_sdf(u: np.ndarray, v: np.ndarray, hu: float, hv: float, r: float) -> np.ndarray:
    qu = np.abs(u) - (hu - r)
    qv = np.abs(v) - (hv - r)
    outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
    return outside + np.minimum(np.maximum(qu, qv), 0) - r


def _object_texture(obj: SceneObject, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Grey level of the object's surface at local coordinates (u along its axis)."""
    p = obj.period
    if obj.cls == VEHICLE:  # stripes across the body (roof panels, windows)
        return obj.base + obj.amp * square(u / p + obj.phase[0], p / 2.5)
    if obj.cls == BUILDING:  # grid of dark windows / roof units
        sharp = p / 2.5
        across = np.clip(sharp * wave(u / p + obj.phase[0]), 0, 1)
        along = np.clip(sharp * wave(v / p + obj.phase[1]), 0, 1)
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


def _object_layer(obj: SceneObject, times: np.ndarray):
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


def render(scene: Scene, times: np.ndarray, *, rgb: bool) -> np.ndarray:
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


def label(scene: Scene, at: float = 1.0) -> np.ndarray:
    """Class of the top-most object covering each pixel centre at time ``at`` (default: the end of the window)."""
    label = np.zeros((scene.height, scene.width), dtype=np.int64)
    end = np.full(1, float(at))
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


def frame_times(config: SceneConfig) -> np.ndarray:
    count = config.timesteps * config.substeps + 1
    return np.arange(count, dtype=np.float64) / (count - 1)


def gray_codes(scene: Scene, config: SceneConfig, times: np.ndarray | None = None) -> np.ndarray:
    """12-bit intensity codes [n, H, W] (uint16) of the window's frames (or of the frames at ``times``)."""
    frames = render(scene, frame_times(config) if times is None else times, rgb=False)[:, 0]
    return np.rint(frames * np.float32(ADC_LEVELS)).astype(np.uint16)
