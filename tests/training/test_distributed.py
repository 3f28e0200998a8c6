"""Two-process DistributedDataParallel training on the CPU (gloo) through torchrun."""

import os
import subprocess
import sys

import pytest
import torch

from edge_snn.training.checkpoint import load_checkpoint


@pytest.mark.slow
def test_two_ranks_end_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           "-m", "edge_snn", "train", "-o", str(tmp_path / "run"), "--width-mult", "0.125", "--timesteps", "3",
           "--height", "16", "--width", "16", "--train-samples", "16", "--val-samples", "4", "--epochs", "2",
           "--batch-size", "4", "--optimizer", "adam", "--lr", "0.003", "--quiet",
           "--rank-weights-dir", str(tmp_path / "ranks")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    w0 = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "ranks" / "rank1.pt", weights_only=True)
    weights = [k for k in w0 if k.endswith("weight")]
    assert weights
    for key in weights:
        assert torch.equal(w0[key], w1[key]), key
    initial = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=True)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")  # written by rank 0 only, resumable
    assert ckpt["epoch"] == 2
    assert torch.equal(ckpt["state_dict"]["convs.conv1.weight"], initial["convs.conv1.weight"])
    # each rank saw half of each epoch: 16 samples / (4 per batch * 2 ranks) = 2 steps per epoch
    assert ckpt["scheduler"]["last_epoch"] == 2
