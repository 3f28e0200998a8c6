"""The ONNX contract between the training side and the device: names and metadata.

This module is the one place that knows the contract; the exporter writes it
through these constants and the runtime reads it through :func:`read_contract`.
See ``docs/onnx-contract.md`` for the prose version.

Graph inputs (all static shapes):
  ``input``              float32 ``[T, B, C, H, W]``: encoded input for the T steps of this call
  ``state_in.step``      int64 ``[1]``: timesteps of the current frame already integrated
  ``state_in.<layer>``   float32 membrane of each spiking layer, ``[B, C, h, w]``
  ``state_in.acc``       float32 accumulator of the non-firing readout layer
Graph outputs:
  ``logits``             float32 ``[B, K, H, W]``: accumulator / steps done, at input size
  ``state_out.*``        the state reached (same names and shapes as the inputs)
  ``spike_counts``       float32 ``[L]``: spikes per spiking layer in this call (batch and steps summed)
All-zero state means a fresh frame; feeding ``state_out.*`` back as
``state_in.*`` streams (``T`` chunks of one frame, or the T=1 step graph).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from edge_snn.errors import UserError

FORMAT_VERSION = 2  # 2: optional edge_snn.binning (how event frames are made); 1 still reads
PREFIX = "edge_snn."
INPUT = "input"
LOGITS = "logits"
SPIKE_COUNTS = "spike_counts"
STATE_IN = "state_in."
STATE_OUT = "state_out."
STEP = "step"
#: ``form`` metadata: the standard graph, or the DLA-resident one (``edge-snn export --dla``: one whole
#: frame per call from step 0, DLA-native layers only, no ``spike_counts`` output; the spike tensors remain).
FORM_STANDARD, FORM_DLA = "standard", "dla"


def state_inputs(outputs: dict) -> dict:
    """The ``state_out.*`` entries of a call's outputs renamed ``state_in.*``: the next call's state.

    Host state may also be given with ``state_out.*`` keys (what a previous
    call returned); ``state_in.*`` keys pass through. This is the only place
    the rename is written.
    """
    return {STATE_IN + k[len(STATE_OUT):] if k.startswith(STATE_OUT) else k: v
            for k, v in outputs.items() if k.startswith((STATE_OUT, STATE_IN))}


def plain_outputs(outputs: dict) -> dict:
    """A call's outputs without the state (``logits``, ``spike_counts``, any extra tensors)."""
    return {k: v for k, v in outputs.items() if not k.startswith(STATE_OUT)}


def spike_tensor_name(layer: str, local_step: int | None) -> str:
    """Name of a layer's spikes inside the graph (time-major: per step; layer-major: all steps)."""
    return f"spikes.{layer}" if local_step is None else f"spikes.{layer}.t{local_step}"


