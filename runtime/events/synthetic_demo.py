"""A recording segmented into a video, for the demo: synthesize a recording of the built-in scenes, run it.

:func:`segment_synthetic_recording` renders ``windows`` consecutive windows of
one held-out synthetic scene (:func:`edge_snn.data.synthetic.render_recording`:
the scene's motion continued across windows, DVS pixels carrying their
state), writes them as an ``.npz`` recording, runs it through
:func:`~edge_snn.runtime.events.run.run_recording` exactly as
``edge-snn run MODEL --input recording.npz`` would, and scores each window's
prediction against the scene's ground truth. Torch-free (the generator is numpy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.events.run import model_binning, run_recording
from edge_snn.runtime.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from edge_snn.runtime.metrics import confusion_matrix, segmentation_scores
from edge_snn.runtime.model_file import load_contract


def segment_synthetic_recording(model: str | Path, out_dir: str | Path, *, windows: int = 8, index: int = 0,
                                split: str = "test", seed: int = 0, video: str = "auto",
                                progress: bool = False) -> dict:
    """Write ``out_dir/recording.npz``, the masks, ``overlay.mp4`` (or ``.gif``), ``run.json`` and ``scores.json``.

    model: an ONNX model exported from a checkpoint trained on ``synthetic-events``
        (its binning must be the synthetic one for its size and T).
    windows: windows in the recording (default 8, i.e. 0.4 s); index, split, seed: which scene.
    Returns the run summary with ``"scores"`` (mIoU and pixel accuracy over all windows) added.
    """
    from edge_snn.data.synthetic import SceneConfig, render_recording, synthetic_binning

    out = ensure_writable_dir(out_dir)
    contract = load_contract(model)
    spec = model_binning(contract, str(model))
    config = SceneConfig(height=spec.sensor[0], width=spec.sensor[1], timesteps=spec.bins, seed=seed)
    if synthetic_binning(config) != spec:
        raise UserError(f"{model} was not trained on the built-in synthetic events (its binning differs from "
                        f"theirs at {spec.sensor[0]}x{spec.sensor[1]}, T={spec.bins}); run a real recording instead")
    events, labels = render_recording(index, config, windows=windows, split=split)
    import io

    buffer = io.BytesIO()
    np.savez(buffer, x=events.x.astype(np.uint16), y=events.y.astype(np.uint16), t=events.t, p=events.p,
             sensor_size=np.array(spec.sensor))
    recording = out / "recording.npz"
    write_bytes_atomic(recording, buffer.getvalue())
    k = contract.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    per_window = []

    def score(window: int, classes: np.ndarray) -> None:
        nonlocal confusion
        if window < len(labels):
            c = confusion_matrix(labels[window], classes, k)
            confusion += c
            per_window.append(float(np.trace(c) / max(c.sum(), 1)))

    summary = run_recording(model, recording, out, video=video, progress=progress, on_window=score)
    scores = segmentation_scores(confusion, list(contract.class_names))
    summary["scores"] = {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"],
                         "pixel_accuracy_per_window": per_window, "scene": {"index": index, "split": split,
                                                                            "seed": seed, "windows": windows}}
    write_json_atomic(out / "scores.json", summary["scores"])
    return summary
