"""The ``volsam`` typer application, its global options and the progress display. The commands live in the
modules of this package, each registered on :data:`app`; :mod:`volsam.cli.main` imports them all and runs it.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="volsam",
    help="Prompt one slice, segment the whole volume (SAM 2-family and LiteMedSAM models).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
log = logging.getLogger("volsam")
_STATE = {"debug": False}


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what each step does.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="volsam: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("volsam").setLevel(level)
    _STATE["debug"] = debug


def progress_display():  # rich is imported only when a command runs
    """A transient progress display on stderr: description, bar, done/total, time elapsed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    )


def _console():
    from rich.console import Console

    return Console(stderr=True)
