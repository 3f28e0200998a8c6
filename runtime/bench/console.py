"""The console table of one ``edge-snn bench`` result."""

from __future__ import annotations


def _fmt_mj(value) -> str:
    return "-" if value is None else f"{value:.3g} mJ"


def format_result(r: dict) -> str:
    """A console table of one :func:`bench_model` result."""
    m, lat = r["model"], r["latency_ms"]
    threads = f", {r['threads']} threads" if r.get("threads") else ""
    lines = [
        f"edge-snn bench  {m['path']}",
        f"  model        {m['architecture']}, {m['layout']}, T={m['timesteps_per_call']}/call x {m['calls_per_frame']} "
        f"call(s) = {m['timesteps']} steps/frame, batch {m['batch']}, {m['precision']}, {m['encoding']} input",
        f"  backend      {' '.join(filter(None, (r['backend'], ', '.join(r['providers'] or []))))}{threads}",
        f"  timed        {r['timed_region']}",
        f"  latency      p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  mean {lat['mean']:.2f}"
        f"  ({lat['n']} frames after {r['warmup']} warm-up)",
        f"  throughput   {r['throughput_fps']:.2f} images/s (batch {m['batch']} / mean latency)",
        f"  peak RSS     {r['memory']['peak_rss_mib']:.0f} MiB (process high-water; {r['memory']['peak_rss_before_load_mib']:.0f} MiB before loading)",
    ]
    spikes = r["spikes"]
    rate_in = "analog (direct)" if spikes["input_rate"] is None else f"{spikes['input_rate']:.3f}"
    lines.append(f"  spike rate   input {rate_in}; " + ", ".join(f"{x['name']} {x['rate']:.3f}" for x in spikes["layers"]))
    est = r["energy_estimate"]
    if "error" in est:
        lines.append(f"  energy       {est['label']}: not available ({est['error']})")
    else:
        lines.append(f"  energy       {est['label']}, per image: SNN {_fmt_mj(est['snn_mj'])} vs ANN twin "
                     f"{_fmt_mj(est['ann_mj'])} (ANN/SNN {est['ann_over_snn']:.2f}x)")
        lines.append("               " + ", ".join(f"{x['name']} {x['snn_mj']:.3g}/{x['ann_mj']:.3g}" for x in est["layers"])
                     + "  (SNN/ANN mJ)")
    meas = r["energy_measured"]
    if meas.get("joules_per_frame") is None:
        lines.append(f"  measured     {meas['source']}" + ("" if meas["source"] == "not measured" else " (no reading)"))
    else:
        lines.append(f"  measured     {meas['joules_per_frame'] * 1e3:.3g} mJ/frame above idle "
                     f"({meas['idle_watts']:.2f} W idle, {meas['mean_watts']:.2f} W mean over {meas['frames']} frames; "
                     f"{meas['source']})")
    if r.get("work"):
        from edge_snn.runtime.backends.sparse.runner import format_work_stats

        lines.append(format_work_stats(r["work"], frames=r["work"]["frames"]))
    roof = r.get("roofline")
    if roof:
        if "error" in roof:
            lines.append(f"  roofline     {roof['target']}: {roof['error']}")
        else:
            lines.append(f"  roofline     {roof['target']} {roof['engine']} {roof['precision']}: floor "
                         f"{roof['floor_ms_per_frame']:.3g} ms/frame ({roof['bound']}-bound), measured p50 reaches "
                         f"{roof['fraction_of_floor']:.1%} of it ({roof['note']})")
    env = r["environment"]
    mode = env["power_mode"]["name"] if env.get("power_mode") else "n/a"
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if k != "edge-snn")
    lines.append(f"  machine      {env['cpu']} x{env['cpu_count']}, GPU {env['gpu'] or 'none'}, power mode {mode}, "
                 f"load {env['load_average_1_5_15']}")
    lines.append(f"  libraries    {libs}")
    return "\n".join(lines)
