"""The executable form of a graph: units (single nodes, fused chains, convolutions) in a dependency order.

:func:`build_program` plans once per activation: constants folded (:mod:`.graph`),
elementwise chains compiled (:mod:`.fusion`), convolutions given their layer
(:mod:`.conv`), every other node mapped to its reference op (:mod:`.ops`; an
unknown op is refused here, before any call). Units run in a topological
order of their own dependencies, preferring graph order, so a time-major
graph runs layer by layer when its LIF chains span the steps, and the T conv
nodes of a layer run as one unit (:class:`.conv.ConvGroup`). Values are
dropped after their last reader; nodes whose outputs nobody needs (a
``DequantizeLinear`` replaced by the integer conv) are not run at all.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.sparse.buffers import aligned_empty
from edge_snn.runtime.backends.sparse.conv import (DEFAULT_CROSSOVER, MODES, ConvGroup, group_convolutions, nonzero_key,
                                                  plan_convolutions)
from edge_snn.runtime.backends.sparse.fusion import ChainProgram, find_chains
from edge_snn.runtime.backends.sparse.graph import Graph
from edge_snn.runtime.backends.sparse.ops import OPS, unsupported
from edge_snn.runtime.model_file import node_attributes


@dataclass
class Context:
    """Per-runner execution settings: threads (0: all cores), conv mode and crossover rate."""

    threads: int = 0
    mode: str = "auto"
    crossover: float = DEFAULT_CROSSOVER


class NodeUnit:
    def __init__(self, node, order: int, source: str):
        if node.op_type not in OPS:
            raise unsupported(node, source)
        self.node, self.order = node, order
        self.fn = OPS[node.op_type]
        self.attrs = node_attributes(node)
        self.attrs["_outputs"] = len(node.output)
        self.inputs = [n for n in node.input if n]
        self.outputs = [n for n in node.output if n]

    def run(self, env: dict, context: Context) -> None:
        results = self.fn(self.attrs, [env[n] if n else None for n in self.node.input])
        for name, value in zip(self.node.output, results):
            if name:
                env[name] = value


class PoolGroup:
    """The AveragePool nodes of one layer (the T steps of a time-major graph, one geometry) as one kernel call.

    Pooled one node at a time, each call paid its own dispatch (about 0.1 ms
    here, as much as the pooling of a 64x64x64 map); together, the threads
    split all the steps' planes. Outputs go to a buffer reused from call to
    call unless one of them leaves the graph (as :class:`.conv.ConvGroup`).
    """

    def __init__(self, members: list[NodeUnit], x_shape, graph_outputs=()):
        from edge_snn.runtime.backends.sparse.pool import pool_geometry

        self.members = members
        self.order = min(m.order for m in members)
        self.inputs = [m.inputs[0] for m in members]
        self.outputs = [m.outputs[0] for m in members]
        self.geometry = pool_geometry(members[0].attrs, x_shape)
        shape = self.geometry[4]
        self._shape = (len(members) * shape[0], *shape[1:])
        self._buffer = None if set(graph_outputs).intersection(self.outputs) else aligned_empty(self._shape, np.float32)

    def run(self, env: dict, context: Context) -> None:
        from edge_snn.runtime.backends.sparse.pool import pool_images

        out = np.empty(self._shape, np.float32) if self._buffer is None else self._buffer
        pool_images([env[name] for name in self.inputs], self.geometry, out)
        batch = self.geometry[4][0]
        for i, name in enumerate(self.outputs):
            env[name] = out[i * batch:(i + 1) * batch]


def group_pools(units: list, graph: Graph, *, grouped: bool = True) -> list:
    """AveragePool node units with one geometry and input shape as :class:`PoolGroup` units (groups of two or more)."""
    if not grouped:
        return units
    groups: dict[tuple, list[NodeUnit]] = {}
    rest = []
    for unit in units:
        shape = graph.shapes.get(unit.inputs[0]) if isinstance(unit, NodeUnit) and unit.node.op_type == "AveragePool" else None
        if shape is not None and len(shape) == 4 and len(unit.outputs) == 1 and graph.dtypes.get(unit.inputs[0]) == np.float32:
            key = (tuple(shape), tuple(sorted((k, str(v)) for k, v in unit.attrs.items())))
            groups.setdefault(key, []).append(unit)
        else:
            rest.append(unit)
    for (shape, _), members in groups.items():
        rest += [PoolGroup(members, shape, graph.outputs)] if len(members) > 1 else members
    return rest


class ChainUnit:
    def __init__(self, program: ChainProgram, order: int, graph_outputs=()):
        self.program, self.order = program, order
        self.inputs, self.outputs = program.inputs, program.outputs
        p = program
        self.rows, self.length = p.rows, p.length
        self.row_shape = p.shape[:p.row_axes] + (1,) * (len(p.shape) - p.row_axes)
        # A store no graph output names (a layer's spikes inside the graph) is dead before the next
        # call, so its buffer is reused; one the caller gets (states, logits) is a new array each call.
        leaving = set(graph_outputs)
        self._buffers = [None if leaving.intersection(names) else aligned_empty(p.shape, np.float32) for names in p.stores]
        self.in_place: dict[int, int] = {}  # store slot -> full input it writes over (see write_over)
        self.counted = program.counted_stores()

    def write_over(self, writable: set[str]) -> None:
        """Let stores that no graph output names reuse the memory of inputs in ``writable`` (see ``Program``).

        A layer's spikes then go where its conv outputs were, in cache, instead
        of into a buffer of their own (which also cost a read of each line
        before writing it). On full-width dl-vgg9 (one thread) the chains alone
        took 25.7 instead of 34.4 ms per frame, and a whole frame 261 instead
        of 276 ms (paired runs in one process), with bit-identical outputs.
        """
        chosen = self.program.stores_over_inputs(writable)
        self.in_place = {slot: j for slot, j in chosen.items() if self._buffers[slot] is not None}
        for slot in self.in_place:
            self._buffers[slot] = None

    def run(self, env: dict, context: Context) -> None:
        from edge_snn.runtime.backends.sparse.chain_kernel import run_chain

        bound = self.bind(env)
        sums = run_chain(self.program.code, self.program.registers, bound.full_addresses, bound.rows,
                         bound.out_addresses, len(self.program.sums), self.rows, self.length)
        self.finish(env, bound, sums)

    def bind(self, env: dict) -> "BoundChain":
        """The chain's operands in ``env``, and the arrays its stores go to, as the kernels take them."""
        p = self.program
        full = [np.ascontiguousarray(env[n], np.float32) for n in p.full_inputs]
        rows = np.empty((max(len(p.row_inputs), 1), self.rows), np.float32)
        for i, name in enumerate(p.row_inputs):
            value = np.asarray(env[name], np.float32)
            value = value.reshape((1,) * (len(p.shape) - value.ndim) + value.shape)
            rows[i] = np.broadcast_to(value, self.row_shape).reshape(-1)
        outs = [full[self.in_place[slot]] if slot in self.in_place else np.empty(p.shape, np.float32) if buffer is None
                else buffer for slot, buffer in enumerate(self._buffers)]
        return BoundChain(full, rows, outs, np.array([a.ctypes.data for a in full] or [0], np.int64),
                          np.array([a.ctypes.data for a in outs] or [0], np.int64))

    def finish(self, env: dict, bound: "BoundChain", sums: np.ndarray) -> None:
        """Put the chain's results (stores, ``SUM`` totals, passed-through inputs) into ``env``."""
        p = self.program
        for names, array in zip(p.stores, bound.outs):
            for name in names:
                env[name] = array
        for (name, shape), total in zip(p.sums, sums):
            env[name] = np.full(shape, total, np.float32)
        for slot, total in self.counted.items():  # spike counts, exact: a conv reading these spikes need not count them
            for name in p.stores[slot]:
                env[nonzero_key(name)] = int(sums[total])
        for name, source in p.passthrough.items():
            env[name] = env[source]


