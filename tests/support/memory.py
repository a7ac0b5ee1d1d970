"""Memory of a process as Linux reports it (``/proc/<pid>/status``), for the tests that bound what a hostile
input may cost: resident memory now (``VmRSS``) and its peak (``VmHWM``), which :func:`reset_peak` restarts."""

from __future__ import annotations

from pathlib import Path


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """``{"VmRSS": ..., "VmHWM": ...}`` of process ``pid`` (default: this one), in MB (2**20 bytes)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(pid: int | str = "self") -> None:
    """Set ``VmHWM`` of ``pid`` back to its current ``VmRSS`` (the peak is measured from here on; a process
    may do this to itself, or to one of its children as the same user)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
