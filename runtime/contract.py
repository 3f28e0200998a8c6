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
from dataclasses import dataclass

from edge_snn.errors import UserError

FORMAT_VERSION = 1
PREFIX = "edge_snn."
INPUT = "input"
LOGITS = "logits"
SPIKE_COUNTS = "spike_counts"
STATE_IN = "state_in."
STATE_OUT = "state_out."
STEP = "step"
#: ``form`` metadata: the standard graph, or the DLA-resident one (``edge-snn export --dla``: one whole
#: frame per call from step 0, DLA-native layers only, no ``spike_counts`` output, ``spike_layers`` empty).
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
        return ModelContract(
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
        )
    except ContractError:
        raise
    except (KeyError, ValueError, TypeError) as err:
        raise ContractError(f"{source} has damaged edge-snn metadata ({type(err).__name__}: {err}); re-export it") from None