@dataclass
class BoundChain:
    """A chain bound to one call's values; ``full`` and ``outs`` keep alive the arrays behind the addresses."""

    full: list
    rows: np.ndarray
    outs: list
    full_addresses: np.ndarray
    out_addresses: np.ndarray


class ConvChainUnit:
    """A layer's convolutions and the chain that alone reads them: one pass (:mod:`.conv_chain`) when all run event-driven.

    The unit stands where the chain stood in the schedule (the convolutions'
    inputs are ready before it, and only the chain read their outputs). A call
    in which some step runs dense goes step by step when the chain matched as
    LIF steps (:meth:`.conv.ConvGroup.run`), else runs the two units one after
    the other, as does every call with ``fused`` False (the tests' reference).
    """

    fused = True

    def __init__(self, group: ConvGroup, chain: ChainUnit, bounds: np.ndarray):
        from edge_snn.runtime.backends.sparse.lif_steps import match_lif_steps

        self.group, self.chain = group, chain
        matched = match_lif_steps(chain.program, group.outputs)
        self.steps = (bounds, *(matched or (np.zeros((0, 7), np.int64), -1, -1)))
        self.order = chain.order
        internal = set(group.outputs)
        self.inputs = [*group.inputs, *(n for n in chain.inputs if n not in internal)]
        self.outputs = chain.outputs

    def run(self, env: dict, context: Context) -> None:
        if not self.group.run(env, context, chain=(self.chain, *self.steps) if self.fused else None):
            self.chain.run(env, context)
        for name in self.group.outputs:
            env.pop(name, None)


