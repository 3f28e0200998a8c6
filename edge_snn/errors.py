"""The one exception type that means "the user asked for something we cannot do".

A plain exception: the library (and the torch-free runtime on the drone) does
not depend on the command-line framework. :mod:`edge_snn.cli` turns it into one
line on stderr and exit code 2, without a traceback; anything else that
escapes is a bug in edge-snn and keeps its traceback. Messages say what was
wrong (file, value) and what to do next.
"""

from __future__ import annotations

USER_ERROR_EXIT = 2


class UserError(Exception):
    """Bad input, a missing file, an incompatible model: the user can fix it."""

    exit_code = USER_ERROR_EXIT

    def format_message(self) -> str:
        return str(self)


class InputError(UserError):
    """One input file is unreadable or does not fit the model; a run over a folder reports it and goes on."""
