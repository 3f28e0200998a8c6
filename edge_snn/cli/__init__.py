"""The ``edge-snn`` command line.

One module per command group; each command is a thin typer wrapper that parses
options and calls a library function that does the work (and is tested on its
own). Command modules import torch only inside their functions, so ``--help``
and the device-side commands (run, check, bench) work where torch is absent.
:class:`edge_snn.errors.UserError` (a plain exception of the library) becomes one line
on stderr and exit 2 in :class:`EdgeSnnGroup`.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from edge_snn.errors import UserError


class EdgeSnnGroup(TyperGroup):
    """The root command group: a :class:`UserError` from any command becomes one line and exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            print(f"edge-snn: error: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=EdgeSnnGroup,
    name="edge-snn",
    help="Spiking segmentation networks: train, quantize, export, run, check parity, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click output: a user error is exactly one line on stderr, not a rich panel.
    rich_markup_mode=None,
)


def _register_commands() -> None:
    """Import the command modules; each adds its commands to ``app``."""
    from edge_snn.cli import bench_cmds, build_cmds, convert_cmds, core_cmds, deploy_cmds, doctor_cmds, import_cmds, quantize_cmds, selftest_cmds, target_cmds  # noqa: F401


_register_commands()


def main() -> None:
    app()