@dataclass(frozen=True)
class StateTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelContract:
    """Everything the runtime needs to know about an exported edge-snn graph."""

    format_version: int
    architecture: str
    timesteps: int  # steps per call
    timesteps_trained: int  # steps per frame (BNTT sets)
    bn_beyond: str
    layout: str
    encoding: str
    input_shape: tuple[int, ...]
    input_range: tuple[float, float]
    class_names: tuple[str, ...]
    leak: float
    threshold: float
    state: tuple[StateTensor, ...]
    spike_layers: tuple[str, ...]
    precision: str
    checkpoint_sha256: str
    layers: tuple[dict, ...] = ()
    form: str = FORM_STANDARD
    binning: dict | None = None  # BinningSpec.to_dict() of an event model (edge_snn.runtime.events.binning)

    @property
    def batch(self) -> int:
        return self.input_shape[1]

    @property
    def channels(self) -> int:
        return self.input_shape[2]

    @property
    def height(self) -> int:
        return self.input_shape[3]

    @property
    def width(self) -> int:
        return self.input_shape[4]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def frame_steps(self) -> int:
        """Steps one frame is presented for: the trained T, or one longer call (``bn_beyond`` last/cycle)."""
        return self.timesteps_trained if self.timesteps_trained % self.timesteps == 0 else self.timesteps

    def to_metadata(self) -> dict[str, str]:
        """``metadata_props`` entries: plain strings, JSON for structured values."""
        values = {
            "format_version": str(self.format_version),
            "architecture": self.architecture,
            "timesteps": str(self.timesteps),
            "timesteps_trained": str(self.timesteps_trained),
            "bn_beyond": self.bn_beyond,
            "layout": self.layout,
            "encoding": self.encoding,
            "input": json.dumps({"name": INPUT, "shape": list(self.input_shape), "range": list(self.input_range)}),
            "class_names": json.dumps(list(self.class_names)),
            "leak": repr(self.leak),
            "threshold": repr(self.threshold),
            "state": json.dumps([{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in self.state]),
            "spike_layers": json.dumps(list(self.spike_layers)),
            "precision": self.precision,
            "checkpoint_sha256": self.checkpoint_sha256,
            "layers": json.dumps(list(self.layers)),
            "form": self.form,
        }
        if self.binning is not None:
            values["binning"] = json.dumps(self.binning)
        return {PREFIX + k: v for k, v in values.items()}


class ContractError(UserError, ValueError):
    """The ONNX file is not an edge-snn graph, or its metadata is damaged (or contradicts the graph)."""


def read_contract(metadata: dict[str, str], *, source: str = "model") -> ModelContract:
    """Parse ``metadata_props`` into a :class:`ModelContract`, or say what is missing."""
    if PREFIX + "format_version" not in metadata:
        raise ContractError(
            f"{source} has no edge-snn metadata (no '{PREFIX}format_version'); export it with `edge-snn export`"
        )
    try:
        version = int(metadata[PREFIX + "format_version"])
        if version > FORMAT_VERSION:
            raise ContractError(f"{source} uses contract version {version}, this runtime reads up to {FORMAT_VERSION}; upgrade edge-snn")
        get = lambda k: metadata[PREFIX + k]  # noqa: E731
        spec = json.loads(get("input"))
        contract = ModelContract(
            format_version=version,
            architecture=get("architecture"),
            timesteps=int(get("timesteps")),
            timesteps_trained=int(get("timesteps_trained")),
            bn_beyond=get("bn_beyond"),
            layout=get("layout"),
            encoding=get("encoding"),
            input_shape=tuple(spec["shape"]),
            input_range=tuple(spec["range"]),
            class_names=tuple(json.loads(get("class_names"))),
            leak=float(get("leak")),
            threshold=float(get("threshold")),
            state=tuple(StateTensor(s["name"], tuple(s["shape"]), s.get("dtype", "float32")) for s in json.loads(get("state"))),
            spike_layers=tuple(json.loads(get("spike_layers"))),
            precision=get("precision"),
            checkpoint_sha256=get("checkpoint_sha256"),
            layers=tuple(json.loads(metadata.get(PREFIX + "layers", "[]"))),
            form=metadata.get(PREFIX + "form", FORM_STANDARD),
            binning=json.loads(metadata[PREFIX + "binning"]) if PREFIX + "binning" in metadata else None,
        )
    except ContractError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise ContractError(f"{source} has damaged edge-snn metadata ({type(err).__name__}: {err}); re-export it") from None
    _check_values(contract, source)
    return contract


# --- what the metadata may say ---------------------------------------------------------
ENCODINGS = ("poisson", "direct", "events")
LAYOUTS = ("time-major", "layer-major")
BN_BEYOND = ("error", "last", "cycle")
MAX_TENSOR_BYTES = 2 << 30  # one state or input tensor over 2 GiB is damage, not a model for a drone
LAYER_INT_KEYS = ("c_in", "c_out", "groups", "h_out", "w_out", "macs")
DTYPE_SIZES = {"float32": 4, "float16": 2, "int64": 8, "int32": 4, "int8": 1, "uint8": 1, "bool": 1}


def _damaged(source: str, what: str) -> ContractError:
    return ContractError(f"{source} has damaged edge-snn metadata: {what}; re-export it with `edge-snn export`")


def _check_shape(shape, source: str, what: str, dtype: str = "float32") -> None:
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise _damaged(source, f"{what} has shape {list(shape)}, not positive integers")
    if dtype not in DTYPE_SIZES:
        raise _damaged(source, f"{what} has dtype {dtype!r}")
    nbytes = DTYPE_SIZES[dtype]
    for d in shape:
        nbytes *= d
    if nbytes > MAX_TENSOR_BYTES:
        raise _damaged(source, f"{what} of shape {list(shape)} would need {nbytes / 2**30:.1f} GiB")


def _check_values(c: ModelContract, source: str) -> None:
    """Everything the metadata says must make sense on its own, before any graph is read or memory allocated."""
    def isint(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if c.encoding not in ENCODINGS or c.layout not in LAYOUTS or c.bn_beyond not in BN_BEYOND:
        raise _damaged(source, f"encoding {c.encoding!r}, layout {c.layout!r}, bn_beyond {c.bn_beyond!r} "
                               f"(known: {ENCODINGS}, {LAYOUTS}, {BN_BEYOND})")
    if c.timesteps < 1 or c.timesteps_trained < 1:
        raise _damaged(source, f"timesteps {c.timesteps} / timesteps_trained {c.timesteps_trained} must be >= 1")
    if c.timesteps_trained % c.timesteps and (c.bn_beyond == "error" or c.timesteps < c.timesteps_trained):
        raise _damaged(source, f"a frame of {c.timesteps_trained} steps cannot be split into calls of {c.timesteps}")
    if len(c.input_shape) != 5:
        raise _damaged(source, f"input shape {list(c.input_shape)} is not [T, B, C, H, W]")
    _check_shape(c.input_shape, source, "input")
    if c.input_shape[0] != c.timesteps:
        raise _damaged(source, f"input shape {list(c.input_shape)} holds {c.input_shape[0]} steps, timesteps says {c.timesteps}")
    lo, hi = c.input_range
    if not (math.isfinite(lo) and lo < hi):
        raise _damaged(source, f"input range {list(c.input_range)}")
    if not c.class_names or not all(isinstance(n, str) for n in c.class_names):
        raise _damaged(source, f"class names {list(c.class_names)[:5]}")
    if not (math.isfinite(c.leak) and math.isfinite(c.threshold) and c.threshold > 0):
        raise _damaged(source, f"leak {c.leak} / threshold {c.threshold}")
    names = [s.name for s in c.state]
    if len(set(names)) != len(names) or STEP not in names:
        raise _damaged(source, f"state names {names} (each once, {STEP!r} among them)")
    for s in c.state:
        if not isinstance(s.name, str) or not s.name:
            raise _damaged(source, f"a state entry without a name ({s})")
        _check_shape(s.shape, source, f"state {s.name!r}", s.dtype)
    if not c.spike_layers or not all(isinstance(n, str) and n for n in c.spike_layers):
        raise _damaged(source, f"spike layers {list(c.spike_layers)}")
    if c.form not in (FORM_STANDARD, FORM_DLA):
        raise _damaged(source, f"form {c.form!r} (known: {FORM_STANDARD}, {FORM_DLA})")
    if c.form == FORM_DLA and (c.timesteps != c.timesteps_trained or c.bn_beyond == "last"):
        raise _damaged(source, f"a DLA-form graph runs whole frames (T {c.timesteps} must equal timesteps_trained "
                               f"{c.timesteps_trained}, bn_beyond error or cycle, not {c.bn_beyond})")
    for row in c.layers:
        if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not all(
                isint(row.get(k)) and row[k] >= 0 for k in LAYER_INT_KEYS):
            raise _damaged(source, f"layers entry {str(row)[:120]} (needs name and integer {', '.join(LAYER_INT_KEYS)})")
        kernel = row.get("kernel")
        if not (isinstance(kernel, (list, tuple)) and len(kernel) == 2 and all(isint(k) and k > 0 for k in kernel)):
            raise _damaged(source, f"layers entry {row['name']!r} has kernel {kernel!r}")


# --- the metadata checked against the graph it describes ---------------------------------
@dataclass(frozen=True)
class GraphIO:
    """What a graph itself declares, as plain data (from an ONNX file or a TensorRT engine).

    inputs / outputs: tensor name -> (shape, dtype name); initializers: name ->
    shape (ONNX only); values: every tensor a node produces (ONNX only, else None).
    """

    inputs: dict
    outputs: dict
    initializers: dict
    values: frozenset | None = None


def check_against_graph(c: ModelContract, graph: GraphIO, source: str) -> None:
    """Refuse, in one line, metadata that the graph contradicts (names, shapes, dtypes, BNTT sets, layers).

    Graph outputs beyond the contract's are allowed (parity exposes spike
    tensors); graph inputs beyond it are not, since nothing would feed them.
    """
    def mismatch(what: str) -> ContractError:
        return ContractError(f"{source}: the metadata does not match the graph: {what}; the file is damaged or "
                             f"was edited, re-export it with `edge-snn export`")

    def want(kind: dict, name: str, shape, dtype: str, side: str) -> None:
        if name not in kind:
            raise mismatch(f"the graph has no {side} {name!r}")
        got_shape, got_dtype = kind[name]
        if tuple(got_shape) != tuple(shape) or got_dtype != dtype:
            raise mismatch(f"{side} {name!r} is {got_dtype} {list(got_shape)} in the graph, "
                           f"{dtype} {list(shape)} in the metadata")

    want(graph.inputs, INPUT, c.input_shape, "float32", "input")
    for s in c.state:
        want(graph.inputs, STATE_IN + s.name, s.shape, s.dtype, "input")
        want(graph.outputs, STATE_OUT + s.name, s.shape, s.dtype, "output")
    known = {INPUT} | {STATE_IN + s.name for s in c.state}
    unknown = sorted(set(graph.inputs) - known)
    if unknown:
        raise mismatch(f"graph input(s) {unknown[:3]} are not in the metadata's state")
    extra_state = sorted(n for n in graph.outputs if n.startswith(STATE_OUT) and n[len(STATE_OUT):] not in
                         {s.name for s in c.state})
    if extra_state:
        raise mismatch(f"graph state output(s) {extra_state[:3]} are not in the metadata's state")
    want(graph.outputs, LOGITS, (c.batch, c.num_classes, c.height, c.width), "float32", "output")
    if c.form != FORM_DLA:  # the DLA form has no spike counts
        want(graph.outputs, SPIKE_COUNTS, (len(c.spike_layers),), "float32", "output")
    if graph.values is not None:
        steps = range(c.timesteps) if c.layout == "time-major" else [None]
        missing = [spike_tensor_name(layer, t) for layer in c.spike_layers for t in steps
                   if spike_tensor_name(layer, t) not in graph.values]
        if missing:
            raise mismatch(f"spike layer tensor {missing[0]!r} is not in the graph")
    tables = {n: shape for n, shape in graph.initializers.items() if n.startswith(("bntt_scale", "bntt_shift"))}
    wrong = {n: shape for n, shape in tables.items() if not shape or shape[0] != c.timesteps_trained}
    if wrong:
        name, shape = next(iter(wrong.items()))
        raise mismatch(f"BNTT table {name!r} holds {shape[0] if shape else 0} timesteps, timesteps_trained says "
                       f"{c.timesteps_trained}")
    if graph.initializers:
        for row in c.layers:
            _check_layer_weight(row, graph.initializers, mismatch)


def _check_layer_weight(row: dict, initializers: dict, mismatch) -> None:
    """A ``layers`` entry must describe a conv weight of the graph: ``[c_out, c_in/groups, kh, kw]`` (or transposed)."""
    name = row["name"]
    shapes = [shape for n, shape in initializers.items()
              if n.rsplit(".", 2)[-2:] in ([name, "weight"], [name, "weight_int8"], [name, "weight_uint8"])]
    if not shapes:
        raise mismatch(f"layers entry {name!r} has no weight in the graph")
    kh, kw = row["kernel"]
    groups = max(row["groups"], 1)
    conv = (row["c_out"], row["c_in"] // groups, kh, kw)
    transposed = (row["c_in"], row["c_out"] // groups, kh, kw)
    if tuple(shapes[0]) not in (conv, transposed):
        raise mismatch(f"layers entry {name!r} says {row['c_in']}->{row['c_out']} channels, kernel {kh}x{kw}; "
                       f"its weight in the graph is {list(shapes[0])}")
