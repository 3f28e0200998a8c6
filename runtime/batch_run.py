"""``edge-snn run``: segment image or event files with an exported model, write masks and overlays.

Inputs: PNG/JPEG images (for poisson/direct models) or ``.npy`` event frames
``[T, P, H, W]`` (for event models), one file or a folder of them. For each
input ``name`` the output folder gets ``name.mask.png`` (colored classes),
``name.overlay.png`` (mask over the input) and ``name.classes.npy``; a
``run.json`` lists per-frame latency (encoding excluded, the graph calls
included) and spike counts. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from edge_snn.runtime.images import IMAGE_SUFFIXES, colorize, load_image, normalize_image, overlay, save_png, to_rgb_preview
from edge_snn.runtime.session import Session


def collect_inputs(path: str | Path, encoding: str) -> list[Path]:
    """The input files under ``path`` that fit a model with ``encoding``."""
    path = Path(path)
    suffixes = (".npy",) if encoding == "events" else IMAGE_SUFFIXES
    kind = ".npy event frames" if encoding == "events" else "PNG/JPEG images"
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise UserError(f"{path} is not one of the {kind} this model takes ({encoding} encoding)")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
        if not files:
            raise UserError(f"no {kind} in {path}; this model takes {kind}")
        return files
    raise UserError(f"input {path} does not exist")


def load_input(path: Path, session: Session, *, resize: bool) -> tuple[np.ndarray, np.ndarray]:
    """(model input, RGB preview) for one file."""
    c = session.contract
    if c.encoding == "events":
        try:
            events = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise UserError(f"cannot read event frames {path}: {err}; save them with numpy.save as a float array") from None
        return events, to_rgb_preview(events)
    rgb = load_image(path, (c.height, c.width) if resize else None)
    return normalize_image(rgb), rgb


def run_files(model: str | Path, inputs: str | Path, out_dir: str | Path, *, backend: str = "auto",
              providers: list[str] | None = None, seed: int = 0, resize: bool = False, progress: bool = True) -> dict:
    """Segment every input file; returns the run summary (also written as ``run.json``)."""
    out = ensure_writable_dir(out_dir)
    with Session(model, backend=backend, providers=providers, seed=seed) as session:
        files = collect_inputs(inputs, session.contract.encoding)
        rows = []
        iterator = files
        if progress:
            from tqdm import tqdm

            iterator = tqdm(files, desc="frames", unit="frame")
        for index, path in enumerate(iterator):
            x, preview = load_input(path, session, resize=resize)
            result = session.infer(x, frame_index=index)
            classes = result.class_map[0]
            mask = colorize(classes, session.contract.num_classes)
            save_png(out / f"{path.stem}.mask.png", mask)
            save_png(out / f"{path.stem}.overlay.png", overlay(preview, mask))
            buffer = __import__("io").BytesIO()
            np.save(buffer, classes.astype(np.uint8))
            write_bytes_atomic(out / f"{path.stem}.classes.npy", buffer.getvalue())
            rows.append({"input": str(path), "latency_ms": result.latency_ms, "calls": result.calls,
                         "spike_counts": result.spike_counts})
        latencies = np.array([r["latency_ms"] for r in rows])
        summary = {
            "model": str(model), "backend": session.runner.name,
            "providers": getattr(session.runner, "providers", None), "frames": len(rows),
            "latency_ms": {"mean": float(latencies.mean()), "p50": float(np.percentile(latencies, 50)),
                           "max": float(latencies.max())},
            "per_frame": rows,
        }
    write_json_atomic(out / "run.json", summary)
    return summary
