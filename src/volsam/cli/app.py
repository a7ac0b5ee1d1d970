"""The ``volsam`` typer application, its global options and the progress display. The commands live in the
modules of this package, each registered on :data:`app`; :mod:`volsam.cli.main` imports them all and runs it.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

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


def progress_display(*columns: Any) -> LazyProgress:
    """A transient progress display on stderr (description, bar, done/total, time elapsed, or ``columns``)
    that appears with the first progress (a refusal before it stays one line) and only on a terminal (logs
    and pipes get no progress lines, and no blank line)."""
    return LazyProgress(columns)


class LazyProgress:
    """A :class:`rich.progress.Progress` started on the first :meth:`advance` / :meth:`update` /
    :meth:`start`; tasks added before then are created when it starts (with the same ids)."""

    def __init__(self, columns: tuple[Any, ...] = ()):
        self._columns = columns
        self._progress: Any = None
        self._pending: list[tuple[str, dict[str, Any]]] = []

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live(self) -> Any:
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = _console()
            columns = self._columns or (
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
            self._progress.start()
            for description, options in self._pending:
                self._progress.add_task(description, **options)
        return self._progress

    def add_task(self, description: str, **options: Any) -> int:
        if self._progress is not None:
            return int(self._progress.add_task(description, **options))
        self._pending.append((description, options))
        return len(self._pending) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self._live().advance(task, advance)

    def update(self, task: int, **options: Any) -> None:
        self._live().update(task, **options)

    def start(self) -> None:
        self._live()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
