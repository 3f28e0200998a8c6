"""Loading an ONNX file into a sparse-backend :class:`~.program.Program` (Polygraphy-style loader).

``ProgramFromOnnx(path, threads=0, mode="auto", crossover=None)`` is cheap; calling it
imports the accelerated kernels (numba), reads and plans the graph, builds the
dense sessions and runs one all-zero call so that every kernel is compiled (or
read from numba's on-disk cache) before the first timed call. If the kernels
cannot load, that is one :class:`UserError` line: the backend never falls
back to a slow path silently.
"""

from __future__ import annotations

import numpy as np

from edge_snn.errors import UserError

INSTALL_HINT = ("the sparse backend needs numba (its accelerated kernels) and onnxruntime (its dense convolutions): "
                "pip install 'numba==0.68.1' onnxruntime, or run with --backend onnxruntime")


def kernel_import_error() -> str | None:
    """None when the accelerated kernels import here, else why not (one line)."""
    try:
        import llvmlite  # noqa: F401
        import numba  # noqa: F401
    except Exception as err:  # ImportError, or numba refusing this numpy/CPU
        return f"{INSTALL_HINT} ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else 'no detail'})"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


def layer_names(metadata: dict[str, str], source: str) -> list[str]:
    """The contract's conv and spiking layer names (to name work counters), or none for a graph without metadata.

    The graph is not checked against the metadata here: the runner executes the
    graph as it is (parity's rewired graphs have inputs the metadata does not
    list); the caller (:class:`~edge_snn.runtime.Session`) checks the contract.
    """
    from edge_snn.runtime import contract as C

    if C.PREFIX + "format_version" not in metadata:
        return []
    contract = C.read_contract(metadata, source=source)
    return [row["name"] for row in contract.layers] + list(contract.spike_layers)


class ProgramFromOnnx:
    """Loader: ``ProgramFromOnnx(path, ...)()`` is a warmed-up :class:`~.program.Program`.

    threads: kernel threads (numba and the dense sessions; 0: one per core).
    mode: ``auto`` (per call, event-driven when a conv's input nonzero rate is at most
        ``crossover``, else dense), ``event`` or ``dense`` (forced, for tests and benchmarks).
    crossover: nonzero fraction (default :data:`~.conv.DEFAULT_CROSSOVER`).
    providers: refused (they name ONNX Runtime execution providers).
    fuse / integer: elementwise-chain fusion and the INT8 integer-add path (on by default;
        switches for benchmarks and tests).
    """

    def __init__(self, path, *, threads: int = 0, mode: str = "auto", crossover: float | None = None,
                 fuse: bool = True, integer: bool = True, providers: list[str] | None = None):
        if providers:
            raise UserError(f"the sparse backend runs on the CPU with its own kernels; --providers {','.join(providers)} "
                            "applies to --backend onnxruntime only")
        if threads < 0:
            raise UserError(f"--threads must be 0 (one per core) or more, got {threads}")
        self.path = str(path)
        self.threads, self.mode, self.crossover = threads, mode, crossover
        self.fuse, self.integer = fuse, integer

    def __call__(self):
        problem = kernel_import_error()
        if problem:
            raise UserError(problem)
        from edge_snn.runtime.backends.sparse.conv import DEFAULT_CROSSOVER
        from edge_snn.runtime.backends.sparse.graph import load_graph
        from edge_snn.runtime.backends.sparse.ops import run_node
        from edge_snn.runtime.backends.sparse.program import Context, build_program

        graph = load_graph(self.path, lambda node, inputs: run_node(node, inputs, self.path))
        context = Context(threads=self.threads, mode=self.mode,
                          crossover=DEFAULT_CROSSOVER if self.crossover is None else self.crossover)
        program = build_program(graph, layer_names(graph.metadata, self.path), context, fuse=self.fuse, integer=self.integer)
        try:
            program.run({name: np.zeros(shape, dtype) for name, (shape, dtype) in program.graph.inputs.items()})
        except UserError:
            raise
        except Exception as err:  # numba/LLVM failing to compile on this machine
            raise UserError(f"the sparse backend's kernels failed to compile here ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:160] if str(err) else 'no detail'}); run with --backend onnxruntime") from None
        for work in program.works.values():
            work.reset()
        return program
