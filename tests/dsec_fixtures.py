"""Small recordings in the exact public formats, written with the real libraries (h5py + hdf5plugin, numpy).

A plain module (not conftest) so tests in several folders import it by name.

DSEC ``events.h5`` (uzh-rpg/DSEC README "Events"): ``/events/{x,y}`` uint16,
``/events/t`` uint32 microseconds relative to ``/t_offset`` (int64), ``/events/p``
uint8, ``/ms_to_idx`` uint64 with ``t[ms_to_idx[ms]] >= ms * 1000 > t[ms_to_idx[ms] - 1]``;
every dataset blosc-compressed, as the release is. ``rectify_map.h5``:
``/rectify_map`` float32 ``[480, 640, 2]``. DSEC-Semantic trees follow the ESS README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DSEC_H, DSEC_W = 480, 640
LABEL_H = 440


def random_events(duration_us: int, rate_per_ms: int, *, seed: int = 0, height: int = DSEC_H, width: int = DSEC_W,
                  t_start: int = 0):
    """Sorted uniform events over ``[t_start, t_start + duration_us)``: (x, y, t, p) int arrays."""
    rng = np.random.default_rng(seed)
    n = duration_us // 1000 * rate_per_ms
    t = np.sort(rng.integers(0, duration_us, n)) + t_start
    return (rng.integers(0, width, n), rng.integers(0, height, n), t.astype(np.int64), rng.integers(0, 2, n))


def write_dsec_events(path: Path, x, y, t_abs, p, *, t_offset: int = 0, blosc: bool = True) -> Path:
    """A DSEC ``events.h5`` holding these events (``t_abs`` absolute us; stored relative to ``t_offset``)."""
    import h5py
    import hdf5plugin

    path.parent.mkdir(parents=True, exist_ok=True)
    t_rel = np.asarray(t_abs, dtype=np.int64) - t_offset
    compression = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE) if blosc else {}
    n_ms = int(t_rel[-1] // 1000) + 2 if len(t_rel) else 1
    ms_to_idx = np.searchsorted(t_rel, np.arange(n_ms, dtype=np.int64) * 1000, side="left").astype(np.uint64)
    with h5py.File(path, "w") as f:
        for name, values, dtype in (("x", x, np.uint16), ("y", y, np.uint16), ("t", t_rel, np.uint32),
                                    ("p", p, np.uint8)):
            f.create_dataset(f"events/{name}", data=np.asarray(values, dtype=dtype), chunks=True, **compression)
        f.create_dataset("ms_to_idx", data=ms_to_idx, chunks=True, **compression)
        f.create_dataset("t_offset", data=np.int64(t_offset))
    return path


def write_rectify_map(path: Path, *, shift_x: float = 0.0) -> Path:
    """``rectify_map.h5``: every pixel moves ``shift_x`` columns (0: the identity)."""
    import h5py

    ys, xs = np.mgrid[0:DSEC_H, 0:DSEC_W].astype(np.float32)
    table = np.stack([xs + np.float32(shift_x), ys], axis=-1)
    with h5py.File(path, "w") as f:
        f.create_dataset("rectify_map", data=table)
    return path


def write_npz_events(path: Path, x, y, t, p, *, sensor_size=None, compressed: bool = False) -> Path:
    """An ``.npz`` recording: arrays x, y, t, p (+ ``sensor_size``)."""
    arrays = dict(x=np.asarray(x, np.uint16), y=np.asarray(y, np.uint16), t=np.asarray(t, np.int64),
                  p=np.asarray(p, np.int8))
    if sensor_size is not None:
        arrays["sensor_size"] = np.asarray(sensor_size, np.int64)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def sequence_label(classes: int, k: int) -> np.ndarray:
    """Label ``k`` of a sequence: vertical stripes of classes ``(k + stripe) % classes``, row 0 void."""
    stripe = np.arange(DSEC_W) // (DSEC_W // 4)
    label = np.broadcast_to(((k + stripe) % classes).astype(np.uint8), (LABEL_H, DSEC_W)).copy()
    label[0] = 255
    return label


def write_dsec_sequence(folder: Path, events, *, t_offset: int, label_times: list[int],
                        shift_x: float = 0.0) -> Path:
    """One DSEC-Semantic sequence in the ESS layout: events, rectify map, 11- and 19-class labels, timestamps."""
    write_dsec_events(folder / "events" / "left" / "events.h5", *events, t_offset=t_offset)
    write_rectify_map(folder / "events" / "left" / "rectify_map.h5", shift_x=shift_x)
    for classes in (11, 19):
        data = folder / "semantic" / "left" / f"{classes}classes" / "data"
        data.mkdir(parents=True, exist_ok=True)
        for k in range(len(label_times)):
            Image.fromarray(sequence_label(classes, k)).save(data / f"{k:06d}.png")
    (folder / "semantic" / "timestamps.txt").write_text("".join(f"{t}\n" for t in label_times))
    return folder


def write_dsec_semantic(root: Path, *, duration_us: int = 400_000, rate_per_ms: int = 60) -> Path:
    """``root/{train,test}``: two train sequences (a boundary between them) and one test sequence.

    Each sequence holds ``duration_us`` of events from its ``t_offset`` on and a
    label every 50 ms from 50 ms on (the first window starts at the first event).
    Sequence ``s`` puts an extra ON event burst at pixel ``(x=100 + 10 s, y=50)``
    in every window, so a test can tell which sequence an item came from.
    """
    for s, (split, name) in enumerate([("train", "zurich_city_00_a"), ("train", "zurich_city_01_a"),
                                       ("test", "zurich_city_13_a")]):
        t_offset = 10_000_000 * (s + 1)
        x, y, t, p = random_events(duration_us, rate_per_ms, seed=s)
        marks = np.arange(0, duration_us, 10_000, dtype=np.int64)
        x = np.concatenate([x, np.full(marks.size, 100 + 10 * s)])
        y = np.concatenate([y, np.full(marks.size, 50)])
        t = np.concatenate([t, marks])
        p = np.concatenate([p, np.ones(marks.size, np.int64)])
        order = np.argsort(t, kind="stable")
        t = t[order]
        t[0] = 0  # the first event opens the first window
        events = (x[order], y[order], t + t_offset, p[order])
        times = [t_offset + k * 50_000 for k in range(1, duration_us // 50_000 + 1)]
        write_dsec_sequence(root / split / name, events, t_offset=t_offset, label_times=times)
    return root
