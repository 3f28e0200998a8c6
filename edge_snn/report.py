"""``edge-snn report``: plots and a markdown summary from benchmark result files.

Reads what ``edge-snn bench --json`` writes (one run) and what
``benchmarks/bench_deeplab.py`` writes (a suite: ``{"runs": [...], ...}``),
and writes into ``out_dir``:

``latency_vs_T.png``      p50 latency per frame against timesteps, one line per series
                          (backend + layout + precision); whiskers to p90; ANN twins dashed.
                          When no series has two T values (a line would be one dot), it is
                          ``latency_by_variant.png`` instead: one bar per run, whiskers to p90
``energy_per_frame.png``  per run: the 45 nm estimate for the SNN and its ANN twin, and the
                          measured energy above idle, side by side (log scale, mJ per image)
``spike_rates.png``       spike rate per layer (input first)
``accuracy_vs_T.png``     only when runs carry ``accuracy`` (``{"miou": ...}``); with one T per
                          series, ``accuracy_by_variant.png`` (bars) instead
``report.md``             tables of every run, the suite's summary lines, the plots

Torch-free; matplotlib (the ``report`` extra) is imported only here, with the
Agg backend, so it works on a headless device.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.files import ensure_writable_dir, write_bytes_atomic


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("edge-snn report draws with matplotlib, which is not installed: "
                        "pip install 'edge-snn[report]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> None:
    """PNG through a buffer, then an atomic write: a reader never sees half a plot."""
    import io

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def load_runs(path: str | Path) -> tuple[list[dict], dict]:
    """(runs, document) of one result file; a single bench run is a list of one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"result file {path} does not exist; write one with `edge-snn bench MODEL --json {path}`") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} as JSON ({err}); pass files written by edge-snn bench") from None
    if isinstance(doc, dict) and isinstance(doc.get("runs"), list):
        runs = [dict(r) for r in doc["runs"]]
        for r in runs:
            r.setdefault("environment", doc.get("environment"))
    elif isinstance(doc, dict) and "latency_ms" in doc:
        runs = [doc]
    else:
        raise UserError(f"{path} is not an edge-snn benchmark result (no 'runs' and no 'latency_ms'); "
                        "pass files written by `edge-snn bench --json` or benchmarks/bench_deeplab.py")
    for r in runs:
        missing = [k for k in ("name", "latency_ms") if k not in r]
        if missing:
            raise UserError(f"{path}: a run lacks {missing}; the file is damaged or from another tool")
        r["_source"] = str(path)
    return runs, doc


def _steps(run: dict) -> int | None:
    return (run.get("model") or {}).get("timesteps")


def _series(run: dict) -> str:
    return run.get("series") or run["name"]


def _measured_mj(run: dict) -> float | None:
    meas = run.get("energy_measured") or {}
    joules = meas.get("joules_per_image", meas.get("joules_per_frame"))
    return None if joules is None else joules * 1e3


def _one_t_per_series(runs) -> bool:
    """True when no series has runs at two different T: a plot against T would be dots in one column."""
    seen: dict[str, set] = {}
    for r in runs:
        seen.setdefault(_series(r), set()).add(_steps(r))
    return all(len(ts) < 2 for ts in seen.values())


def _bar_label(run: dict) -> str:
    m = run.get("model") or {}
    parts = [run["name"]]
    if run.get("kind") != "ann" and _steps(run):
        parts.append(f"T={_steps(run)}")
    return "\n".join(parts + [p for p in (m.get("layout"), m.get("precision")) if p])


