"""``volsam`` command line: parse, call one function of :mod:`volsam.jobs` (or bench, finetune, the server),
print. No logic here. The commands are in this package's modules, one group each; importing this module
registers them all on :data:`volsam.cli.app.app`.

Every refusal is one line on stderr (``volsam: error: ...``) and a non-zero exit (the error's
``exit_code``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

# the commands are listed in --help in the order they register
# isort: off
from volsam.cli import segment, inspect, evaluate, serve, models  # noqa: F401 -- each registers its commands
from volsam.cli.app import app

# isort: on
from volsam.core.errors import VolsamError

__all__ = ["app", "run"]


def run(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per error, exit codes from :mod:`volsam.errors`."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="volsam", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("volsam: aborted", err=True)
        return 130
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
        typer.echo("volsam: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 -- the last line of defence: one line, no traceback
        if debug:
            raise
        typer.echo(f"volsam: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(run())
