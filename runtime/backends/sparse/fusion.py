"""Find the chains of elementwise nodes the exporter emits and compile each into one :mod:`.chain_kernel` program.

Everything the chain computes is read from the graph: the nodes, their order
and operand order, the constants (leak, threshold) and the runtime values
(the BN scale gathered for this step). A chain is a connected set of
``Add/Sub/Mul/Div/Min/Max/Greater/Cast(to float)/Identity/Relu/Clip`` nodes whose outputs
all have one shape ``S``; each of its inputs is either *full* (shape ``S``,
float32) or *per row* (constant over the trailing axes, e.g. ``[1, C, 1, 1]``
or a scalar); a ``ReduceSum`` over all axes of a chain value (the spike count)
is folded in. Nodes that do not fit (integer step arithmetic, a bool that
leaves the chain) stay single nodes. In a time-major graph the LIF chains of
one layer are joined step to step through the membrane, so one program
integrates all T steps of a layer with the membrane in registers, and the
executor runs the graph layer by layer (any topological order computes the
same values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_snn.runtime.backends.sparse import chain_kernel as K
from edge_snn.runtime.backends.sparse.graph import Graph
from edge_snn.runtime.model_file import node_attributes

ARITHMETIC = {"Add": K.ADD, "Sub": K.SUB, "Mul": K.MUL, "Div": K.DIV, "Greater": K.GREATER, "Relu": K.RELU,
              "Min": K.MIN, "Max": K.MAX}
ALIASES = ("Identity", "Cast")
MIN_ROW_LENGTH = 16  # shorter rows: per-row dispatch would cost more than the numpy nodes it replaces
MIN_ELEMENTS = 2048
F32 = np.dtype(np.float32)


class Expressions:
    """Hash-consed expression nodes of a chain's values: equal trees get equal ids (subtrees shared, never copied).

    A node is ``("F", full input)``, ``("R", row input)`` or ``(opcode, id, id)``;
    the operands of ``ADD`` and ``MUL`` are sorted (IEEE addition and
    multiplication are commutative, so either order computes the same bits).
    """

    def __init__(self):
        self.ids: dict[tuple, int] = {}
        self.nodes: list[tuple] = []

    def get(self, key: tuple, create: bool = True) -> int | None:
        if key[0] in (K.ADD, K.MUL) and key[1] > key[2]:
            key = (key[0], key[2], key[1])
        if key not in self.ids:
            if not create:
                return None
            self.ids[key] = len(self.nodes)
            self.nodes.append(key)
        return self.ids[key]


@dataclass
class ChainProgram:
    """One compiled chain: its code and how to bind it to values (see :mod:`.chain_kernel`)."""

    shape: tuple[int, ...]
    row_axes: int  # S[:row_axes] are rows, S[row_axes:] one row
    code: np.ndarray
    registers: int
    full_inputs: list[str]
    row_inputs: list[str]
    stores: list[list[str]]  # output slot -> the value names it holds (aliases)
    sums: list[tuple[str, tuple[int, ...]]]  # sum slot -> (ReduceSum output name, its shape)
    passthrough: dict[str, str] = field(default_factory=dict)  # output name -> external input it equals
    nodes: list = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(np.prod(self.shape[:self.row_axes], dtype=np.int64))

    @property
    def length(self) -> int:
        return int(np.prod(self.shape[self.row_axes:], dtype=np.int64))

    @property
    def inputs(self) -> list[str]:
        return self.full_inputs + self.row_inputs + sorted(set(self.passthrough.values()) - set(self.full_inputs) - set(self.row_inputs))

    @property
    def outputs(self) -> list[str]:
        return [n for names in self.stores for n in names] + [n for n, _ in self.sums] + list(self.passthrough)

    def evaluate(self) -> tuple[Expressions, dict[int, int], dict[int, int]]:
        """The code evaluated symbolically: (expressions, store slot -> node id, sum slot -> node id)."""
        e = Expressions()
        registers: dict[int, int] = {}
        stores, sums = {}, {}
        for op, dst, ka, ia, kb, ib in self.code.tolist():
            if op == K.STORE:
                stores[dst] = registers[ia]
            elif op == K.SUM:
                sums[dst] = registers[ia]
            else:
                operands = [registers[index] if kind == K.REGISTER else e.get(("F" if kind == K.FULL else "R", index))
                            for kind, index in ((ka, ia), (kb, ib))]
                registers[dst] = e.get((op, *operands))
        return e, stores, sums

    def counted_stores(self) -> dict[int, int]:
        """Store slot -> sum slot, where the store is a ``Greater`` result (0/1) and the sum adds that same value.

        That total is the stored tensor's nonzero count, exactly (see
        :class:`.program.ChainUnit`: the next conv reads it instead of counting).
        """
        e, stores, sums = self.evaluate()
        summed = {node: slot for slot, node in sums.items()}
        return {slot: summed[node] for slot, node in stores.items() if e.nodes[node][0] == K.GREATER and node in summed}

    def step_bounds(self, steps: list[str]) -> np.ndarray | None:
        """Where each step's instructions start, for :mod:`.conv_chain`; None if the chain cannot run step by step.

        ``steps`` are full inputs that become ready one after another (a
        layer's T conv outputs). Step n runs from the first instruction that
        reads ``steps[n]`` to the one before the first that reads
        ``steps[n + 1]`` (step 0 from the start, the last step to the end). That
        needs every step read, and first read in their order: then no
        instruction reads a step before its turn.
        """
        position = {self.full_inputs.index(name): n for n, name in enumerate(steps) if name in self.full_inputs}
        if len(position) != len(steps):
            return None
        first: dict[int, int] = {}
        for i, (op, _, ka, ia, kb, ib) in enumerate(self.code.tolist()):
            if op in (K.STORE, K.SUM):
                continue
            for kind, index in ((ka, ia), (kb, ib)):
                if kind == K.FULL and index in position:
                    first.setdefault(position[index], i)
        order = [first.get(n) for n in range(len(steps))]
        if None in order or order != sorted(order):
            return None
        return np.array([0, *order[1:], len(self.code)], np.int64)

    def stores_over_inputs(self, writable: set[str]) -> dict[int, int]:
        """Store slot -> index of a full input in ``writable`` whose memory the store may reuse.

        A store may write over a full input that no instruction reads after
        it: every work item runs the whole program on its own stretch of
        values, so by the time it stores, it has read all of that input it
        will ever read. Each input goes to at most one store, the one right
        after the input's last read (a layer's spikes of step t over its
        conv output of step t, still in cache). ``writable`` must hold only
        values nobody else reads and that are not graph inputs or outputs:
        that is the caller's rule (see ``Program``).
        """
        last_read, stored = {}, {}
        for i, (op, dst, ka, ia, kb, ib) in enumerate(self.code.tolist()):
            if op == K.STORE:
                stored[dst] = i
            elif op != K.SUM:
                for kind, index in ((ka, ia), (kb, ib)):
                    if kind == K.FULL:
                        last_read[index] = i
        passed = set(self.passthrough.values())
        free = {j for j, name in enumerate(self.full_inputs) if name in writable and name not in passed and j in last_read}
        chosen = {}
        for slot in sorted(stored, key=stored.get):
            done = [j for j in free if last_read[j] < stored[slot]]
            if done:
                chosen[slot] = max(done, key=last_read.get)
                free.discard(chosen[slot])
        return chosen


def _candidates(graph: Graph) -> set[int]:
    dt, users = graph.dtypes, graph.consumers_of()
    chosen = {}
    for i, node in enumerate(graph.nodes):
        outs, ins = list(node.output), [n for n in node.input if n]
        if len(outs) != 1 or outs[0] not in graph.shapes or not ins:
            continue
        if node.op_type in ("Add", "Sub", "Mul", "Div", "Relu", "Identity") or node.op_type in ("Min", "Max") and len(ins) == 2:
            ok = dt.get(outs[0]) == F32 and all(dt.get(n) == F32 for n in ins)
        elif node.op_type == "Clip":  # Clip(x, lo, hi) = Min(Max(x, lo), hi) with constant bounds
            ok = (dt.get(outs[0]) == F32 and dt.get(node.input[0]) == F32
                  and all(n in graph.constants and graph.constants[n].size == 1 for n in node.input[1:] if n))
        elif node.op_type == "Greater":
            ok = all(dt.get(n) == F32 for n in ins)
        elif node.op_type == "Cast":
            ok = node_attributes(node).get("to") == 1 and dt.get(ins[0]) in (F32, np.dtype(bool))
        else:
            ok = False
        if ok:
            chosen[i] = node
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    producer = graph.producer_of()
    changed = True
    while changed:  # a bool may only travel Greater -> Cast inside a chain
        changed = False
        for i, node in list(chosen.items()):
            if node.op_type == "Greater":
                ok = all(index[id(u)] in chosen and u.op_type == "Cast" for u in users.get(node.output[0], []))
                ok = ok and node.output[0] not in graph.outputs
            elif node.op_type == "Cast" and dt.get(node.input[0]) != F32:
                p = producer.get(node.input[0])
                ok = p is not None and index[id(p)] in chosen
            else:
                continue
            if not ok:
                del chosen[i]
                changed = True
    return set(chosen)


def _components(graph: Graph, chosen: set[int]) -> list[list[int]]:
    parent = {i: i for i in chosen}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    producer_index = {out: i for i, node in enumerate(graph.nodes) for out in node.output}
    for i in chosen:
        node = graph.nodes[i]
        for name in node.input:
            j = producer_index.get(name)
            if j in chosen and graph.shapes.get(name) == graph.shapes[node.output[0]]:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in sorted(chosen):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _row_axes(shape: tuple[int, ...], small: list[tuple[int, ...]]) -> int:
    k = 0
    for s in small:
        padded = (1,) * (len(shape) - len(s)) + tuple(s)
        for axis, d in enumerate(padded):
            if d != 1:
                k = max(k, axis + 1)
    return k


def compile_chain(graph: Graph, members: list[int], users: dict, reductions: dict) -> ChainProgram | None:
    """The program of one component (node indices), or None when it does not fit a row program."""
    nodes = [graph.nodes[i] for i in members]
    shape = graph.shapes[nodes[0].output[0]]
    if int(np.prod(shape)) < MIN_ELEMENTS or all(n.op_type in ALIASES for n in nodes):
        return None
    member_ids = {id(n) for n in nodes}
    produced = {n.output[0] for n in nodes}
    root = {}
    for n in nodes:  # aliases resolve to the value they copy
        if n.op_type in ALIASES:
            root[n.output[0]] = root.get(n.input[0], n.input[0])
    resolve = lambda name: root.get(name, name)  # noqa: E731
    external = []
    for n in nodes:
        for name in n.input:
            if name and resolve(name) not in produced and resolve(name) not in external:
                external.append(resolve(name))
    full = [v for v in external if graph.shapes.get(v) == shape and graph.dtypes.get(v) == F32]
    small = [v for v in external if v not in full]
    for v in small:
        s = graph.shapes.get(v)
        if s is None or graph.dtypes.get(v) != F32 or len(s) > len(shape) or np.broadcast_shapes(s, shape) != shape:
            return None
    k = _row_axes(shape, [graph.shapes[v] for v in small])
    if int(np.prod(shape[k:])) < MIN_ROW_LENGTH:
        return None

    summed = {}
    for name, reduce_nodes in reductions.items():
        if resolve(name) in produced:
            summed.setdefault(resolve(name), []).extend(reduce_nodes)
    member_ids |= {id(u) for us in summed.values() for u in us}

    def escapes(name):
        return name in graph.outputs or any(id(u) not in member_ids for u in users.get(name, []))

    groups: dict[str, list[str]] = {}
    passthrough = {}
    for name in produced:
        if escapes(name):
            if resolve(name) in produced:
                groups.setdefault(resolve(name), []).append(name)
            else:  # an alias of a chain input leaves the chain unchanged
                passthrough[name] = resolve(name)
    # pass 1: symbolic instructions in graph order; a value leaves (STORE, SUM) right after it is computed
    symbolic, stores, sums, absorbed = [], [], [], []
    for n in nodes:
        if n.op_type in ALIASES:
            continue
        out = n.output[0]
        args = [resolve(a) for a in n.input]
        if n.op_type == "Clip":
            value = args[0]
            for op, bound in ((K.MAX, n.input[1] if len(n.input) > 1 else ""), (K.MIN, n.input[2] if len(n.input) > 2 else "")):
                if bound:
                    target = out if op == K.MIN or not (len(n.input) > 2 and n.input[2]) else out + "#max"
                    symbolic.append((op, target, value, bound))
                    value = target
            if value != out:  # no bounds: a copy
                symbolic.append((K.COPY, out, value, value))
        else:
            symbolic.append((ARITHMETIC[n.op_type], out, args[0], args[-1]))
        if out in groups:
            symbolic.append((K.STORE, len(stores), out, out))
            stores.append(sorted(groups[out]))
        for reduce_node in summed.get(out, []):
            symbolic.append((K.SUM, len(sums), out, out))
            sums.append((reduce_node.output[0], graph.shapes.get(reduce_node.output[0], ())))
            absorbed.append(reduce_node)
    # pass 2: registers (a value's register is free after its last use)
    last = {}
    for i, (op, dst, a, b) in enumerate(symbolic):
        for v in (a, b):
            last[v] = i
    operand = {v: (K.FULL, i) for i, v in enumerate(full)}
    operand.update({v: (K.ROW, i) for i, v in enumerate(small)})
    free, count, code = [], 0, []
    for i, (op, dst, a, b) in enumerate(symbolic):
        ka, ia = operand[a]
        kb, ib = operand[b]
        if op in (K.STORE, K.SUM):
            code.append((op, dst, ka, ia, 0, 0))
        else:
            if free:  # the destination never aliases an operand: LLVM vectorizes only non-overlapping loops
                reg = free.pop()
            else:
                reg, count = count, count + 1
            for v in {a, b}:
                if operand[v][0] == K.REGISTER and last[v] == i:
                    free.append(operand[v][1])
            operand[dst] = (K.REGISTER, reg)
            code.append((op, reg, ka, ia, kb, ib))
            if last.get(dst, -1) < i:  # produced, never read again
                free.append(reg)
            continue
        if operand[a][0] == K.REGISTER and last[a] == i:
            free.append(operand[a][1])
    return ChainProgram(shape=shape, row_axes=k, code=np.asarray(code, np.int64).reshape(-1, 6), registers=max(count, 1),
                        full_inputs=full, row_inputs=small, stores=stores, sums=sums, passthrough=passthrough,
                        nodes=nodes + absorbed)


def find_chains(graph: Graph) -> list[ChainProgram]:
    """Every chain worth fusing; their nodes (and absorbed ReduceSums) leave the node-by-node schedule."""
    chosen = _candidates(graph)
    users = graph.consumers_of()
    programs = []
    for members in _components(graph, chosen):
        member_outputs = {graph.nodes[i].output[0] for i in members}
        reductions = {}
        for name in member_outputs:
            for u in users.get(name, []):
                a = node_attributes(u)
                if (u.op_type == "ReduceSum" and len([x for x in u.input if x]) == 1 and not a.get("noop_with_empty_axes", 0)
                        and graph.dtypes.get(name) == F32):
                    reductions.setdefault(name, []).append(u)
        program = compile_chain(graph, members, users, reductions)
        if program is not None:
            programs.append(program)
    return programs
