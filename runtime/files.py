"""Atomic file writes: a temp file in the target folder, then ``os.replace``.

A reader (or a crash) never sees a half-written file, and a failed write
leaves the previous version intact. Every failure (a full disk, a folder
where a file belongs, a read-only location) is one :class:`UserError` naming
the path and the reason. The new file gets the mode a plain ``open(path, "w")``
would give (0666 minus the umask, or the mode of the file it replaces), not
``mkstemp``'s 0600.

Temp files are named ``.NAME.<pid>.<random>.tmp``. A process killed mid-write
leaves one behind; the next write to the same path removes those whose
process is gone (and nameless leftovers of older versions once they are a
minute old), so they do not pile up.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from edge_snn.errors import UserError

LEGACY_TEMP_AGE_S = 60.0


def _default_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete leftover temp files of earlier, killed writes to ``path``; returns what was removed."""
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{path.name}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        middle = tmp.name[len(path.name) + 2:-len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        try:
            if "." in middle and pid_text.isdigit():
                stale = int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            else:  # an older edge-snn's temp name, without a pid
                stale = time.time() - tmp.stat().st_mtime > LEGACY_TEMP_AGE_S
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def check_output_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before any work, an output path that names a folder; returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name, e.g. {path / ('model' + (path.suffix or '.onnx'))}")
    return path


def _write_error(path: Path, err: OSError) -> UserError:
    return UserError(f"cannot write {path}: {err.strerror or err}; free some space or choose another location")


def reserve_temp(path: str | os.PathLike) -> Path:
    """An empty temp file next to ``path``, named and moded as the atomic writes here name theirs.

    For writers that fill a file themselves (ffmpeg): fill it, then :func:`commit_temp`.
    Removes stale temps of earlier, killed writes to ``path`` first.
    """
    path = check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, _default_mode(path))
    except OSError as err:
        raise _write_error(path, err) from None
    return Path(tmp)


def commit_temp(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a filled temp file from :func:`reserve_temp` onto ``path`` (atomic); on failure it is removed."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(Path(path), err) from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = check_output_file(path)
    tmp = reserve_temp(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, err) from None
    commit_temp(tmp, path)


def write_json_atomic(path: str | os.PathLike, payload) -> None:
    write_bytes_atomic(path, (json.dumps(payload, indent=2, default=float) + "\n").encode())


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it writable, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"output folder {path} is a file; choose a folder with -o")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"output folder {path} is not writable ({err.strerror}); choose another with -o") from None
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
