"""Atomic output: write to a hidden temporary file in the target's folder, then ``os.replace`` it into place.

A failure at any point removes the temporary file and leaves an existing file at the target untouched;
``OSError`` becomes :class:`OutputError` naming the target.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from volsam.core.errors import OutputError

log = logging.getLogger(__name__)


def temp_path(path: Path, suffix: str = "") -> Path:
    """``.STEM.tmp-XXXXXXXX{suffix}`` beside ``path``, where STEM is ``path``'s name without ``suffix`` (the
    real extension is kept at the end so that writers which go by it pick the right format)."""
    stem = path.name[: -len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    return path.with_name(f".{stem}.tmp-{secrets.token_hex(4)}{suffix}")


@contextmanager
def atomic_target(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path (see :func:`temp_path`) to write ``path``'s content to; when the block ends
    without an error it replaces ``path``. Raises :class:`OutputError` for any ``OSError``."""
    path = Path(path)
    temp = temp_path(path, suffix)
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        if temp.exists():
            try:
                temp.unlink()
            except OSError:
                log.warning("could not remove the temporary file %s", temp)
