"""The runner lifecycle every backend shares (after Polygraphy's runners).

``activate()`` builds the session or engine (lazily importing its library),
``infer(feed)`` maps ``dict[str, ndarray]`` to ``dict[str, ndarray]``,
``deactivate()`` frees it. Subclasses fill the ``*_impl`` methods only. The
comparator, the session and the benchmarks only ever see plain dicts, so a
new backend is one module.

Streaming: :meth:`Runner.step` feeds the state of the previous call back.
The default moves the state through host memory; a backend that can keep it
on the device (TensorRT: swap the input and output buffer addresses)
overrides :meth:`step_impl` and returns an opaque state handle instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edge_snn.runtime.contract import STATE_IN, STATE_OUT


class Runner(ABC):
    """Base of every backend runner."""

    name = "runner"

    def __init__(self, model_path: str):
        self.model_path = str(model_path)
        self.is_active = False

    # --- lifecycle ---------------------------------------------------------
    def activate(self) -> Runner:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.is_active:
            raise RuntimeError(f"{self.name} runner used before activate()")
        return self.infer_impl(feed)

    def step(self, inputs: dict[str, np.ndarray], state):
        """One streaming call: ``(non-state inputs, state) -> (outputs, new state)``.

        ``state`` is what the previous call returned (or a host dict of
        ``state_in.*`` arrays for a fresh start). Outputs exclude the state.
        """
        if not self.is_active:
            raise RuntimeError(f"{self.name} runner used before activate()")
        return self.step_impl(inputs, state)

    def step_impl(self, inputs: dict[str, np.ndarray], state):
        if isinstance(state, dict) and any(k.startswith(STATE_OUT) for k in state):
            state = {STATE_IN + k[len(STATE_OUT):]: v for k, v in state.items()}
        outputs = self.infer_impl({**inputs, **state})
        new_state = {STATE_IN + k[len(STATE_OUT):]: v for k, v in outputs.items() if k.startswith(STATE_OUT)}
        return {k: v for k, v in outputs.items() if not k.startswith(STATE_OUT)}, new_state

    def state_to_host(self, state) -> dict[str, np.ndarray]:
        """The state as host arrays keyed ``state_in.*`` (a no-op for host-resident state)."""
        return state

    # --- to fill -----------------------------------------------------------
    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def deactivate_impl(self) -> None:
        pass
