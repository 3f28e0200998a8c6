"""The tiny model ``edge-snn selftest`` ships, and its PyTorch reference outputs (training side: needs torch).

``write_fixture(folder)`` makes, deterministically from fixed seeds:

* ``fp32.onnx``: a randomized (untrained, but spiking: :mod:`edge_snn.models.randomized`)
  Spiking-DeepLab at width 1/8, 2 event channels, 4 classes, 32x32, trained T = 4, exported as
  the **T = 1 step graph**, so a frame takes 4 streamed calls and every call's ``spike_counts``
  is one step's;
* ``int8.onnx``: the same model after Brevitas PTQ (calibrated on other seeded events), INT8 QDQ;
* ``reference.npz``: the input events ``[F, T, 1, 2, H, W]`` and, per precision (``fp32``,
  ``int8``), the reference's ``logits [F, 1, K, H, W]``, ``class_map [F, 1, H, W]`` and spike
  counts per layer and step ``[F, L, T]`` (PyTorch, the quantized model for ``int8``);
* ``fixture.json``: what is where, the seeds, the spiking layers and each neuron count.

Nothing depends on the clock or the machine, so regenerating gives the same bytes for the ONNX
files and the same arrays (``tests/test_selftest_fixture.py`` checks it against the shipped copy,
so the fixture can never go stale silently). Regenerate with ``python tools/make_selftest_fixture.py``.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from edge_snn.runtime.files import write_bytes_atomic, write_json_atomic

ARCH, WIDTH, CLASSES, CHANNELS = "dl-vgg9", 0.125, 4, 2
TIMESTEPS, HEIGHT, WIDTH_PX, FRAMES = 4, 32, 32, 2
MODEL_SEED, INPUT_SEED, CALIBRATION_SEED, EVENT_DENSITY = 0, 1, 2, 0.2
CLASS_NAMES = ("background", "vehicle", "person", "building")
SCHEMA = "edge-snn.selftest-fixture/1"
PRECISIONS = {"fp32": "fp32.onnx", "int8": "int8.onnx"}


def events(seed: int, frames: int = FRAMES) -> np.ndarray:
    """Binary event frames ``[frames, T, 1, C, H, W]`` with ``EVENT_DENSITY`` of the elements set."""
    rng = np.random.default_rng(seed)
    return (rng.random((frames, TIMESTEPS, 1, CHANNELS, HEIGHT, WIDTH_PX)) < EVENT_DENSITY).astype(np.float32)


def fixture_model():
    from edge_snn.models import build_model
    from edge_snn.models.randomized import randomized

    torch.manual_seed(MODEL_SEED)
    model = build_model(ARCH, in_channels=CHANNELS, num_classes=CLASSES, timesteps=TIMESTEPS, width=WIDTH)
    return randomized(model, MODEL_SEED)


def _weights_sha256(model) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def reference_outputs(model, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """logits, class map and spike counts ``[F, L, T]`` of ``model`` on ``inputs`` (one fresh frame each)."""
    logits, counts = [], []
    for frame in inputs:
        ref = model.run(torch.from_numpy(frame), record_spikes=True)
        logits.append(ref.logits.numpy())
        counts.append([[float(s.sum()) for s in ref.spikes[layer]] for layer in model.spiking_layers])
    logits = np.stack(logits).astype(np.float32)
    return {"logits": logits, "class_map": logits.argmax(2).astype(np.int64), "spike_counts": np.asarray(counts)}


def build_fixture() -> tuple[dict[str, bytes], dict[str, np.ndarray], dict]:
    """(ONNX bytes per file name, reference arrays, fixture.json dict), all deterministic."""
    from edge_snn.export.exporter import ExportOptions, build_graph, check_graph, _weights_for
    from edge_snn.quantize import quantize_ptq

    model = fixture_model()
    inputs = events(INPUT_SEED)
    calibration = [torch.from_numpy(f) for f in events(CALIBRATION_SEED, frames=4)]
    quantized = quantize_ptq(copy.deepcopy(model), calibration)
    ckpt = {"data": {"height": HEIGHT, "width": WIDTH_PX, "encoding": "events", "class_names": list(CLASS_NAMES)}}
    options = ExportOptions(timesteps=1)
    sha = _weights_sha256(model)
    files, arrays = {}, {"inputs": inputs}
    for precision, net in (("fp32", model), ("int8", quantized)):
        proto, _ = build_graph(net, ckpt, options, weights=_weights_for(net), sha256=sha)
        check_graph(proto)
        files[PRECISIONS[precision]] = proto.SerializeToString()
        for key, value in reference_outputs(net, inputs).items():
            arrays[f"{precision}.{key}"] = value
    shapes = model.state_spec(1, HEIGHT, WIDTH_PX)
    meta = {
        "schema": SCHEMA, "architecture": ARCH, "width_multiplier": WIDTH, "classes": list(CLASS_NAMES),
        "timesteps_trained": TIMESTEPS, "graph_timesteps": 1, "height": HEIGHT, "width": WIDTH_PX, "frames": FRAMES,
        "seeds": {"model": MODEL_SEED, "inputs": INPUT_SEED, "calibration": CALIBRATION_SEED},
        "event_density": EVENT_DENSITY, "models": dict(PRECISIONS), "reference": "reference.npz",
        "spike_layers": list(model.spiking_layers),
        "neurons_per_step": {layer: int(np.prod(shapes[layer])) for layer in model.spiking_layers},
        "weights_sha256": sha,
    }
    return files, arrays, meta


def write_fixture(folder) -> Path:
    """Write the fixture into ``folder`` (atomically, file by file); returns the folder."""
    folder = Path(folder)
    files, arrays, meta = build_fixture()
    for name, blob in files.items():
        write_bytes_atomic(folder / name, blob)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(folder / "reference.npz", buffer.getvalue())
    write_json_atomic(folder / "fixture.json", meta)
    return folder


def shipped_folder() -> Path:
    """Where the packaged copy lives in the source tree (``runtime/data/selftest``)."""
    return Path(__file__).resolve().parent.parent / "runtime" / "data" / "selftest"

