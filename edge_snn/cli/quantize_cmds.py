"""``edge-snn quantize``: Brevitas INT8 (or 4-bit weight) PTQ / QAT of a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def quantize(
    checkpoint: Annotated[Path, typer.Argument(help="Float checkpoint (edge-snn train or import-checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Quantized checkpoint to write.")],
    ptq: Annotated[bool, typer.Option("--ptq", help="Post-training quantization (calibrate, no training).")] = False,
    qat: Annotated[bool, typer.Option("--qat", help="Quantization-aware fine-tuning with surrogate gradients.")] = False,
    calibration: Annotated[Optional[Path], typer.Option("--calibration", help="Calibrate on your own frames: a file or folder of what `edge-snn run` accepts (default: the checkpoint's training data).")] = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs.")] = 1,
    weight_bits: Annotated[int, typer.Option(help="8, or 4 (stored in INT8).")] = 8,
    calibration_samples: Annotated[int, typer.Option(help="Frames or training samples for calibration.")] = 64,
    eval_samples: Annotated[int, typer.Option(help="Held-out samples for mIoU before/after.")] = 128,
    lr: Annotated[Optional[float], typer.Option(help="QAT learning rate (default: training lr x0.1).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="QAT data, for a checkpoint that records none: a TOML as for train.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="QAT dataset, for a checkpoint that records none.")] = None,
    data_root: Annotated[Optional[str], typer.Option(help="QAT dataset folder.")] = None,
) -> None:
    """Quantize a checkpoint with Brevitas; report mIoU before and after."""
    from edge_snn.errors import UserError
    from edge_snn.training.quantize_run import quantize_checkpoint

    if ptq == qat:
        raise UserError("choose exactly one of --ptq or --qat")
    qat_config = None
    if config or dataset or data_root:
        from edge_snn.training.config_file import load_config_file, merge

        qat_config = merge(load_config_file(config) if config else {}, {"dataset": dataset, "data_root": data_root})
    m = quantize_checkpoint(checkpoint, output, method="qat" if qat else "ptq", epochs=epochs, weight_bits=weight_bits,
                            calibration=calibration, calibration_samples=calibration_samples,
                            eval_samples=eval_samples, lr=lr, qat_config=qat_config)
    if m["miou_quantized"] is None:
        typer.echo(f"{m['method']} int{m['weight_bits']} calibrated on {m['calibration_frames']} frames of "
                   f"{m['calibration']}; no labelled data, so no mIoU: class maps agree with the float model on "
                   f"{m['float_agreement'] * 100:.2f}% of pixels; wrote {output}")
    else:
        typer.echo(f"mIoU float {m['miou_float']:.4f} -> {m['method']} int{m['weight_bits']} {m['miou_quantized']:.4f} "
                   f"({(m['miou_quantized'] - m['miou_float']) * 100:+.2f} points); wrote {output}")
