"""``Session``: an exported edge-snn model ready to segment frames, without torch.

A *frame* is one image (or one window of event frames) presented for the
``timesteps_trained`` steps the model was trained with. ``infer`` encodes it,
runs it in as many calls as the graph's ``T`` requires (streaming the state
from call to call) and returns logits, the class map and spike counts.
``stream`` keeps the state across calls for inputs that arrive in pieces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.encoding import direct_encode, frame_seed, poisson_encode
from edge_snn.runtime.model_file import load_onnx_contract


@dataclass
class FrameResult:
    """logits ``[B, K, H, W]``, class map ``[B, H, W]`` (uint8/int64), spikes per layer, wall time."""

    logits: np.ndarray
    class_map: np.ndarray
    spike_counts: dict[str, float]
    latency_ms: float
    calls: int = 1
    extra: dict = field(default_factory=dict)


def make_runner(path: str, backend: str = "auto", providers: list[str] | None = None, **kwargs):
    """The runner for ``backend`` (``onnxruntime``, ``tensorrt`` or ``auto``)."""
    path = str(path)
    if backend == "auto":
        backend = "tensorrt" if path.endswith((".engine", ".plan")) else "onnxruntime"
    if backend == "onnxruntime":
        from edge_snn.runtime.backends.onnxrt import BoundOnnxRuntimeRunner

        return BoundOnnxRuntimeRunner(path, providers=providers, **kwargs)
    if backend == "tensorrt":
        from edge_snn.runtime.backends.trt import TensorRTRunner

        return TensorRTRunner(path, **kwargs)
    raise UserError(f"unknown backend {backend!r}; choose onnxruntime, tensorrt or auto")


def load_contract(path: str) -> C.ModelContract:
    """Contract of an ONNX file, or of a TensorRT engine through its sidecar JSON."""
    if str(path).endswith((".engine", ".plan")):
        from edge_snn.runtime.backends.trt import engine_contract

        return engine_contract(path)
    return load_onnx_contract(path)


class Session:
    """An exported model plus its runner. Use as a context manager or call ``close()``."""

    def __init__(self, path, *, backend: str = "auto", providers: list[str] | None = None, seed: int = 0,
                 runner=None, **runner_options):
        self.path = str(path)
        self.contract = load_contract(self.path)
        self.seed = seed
        self.runner = runner or make_runner(self.path, backend, providers, **runner_options)
        self.runner.activate()

    def close(self) -> None:
        self.runner.deactivate()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- inputs ------------------------------------------------------------
    def validate_frame(self, x: np.ndarray) -> np.ndarray:
        """Check a frame against the contract; returns it batched.

        images (poisson/direct): ``[C, H, W]`` or ``[B, C, H, W]``;
        events: ``[T, P, H, W]`` or ``[T, B, P, H, W]`` with T >= timesteps_trained.
        """
        c = self.contract
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.number):
            raise UserError(f"input must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        events = c.encoding == "events"
        if events and x.ndim == 4:
            x = x[:, None]
        elif not events and x.ndim == 3:
            x = x[None]
        want = "[T, P, H, W] event frames" if events else "[C, H, W] image"
        if x.ndim != (5 if events else 4):
            raise UserError(f"input of shape {x.shape} does not fit this model, which expects a {want} "
                            f"of {c.channels} channels at {c.height}x{c.width}")
        channels, height, width = x.shape[-3:]
        batch = x.shape[1] if events else x.shape[0]
        if channels != c.channels:
            raise UserError(f"input has {channels} channels, the model expects {c.channels} ({want}); "
                            f"convert the input (e.g. RGB for images, ON/OFF polarities for events)")
        if (height, width) != (c.height, c.width):
            raise UserError(f"input is {height}x{width}, the model was exported for {c.height}x{c.width}; "
                            f"resize the input or re-export with --height {height} --width {width}")
        if batch != c.batch:
            raise UserError(f"input batch {batch} differs from the exported batch {c.batch}; re-export with --batch {batch}")
        if events and x.shape[0] < c.timesteps_trained:
            raise UserError(f"event input holds {x.shape[0]} frames, the model needs {c.timesteps_trained} per frame")
        if not np.isfinite(x).all():
            raise UserError("input contains NaN or infinite values; clean or re-normalize it")
        lo, hi = c.input_range
        if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
            hint = ("scale the event frames as in training (the built-in data: counts clipped at 4, divided by 4)"
                    if events else "normalize it (edge_snn.runtime.images.normalize_image does it for 8-bit images)")
            raise UserError(f"input values span [{x.min():.3g}, {x.max():.3g}], the model expects [{lo}, {hi}]; {hint}")
        return x

    def encode(self, x: np.ndarray, *, frame_index: int = 0) -> np.ndarray:
        """A validated frame as the ``[T_frame, B, C, H, W]`` spikes the graph reads."""
        c = self.contract
        x = self.validate_frame(x)
        steps = c.timesteps_trained
        if c.encoding == "poisson":
            return poisson_encode(x, steps, seed=frame_seed(self.seed, frame_index))
        if c.encoding == "direct":
            return direct_encode(x, steps)
        return np.ascontiguousarray(x[:steps])

    def fresh_state(self) -> dict[str, np.ndarray]:
        return {C.STATE_IN + s.name: np.zeros(s.shape, dtype=s.dtype) for s in self.contract.state}

    # --- running -----------------------------------------------------------
    def run_encoded(self, spikes: np.ndarray, state=None) -> tuple[dict[str, np.ndarray], object, int]:
        """Run encoded steps ``[N, B, C, H, W]`` (N a multiple of the graph's T) from ``state``.

        Returns (outputs of the last call, state reached, calls made).
        """
        c = self.contract
        state = self.fresh_state() if state is None else state
        if spikes.shape[0] % c.timesteps:
            raise UserError(f"{spikes.shape[0]} steps cannot be split into calls of T={c.timesteps}")
        calls = spikes.shape[0] // c.timesteps
        counts = np.zeros(len(c.spike_layers), dtype=np.float64)
        outputs = {}
        for i in range(calls):
            outputs, state = self.runner.step({C.INPUT: spikes[i * c.timesteps:(i + 1) * c.timesteps]}, state)
            counts += outputs[C.SPIKE_COUNTS]
        outputs = dict(outputs)
        outputs[C.SPIKE_COUNTS] = counts
        return outputs, state, calls

    def infer(self, x: np.ndarray, *, frame_index: int = 0) -> FrameResult:
        """Segment one frame from a fresh state."""
        spikes = self.encode(x, frame_index=frame_index)
        start = time.perf_counter()
        outputs, _, calls = self.run_encoded(spikes)
        latency = (time.perf_counter() - start) * 1e3
        logits = outputs[C.LOGITS]
        counts = dict(zip(self.contract.spike_layers, (float(v) for v in outputs[C.SPIKE_COUNTS])))
        return FrameResult(logits, logits.argmax(1), counts, latency, calls)

    def stream(self) -> Stream:
        return Stream(self)


class Stream:
    """Calls of ``T`` steps each, with the state carried from one call to the next.

    The step counter lives in the state: when it would pass the trained number
    of steps and the model was exported with ``bn_beyond="error"``, the call is
    refused; ``reset()`` starts a new frame.
    """

    def __init__(self, session: Session):
        self.session = session
        self.reset()

    def reset(self) -> None:
        self.state = self.session.fresh_state()
        self.steps_done = 0

    def feed(self, spikes: np.ndarray) -> dict[str, np.ndarray]:
        c = self.session.contract
        spikes = np.asarray(spikes, dtype=np.float32)
        if spikes.shape[1:] != tuple(c.input_shape[1:]) or spikes.shape[0] != c.timesteps:
            raise UserError(f"stream chunk has shape {spikes.shape}, the graph takes {tuple(c.input_shape)}")
        if c.bn_beyond == "error" and self.steps_done + c.timesteps > c.timesteps_trained:
            raise UserError(f"this frame already ran {self.steps_done} of its {c.timesteps_trained} trained steps; "
                            f"call reset() for a new frame, or export with --bn-beyond last|cycle for longer streams")
        outputs, self.state = self.session.runner.step({C.INPUT: spikes}, self.state)
        self.steps_done += c.timesteps
        return outputs
