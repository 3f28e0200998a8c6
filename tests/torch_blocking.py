"""Run Python code in a subprocess where importing torch or brevitas fails (as on the drone)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "brevitas", "torchvision"):
                raise ImportError(f"{name} is blocked: the runtime must not need it")
    sys.meta_path.insert(0, Block())
""")


def run_blocked(code: str, cwd) -> subprocess.CompletedProcess:
    """``code`` (dedented) after the blocker, in a fresh interpreter.

    The first such run with a cold numba cache compiles the sparse backend's
    kernels: about 45 s on numba 0.68, about 3 minutes on numba 0.60 (the oldest
    supported, ``make test-oldest``) for both precisions of the selftest's model.
    """
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
