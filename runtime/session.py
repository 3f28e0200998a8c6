"""``Session``: an exported edge-snn model ready to segment frames, without torch.

A *frame* is one image (or one window of event frames) presented for the
``timesteps_trained`` steps the model was trained with. ``infer`` encodes it,
runs it in as many calls as the graph's ``T`` requires (streaming the state
from call to call) and returns logits, the class map and spike counts.
``stream`` keeps the state across calls for inputs that arrive in pieces.

Threads: a ``Session`` may be shared between threads (its runner serializes
calls). A :class:`Stream` holds one evolving state: it serializes its own
``feed`` calls, but its chunks must come in order, so give each stream one
producer. With TensorRT the state lives in the engine's buffers, so only one
stream per session can be live at a time (the runner refuses a stale state).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from edge_snn.errors import InputError, UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import make_runner
from edge_snn.runtime.encoding import direct_encode, frame_seed, poisson_encode
from edge_snn.runtime.model_file import load_contract
from edge_snn.runtime.streaming import fresh_state, run_steps


@dataclass
class FrameResult:
    """logits ``[B, K, H, W]``, class map ``[B, H, W]`` (uint8/int64), spikes per layer, wall time."""

    logits: np.ndarray
    class_map: np.ndarray
    spike_counts: dict[str, float]
    latency_ms: float
    calls: int = 1
    extra: dict = field(default_factory=dict)


class Session:
    """An exported model plus its runner. Use as a context manager or call ``close()``."""

    def __init__(self, path, *, backend: str = "auto", providers: list[str] | None = None, seed: int = 0,
                 runner=None, contract: C.ModelContract | None = None, **runner_options):
        """Open ``path`` (``.onnx`` or a TensorRT engine) with ``backend``.

        contract: the graph's contract when the caller already read and checked
        it from the file this graph was derived from (parity's rewired graphs).
        """
        self.path = str(path)
        self.contract = contract or load_contract(self.path)
        self.seed = seed
        if providers:
            runner_options["providers"] = providers
        self.runner = runner or make_runner(self.path, backend, **runner_options)
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
            raise InputError(f"input must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        events = c.encoding == "events"
        if events and x.ndim == 4:
            x = x[:, None]
        elif not events and x.ndim == 3:
            x = x[None]
        want = "[T, P, H, W] event frames" if events else "[C, H, W] image"
        if x.ndim != (5 if events else 4):
            raise InputError(f"input of shape {x.shape} does not fit this model, which expects a {want} "
                            f"of {c.channels} channels at {c.height}x{c.width}")
        channels, height, width = x.shape[-3:]
        batch = x.shape[1] if events else x.shape[0]
        if channels != c.channels:
            raise InputError(f"input has {channels} channels, the model expects {c.channels} ({want}); "
                            f"convert the input (e.g. RGB for images, ON/OFF polarities for events)")
        if (height, width) != (c.height, c.width):
            raise InputError(f"input is {height}x{width}, the model was exported for {c.height}x{c.width}; "
                            f"resize the input or re-export with --height {height} --width {width}")
        if batch != c.batch:
            raise InputError(f"input batch {batch} differs from the exported batch {c.batch}; re-export with --batch {batch}")
        if events and x.shape[0] < c.timesteps_trained:
            raise InputError(f"event input holds {x.shape[0]} frames, the model needs {c.timesteps_trained} per frame")
        if not np.isfinite(x).all():
            raise InputError("input contains NaN or infinite values; clean or re-normalize it")
        lo, hi = c.input_range
        if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
            hint = ("scale the event frames as in training (the built-in data: counts clipped at 4, divided by 4)"
                    if events else "normalize it (edge_snn.runtime.images.normalize_image does it for 8-bit images)")
            raise InputError(f"input values span [{x.min():.3g}, {x.max():.3g}], the model expects [{lo}, {hi}]; {hint}")
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
        return fresh_state(self.contract)

    # --- running -----------------------------------------------------------
    def run_encoded(self, spikes: np.ndarray, state=None) -> tuple[dict[str, np.ndarray], object, int]:
        """Run encoded steps ``[N, B, C, H, W]`` (N a multiple of the graph's T) from ``state``.

        Returns (outputs of the last call with spike counts summed, state reached, calls made).
        """
        result = run_steps(self.runner, self.contract, spikes, state)
        return result.outputs, result.state, result.calls

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
    """Chunks of ``T`` steps (or a multiple of T), with the state carried from one call to the next.

    The step counter is the graph's own (``state_in.step`` in the state):
    when a chunk would pass the trained number of steps and the model was
    exported with ``bn_beyond="error"``, it is refused; ``reset()`` starts a
    new frame.
    """

    def __init__(self, session: Session):
        self.session = session
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.state = None  # a fresh frame

    @property
    def steps_done(self) -> int:
        """Timesteps of the current frame integrated so far, read from the graph's step counter."""
        return 0 if self.state is None else self.session.runner.state_step(self.state)

    def feed(self, spikes: np.ndarray) -> dict[str, np.ndarray]:
        """Run one chunk ``[k*T, B, C, H, W]``; returns its outputs (``spike_counts`` summed over its calls)."""
        c = self.session.contract
        spikes = np.asarray(spikes, dtype=np.float32)
        if spikes.shape[1:] != tuple(c.input_shape[1:]) or spikes.shape[0] % c.timesteps or not spikes.shape[0]:
            raise UserError(f"stream chunk has shape {spikes.shape}, the graph takes {tuple(c.input_shape)} "
                            f"(a multiple of {c.timesteps} steps)")
        with self._lock:
            result = run_steps(self.session.runner, c, spikes, self.state)
            self.state = result.state
        return result.outputs
