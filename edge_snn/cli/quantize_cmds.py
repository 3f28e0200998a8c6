"""``edge-snn quantize``: Brevitas INT8 (or 4-bit weight) PTQ / QAT of a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def quantize(
    checkpoint: Annotated[Path, typer.Argument(help="Float checkpoint from edge-snn train.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Quantized checkpoint to write.")],
    ptq: Annotated[bool, typer.Option("--ptq", help="Post-training quantization (calibrate on training data).")] = False,
    qat: Annotated[bool, typer.Option("--qat", help="Quantization-aware fine-tuning with surrogate gradients.")] = False,
    epochs: Annotated[int, typer.Option(help="QAT epochs.")] = 1,
    weight_bits: Annotated[int, typer.Option(help="8, or 4 (stored in INT8).")] = 8,
    calibration_samples: Annotated[int, typer.Option(help="Training samples for calibration.")] = 64,
    eval_samples: Annotated[int, typer.Option(help="Held-out samples for mIoU before/after.")] = 128,
    lr: Annotated[Optional[float], typer.Option(help="QAT learning rate (default: training lr x0.1).")] = None,
) -> None:
    """Quantize a checkpoint with Brevitas; report mIoU before and after."""
    from edge_snn.errors import UserError
    from edge_snn.training.quantize_run import quantize_checkpoint

    if ptq == qat:
        raise UserError("choose exactly one of --ptq or --qat")
    m = quantize_checkpoint(checkpoint, output, method="qat" if qat else "ptq", epochs=epochs, weight_bits=weight_bits,
                            calibration_samples=calibration_samples, eval_samples=eval_samples, lr=lr)
    typer.echo(f"mIoU float {m['miou_float']:.4f} -> {m['method']} int{m['weight_bits']} {m['miou_quantized']:.4f} "
               f"({(m['miou_quantized'] - m['miou_float']) * 100:+.2f} points); wrote {output}")
