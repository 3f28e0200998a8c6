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

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import make_runner
from edge_snn.runtime.encoding import encode_frame
from edge_snn.runtime.inputs import fit_frame
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
        describe = getattr(self.runner, "graph_io", None)  # a backend that reads its own tensors (an engine)
        if describe is not None:
            try:
                C.check_against_graph(self.contract, describe(), self.path)
            except BaseException:
                self.runner.deactivate()
                raise

    def close(self) -> None:
        self.runner.deactivate()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- inputs ------------------------------------------------------------
    def validate_frame(self, x: np.ndarray) -> np.ndarray:
        """Check a frame against the contract (see :func:`edge_snn.runtime.inputs.fit_frame`); returns it batched."""
        c = self.contract
        return fit_frame(x, encoding=c.encoding, channels=c.channels, steps=c.frame_steps, input_range=c.input_range,
                         size=(c.height, c.width), batch=c.batch)

    def encode(self, x: np.ndarray, *, frame_index: int = 0) -> np.ndarray:
        """A validated frame as the ``[T_frame, B, C, H, W]`` spikes the graph reads."""
        c = self.contract
        return encode_frame(self.validate_frame(x), c.encoding, c.frame_steps, seed=self.seed, frame_index=frame_index)

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
        counts = dict(zip(self.contract.spike_layers, (float(v) for v in outputs.get(C.SPIKE_COUNTS, ()))))
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
