"""Where a job's outputs may go, checked before any model runs, and cleaned up when the job fails.

One rule set for every writer (label maps, overlay folders, prompts files and the masks they reference,
video masks, sidecars, overlay videos):

* **Never an input.** An output may not be an input file -- by path, through ``./``, a symlink or a hard
  link -- nor lie inside an input folder (a DICOM series being read).
* A file goes where no folder is, a folder where no file is; two outputs of one job never share a path.
* **Missing parent folders are created**, when the output is written (never before the model has run),
  provided the nearest folder that exists is a writable folder -- checked up front.
* **A refused job writes nothing**; a job that fails or is interrupted afterwards removes the outputs it
  had created (:class:`NewOutputs`), so that nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from volsam.core.errors import OutputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """An output of a job: its ``path``, what it is (named in refusals) and whether it is a folder of files."""

    path: Path
    what: str
    folder: bool = False


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def input_paths(*paths: str | Path | None) -> list[Path]:
    """The given input paths that exist on disk (sources named by text that is not a path are skipped)."""
    out = []
    for p in paths:
        if p is None:
            continue
        path = Path(p)
        with contextlib.suppress(OSError, ValueError):
            if path.exists():
                out.append(path)
    return out


def check_destinations(destinations: Sequence[Destination], inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse (:class:`OutputError`) any destination that breaks the rules of this module; writes nothing."""
    sources = input_paths(*inputs)
    seen: dict[Path, Destination] = {}
    for d in destinations:
        path = Path(d.path)
        target = _resolved(path)
        for src in sources:
            whole = _resolved(src)
            if target == whole or _same_file(path, src):
                raise OutputError(
                    f"{path}: the {d.what} would replace the input {src}; volsam never overwrites an input, "
                    "give another name"
                )
            if src.is_dir() and target.is_relative_to(whole):
                raise OutputError(
                    f"{path}: the {d.what} would go inside the input folder {src}; write it somewhere else"
                )
        if target in seen:
            raise OutputError(f"{path}: the {d.what} and the {seen[target].what} would be the same file")
        seen[target] = d
        if d.folder and path.exists() and not path.is_dir():
            raise OutputError(f"{path}: the {d.what} must be a folder, and a file of that name exists")
        if not d.folder and path.is_dir():
            raise OutputError(f"{path}: the {d.what} must be a file, and a folder of that name exists")
        _check_parent(path, d.what)


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder (missing ones are created later)."""
    parent = _resolved(path).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot write the {what}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write the {what}: no permission to write in {parent}")


def make_parent(path: str | Path) -> None:
    """Create ``path``'s missing parent folders (:class:`OutputError` when that fails)."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder {parent} ({exc.strerror or exc})") from None


class NewOutputs:
    """Remember which destinations do not exist yet; :meth:`remove` deletes the ones that appeared since
    (files, and folders this job created, with what is in them) -- never anything that existed before."""

    def __init__(self, destinations: Iterable[Destination]):
        paths = [Path(d.path) for d in destinations]
        self._new = [p for p in paths if not p.exists()]
        self._parents = {p: self._missing_parents(p) for p in self._new}

    @staticmethod
    def _missing_parents(path: Path) -> list[Path]:
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        return missing

    def remove(self) -> None:
        """Delete what appeared at the new destinations, and the parent folders created for them if empty."""
        for path in self._new:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
            except OSError as exc:  # a failed clean-up must not hide the error that caused it
                log.warning("could not remove the partial output %s: %s", path, exc)
            for parent in self._parents[path]:
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only when empty


@contextlib.contextmanager
def new_outputs_only(destinations: Sequence[Destination]) -> Iterator[NewOutputs]:
    """Within the block, a failure or an interruption removes the outputs the block created."""
    guard = NewOutputs(destinations)
    try:
        yield guard
    except BaseException:
        guard.remove()
        raise
