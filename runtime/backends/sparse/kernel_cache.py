"""numba's on-disk cache of the sparse kernels, dropped whenever any of their sources changes.

numba checks a cached kernel only against the timestamp and size of the file
that defines it. The kernels here inline intrinsics from ``simd.py`` and
functions of other modules, so after a change to ``simd.py`` alone (a
``git pull`` in a clone, an edit) numba would load the old machine code: a
silently wrong kernel. (While developing, the event-conv tests passed on such
stale code after a deliberate break of the transpose in ``simd.py``.) The
fingerprint of all the package's sources is kept beside numba's cache files;
when it differs, those files are removed and numba compiles afresh (a few
seconds, once). ``simd.py``, which every kernel module imports before it
defines a kernel, runs the check when it is first imported. A pip install writes every file anew, so numba's own check
already catches an upgrade; a read-only install keeps its cache elsewhere
and is left alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.files import write_bytes_atomic

PACKAGE_DIR = Path(__file__).resolve().parent
FINGERPRINT_FILE = "edge_snn_kernels.sha256"


def sources_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the names and contents of the package's ``.py`` files, in name order."""
    digest = hashlib.sha256()
    for source in sorted(package_dir.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def drop_stale_cache(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Remove numba's cache files in ``package_dir/__pycache__`` if the sources changed since they were made.

    Returns the files removed. Never fails the caller: a cache it cannot
    read, remove or stamp only costs a recompile.
    """
    cache = package_dir / "__pycache__"
    stamp = cache / FINGERPRINT_FILE
    fingerprint = sources_fingerprint(package_dir)
    try:
        if stamp.read_text().strip() == fingerprint:
            return []
    except (OSError, UnicodeDecodeError):
        pass
    removed = []
    for entry in sorted(cache.glob("*.nb[ic]")):
        try:
            entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    try:
        write_bytes_atomic(stamp, (fingerprint + "\n").encode())
    except (OSError, UserError):  # a read-only install: numba caches in the user's cache folder instead
        pass
    return removed
