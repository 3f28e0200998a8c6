"""Pictures a person can read: titles over panels, a class-colour legend, captions, readable sizes (Pillow).

Used by the recording video (:mod:`edge_snn.runtime.events.run`) and the
demo's panels, so every picture edge-snn writes labels its colours the same
way. Text uses Pillow's built-in scalable font where Pillow has FreeType
(its wheels do), else its small bitmap font.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


@lru_cache(maxsize=8)
def font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or built without FreeType
        return ImageFont.load_default()


def _text_size(text: str, size: int) -> tuple[int, int]:
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font(size))
    return box[2] - box[0], box[3] - box[1]


def upscale(rgb: np.ndarray, min_height: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor that reaches ``min_height`` (pixels stay crisp)."""
    factor = max(1, -(-min_height // rgb.shape[0]))
    return rgb if factor == 1 else np.kron(rgb, np.ones((factor, factor, 1), dtype=np.uint8))


def text_bar(text: str, width: int, *, size: int = 16, pad: int = 6) -> np.ndarray:
    """A white bar ``width`` pixels wide with ``text`` (left-aligned) on it."""
    from PIL import Image, ImageDraw

    height = _text_size("Ag", size)[1] + 2 * pad
    image = Image.new("RGB", (max(width, 1), height), BACKGROUND)
    ImageDraw.Draw(image).text((pad, pad - 2), text, fill=INK, font=font(size))
    return np.asarray(image)


def titled(panel: np.ndarray, title: str, *, size: int = 16) -> np.ndarray:
    """``panel`` with a title bar above it."""
    return np.concatenate([text_bar(title, panel.shape[1], size=size), panel], axis=0)


def legend(class_names, colors: np.ndarray, *, height: int | None = None, size: int = 14) -> np.ndarray:
    """A column of colour swatches with class names; ``height`` pads it to that many pixels (white)."""
    from PIL import Image, ImageDraw

    swatch, pad = size + 4, 6
    names = [str(n) for n in class_names]
    text_w = max((_text_size(n, size)[0] for n in names), default=0)
    width = pad + swatch + pad + text_w + pad
    rows = pad + len(names) * (swatch + 4) + pad
    image = Image.new("RGB", (width, max(rows, height or 0)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for k, name in enumerate(names):
        y = pad + k * (swatch + 4)
        color = tuple(int(c) for c in colors[k])
        draw.rectangle([pad, y, pad + swatch, y + swatch], fill=color, outline=INK)
        draw.text((2 * pad + swatch, y + 1), name, fill=INK, font=font(size))
    return np.asarray(image)


def hstack(panels: list[np.ndarray], *, gap: int = 6) -> np.ndarray:
    """Panels side by side, top-aligned, padded white to the tallest, with white gaps."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        if i:
            parts.append(np.full((height, gap, 3), 255, dtype=np.uint8))
        parts.append(np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(parts, axis=1)


def vstack(panels: list[np.ndarray]) -> np.ndarray:
    """Panels one above the other, left-aligned, padded white to the widest."""
    width = max(p.shape[1] for p in panels)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255)
                           for p in panels], axis=0)


def labelled_row(pictures: list[tuple[np.ndarray, str]], class_names, *, caption: str = "",
                 min_height: int = 256) -> np.ndarray:
    """Titled, upscaled pictures side by side, the class legend at the right and ``caption`` below.

    The layout of the demo's scene panels and of the recording video's frames.
    """
    from edge_snn.runtime.images import palette

    panels = [titled(upscale(picture, min_height), title) for picture, title in pictures]
    body = hstack(panels + [legend(class_names, palette(len(class_names)), height=panels[0].shape[0])])
    return vstack([body, text_bar(caption, body.shape[1])]) if caption else body
