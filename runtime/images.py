"""Images in and out of the runtime: loading, normalization, colored masks, overlays (PIL + numpy)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edge_snn.errors import InputError
from edge_snn.runtime.files import write_bytes_atomic

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 50_000_000  # 50 MP: far above any camera a drone carries, far below a decompression bomb


def palette(num_classes: int) -> np.ndarray:
    """The PASCAL VOC color map (bit-interleaved), ``[K, 3]`` uint8; class 0 is black."""
    colors = np.zeros((max(num_classes, 1), 3), dtype=np.uint8)
    for k in range(num_classes):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors[k] = (r, g, b)
    return colors


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB image as uint8 ``[H, W, 3]``; resized (bilinear) to ``size=(H, W)`` if given.

    8-bit images of any mode (grey, palette, RGBA) become RGB; 16-bit ones are
    scaled by 255/65535 (not clipped at 255); the pixel count is checked from
    the header, before anything is decoded (:data:`MAX_IMAGE_PIXELS`).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(f"{path} is {width}x{height} pixels, over the {MAX_IMAGE_PIXELS / 1e6:.0f} MP this "
                                 f"reader decodes; downscale it first")
            rgb = _as_rgb8(img, path)
            if size is not None and (rgb.shape[0], rgb.shape[1]) != tuple(size):
                rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)
            return rgb
    except InputError:
        raise
    except Image.DecompressionBombError:  # Pillow's own, larger bound, hit while reading the header
        raise InputError(f"{path} declares more pixels than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP this reader "
                         f"decodes (a decompression bomb?); downscale it first") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InputError(f"cannot read image {path}: {err}; pass a PNG or JPEG file") from None


def _as_rgb8(img, path) -> np.ndarray:
    """uint8 RGB pixels of an opened PIL image, 16-bit modes scaled rather than saturated."""
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):  # 16-bit grey
        grey = np.asarray(img, dtype=np.float64) * (255.0 / 65535.0)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode in ("I", "F"):
        raise InputError(f"{path} holds {'32-bit integer' if img.mode == 'I' else 'floating-point'} pixels; "
                         f"save it as an 8- or 16-bit PNG (or JPEG)")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def normalize_image(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]`` in [-1, 1]: ``(v / 255 - 0.5) * 2``."""
    return ((rgb.astype(np.float32) / 255.0 - 0.5) * 2.0).transpose(2, 0, 1)


def to_rgb_preview(x: np.ndarray) -> np.ndarray:
    """A uint8 RGB picture of a model input: an image ``[3, H, W]`` or event frames ``[T, 2, H, W]``.

    Events: ON counts in red/yellow, OFF counts in blue, summed over time.
    """
    if x.ndim == 3 and x.shape[0] == 3:
        return np.clip((x.transpose(1, 2, 0) * 0.5 + 0.5) * 255, 0, 255).astype(np.uint8)
    events = x.reshape(-1, *x.shape[-3:]).sum(0) if x.ndim >= 4 else x
    on = events[0] / max(float(events[0].max()), 1e-6)
    off = events[1] / max(float(events[1].max()), 1e-6) if events.shape[0] > 1 else np.zeros_like(on)
    rgb = np.stack([on, 0.6 * on, off], axis=-1)
    return np.clip(np.sqrt(rgb) * 255, 0, 255).astype(np.uint8)


def colorize(class_map: np.ndarray, num_classes: int) -> np.ndarray:
    """``[H, W]`` class indices -> uint8 RGB (255 "void" shown white)."""
    colors = palette(max(num_classes, 1))
    out = colors[np.clip(class_map, 0, num_classes - 1)]
    out[class_map == 255] = 255
    return out


def overlay(rgb: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return (rgb.astype(np.float32) * (1 - alpha) + mask_rgb.astype(np.float32) * alpha).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 array as PNG, atomically."""
    write_bytes_atomic(path, png_bytes(rgb))
