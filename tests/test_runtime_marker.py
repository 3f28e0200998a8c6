"""The ``runtime`` marker is a promise: a marked test module imports and collects with torch blocked.

``make test-oldest`` runs ``pytest -m runtime`` where torch is not installed; a marked module that
imports torch (directly or through a helper) would fail there. This checks every marked module here,
with torch blocked in a subprocess, so the promise breaks in the main suite first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime_marker import declares_runtime_marker
from torch_blocking import run_blocked

pytestmark = pytest.mark.runtime

TESTS = Path(__file__).parent


def marked_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if declares_runtime_marker(p))


def test_the_device_side_tests_are_marked():
    names = {p.relative_to(TESTS).as_posix() for p in marked_modules()}
    for expected in ("runtime/test_trt_sidecar.py", "runtime/test_trt_engine.py", "runtime/power/test_sampler.py",
                     "targets/test_check.py"):
        assert expected in names


def test_every_marked_module_collects_without_torch(tmp_path):
    paths = [str(p) for p in marked_modules()]
    result = run_blocked(f"""
        import sys
        import pytest
        sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "runtime", *{paths!r}]))
    """, TESTS.parent)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "error" not in result.stdout.lower().split("\n")[-2], result.stdout[-2000:]
