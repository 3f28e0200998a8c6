"""``edge-snn run``: segment image or event files with an exported model, write masks and overlays.

Inputs: PNG/JPEG images (for poisson/direct models) or ``.npy`` event frames
``[T, P, H, W]`` (for event models), one file or a folder of them (read by
:mod:`edge_snn.runtime.inputs`). For each input the output folder gets
``NAME.mask.png`` (colored classes), ``NAME.overlay.png`` (mask over the input)
and ``NAME.classes.npy``, where NAME is the input's stem (``stem_ext`` when two
inputs share a stem). Every readable file is processed: a bad one is reported
by name and the run goes on. ``run.json`` lists each input with its status
(``ok`` with latency, encoding excluded and the graph calls included, and
spike counts; or ``error`` with the reason). Every file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edge_snn.errors import InputError
from edge_snn.runtime.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from edge_snn.runtime.images import colorize, overlay, save_png
from edge_snn.runtime.inputs import list_inputs, output_names, read_input
from edge_snn.runtime.session import Session


def write_npy_atomic(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def write_class_map(out: Path, stem: str, classes: np.ndarray, preview: np.ndarray, num_classes: int):
    """``STEM.mask.png`` (class colours) and ``STEM.overlay.png`` (the mask over the input's preview).

    Returns ``(mask, overlay)`` as RGB arrays, for a video frame made of the same pictures.
    """
    mask = colorize(classes, num_classes)
    blended = overlay(preview, mask)
    save_png(out / f"{stem}.mask.png", mask)
    save_png(out / f"{stem}.overlay.png", blended)
    return mask, blended


def mean_p50_max(latencies_ms) -> dict | None:
    """``run.json``'s ``{mean, p50, max}`` of per-frame (or per-window) latencies in ms; None when nothing ran."""
    from edge_snn.runtime.bench.timing import latency_stats

    if len(latencies_ms) == 0:
        return None
    stats = latency_stats(latencies_ms)
    return {key: stats[key] for key in ("mean", "p50", "max")}


def segment_file(session: Session, path: Path, out: Path, name: str, *, index: int, resize: bool) -> dict:
    """Segment one file and write its outputs; returns its run.json row (raises InputError for a bad file)."""
    c = session.contract
    x, preview = read_input(path, encoding=c.encoding, size=(c.height, c.width) if resize else None)
    try:
        result = session.infer(x, frame_index=index)
    except InputError as err:  # the frame does not fit the model: say which file
        raise InputError(f"{path}: {err}") from None
    classes = result.class_map[0]
    write_class_map(out, name, classes, preview, c.num_classes)
    write_npy_atomic(out / f"{name}.classes.npy", classes.astype(np.uint8))
    return {"input": str(path), "output": name, "status": "ok", "latency_ms": result.latency_ms,
            "calls": result.calls, "spike_counts": result.spike_counts}


def run_files(model: str | Path, inputs: str | Path, out_dir: str | Path, *, backend: str = "auto",
              providers: list[str] | None = None, seed: int = 0, resize: bool = False, progress: bool = True,
              **runner_options) -> dict:
    """Segment every input file; returns the run summary (also written as ``run.json``).

    For a folder, ``summary["failed"]`` counts the inputs that could not be
    processed; each has a ``status: "error"`` row with the reason. A single
    input file that cannot be processed raises its :class:`InputError`.
    """
    out = ensure_writable_dir(out_dir)
    with Session(model, backend=backend, providers=providers, seed=seed, **runner_options) as session:
        files = list_inputs(inputs, session.contract.encoding)
        names = output_names(files)
        rows = []
        iterator = files
        if progress:
            from tqdm import tqdm

            iterator = tqdm(files, desc="frames", unit="frame")
        single = Path(inputs).is_file()
        for index, path in enumerate(iterator):
            try:
                rows.append(segment_file(session, path, out, names[path], index=index, resize=resize))
            except InputError as err:
                if single:  # one file asked for: its problem is the run's error
                    raise
                rows.append({"input": str(path), "output": names[path], "status": "error", "error": str(err)})
        done = [r for r in rows if r["status"] == "ok"]
        summary = {
            "model": str(model), "backend": session.runner.name,
            "providers": getattr(session.runner, "providers", None), "frames": len(done),
            "failed": len(rows) - len(done),
            "latency_ms": mean_p50_max([r["latency_ms"] for r in done]),
            "per_frame": rows,
        }
    write_json_atomic(out / "run.json", summary)
    return summary