def _bars(plt, rows, values, errors, path: Path, *, ylabel: str, title: str) -> None:
    """One bar per run, labelled with its name, T, layout and precision; value printed on each bar."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.8))
    x = np.arange(len(rows))
    colors = ["#9e9e9e" if r.get("kind") == "ann" else "#3b75af" for r in rows]
    ax.bar(x, values, 0.6, yerr=errors, capsize=4, color=colors)
    for xi, v in zip(x, values):  # the value inside the bar, clear of the whisker above it
        ax.annotate(f"{v:.3g}", (xi, v), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=8,
                    color="white", fontweight="bold")
    ax.set_xticks(x, [_bar_label(r) for r in rows], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, max(values) * 1.2 if max(values) > 0 else 1)
    _save(plt, fig, path)


def _plot_latency(plt, runs, out: Path) -> tuple[str | None, str | None]:
    snn = [r for r in runs if _steps(r) and r.get("kind") != "ann"]
    if not snn:
        return None, "no spiking runs with a timestep count"
    if _one_t_per_series(snn):
        rows = snn + [r for r in runs if r.get("kind") == "ann"]
        p50 = [r["latency_ms"]["p50"] for r in rows]
        p90 = [r["latency_ms"].get("p90", r["latency_ms"]["p50"]) for r in rows]
        _bars(plt, rows, p50, [[0] * len(rows), [b - a for a, b in zip(p50, p90)]], out / "latency_by_variant.png",
              ylabel="latency per frame, p50 [ms] (whisker: p90)",
              title="Latency per frame, by variant" + (" (grey: ANN twin, one pass)"
                                                       if any(r.get("kind") == "ann" for r in rows) else ""))
        return "latency_by_variant.png", None
    path = out / "latency_vs_T.png"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for series in dict.fromkeys(_series(r) for r in snn):
        points = sorted((_steps(r), r["latency_ms"]["p50"], r["latency_ms"].get("p90", r["latency_ms"]["p50"]))
                        for r in snn if _series(r) == series)
        ts, p50, p90 = zip(*points)
        ax.errorbar(ts, p50, yerr=[[0] * len(ts), [b - a for a, b in zip(p50, p90)]], marker="o", capsize=3, label=series)
    for r in runs:
        if r.get("kind") == "ann":
            ax.axhline(r["latency_ms"]["p50"], linestyle="--", linewidth=1, label=f"{r['name']} (one pass, p50)")
    ax.set_xlabel("timesteps per frame (T)")
    ax.set_ylabel("latency per frame, p50 [ms] (whisker: p90)")
    ax.set_title("Latency against T")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(plt, fig, path)
    return path.name, None


def _plot_energy(plt, runs, out: Path) -> tuple[str | None, str | None]:
    rows = [r for r in runs if "snn_mj" in (r.get("energy_estimate") or {})]
    if not rows:
        return None, "no run carries an energy estimate"
    path = out / "energy_per_frame.png"
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    width = 0.27
    snn = [r["energy_estimate"]["snn_mj"] for r in rows]
    ann = [r["energy_estimate"]["ann_mj"] for r in rows]
    measured = [_measured_mj(r) for r in rows]
    ax.bar(x - width, snn, width, label="SNN, estimate (45 nm, Horowitz)")
    ax.bar(x, ann, width, label="ANN twin, estimate (45 nm, Horowitz)")
    ax.bar(x + width, [m or 0 for m in measured], width, label="measured on this device, above idle")
    floor = min(v for v in snn + ann + [m for m in measured if m] if v > 0) if any(v > 0 for v in snn + ann) else 1e-3
    for i, m in enumerate(measured):
        if m is None:
            ax.text(x[i] + width, floor, "not\nmeasured", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("energy per image [mJ]")
    ax.set_title("Energy per frame: estimate vs measured (different things, see report.md)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    _save(plt, fig, path)
    return path.name, None


def _plot_spikes(plt, runs, out: Path) -> tuple[str | None, str | None]:
    rows = [r for r in runs if (r.get("spikes") or {}).get("layers")]
    if not rows:
        return None, "no run carries spike rates"
    path = out / "spike_rates.png"
    if len(rows) > 8:  # keep the plot readable: the runs at the largest T
        top = max(_steps(r) or 0 for r in rows)
        rows = [r for r in rows if (_steps(r) or 0) == top][:8]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        spikes = r["spikes"]
        names = [x["name"] for x in spikes["layers"]]
        rates = [x["rate"] for x in spikes["layers"]]
        if spikes.get("input_rate") is not None:
            names, rates = ["input", *names], [spikes["input_rate"], *rates]
        ax.plot(names, rates, marker="o", label=f"{r['name']} (T={_steps(r)})")
    ax.set_ylabel("spike rate (spikes per neuron per step)")
    ax.set_title("Spike rate per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    _save(plt, fig, path)
    return path.name, None


def _plot_accuracy(plt, runs, out: Path) -> tuple[str | None, str | None]:
    rows = [r for r in runs if isinstance(r.get("accuracy"), dict) and r["accuracy"] and _steps(r)]
    if not rows:
        return None, "no run carries accuracy (add 'accuracy': {'miou': ...} to a run)"
    if _one_t_per_series(rows):
        metric = next(iter(rows[0]["accuracy"]))
        rows = [r for r in rows if metric in r["accuracy"]]
        _bars(plt, rows, [r["accuracy"][metric] for r in rows], None, out / "accuracy_by_variant.png",
              ylabel=metric, title=f"{metric} per variant")
        return "accuracy_by_variant.png", None
    path = out / "accuracy_vs_T.png"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for series in dict.fromkeys(_series(r) for r in rows):
        members = [r for r in rows if _series(r) == series]
        for metric in dict.fromkeys(k for r in members for k in r["accuracy"]):
            points = sorted((_steps(r), r["accuracy"][metric]) for r in members if metric in r["accuracy"])
            ax.plot(*zip(*points), marker="o", label=f"{series}: {metric}")
    ax.set_xlabel("timesteps per frame (T)")
    ax.set_ylabel("score")
    ax.set_title("Accuracy against T")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(plt, fig, path)
    return path.name, None


# Each draws into the output folder and returns (file written, None) or (None, why not); the key names
# the plot in report.md when it is skipped.
PLOTS = {"latency_vs_T.png": _plot_latency, "energy_per_frame.png": _plot_energy,
         "spike_rates.png": _plot_spikes, "accuracy_vs_T.png": _plot_accuracy}


def _num(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _markdown(runs: list[dict], docs: list[tuple[str, dict]], written: list[str], skipped: dict[str, str]) -> str:
    lines = ["# edge-snn benchmark report", ""]
    lines.append("Latency is per frame (all T steps of one batched input); what is inside the timed region is "
                 "listed per run below. Energy *estimates* (45 nm, Horowitz: 4.6 pJ/MAC, 0.9 pJ/AC) are "
                 "operation counts, not measurements; *measured* energy is from the device's power sensor, above "
                 "idle, and says \"not measured\" where there was none.")
    lines += ["", "## Sources", ""]
    for source, doc in docs:
        env = doc.get("environment") or {}
        lines.append(f"- `{source}`: {env.get('cpu', '?')} x{env.get('cpu_count', '?')}, GPU {env.get('gpu') or 'none'}, "
                     f"load {env.get('load_average_1_5_15')}, power mode "
                     f"{(env.get('power_mode') or {}).get('name', 'n/a')}"
                     + (f"; {doc['machine_note']}" if doc.get("machine_note") else ""))
    lines += ["", "## Runs", "",
              "| run | backend | layout | precision | T | batch | p50 ms | p90 ms | p99 ms | images/s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        m = r.get("model") or {}
        prov = ", ".join(p.replace("ExecutionProvider", "") for p in r.get("providers") or [])
        lat = r["latency_ms"]
        lines.append(f"| {r['name']} | {r.get('backend', '?')}{f' ({prov})' if prov else ''} | {m.get('layout', '-')} | "
                     f"{m.get('precision', '-')} | {m.get('timesteps', '-')} | {m.get('batch', '-')} | "
                     f"{_num(lat.get('p50'))} | {_num(lat.get('p90'))} | {_num(lat.get('p99'))} | "
                     f"{_num(r.get('throughput_fps'))} |")
    lines += ["", "## Energy per image", "",
              "| run | SNN estimate (45 nm) mJ | ANN estimate (45 nm) mJ | ANN/SNN | measured above idle mJ | sensor |",
              "|---|---|---|---|---|---|"]
    for r in runs:
        est, meas = r.get("energy_estimate") or {}, r.get("energy_measured") or {}
        if not est and not meas:
            continue
        measured = _measured_mj(r)
        lines.append(f"| {r['name']} | {_num(est.get('snn_mj'), '.3g')} | {_num(est.get('ann_mj'), '.3g')} | "
                     f"{_num(est.get('ann_over_snn'))} | {'not measured' if measured is None else format(measured, '.3g')} | "
                     f"{meas.get('source', '-')} |")
    for source, doc in docs:
        if doc.get("summary_lines"):
            lines += ["", f"## Summary from `{source}`", "", "```", *doc["summary_lines"], "```"]
    lines += ["", "## Timed regions", ""]
    for region in dict.fromkeys(r.get("timed_region", "not stated") for r in runs):
        names = ", ".join(r["name"] for r in runs if r.get("timed_region", "not stated") == region)
        lines.append(f"- {names}: {region}")
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({name})" for name in written]
    lines += [f"- {name} not drawn: {why}" for name, why in skipped.items()]
    return "\n".join(lines) + "\n"


def make_report(result_files, out_dir) -> dict:
    """Write the plots and ``report.md`` for ``result_files`` into ``out_dir``; returns what was written."""
    if not result_files:
        raise UserError("give at least one result file (from edge-snn bench --json or benchmarks/bench_deeplab.py)")
    runs, docs = [], []
    for path in result_files:
        file_runs, doc = load_runs(path)
        runs += file_runs
        docs.append((str(path), doc if "runs" in doc else {"environment": doc.get("environment")}))
    out = ensure_writable_dir(out_dir)
    plt = _pyplot()
    written, skipped = [], {}
    for name, draw in PLOTS.items():
        drawn, why = draw(plt, runs, out)
        if drawn is not None:
            written.append(drawn)
        else:
            skipped[name] = why
    markdown = out / "report.md"
    write_bytes_atomic(markdown, _markdown(runs, docs, written, skipped).encode())
    return {"markdown": str(markdown), "plots": [str(out / n) for n in written], "skipped": skipped, "runs": len(runs)}
