"""What a benchmark reports besides latency: spike rates, the energy estimate, measured energy, the roofline."""

from __future__ import annotations

import time
from collections.abc import Sequence

from edge_snn.runtime import contract as C
from edge_snn.runtime.energy_estimate import LayerCost, estimate_energy

ESTIMATE_LABEL = "estimate (45 nm, Horowitz)"


def spike_rates(counts: dict[str, float], elements: dict[str, int], steps: int, frames: int,
                input_rate: float | None) -> dict:
    """Spike rate of each layer: ``count / (elements of its state [B*C*h*w] x steps x frames)``, 0..1.

    ``counts`` are spikes summed over the ``frames`` frames (each ``steps``
    steps). ``input_rate`` is the encoded input's fraction of nonzero elements
    (None for analog, direct-encoded input).
    """
    layers = []
    for name, total in counts.items():
        denom = elements[name] * steps * frames
        layers.append({"name": name, "rate": float(total) / denom if denom else 0.0,
                       "spikes_per_frame": float(total) / frames})
    return {"input_rate": input_rate, "layers": layers}


def energy_estimate_section(layers: Sequence[dict], rates: dict, timesteps: int, encoding: str) -> dict:
    """The paper's estimate per image from ``edge_snn.layers`` metadata and measured rates.

    Each conv is costed with the rate of the layer it reads (``input``); the
    first layer reads the encoded input (``rates["input_rate"]``), or does MACs
    for direct (analog) input. See :mod:`edge_snn.runtime.energy_estimate`.
    """
    if not layers:
        return {"label": ESTIMATE_LABEL, "error": "the model has no edge_snn.layers metadata; re-export it"}
    by_name = {row["name"]: row["rate"] for row in rates["layers"]}
    if rates.get("input_rate") is not None:
        by_name["input"] = rates["input_rate"]
    costs, inputs, missing = [], {}, []
    for row in layers:
        costs.append(LayerCost(row["name"], tuple(row["kernel"]), row["c_in"], row["c_out"], row["h_out"],
                               row["w_out"], row.get("groups", 1)))
        source = row.get("input", "")
        if source in by_name:
            inputs[row["name"]] = by_name[source]
        elif not (source == "input" and encoding == "direct"):
            missing.append(f"{row['name']} (reads {source or 'unknown'})")
    if missing:
        return {"label": ESTIMATE_LABEL, "error": f"no measured input spike rate for {', '.join(missing)}"}
    first = "mac" if encoding == "direct" else "spikes"
    est = estimate_energy(costs, inputs, timesteps, first_layer=first)
    return {
        "label": ESTIMATE_LABEL, "per": "image", "timesteps": est.timesteps, "first_layer": est.first_layer,
        "e_mac_pj": est.e_mac_pj, "e_ac_pj": est.e_ac_pj, "macs_per_step": est.flops,
        "snn_mj": est.snn_joules * 1e3, "ann_mj": est.ann_joules * 1e3, "ann_over_snn": est.ratio,
        "layers": [{"name": e.name, "input": row.get("input", ""), "macs": e.flops, "input_rate": e.spike_rate,
                    "snn_mj": e.snn_joules * 1e3, "ann_mj": e.ann_joules * 1e3}
                   for e, row in zip(est.layers, layers)],
    }


def measure_energy(meter, run_frame, frames: Sequence, *, seconds: float, idle_seconds: float, batch: int) -> dict:
    """Energy per frame from ``meter``: idle first, then frames back to back for at least ``seconds``.

    The measured window holds only the frame loop (pre-encoded frames, fresh
    state each). ``joules_per_frame`` is above idle: ``(E_window - P_idle *
    t_window) / frames``. Without a sensor every number is None and
    ``source`` says "not measured".
    """
    from edge_snn.runtime.power import NOT_MEASURED

    if meter.source == NOT_MEASURED:
        return {"label": "measured", "source": NOT_MEASURED, "joules_per_frame": None,
                "joules_per_image": None, "joules_total_per_frame": None}
    idle = meter.measure_idle(idle_seconds)
    meter.start()
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < seconds:
        run_frame(frames[count % len(frames)])
        count += 1
    reading = meter.stop()
    above = None if reading.joules_above_idle is None else reading.joules_above_idle / count
    return {
        "label": "measured", "source": reading.source, "frames": count, "seconds": reading.seconds,
        "samples": reading.samples, "idle_watts": idle, "mean_watts": reading.mean_watts,
        "joules_total_per_frame": None if reading.joules_total is None else reading.joules_total / count,
        "joules_per_frame": above, "joules_per_image": None if above is None else above / batch,
        "rails_joules": reading.rails,
    }


def roofline_section(path: str, target_name: str, contract: C.ModelContract, calls: int, p50_ms: float) -> dict:
    """Roofline floor of one frame on ``target_name`` and the fraction of it the measured p50 reaches."""
    from edge_snn.targets import estimate_floor, load_target

    if not path.endswith(".onnx"):
        return {"target": target_name, "error": "the roofline reads the ONNX graph; bench the .onnx file for it"}
    target = load_target(target_name)
    precision = "int8" if "int8" in contract.precision.lower() else "fp32"
    est = estimate_floor(path, target, precision)
    floor_ms = est.floor_s * calls * 1e3
    return {"target": target.name, "engine": est.engine, "precision": precision, "bound": est.bound,
            "floor_ms_per_frame": floor_ms, "fraction_of_floor": floor_ms / p50_ms if p50_ms > 0 else None,
            "note": "the target's peak numbers; the fraction only means something when bench ran on that device"}
