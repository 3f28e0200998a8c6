"""The one exception type that means "the user asked for something we cannot do".

It is a click ``ClickException`` (typer vendors click as ``typer._click`` in
recent releases, plain ``click`` before), so the CLI (and typer's ``CliRunner`` in
tests) turns it into one line on stderr and exit code 2, without a traceback.
Anything else that escapes is a bug in edge-snn and keeps its traceback.
Messages say what was wrong (file, value) and what to do next.
"""

from __future__ import annotations

import sys

try:  # typer >= 0.22 ships its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer depends on click
    from click import ClickException


class UserError(ClickException):
    """Bad input, a missing file, an incompatible model: the user can fix it."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click's hook
        print(f"edge-snn: error: {self.format_message()}", file=file or sys.stderr)
