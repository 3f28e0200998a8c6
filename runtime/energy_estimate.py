"""The paper's estimated energy of a spiking network and of its ANN twin (45 nm CMOS operation costs).

This is an *estimate* from operation counts, not a measurement (for that see
``edge_snn.runtime.power``). Per convolution layer (PAPER.md, "Energy method"):

    FLOPs   = k_h * k_w * H_out * W_out * (C_in / groups) * C_out     per frame / per timestep
    E_ANN   = sum_l FLOPs_l * E_MAC                       one pass,   E_MAC = 4.6 pJ
    E_SNN   = sum_l FLOPs_l * r_l * E_AC * T              T steps,    E_AC  = 0.9 pJ

where ``r_l`` is the spike rate of the layer's *input*: the fraction of input
elements that carry a spike, averaged over timesteps (0..1). A binary spike
turns a multiply-accumulate into an accumulate, and a zero costs nothing. A
signed spike (-1, from the signed Poisson code) is a subtraction, also one
accumulate, so it counts as a spike. Only convolutions are counted, as in the
paper: pooling, BN scaling, membrane leak and threshold are left out for both
networks. The output layer's input is spikes too, so it is an AC layer.

The first layer sees the encoded image (``first_layer``):

* ``"spikes"`` (default, the paper's reading): the input is the Poisson spike
  train, so the first layer is costed like every other, with the spike rate of
  the encoded input (for a rate code, about the mean |pixel| in [0, 1]).
* ``"mac"``: the input is analog (direct encoding: the same real-valued frame
  every step), so the first layer does real MACs every timestep:
  ``FLOPs_1 * E_MAC * T``; its spike rate is then ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_snn.errors import UserError

E_MAC_PJ = 4.6  # 32-bit float multiply-accumulate, 45 nm (Horowitz, ISSCC 2014)
E_AC_PJ = 0.9  # 32-bit float accumulate, 45 nm
FIRST_LAYER_MODES = ("spikes", "mac")


@dataclass(frozen=True)
class LayerCost:
    """The shape of one convolution as far as its operation count goes. ``kernel`` is (k_h, k_w)."""

    name: str
    kernel: tuple[int, int]
    c_in: int
    c_out: int
    h_out: int
    w_out: int
    groups: int = 1

    def __post_init__(self) -> None:
        sizes = (*self.kernel, self.c_in, self.c_out, self.h_out, self.w_out, self.groups)
        if len(self.kernel) != 2 or any(int(v) != v or v < 1 for v in sizes):
            raise UserError(f"layer {self.name!r}: kernel, channels, output size and groups must be positive "
                            f"integers, got kernel={self.kernel}, c_in={self.c_in}, c_out={self.c_out}, "
                            f"out={self.h_out}x{self.w_out}, groups={self.groups}")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise UserError(f"layer {self.name!r}: groups={self.groups} must divide c_in={self.c_in} "
                            f"and c_out={self.c_out}")

    @property
    def flops(self) -> int:
        """MACs for one frame (one timestep): ``k_h * k_w * H_out * W_out * C_in / groups * C_out``."""
        k_h, k_w = self.kernel
        return k_h * k_w * self.h_out * self.w_out * (self.c_in // self.groups) * self.c_out


@dataclass(frozen=True)
class LayerEnergy:
    name: str
    flops: int
    spike_rate: float | None  # None for a first layer costed as MACs
    ann_joules: float
    snn_joules: float


@dataclass(frozen=True)
class EnergyEstimate:
    """Per-layer and total joules; ``ratio`` = ANN / SNN (how many times less the SNN spends)."""

    layers: tuple[LayerEnergy, ...]
    timesteps: int
    ann_joules: float
    snn_joules: float
    e_mac_pj: float
    e_ac_pj: float
    first_layer: str

    @property
    def ratio(self) -> float:
        return self.ann_joules / self.snn_joules if self.snn_joules > 0 else float("inf")

    @property
    def flops(self) -> int:
        """MACs of one ANN pass (= one SNN timestep at spike rate 1)."""
        return sum(layer.flops for layer in self.layers)


def spike_rate(spikes) -> float:
    """Fraction of nonzero elements of a spike tensor (any shape, e.g. ``[T, B, C, H, W]``): 0..1."""
    spikes = np.asarray(spikes)
    return float(np.count_nonzero(spikes)) / spikes.size if spikes.size else 0.0


def estimate_energy(layers: list[LayerCost], input_spike_rates: dict[str, float], timesteps: int, *,
                    e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ,
                    first_layer: str = "spikes") -> EnergyEstimate:
    """SNN (``timesteps`` steps) and ANN (one pass) energy of ``layers``, in joules.

    ``input_spike_rates[name]`` is the spike rate of each layer's input (0..1).
    With ``first_layer="mac"`` the first layer needs no rate (see module doc).
    """
    if not layers:
        raise UserError("no layers to estimate; pass the network's convolutions as LayerCost entries")
    if int(timesteps) != timesteps or timesteps < 1:
        raise UserError(f"timesteps must be a positive integer, got {timesteps}")
    if first_layer not in FIRST_LAYER_MODES:
        raise UserError(f"first_layer must be one of {FIRST_LAYER_MODES}, got {first_layer!r}")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise UserError(f"layer names must be unique to key spike rates, got {names}")
    needs_rate = names[1:] if first_layer == "mac" else names
    missing = [n for n in needs_rate if n not in input_spike_rates]
    if missing:
        raise UserError(f"no input spike rate for layer(s) {missing}; measure them on a few frames "
                        "(spike_rate of each layer's input) and pass them by layer name")
    bad = {n: input_spike_rates[n] for n in needs_rate if not 0.0 <= input_spike_rates[n] <= 1.0}
    if bad:
        raise UserError(f"spike rates must be fractions in [0, 1] (spikes per input element per step), got {bad}")

    pj = 1e-12
    out = []
    for index, layer in enumerate(layers):
        ann = layer.flops * e_mac_pj * pj
        if index == 0 and first_layer == "mac":
            rate, snn = None, layer.flops * e_mac_pj * pj * timesteps
        else:
            rate = float(input_spike_rates[layer.name])
            snn = layer.flops * rate * e_ac_pj * pj * timesteps
        out.append(LayerEnergy(layer.name, layer.flops, rate, ann, snn))
    return EnergyEstimate(
        layers=tuple(out), timesteps=int(timesteps),
        ann_joules=sum(e.ann_joules for e in out), snn_joules=sum(e.snn_joules for e in out),
        e_mac_pj=e_mac_pj, e_ac_pj=e_ac_pj, first_layer=first_layer,
    )
