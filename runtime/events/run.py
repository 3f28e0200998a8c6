"""``edge-snn run MODEL --input RECORDING``: segment an event recording window by window, write masks and a video.

For each window ``[t0, t0 + window)`` of the recording (see
:mod:`edge_snn.runtime.events.windows`) the events are read from the file,
fitted to the model's sensor if asked (``--crop`` / ``--resize``), binned
with the model's own :class:`~edge_snn.runtime.events.binning.BinningSpec`
(from its ONNX metadata, so the frames are the ones it was trained on) and
segmented. The output folder gets:

* ``window_<k>.mask.png`` (class colours) and ``window_<k>.overlay.png``
  (the mask over the event picture), at the model's resolution;
* ``overlay.mp4`` (or ``.gif``): per window the events, the prediction and
  the prediction over the events, upscaled to a readable size, with a legend
  of class colours and the window's time span;
* ``run.json``: the binning, and per window its time span (microseconds,
  absolute and from the recording's start), event count, and latency:
  ``read_ms`` (file), ``bin_ms`` (binning), ``latency_ms`` (graph calls only,
  as in ``edge-snn run`` on frames).

Windows are independent (each from a fresh state) unless ``carry_state``:
then the membrane streams from window to window through
:meth:`~edge_snn.runtime.Session.stream` (the one streaming driver), which
needs a model exported with ``--bn-beyond last|cycle``; the readout then
averages over everything seen so far.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.annotate import labelled_row
from edge_snn.runtime.batch_run import mean_p50_max, write_class_map
from edge_snn.runtime.events.binning import BinningSpec, Events, bin_events
from edge_snn.runtime.events.readers import open_recording
from edge_snn.runtime.events.windows import SensorFit, fit_sensor, iter_windows, plan_windows
from edge_snn.runtime.files import ensure_writable_dir, write_json_atomic
from edge_snn.runtime.images import to_rgb_preview
from edge_snn.runtime.session import Session
from edge_snn.runtime.video import VideoWriter, choose_format


def model_binning(contract: C.ModelContract, source: str) -> BinningSpec:
    """The model's binning spec, checked against its graph (steps, channels, size)."""
    if contract.encoding != "events":
        raise UserError(f"{source} takes {contract.encoding}-encoded images, not events; run it on PNG/JPEG files")
    if contract.binning is None:
        raise UserError(f"{source} does not record how its event frames were binned (exported before contract "
                        "version 2, or trained on pre-binned frames); re-export it from its checkpoint with this "
                        "edge-snn, or pass .npy event frames instead of a recording")
    spec = BinningSpec.from_dict(contract.binning, source=f"{source} (edge_snn.binning)")
    graph = (contract.timesteps_trained, contract.channels, contract.height, contract.width)
    made = (spec.timesteps, spec.channels, *spec.output_size)
    if made != graph:
        raise UserError(f"{source}: its binning makes [T, C, H, W] = {list(made)} frames but the graph takes "
                        f"{list(graph)}; re-export the checkpoint without --height/--width overrides")
    return spec


def window_frames(events: Events, spec: BinningSpec, t0: int, fit: SensorFit | None = None) -> np.ndarray:
    """The model's frames ``[T, C, H, W]`` for the events of the window starting at ``t0`` (us)."""
    return bin_events(events if fit is None else fit.apply(events), spec, t0)


def video_frame(events_rgb: np.ndarray, mask_rgb: np.ndarray, overlay_rgb: np.ndarray, class_names,
                caption: str) -> np.ndarray:
    """One video frame: events | prediction | prediction over events (upscaled, titled), the legend, a caption."""
    return labelled_row([(events_rgb, "events (ON yellow, OFF blue)"), (mask_rgb, "prediction"),
                         (overlay_rgb, "over the events")], class_names, caption=caption)


