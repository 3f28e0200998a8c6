"""The sparse backend against ONNX Runtime on the demo model: class maps and spikes, scene by scene.

Trains the demo's configuration (``edge_snn.demo.DEMO_CONFIG``: dl-vgg9 width 0.125, T=20,
synthetic event scenes 64x64) for ``--epochs`` (or reuses ``--checkpoint``), exports the
time-major T=20 graph and the T=1 step graph, and runs ``--scenes`` held-out scenes through
both backends on the same file: class-map agreement, spike agreement per layer free-running
and teacher-forced (each layer fed ONNX Runtime's input spikes). Goal: >= 99.9% class maps.

``--width-mult 1`` (with fewer ``--train-samples``) trains the full-width dl-vgg9 instead: the
benchmark's random-weight model has near-tied logits, a trained one has the margins of a real
network.

Usage: python benchmarks/sparse_demo_parity.py [--epochs 1] [--scenes 8] [--checkpoint best.pt] [--out runs/sparse_parity]
                                               [--width-mult 0.125] [--train-samples 800]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import sparse_sections as S  # noqa: E402  (benchmarks/ is on sys.path when this script runs)
from edge_snn.runtime import Session
from edge_snn.runtime import contract as C


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--checkpoint", type=Path, default=None, help="a trained demo checkpoint (skips training)")
    p.add_argument("--out", type=Path, default=Path("runs/sparse_parity"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--width-mult", type=float, default=None, help="channel multiplier (default: the demo's)")
    p.add_argument("--train-samples", type=int, default=None, help="training scenes (default: the demo's)")
    args = p.parse_args(argv)
    from edge_snn.demo import DEMO_CONFIG
    from edge_snn.export.exporter import ExportOptions, export_checkpoint
    from edge_snn.training.datasets import make_dataset
    from edge_snn.training.trainer import BEST, train

    config = replace(DEMO_CONFIG, epochs=args.epochs, width_mult=args.width_mult or DEMO_CONFIG.width_mult,
                     train_samples=args.train_samples or DEMO_CONFIG.train_samples)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = args.out / "train" / BEST
        if not ckpt.is_file():
            print(f"training the demo model for {args.epochs} epoch(s) into {ckpt.parent}", flush=True)
            metrics = train(config, ckpt.parent, progress=False)
            print("trained: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)), flush=True)
    graphs = {"time-major T=20": ExportOptions(timesteps=20), "step graph T=1": ExportOptions(timesteps=1)}
    scenes = make_dataset(config, "test", num_samples=args.scenes)
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, options in graphs.items():
            path = tmp / f"{name.split()[0]}.onnx"
            export_checkpoint(ckpt, path, options)
            agree, free, forced = [], [], []
            with Session(path) as session:
                frames = [session.encode(scenes[i][0].numpy(), frame_index=i) for i in range(args.scenes)]
            for frame in frames:
                if options.timesteps == 1:
                    outs = {}
                    for backend in ("onnxruntime", "sparse"):
                        with Session(path, backend=backend, threads=args.threads) as session:
                            outs[backend] = session.run_encoded(frame, session.fresh_state())[0][C.LOGITS]
                    agree.append(float(np.mean(outs["onnxruntime"].argmax(1) == outs["sparse"].argmax(1))))
                    continue
                doc, _ = S.parity_lines(path, frame, args.threads)
                agree.append(doc["class_map_agreement"])
                free.append(doc["spike_agreement_free_running"])
                forced.append(doc["spike_agreement_teacher_forced"])
            totals[name] = float(np.mean(agree))
            print(f"{name}: class maps agree {np.mean(agree):.4%} over {len(agree)} scenes (min {np.min(agree):.4%})")
            if free:
                layers = free[0]
                print("  spikes free-running:   " + ", ".join(f"{k} {np.mean([f[k] for f in free]):.6f}" for k in layers))
                print("  spikes teacher-forced: " + ", ".join(f"{k} {np.mean([f[k] for f in forced]):.6f}" for k in layers))
    met = all(v >= 0.999 for v in totals.values())
    print(f"goal >= 99.9% class maps: {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