def fuse_conv_chains(units: list, keep: set[str]) -> list:
    """Each event-capable :class:`ConvGroup` whose outputs only one chain reads, fused with that chain.

    The chain must take the group's outputs as full inputs one step after
    another (:meth:`.fusion.ChainProgram.step_bounds`) with the shape of one
    step's output (rows ``batch x C``). The chain stores over the conv
    outputs as it would unfused (:meth:`ChainUnit.write_over`).
    """
    readers: dict[str, set[int]] = {}
    for i, unit in enumerate(units):
        for name in unit.inputs:
            readers.setdefault(name, set()).add(i)
    fused: dict[int, ConvChainUnit] = {}
    absorbed = set()
    for i, group in enumerate(units):
        if not isinstance(group, ConvGroup) or group._outputs is None or keep.intersection(group.outputs):
            continue
        who = set().union(*(readers.get(n, set()) for n in group.outputs))
        if len(who) != 1:
            continue
        j = next(iter(who))
        chain = units[j]
        if not isinstance(chain, ChainUnit) or j in fused or j < i:
            continue
        p, y_shape = chain.program, tuple(group.members[0].y_shape)
        if tuple(p.shape) != y_shape or p.row_axes != 2:
            continue
        bounds = p.step_bounds(group.outputs)
        if bounds is None:
            continue
        chain.write_over(set(group.outputs))
        fused[j] = ConvChainUnit(group, chain, bounds)
        absorbed.add(i)
    return [fused.get(j, unit) for j, unit in enumerate(units) if j not in absorbed]


class MemoizedUnit:
    """Nodes that depend only on tiny graph inputs (the step counter): computed once per distinct input value.

    A time-major graph looks up each layer's BN scale and shift for each step
    with ``Add``/``Min``/``Gather``/``Reshape`` on ``state_in.step``: thousands
    of tiny numpy calls per frame whose results depend on one integer. They run
    as the graph says, the first time a step value is seen; later calls reuse
    the results (at most ``LIMIT`` step values are kept).
    """

    LIMIT = 256

    def __init__(self, units: list, keys: list[str], outputs: list[str]):
        self.units, self.keys, self.outputs = units, keys, outputs
        self.inputs = list(keys)
        self.order = min(u.order for u in units)
        self.cache: dict[bytes, dict] = {}

    def run(self, env: dict, context: Context) -> None:
        key = b"".join(np.ascontiguousarray(env[k]).tobytes() for k in self.keys)
        values = self.cache.get(key)
        if values is None:
            local = dict(env)
            for unit in self.units:
                unit.run(local, context)
            values = {name: local[name] for name in self.outputs}
            if len(self.cache) >= self.LIMIT:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = values
        env.update(values)


def _memoize_tiny(units: list, graph: Graph, keep: set[str]) -> list:
    """Fold the node units that depend only on constants and tiny graph inputs into one :class:`MemoizedUnit`."""
    keys = [name for name, (shape, _) in graph.inputs.items() if int(np.prod(shape)) <= 16]
    if not keys:
        return units
    derived = set(keys) | set(graph.constants)
    tiny = []
    for unit in units:
        if isinstance(unit, NodeUnit) and all(n in derived for n in unit.inputs):
            tiny.append(unit)
            derived.update(unit.outputs)
    if not tiny:
        return units
    tiny_ids = {id(u) for u in tiny}
    rest = [u for u in units if id(u) not in tiny_ids]
    read = {n for u in rest for n in u.inputs} | keep
    outputs = sorted({n for u in tiny for n in u.outputs if n in read})
    return [MemoizedUnit(tiny, keys, outputs), *rest]


