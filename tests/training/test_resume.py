"""A training run killed mid-epoch resumes from its last checkpoint and ends where an unbroken run ends."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from edge_snn.training.checkpoint import load_checkpoint

ARGS = ["--width-mult", "0.125", "--timesteps", "3", "--height", "16", "--width", "16", "--train-samples", "24",
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

    resumed = cli("-o", str(broken), "--resume", "--quiet")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    a = load_checkpoint(whole / "last.pt")
    b = load_checkpoint(broken / "last.pt")
    assert b["epoch"] == 2 and len(b["history"]) == 2
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-6), key
    assert a["history"][-1]["val_miou"] == pytest.approx(b["history"][-1]["val_miou"], abs=1e-9)


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    proc = cli("-o", str(tmp_path / "none"), "--resume", "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "nothing to resume" in err and "Traceback" not in err


def _fingerprint(run):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run (the CLI's own default of 60 epochs must never take over on resume)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    args = [a if a != "2" or i == 0 or ARGS[i - 1] != "--epochs" else "1" for i, a in enumerate(ARGS)]
    proc = cli("-o", str(run), *args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return run


def test_resuming_a_finished_run_says_so_and_changes_nothing(finished_run):
    before = _fingerprint(finished_run)
    proc = cli("-o", str(finished_run), "--resume", "--quiet")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "already finished its 1 epochs" in out and "--epochs" in out
    assert _fingerprint(finished_run) == before  # last.pt, best.pt, history.json untouched


def test_resume_refuses_settings_other_than_epochs(finished_run):
    proc = cli("-o", str(finished_run), "--resume", "--lr", "0.1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "drop --lr" in err and "Traceback" not in err
    proc = cli("-o", str(finished_run), "--resume", "--epochs", "0")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "fewer than the 1 epochs" in err


def test_outputs_get_the_mode_a_plain_write_gives(finished_run):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("history.json", "last.pt", "best.pt"):
        assert (finished_run / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


@pytest.mark.slow
def test_resume_with_epochs_extends_the_run(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    proc = cli("-o", str(run), "--resume", "--epochs", "2", "--quiet")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["train_config"]["epochs"] == 2 and len(ckpt["history"]) == 2
