"""``volsam slicer-path``: where the 3D Slicer module (``VolSAM``) of this installation is, to add to Slicer.

The module is the repository's ``slicer/`` folder (an extension holding the scripted module ``VolSAM``). A
source checkout has it beside ``src/``; a wheel installs it as data files under ``<prefix>/share/volsam/``.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app
from volsam.core.errors import InputError

MODULE = "VolSAM"


def slicer_extension() -> Path:
    """The folder holding the extension's ``CMakeLists.txt`` and the module folder ``VolSAM/``; InputError when
    this installation has none."""
    candidates = [
        Path(__file__).resolve().parents[3] / "slicer",  # a source checkout: <repo>/src/volsam/cli/slicer.py
        Path(sysconfig.get_path("data")) / "share" / "volsam" / "slicer",  # pip install (wheel data files)
        Path(sys.prefix) / "share" / "volsam" / "slicer",
        Path(site.getuserbase()) / "share" / "volsam" / "slicer",  # pip install --user
    ]
    for folder in candidates:
        if (folder / MODULE / f"{MODULE}.py").is_file():
            return folder
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise InputError(f"this volsam installation has no 3D Slicer module (looked in {looked})")


@app.command("slicer-path")
def slicer_path_cmd(
    extension: Annotated[
        bool,
        typer.Option(
            "--extension", help="Print the extension folder (for Slicer's Extension Wizard) instead of the module's."
        ),
    ] = False,
) -> None:
    """Print the folder of the 3D Slicer module VolSAM: add it in Slicer (Edit > Application Settings > Modules >
    Additional module paths, or Slicer --additional-module-paths FOLDER), then open the module VolSAM. It
    needs no package inside Slicer: it talks to volsam serve over HTTP."""
    folder = slicer_extension()
    typer.echo(str(folder if extension else folder / MODULE))
