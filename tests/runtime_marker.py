"""How a test module declares itself torch-free: the module-level line ``pytestmark = pytest.mark.runtime``.

A plain module (not conftest) so the marker check and conftest's collection hook share one definition.
"""

from __future__ import annotations

from pathlib import Path

RUNTIME_MARK = "pytestmark = pytest.mark.runtime"


def declares_runtime_marker(path: Path) -> bool:
    """Whether the test module at ``path`` carries the ``runtime`` marker line."""
    return any(line.strip() == RUNTIME_MARK for line in Path(path).read_text(encoding="utf-8").splitlines())
