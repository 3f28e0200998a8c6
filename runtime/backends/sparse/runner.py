"""The sparse runner: an edge-snn graph executed event-driven on the CPU, with a record of the work it did.

``infer(feed)`` checks the feed against the graph's inputs and returns every
graph output (``state_out.*`` included) as host arrays; streaming uses the
base class (state is host memory here).

:meth:`SparseRunner.work_stats` is how a benchmark shows *what* was computed
beside how long it took: per conv layer, the input nonzero rate, the mode the
layer ran in (event / dense / mixed over calls), the synaptic operations done
in event mode and the MACs done in dense mode, summed over the calls since
:meth:`SparseRunner.reset_work_stats` (activation resets).
"""

from __future__ import annotations

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.base import Runner
from edge_snn.runtime.backends.sparse.loader import ProgramFromOnnx


class SparseRunner(Runner):
    """Runs an ONNX file with the sparse backend; ``loader`` is a :class:`ProgramFromOnnx` or a path."""

    name = "sparse"

    def __init__(self, loader, **loader_options):
        loader = loader if isinstance(loader, ProgramFromOnnx) else ProgramFromOnnx(loader, **loader_options)
        super().__init__(loader.path)
        self.loader = loader
        self.program = None
        self.calls = 0

    def activate_impl(self) -> None:
        self.program = self.loader()
        self.calls = 0

    def deactivate_impl(self) -> None:
        self.program = None

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        expected = self.program.graph.inputs
        missing = [name for name in expected if name not in feed]
        extra = [name for name in feed if name not in expected]
        if missing or extra:
            raise UserError(f"{self.model_path}: feed does not match the graph inputs (missing {missing[:4]}, "
                            f"unknown {extra[:4]}); pass exactly {list(expected)[:6]}...")
        checked = {}
        for name, (shape, dtype) in expected.items():
            value = np.asarray(feed[name])
            if tuple(value.shape) != tuple(shape):
                raise UserError(f"{self.model_path}: input {name!r} has shape {tuple(value.shape)}, the graph expects "
                                f"{tuple(shape)}")
            checked[name] = np.ascontiguousarray(value, dtype=dtype)
        outputs = self.program.run(checked)
        self.calls += 1
        return outputs

    # --- work-aware reporting -------------------------------------------------
    def work_stats(self) -> dict:
        """What the convolutions did since the last reset (JSON-ready).

        ``{"calls": graph calls, "layers": [{"name", "op", "integer", "nodes", "calls",
        "input_rate", "mode", "event_calls", "dense_calls", "synaptic_ops", "dense_macs", "needed_ops",
        "seconds"}], "synaptic_ops", "dense_macs", "needed_ops", "seconds", "crossover", "mode", "threads"}``.
        ``input_rate`` is the nonzero fraction of the layer's inputs over all its
        calls; ``synaptic_ops`` counts one add (0/1 input) or multiply-add per
        nonzero input, kernel tap inside the map and output channel, done in event
        mode; ``dense_macs`` the MACs of dense calls (taps on the map);
        ``needed_ops`` what the inputs needed (event calls exactly, dense calls as
        rate x MACs): the useful work of the sparse roofline. ``seconds``: wall time
        in the layer's convolutions.
        """
        self._require_active()
        layers = [w.as_dict() for w in self.program.works.values()]
        totals = {key: sum(x[key] for x in layers) for key in ("synaptic_ops", "dense_macs", "needed_ops", "seconds")}
        return {"calls": self.calls, "layers": layers, **totals, "crossover": self.program.context.crossover,
                "mode": self.program.context.mode, "threads": self.program.context.threads}

    def reset_work_stats(self) -> None:
        self._require_active()
        self.calls = 0
        for work in self.program.works.values():
            work.reset()


def format_work_stats(stats: dict, frames: int | None = None) -> str:
    """A console table of :meth:`SparseRunner.work_stats` (per frame when ``frames`` is given)."""
    per = max(frames or 1, 1)
    unit = "/frame" if frames else ""
    lines = [f"  work ({stats['calls']} calls, crossover {stats['crossover']:.2f}, mode {stats['mode']})",
             f"    {'layer':<12}{'input rate':>11}{'mode':>7}{'synaptic ops' + unit:>22}{'dense MACs' + unit:>20}{'ms' + unit:>10}"]
    for x in stats["layers"]:
        rate = "-" if x["input_rate"] is None else f"{x['input_rate']:.3f}"
        lines.append(f"    {x['name']:<12}{rate:>11}{x['mode'] or '-':>7}{x['synaptic_ops'] / per:>22,.0f}"
                     f"{x['dense_macs'] / per:>20,.0f}{x['seconds'] * 1e3 / per:>10.2f}")
    lines.append(f"    {'total':<12}{'':>11}{'':>7}{stats['synaptic_ops'] / per:>22,.0f}{stats['dense_macs'] / per:>20,.0f}"
                 f"{stats['seconds'] * 1e3 / per:>10.2f}")
    return "\n".join(lines)
