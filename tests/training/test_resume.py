"""A training run killed mid-epoch resumes from its last checkpoint and ends where an unbroken run ends."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from edge_snn.training.checkpoint import load_checkpoint

ARGS = ["--width", "0.125", "--timesteps", "3", "--height", "16", "--width-px", "16", "--train-samples", "24",
        "--val-samples", "4", "--epochs", "2", "--batch-size", "4", "--optimizer", "adam", "--lr", "0.003",
        "--checkpoint-every", "2", "--quiet"]
# CPU only: the test asks for bit-for-bit equality, which cuDNN's nondeterministic kernels do not give
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "edge_snn", "train", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_kill_mid_epoch_then_resume(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert cli("-o", str(whole), *ARGS).wait(timeout=600) == 0

    proc = cli("-o", str(broken), *ARGS)
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        last = broken / "last.pt"
        if last.is_file():
            ckpt = load_checkpoint(last)
            if ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"]:  # second epoch, mid-way
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = (ckpt["epoch"], ckpt["step_in_epoch"])
                break
        time.sleep(0.05)
    assert killed_at is not None, "the run finished before it could be killed mid-epoch"
    assert proc.returncode == -signal.SIGKILL
    load_checkpoint(broken / "last.pt")  # intact: a kill can only leave a stray temp file beside it

    resumed = cli("-o", str(broken), "--resume", *ARGS)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    a = load_checkpoint(whole / "last.pt")
    b = load_checkpoint(broken / "last.pt")
    assert b["epoch"] == 2 and len(b["history"]) == 2
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-6), key
    assert a["history"][-1]["val_miou"] == pytest.approx(b["history"][-1]["val_miou"], abs=1e-9)


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    proc = cli("-o", str(tmp_path / "none"), "--resume", *ARGS)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "nothing to resume" in err and "Traceback" not in err
