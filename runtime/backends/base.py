"""The runner lifecycle every backend shares (after Polygraphy's runners).

A backend is one folder with a *loader* (a cheap description of what to load,
called once by ``activate()``; it imports the heavy library) and a *runner*.
``activate()`` builds the session or engine, ``infer(feed)`` maps
``dict[str, ndarray]`` to ``dict[str, ndarray]``, ``deactivate()`` frees it.
Subclasses fill the ``*_impl`` methods only. The comparator, the session and
the benchmarks only ever see plain dicts, so a new backend is one folder.

Streaming: :meth:`Runner.step` feeds the state of the previous call back.
The default moves the state through host memory; a backend that can keep it
on the device (TensorRT: swap the input and output buffer addresses; ONNX
Runtime: bind OrtValues) overrides :meth:`step_impl` and returns an opaque
state handle instead. The T-call loop over a frame lives in
:mod:`edge_snn.runtime.streaming`, not here.

Threads: calls into one runner are serialized by a lock, so a runner (and a
:class:`~edge_snn.runtime.Session` holding it) may be shared between threads.
A backend whose state lives in its own buffers (TensorRT) still gives each
call's state handle a lifetime of one call; see its runner.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np

from edge_snn.runtime.contract import STATE_IN, plain_outputs, state_inputs


class Runner(ABC):
    """Base of every backend runner."""

    name = "runner"

    def __init__(self, model_path: str):
        self.model_path = str(model_path)
        self.is_active = False
        self._lock = threading.RLock()

    # --- lifecycle ---------------------------------------------------------
    def activate(self) -> Runner:
        with self._lock:
            if not self.is_active:
                self.activate_impl()
                self.is_active = True
        return self

    def deactivate(self) -> None:
        with self._lock:
            if self.is_active:
                self.deactivate_impl()
                self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def _require_active(self) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name} runner used before activate()")

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self._require_active()
            return self.infer_impl(feed)

    def step(self, inputs: dict[str, np.ndarray], state):
        """One streaming call: ``(non-state inputs, state) -> (outputs, new state)``.

        ``state`` is what the previous call returned (or a host dict of
        ``state_in.*`` arrays for a fresh start). Outputs exclude the state.
        """
        with self._lock:
            self._require_active()
            return self.step_impl(inputs, state)

    def step_impl(self, inputs: dict[str, np.ndarray], state):
        outputs = self.infer_impl({**inputs, **state_inputs(state)})
        return plain_outputs(outputs), state_inputs(outputs)

    def state_to_host(self, state) -> dict[str, np.ndarray]:
        """The state as host arrays keyed ``state_in.*`` (a no-op for host-resident state)."""
        return state

    def state_step(self, state) -> int:
        """The graph's own step counter in ``state``: timesteps of the current frame already integrated."""
        return int(np.asarray(self.state_to_host(state)[STATE_IN + "step"]).reshape(-1)[0])

    # --- to fill -----------------------------------------------------------
    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def deactivate_impl(self) -> None:
        pass