def run_recording(model: str | Path, recording: str | Path, out_dir: str | Path, *, window_ms: float | None = None,
                  start_s: float = 0.0, duration_s: float | None = None, carry_state: bool = False,
                  crop=None, resize: bool = False, video: str = "auto", fps: float = 10.0, backend: str = "auto",
                  providers: list[str] | None = None, progress: bool = True, on_window=None) -> dict:
    """Segment ``recording`` window by window; returns the summary also written as ``run.json``.

    window_ms: window length (default: the model's, from its binning; another
        length is allowed and recorded, but the frames then differ from training).
    start_s, duration_s: the part of the recording to run, in seconds from its first event.
    crop: ``(top, left)`` or ``"center"``; resize: scale the recording's sensor to the model's.
    video: ``auto`` (MP4 if imageio-ffmpeg is installed, else GIF), ``mp4``, ``gif`` or ``none``.
    on_window(index, classes): sees each window's class map ``[H, W]`` (to score it, say).
    """
    out = ensure_writable_dir(out_dir)
    video_format = choose_format(video)
    with Session(model, backend=backend, providers=providers) as session:
        contract = session.contract
        spec = model_binning(contract, str(model))
        trained_ms = spec.window_ms
        if window_ms is not None:
            if window_ms <= 0:
                raise UserError(f"--window-ms must be > 0, got {window_ms}")
            spec = dataclasses.replace(spec, window_us=int(round(window_ms * 1000)))
        if carry_state and contract.bn_beyond == "error":
            raise UserError(f"--carry-state streams past the {contract.timesteps_trained} trained steps, which "
                            f"{model} refuses (exported with --bn-beyond error); re-export it with "
                            "--bn-beyond last or --bn-beyond cycle")
        with open_recording(recording, rectify=spec.rectify) as reader:
            fit = fit_sensor(reader.sensor_size, spec.sensor, crop=crop, resize=resize)
            plan = plan_windows(reader, spec.window_us, start_us=int(round(start_s * 1e6)),
                                duration_us=None if duration_s is None else int(round(duration_s * 1e6)))
            writer = None if video_format == "none" else VideoWriter(out / "overlay", fps=fps, fmt=video_format)
            try:
                rows = _run_windows(session, spec, reader, plan, fit, out, writer, carry_state, progress, on_window)
                video_path = writer.close() if writer is not None else None
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
        summary = {
            "model": str(model), "recording": str(recording), "backend": session.runner.name,
            "providers": getattr(session.runner, "providers", None), "windows": len(rows),
            "window_ms": spec.window_ms, "window_ms_trained": trained_ms, "carry_state": carry_state,
            "sensor": {"recording": None if reader.sensor_size is None else list(reader.sensor_size),
                       "model": list(spec.sensor), "fit": None if fit is None else fit.describe()},
            "binning": spec.to_dict(), "video": None if video_path is None else str(video_path),
            "latency_ms": mean_p50_max([r["latency_ms"] for r in rows]),
            "timed_region": "latency_ms: graph calls of one window (binning and file reading excluded, "
                            "reported as bin_ms and read_ms)",
            "per_window": rows,
        }
    if window_ms is not None and abs(spec.window_ms - trained_ms) > 1e-9:
        summary["note"] = f"windows of {spec.window_ms} ms, but the model was trained on {trained_ms} ms windows"
    write_json_atomic(out / "run.json", summary)
    return summary


def _run_windows(session: Session, spec: BinningSpec, reader, plan, fit, out: Path, writer, carry_state: bool,
                 progress: bool, on_window) -> list[dict]:
    contract = session.contract
    names = contract.class_names
    stream = session.stream() if carry_state else None
    windows = iter_windows(reader, plan)
    if progress:
        from tqdm import tqdm

        windows = tqdm(windows, total=plan.count, desc="windows", unit="window")
    rows = []
    clock = time.perf_counter()
    for window in windows:
        read_ms = (time.perf_counter() - clock) * 1e3
        started = time.perf_counter()
        frames = window_frames(window.events, spec, window.t_start, fit)
        bin_ms = (time.perf_counter() - started) * 1e3
        spikes = session.encode(frames)
        started = time.perf_counter()
        if stream is not None:
            outputs = stream.feed(spikes)
            calls = spikes.shape[0] // contract.timesteps
        else:
            outputs, _, calls = session.run_encoded(spikes)
        latency_ms = (time.perf_counter() - started) * 1e3
        classes = outputs[C.LOGITS].argmax(1)[0]
        if on_window is not None:
            on_window(window.index, classes)
        preview = to_rgb_preview(frames)
        stem = f"window_{window.index:04d}"
        mask, blended = write_class_map(out, stem, classes, preview, contract.num_classes)
        begin_s = (window.t_start - plan.t_start) / 1e6
        end_s = (min(window.t_end, plan.t_stop) - plan.t_start) / 1e6
        if writer is not None:
            writer.add(video_frame(preview, mask, blended, names, f"window {window.index + 1}/{plan.count}:  "
                                   f"{begin_s:.3f}-{end_s:.3f} s   {len(window.events)} events   "
                                   f"{latency_ms:.1f} ms"))
        rows.append({"index": window.index, "t_start_us": window.t_start, "t_end_us": window.t_end,
                     "start_s": begin_s, "end_s": end_s, "partial": window.partial, "events": len(window.events),
                     "read_ms": read_ms, "bin_ms": bin_ms, "latency_ms": latency_ms, "calls": calls,
                     "mask": f"{stem}.mask.png", "overlay": f"{stem}.overlay.png",
                     "class_pixels": np.bincount(classes.ravel(), minlength=contract.num_classes).tolist()})
        clock = time.perf_counter()
    return rows
