"""The one streaming driver: encoded steps through T-step graph calls, the state carried from call to call.

An exported graph runs ``T`` steps per call (``contract.timesteps``); a frame
(or a longer stream) needs ``N / T`` calls, each fed the state the previous
call returned. :func:`run_steps` is the only loop over those calls in
edge-snn: :class:`~edge_snn.runtime.Session`, :class:`~edge_snn.runtime.Stream`,
parity, the benchmarks and the profiler all call it. The state rename
(``state_out.*`` -> ``state_in.*``) lives in :func:`edge_snn.runtime.contract.state_inputs`,
called by the runners.

The step counter is the graph's own (``state_in.step``): a model exported with
``bn_beyond="error"`` refuses, before the first call, a run that would pass
the ``timesteps_trained`` steps its batch norms hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C


@dataclass
class StepsResult:
    """What :func:`run_steps` returns.

    outputs: the last call's outputs without the state, except ``spike_counts``,
        which is summed over all calls (float64).
    state: the state reached (host dict or the backend's device handle).
    calls: graph calls made.
    """

    outputs: dict[str, np.ndarray]
    state: object
    calls: int


def fresh_state(contract: C.ModelContract) -> dict[str, np.ndarray]:
    """All-zero ``state_in.*`` arrays: a new frame."""
    return {C.STATE_IN + s.name: np.zeros(s.shape, dtype=s.dtype) for s in contract.state}


def check_step_budget(contract: C.ModelContract, steps_done: int, steps: int) -> None:
    """Refuse ``steps`` more steps after ``steps_done`` when BNTT has no set for them (``bn_beyond="error"``)."""
    if contract.bn_beyond == "error" and steps_done + steps > contract.timesteps_trained:
        raise UserError(f"this frame already ran {steps_done} of its {contract.timesteps_trained} trained steps and "
                        f"{steps} more were asked; reset the stream for a new frame, or export with "
                        f"--bn-beyond last|cycle for longer streams")


def run_steps(runner, contract: C.ModelContract, steps: np.ndarray, state=None, *,
              extra_inputs: Callable[[int, int, int], dict] | None = None,
              on_call: Callable[[int, int, dict], None] | None = None) -> StepsResult:
    """Run encoded steps ``[N, B, C, H, W]`` (N a multiple of T) in ``N / T`` calls from ``state``.

    state: None for a fresh frame, else what a previous call returned.
    extra_inputs(call, lo, hi): further graph inputs for the call covering
        steps ``lo..hi`` (parity's teacher-forced spikes).
    on_call(call, lo, outputs): sees each call's outputs (per-step spike tensors).
    """
    T = contract.timesteps
    n = int(steps.shape[0])
    if n == 0 or n % T:
        raise UserError(f"{n} steps cannot be split into calls of T={T} steps; give a multiple of {T}")
    if state is None:
        state, steps_done = fresh_state(contract), 0
    else:
        steps_done = runner.state_step(state)
    check_step_budget(contract, steps_done, n)
    counts = np.zeros(len(contract.spike_layers), dtype=np.float64)
    outputs: dict = {}
    for call in range(n // T):
        lo, hi = call * T, (call + 1) * T
        feed = {C.INPUT: steps[lo:hi]}
        if extra_inputs is not None:
            feed.update(extra_inputs(call, lo, hi))
        outputs, state = runner.step(feed, state)
        if C.SPIKE_COUNTS in outputs:  # absent in the DLA form (contract.form "dla")
            counts += outputs[C.SPIKE_COUNTS]
        if on_call is not None:
            on_call(call, lo, outputs)
    outputs = dict(outputs)
    if C.SPIKE_COUNTS in outputs:
        outputs[C.SPIKE_COUNTS] = counts
    return StepsResult(outputs, state, n // T)