class Program:
    """Runs a planned graph: ``program.run(feed) -> {output name: array}``."""

    def __init__(self, graph: Graph, units: list, works: dict, context: Context, *, fuse: bool = True):
        keep = set(graph.outputs) | set(graph.constants)
        units = fuse_conv_chains(units, keep | set(graph.inputs)) if fuse else units
        self.graph, self.units, self.works, self.context = graph, units, works, context
        needed_later: dict[str, int] = {}
        for i, unit in enumerate(units):
            for name in unit.inputs:
                needed_later[name] = i
        self.memoized = {n for u in units if isinstance(u, MemoizedUnit) for n in u.outputs} | set(graph.constants)  # returned as copies
        self.release = [[] for _ in units]
        for name, i in needed_later.items():
            if name not in keep:
                self.release[i].append(name)
        # A conv output whose only reader is one chain is dead after that chain and shares its memory
        # with nothing (no alias node reads it): the chain may store its results over it.
        readers: dict[str, set[int]] = {}
        for i, unit in enumerate(units):
            for name in unit.inputs:
                readers.setdefault(name, set()).add(i)
        conv_outputs = {n for u in units if isinstance(u, ConvGroup) for n in u.outputs} - keep - set(graph.inputs)
        for i, unit in enumerate(units):
            if isinstance(unit, ChainUnit):
                unit.write_over({n for n in unit.inputs if n in conv_outputs and readers[n] == {i}})

    def parts(self) -> list:
        """The units, each fused conv and chain (:class:`ConvChainUnit`) as its two parts."""
        return [part for unit in self.units for part in ((unit.group, unit.chain) if isinstance(unit, ConvChainUnit) else (unit,))]

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numba

        numba.set_num_threads(self.context.threads or numba.config.NUMBA_NUM_THREADS)
        env = dict(self.graph.constants)
        env.update(feed)
        for unit, done in zip(self.units, self.release):
            unit.run(env, self.context)
            for name in done:
                env.pop(name, None)
        # A graph output that is a view (an Identity or Reshape of a conv output, say) may look into a
        # buffer the next call reuses: it is copied, like the memoized values, so the caller keeps it.
        return {name: np.array(env[name]) if name in self.memoized or np.asarray(env[name]).base is not None
                else np.asarray(env[name]) for name in self.graph.outputs}


def _schedule(units: list, available: set[str]) -> list | None:
    """Units in a dependency order (ready units by graph order), or None if fused chains made a cycle."""
    producer = {}
    for i, unit in enumerate(units):
        for name in unit.outputs:
            producer[name] = i
    waiting = []
    users: dict[int, list[int]] = {}
    for i, unit in enumerate(units):
        deps = {producer[n] for n in unit.inputs if n not in available and n in producer}
        deps.discard(i)
        waiting.append(len(deps))
        for d in deps:
            users.setdefault(d, []).append(i)
    ready = [(unit.order, i) for i, unit in enumerate(units) if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(units[i])
        for j in users.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (units[j].order, j))
    return order if len(order) == len(units) else None


def _prune(units: list, outputs: list[str]) -> list:
    """Drop units whose outputs no later unit and no graph output reads."""
    needed = set(outputs)
    kept = []
    for unit in reversed(units):
        if any(n in needed for n in unit.outputs):
            kept.append(unit)
            needed.update(unit.inputs)
    return kept[::-1]


def build_program(graph: Graph, known_layers: list[str], context: Context, *, fuse: bool = True,
                  integer: bool = True) -> Program:
    if context.mode not in MODES:
        raise UserError(f"unknown sparse conv mode {context.mode!r}; choose one of {', '.join(MODES)}")
    if not 0.0 <= context.crossover <= 1.0:
        raise UserError(f"crossover must be a nonzero fraction between 0 and 1, got {context.crossover}")
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    for node in graph.nodes:  # refuse unknown ops before planning anything
        if node.op_type not in OPS and node.op_type not in ("Conv", "ConvTranspose"):
            raise unsupported(node, graph.source)
    convs, works = plan_convolutions(graph, known_layers, integer=integer)
    conv_ids = {id(u.node) for u in convs}
    chains = find_chains(graph) if fuse else []
    grouped = True
    while True:
        fused = {id(n) for c in chains for n in c.nodes}
        units = [*group_convolutions(convs, graph.outputs, grouped=grouped),
                 *(ChainUnit(c, min(index[id(n)] for n in c.nodes), graph.outputs) for c in chains)]
        nodes = [NodeUnit(n, index[id(n)], graph.source) for n in graph.nodes if id(n) not in fused and id(n) not in conv_ids]
        units += group_pools(nodes, graph, grouped=grouped)
        units = _memoize_tiny(sorted(units, key=lambda u: u.order), graph, set(graph.outputs))
        order = _schedule(units, set(graph.inputs) | set(graph.constants))
        if order is not None:
            break
        if grouped:  # a layer's steps that feed one another (never seen in exports): one unit per conv and pool node
            grouped = False
            continue
        if not chains:
            raise UserError(f"{graph.source}: the graph's dependencies form a cycle; re-export the model")
        chains = chains[:-1]  # a chain that is not convex: run its nodes one by one instead (never seen in exports)
    return Program(graph, _prune(order, graph.outputs), works, context, fuse=fuse)

