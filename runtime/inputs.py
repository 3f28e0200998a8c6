"""The files ``edge-snn run`` accepts, read one way for run, parity and quantization calibration.

Image models (poisson/direct encoding) take PNG/JPEG images; event models take
``.npy`` event frames ``[T, P, H, W]`` (or ``[T, B, P, H, W]``). A path is one
such file or a folder of them (other files in the folder are ignored). Each
file is checked before it reaches the model: a 16-bit image is scaled, not
saturated; an image's size is bounded before decoding; an array must be real,
numeric and at least 4-d (complex, string, object, 0-d arrays are refused, and
nothing is unpickled). A bad file is an :class:`~edge_snn.errors.InputError`
naming it, so a folder run can report it and go on with the rest.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edge_snn.errors import InputError, UserError
from edge_snn.runtime.images import IMAGE_SUFFIXES, load_image, normalize_image, to_rgb_preview

EVENT_SUFFIXES = (".npy",)


def accepted(encoding: str) -> tuple[tuple[str, ...], str]:
    """(file suffixes, description) of the inputs a model with ``encoding`` takes."""
    if encoding == "events":
        return EVENT_SUFFIXES, ".npy event frames"
    return IMAGE_SUFFIXES, "PNG/JPEG images"


def list_inputs(path: str | Path, encoding: str) -> list[Path]:
    """The input files at ``path`` (a file, or a folder's matching files in name order)."""
    path = Path(path)
    suffixes, kind = accepted(encoding)
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise UserError(f"{path} is not one of the {kind} this model takes ({encoding} encoding)")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
        if not files:
            raise UserError(f"no {kind} in {path}; this model takes {kind}")
        return files
    raise UserError(f"input {path} does not exist")


def output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct output name per input: its stem, or ``stem_ext`` where stems collide (x.png, x.jpg, x.PNG)."""
    stems = Counter(p.stem for p in files)
    names = {p: p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}" for p in files}
    if len(set(names.values())) != len(names):  # e.g. "x_png.jpg" next to "x.png" and "x.jpg"
        names = {p: p.name for p in files}
    return names


def read_event_frames(path: str | Path) -> np.ndarray:
    """A ``.npy`` of event frames as float32, refusing what would silently change meaning."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as err:
        raise InputError(f"cannot read event frames {path}: {err.strerror}") from None
    if magic != b"\x93NUMPY":
        raise InputError(f"{path} is not a .npy file (no NumPy header); save event frames with numpy.save")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        reason = "it holds Python objects (pickles are never loaded)" if "pickle" in str(err) else str(err)
        raise InputError(f"cannot read event frames {path}: {reason}; save them with numpy.save as a float array") from None
    if array.dtype.kind == "c":
        raise InputError(f"{path} holds complex numbers ({array.dtype}); event frames are real counts")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{path} holds {array.dtype} values, not numbers; save numeric event frames")
    if array.ndim not in (4, 5):
        raise InputError(f"{path} holds a {array.ndim}-d array of shape {array.shape}; event frames are "
                         f"[T, P, H, W] (or [T, B, P, H, W])")
    return array.astype(np.float32, copy=False)


def read_input(path: str | Path, *, encoding: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(model input, RGB preview) of one file: event frames as stored, or an image normalized to [-1, 1].

    size: resize images to ``(H, W)`` (event frames are never resized).
    """
    if encoding == "events":
        events = read_event_frames(path)
        return events, to_rgb_preview(events)
    rgb = load_image(path, size)
    return normalize_image(rgb), rgb


def fit_frame(x: np.ndarray, *, encoding: str, channels: int, steps: int, input_range: tuple[float, float],
              size: tuple[int, int] | None = None, batch: int | None = None) -> np.ndarray:
    """Check one frame against what a model takes; returns it batched float32, or an InputError saying why not.

    images (poisson/direct): ``[C, H, W]`` or ``[B, C, H, W]``; events: ``[T, P, H, W]`` or
    ``[T, B, P, H, W]`` with T >= ``steps``. size / batch: required ``(H, W)`` and batch (None: any).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"input must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    events = encoding == "events"
    if events and x.ndim == 4:
        x = x[:, None]
    elif not events and x.ndim == 3:
        x = x[None]
    want = "[T, P, H, W] event frames" if events else "[C, H, W] image"
    at = f" at {size[0]}x{size[1]}" if size else ""
    if x.ndim != (5 if events else 4):
        raise InputError(f"input of shape {x.shape} does not fit this model, which expects a {want} "
                         f"of {channels} channels{at}")
    got_channels, height, width = x.shape[-3:]
    got_batch = x.shape[1] if events else x.shape[0]
    if got_channels != channels:
        raise InputError(f"input has {got_channels} channels, the model expects {channels} ({want}); "
                         f"convert the input (e.g. RGB for images, ON/OFF polarities for events)")
    if size is not None and (height, width) != tuple(size):
        raise InputError(f"input is {height}x{width}, the model was exported for {size[0]}x{size[1]}; "
                         f"resize the input or re-export with --height {height} --width {width}")
    if batch is not None and got_batch != batch:
        raise InputError(f"input batch {got_batch} differs from the exported batch {batch}; re-export with --batch {got_batch}")
    if events and x.shape[0] < steps:
        raise InputError(f"event input holds {x.shape[0]} frames, the model needs {steps} per frame")
    if not np.isfinite(x).all():
        raise InputError("input contains NaN or infinite values; clean or re-normalize it")
    lo, hi = input_range
    if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
        hint = ("scale the event frames as in training (the built-in data: counts clipped at 4, divided by 4)"
                if events else "normalize it (edge_snn.runtime.images.normalize_image does it for 8-bit images)")
        raise InputError(f"input values span [{x.min():.3g}, {x.max():.3g}], the model expects [{lo}, {hi}]; {hint}")
    return x
