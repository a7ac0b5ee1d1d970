"""``volsam`` command line: parse, call one function of :mod:`volsam.jobs` (or bench, finetune, the server),
print. No logic here. The commands are in this package's modules, one group each; importing this module
registers them all on :data:`volsam.cli.app.app`.

Every refusal is one line on stderr (``volsam: error: ...``) and a non-zero exit (the error's
``exit_code``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import signal
import sys
import threading

import typer

# the commands are listed in --help in the order they register
# isort: off
from volsam.cli import segment, inspect, evaluate, serve, models, slicer  # noqa: F401 -- each registers its commands
from volsam.cli.app import app

# isort: on
from volsam.core.errors import VolsamError

__all__ = ["app", "run"]


INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
TERMINATED = 143  # 128 + SIGTERM


class _Signals:
    """SIGTERM becomes an interruption (KeyboardInterrupt) so that jobs clean up as for Ctrl-C; which signal
    came is remembered for the exit code."""

    def __init__(self) -> None:
        self.terminated = False
        self._previous: object = None

    def _on_term(self, signum: int, frame: object) -> None:
        self.terminated = True
        raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]

    def stopped(self) -> int:
        """Print the one line of an interruption; its exit code."""
        if self.terminated:
            typer.echo("volsam: terminated", err=True)
            return TERMINATED
        typer.echo("volsam: interrupted", err=True)
        return INTERRUPTED


def run(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per error, exit codes from :mod:`volsam.errors`; Ctrl-C exits
    130 and SIGTERM 143, each with one line, after the job removed what it had started to write."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    with _Signals() as signals:
        try:
            code = app(args=args, prog_name="volsam", standalone_mode=False)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            return signals.stopped()
        except typer.TyperException as exc:  # usage errors of the vendored click: bad or missing options
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(exc.format_message())
                return 0
            typer.echo(f"volsam: error: {' '.join(exc.format_message().split())}", err=True)
            return 2
        except VolsamError as exc:
            if debug:
                raise
            typer.echo(f"volsam: error: {exc}", err=True)
            return exc.exit_code
        except KeyboardInterrupt:
            return signals.stopped()
        except Exception as exc:  # noqa: BLE001 -- the last line of defence: one line, no traceback
            if debug:
                raise
            typer.echo(f"volsam: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
            return 70
        if code == INTERRUPTED:  # typer turns a KeyboardInterrupt inside a command into exit code 130
            return signals.stopped()
        return int(code or 0)


if __name__ == "__main__":
    sys.exit(run())
