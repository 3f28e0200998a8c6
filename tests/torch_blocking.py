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
    """``code`` (dedented) after the blocker, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
