"""What every edge-snn segmentation network shares: explicit state and the time loop.

A model defines its layers and one ``_body`` (one or more timesteps of the
network, written against the operations of :mod:`edge_snn.models.torch_ops`).
This base class owns the only time loop, in :meth:`SegmentationNet.run`:

* ``layout="time-major"`` calls the body once per timestep (``S = 1``), the way
  the authors' code steps through time;
* ``layout="layer-major"`` calls it once for all ``T`` steps (``S = T``): every
  convolution sees the whole sequence as one batch and only the LIF recurrence
  is unrolled. Same numbers, larger matrix products.

State is a value: :class:`SpikingState` goes in and comes out. It holds the
number of steps already integrated (which picks the BNTT set and divides the
output accumulator) and one tensor per spiking layer plus the accumulator
``acc`` of the non-firing readout layer. Zeros mean a fresh start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from edge_snn.errors import UserError
from edge_snn.models.bntt import BEYOND_POLICIES, BNTT
from edge_snn.models.torch_ops import TorchOps
from edge_snn.neuron import LIFParams

LAYOUTS = ("time-major", "layer-major")
ACC = "acc"


def pooled(size: int) -> int:
    """Output length of AvgPool2d(kernel 3, stride 2, pad 1): ``ceil(n / 2)``, for any n (odd too)."""
    return (size - 1) // 2 + 1


@dataclass(frozen=True)
class SpikingState:
    """Membrane potentials and readout accumulator after ``step`` timesteps of a frame."""

    step: int
    tensors: dict[str, torch.Tensor]

    def detach(self) -> SpikingState:
        return SpikingState(self.step, {k: v.detach() for k, v in self.tensors.items()})


@dataclass
class RunResult:
    """What :meth:`SegmentationNet.run` returns.

    logits: ``[B, K, H, W]``, the readout accumulator divided by the steps so far
        and brought to input size (the ANN twin: its output).
    state: the state reached, to pass to the next call (None for an ANN).
    spike_counts: spikes emitted per spiking layer in this call (summed over batch and steps).
    spikes: per layer, one ``[B, C, h, w]`` tensor per step (only with ``record_spikes``).
    margins: per layer and step, ``U - theta`` before the reset (only with ``record_spikes``).
    """

    logits: torch.Tensor
    state: SpikingState | None
    spike_counts: dict[str, torch.Tensor] = field(default_factory=dict)
    spikes: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    margins: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class SegmentationNet(nn.Module):
    """Base of Spiking-DeepLab, Spiking-FCN and their ANN twins."""

    arch = ""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 21,
        timesteps: int = 20,
        width: float = 1.0,
        spiking: bool = True,
        lif: LIFParams = LIFParams(),
    ):
        super().__init__()
        if width <= 0:
            raise UserError(f"width multiplier must be positive, got {width}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.timesteps = timesteps if spiking else 1
        self.width = width
        self.spiking = spiking
        self.lif = lif
        self.spiking_layers: list[str] = []  # neuron names, in order; also the state keys
        self.conv_inputs: dict[str, str] = {}  # conv name -> neuron feeding it ("input" for the encoder)

    # --- building blocks -------------------------------------------------
    def _channels(self, c: int) -> int:
        return max(1, int(round(c * self.width)))

    def _norm(self, channels: int) -> BNTT:
        # ANN twin: one BN per layer, with shift; SNN: one scale-only BN per timestep.
        return BNTT(channels, self.timesteps, bias=not self.spiking)

    def _spiking_block(self, ops, name: str, x, mem: dict, new: dict, step, steps: int):
        """conv -> BNTT -> LIF (ReLU for the ANN twin). Returns spikes (activations)."""
        current = ops.norm(ops.conv(x, self.convs[name]), self.norms[name], step, steps)
        return self._fire(ops, name, current, mem, new, steps)

    def _fire(self, ops, name: str, current, mem: dict, new: dict, steps: int):
        if not self.spiking:
            return ops.relu(current)
        spikes, new[name] = ops.neuron(name, current, mem[name], steps, self.lif)
        return spikes

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """xavier_uniform with gain 2 for every conv (PAPER.md), biases zero."""
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight, gain=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # --- to be provided by each architecture ------------------------------
    def _body(self, ops, x, mem: dict, step, steps: int):
        """Run ``steps`` timesteps; return (readout current ``[S*B, K, h, w]``, new membranes)."""
        raise NotImplementedError

    def _finish(self, ops, mean_readout, height: int, width: int):
        """Turn the time-averaged readout into logits at input size."""
        raise NotImplementedError

    def membrane_shapes(self, height: int, width: int) -> dict[str, tuple[int, int, int]]:
        """``(C, h, w)`` of every state tensor for an input of ``height x width``, without running the model."""
        raise NotImplementedError

    # --- state ------------------------------------------------------------
    def state_spec(self, batch: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
        """Full shapes ``[B, C, h, w]`` of every state tensor (membranes then ``acc``)."""
        return {name: (batch, *shape) for name, shape in self.membrane_shapes(height, width).items()}

    def initial_state(self, batch: int, height: int, width: int, *, device=None, dtype=torch.float32) -> SpikingState:
        spec = self.state_spec(batch, height, width)
        return SpikingState(0, {k: torch.zeros(s, device=device, dtype=dtype) for k, s in spec.items()})

    def set_bn_beyond(self, policy: str) -> None:
        """How steps past the trained ``timesteps`` are normalized (see :mod:`edge_snn.models.bntt`)."""
        if policy not in BEYOND_POLICIES:
            raise UserError(f"unknown --bn-beyond {policy!r}; choose one of {', '.join(BEYOND_POLICIES)}")
        for m in self.modules():
            if isinstance(m, BNTT):
                m.beyond = policy

    # --- drivers ----------------------------------------------------------
    def advance(self, ops, x, tensors: dict, step, steps: int) -> dict:
        """``steps`` timesteps of the whole network: new membranes and accumulator.

        Shared by the PyTorch run below and the ONNX emitter; ``x`` is
        ``[S * B, C, H, W]`` and ``step`` the number of steps already done.
        """
        readout, new = self._body(ops, x, tensors, step, steps)
        new[ACC] = ops.add(tensors[ACC], ops.sum_steps(readout, steps))
        return new

    def unroll(self, ops, x_seq, tensors: dict, step, layout: str):
        """The time loop, the only one: ``x_seq [T, B, C, H, W]`` from ``(tensors, step)``.

        Returns (logits, tensors reached, steps done). ``ops`` executes it
        (PyTorch) or records it (ONNX export); ``step`` is an int or a graph value.
        """
        steps, height, width = x_seq.shape[0], x_seq.shape[-2], x_seq.shape[-1]
        if layout == "time-major":
            for t in range(steps):
                tensors = self.advance(ops, ops.select_step(x_seq, t), tensors, step + t, 1)
        else:
            tensors = self.advance(ops, ops.fold_time(x_seq), tensors, step, steps)
        done = step + steps
        logits = self._finish(ops, ops.mean_over_steps(tensors[ACC], done), height, width)
        return logits, tensors, done

    def run(
        self,
        x_seq: torch.Tensor,
        state: SpikingState | None = None,
        *,
        layout: str = "time-major",
        record_spikes: bool = False,
    ) -> RunResult:
        """Run encoded input ``[T, B, C, H, W]`` from ``state`` (fresh if None).

        For the ANN twin ``x_seq`` is ``[B, C, H, W]`` and there is no state.
        """
        ops = TorchOps(record_spikes=record_spikes)
        if not self.spiking:
            self._check_input(x_seq, dims=4)
            readout, _ = self._body(ops, x_seq, {}, 0, 1)
            return RunResult(self._finish(ops, readout, *x_seq.shape[-2:]), None)
        self._check_input(x_seq, dims=5)
        if layout not in LAYOUTS:
            raise UserError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        steps, batch, _, height, width = x_seq.shape
        if state is None:
            state = self.initial_state(batch, height, width, device=x_seq.device, dtype=x_seq.dtype)
        logits, tensors, done = self.unroll(ops, x_seq, state.tensors, state.step, layout)
        return RunResult(logits, SpikingState(done, tensors), ops.spike_counts, ops.spikes, ops.margins)

    def forward_step(self, x_t: torch.Tensor, state: SpikingState) -> tuple[torch.Tensor, SpikingState]:
        """One timestep: ``x_t [B, C, H, W]`` -> (logits so far, new state)."""
        result = self.run(x_t.unsqueeze(0), state)
        return result.logits, result.state

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Logits after the whole sequence from a fresh state (SNN), or of one pass (ANN)."""
        return self.run(x_seq).logits

    def _check_input(self, x: torch.Tensor, dims: int) -> None:
        want = "[T, B, C, H, W]" if dims == 5 else "[B, C, H, W]"
        if x.dim() != dims:
            raise UserError(f"{self.arch} expects input {want}, got shape {tuple(x.shape)}")
        if x.shape[-3] != self.in_channels:
            raise UserError(
                f"{self.arch} was built for {self.in_channels} input channels, got {x.shape[-3]} "
                f"(input shape {tuple(x.shape)})"
            )

    # --- bookkeeping --------------------------------------------------------
    def conv_weight_count(self) -> int:
        """Number of convolution weights (biases and BN excluded)."""
        return sum(
            m.weight.numel() for m in self.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
        )

    @torch.no_grad()
    def conv_layers(self, height: int, width: int) -> list[dict]:
        """Every convolution with its shapes for a ``height x width`` input, in execution order.

        Each entry: name, kernel, c_in, c_out, groups, h_out, w_out, macs (per
        timestep, batch 1) and ``input`` (the spiking layer whose spikes it
        reads, or ``"input"``). Found by one dry step with hooks.
        """
        names = {m: n for n, m in self.named_modules()}
        rows: list[dict] = []

        def hook(module, inputs, output):
            k = module.kernel_size
            c_in = module.in_channels
            macs = k[0] * k[1] * (c_in // module.groups) * module.out_channels * output.shape[-2] * output.shape[-1]
            name = names[module].split(".")[-1]
            rows.append(dict(name=name, kernel=tuple(k), c_in=c_in, c_out=module.out_channels,
                             groups=module.groups, h_out=output.shape[-2], w_out=output.shape[-1], macs=int(macs),
                             input=self.conv_inputs.get(name, "")))

        handles = [m.register_forward_hook(hook) for m in self.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        was_training = self.training
        try:
            self.eval()
            x = torch.zeros(1, 1, self.in_channels, height, width) if self.spiking else torch.zeros(1, self.in_channels, height, width)
            self.run(x)
        finally:
            for h in handles:
                h.remove()
            self.train(was_training)
        return rows

    def macs_per_step(self, height: int, width: int) -> int:
        """Multiply-accumulates of one timestep (batch 1) for a ``height x width`` input."""
        return sum(row["macs"] for row in self.conv_layers(height, width))
