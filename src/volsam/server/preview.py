"""The running step's slice masks, kept compact for the page's live preview (``GET .../preview``).

A session hands each slice mask a step makes to :meth:`Preview.add` as it is made (``Session.on_preview``);
the page asks for the slices added since its last answer while the step runs and paints them into its label
overlay; the final label map replaces them when the step ends. One entry per (object, slice) is kept (a slice
walked again replaces its entry), each as its mask's bounding box and the box's bits packed 8 to a byte, so a
step keeps at most (slices x the masks' box areas) / 8 bytes, and never more than ``max_bytes`` (entries past
that are dropped and the answer says ``complete: false``; the label map at the end has every slice).

The preview has its own small lock, not the session's: the step holds that one for its whole run.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass

import numpy as np

MAX_PREVIEW_BYTES = 32 * 2**20  # packed mask bits kept per session for the running step's preview
ANSWER_BYTES = 2**20  # packed bits per answer (more: ``more`` is true and ``next`` says where to go on)


def _field(kind: str, description: str, items: str | None = None) -> dict:
    field: dict = {"type": kind, "description": description}
    if items is not None:
        field["items"] = {"type": items}
    return field


_RC = "(rows, cols: the array's other two axes in [k, j, i] order: (j, i) for k slices, (k, i) for j, (k, j) for i)"
# the JSON schema of one answer (the OpenAPI description of GET .../preview)
SLICE_SCHEMA = {
    "type": "object",
    "properties": {
        "seq": _field("integer", "this entry's number (ask with after=seq to get later ones)"),
        "label": _field("integer", "the object's label value"),
        "index": _field("integer", "the slice, along the session's axis"),
        "region": _field(
            "array",
            "[row0, row1, col0, col1] (half-open): the part of the slice the mask covers; the object's voxels "
            f"there are replaced by the mask's {_RC}",
            "integer",
        ),
        "box": _field(
            "array",
            "[row0, row1, col0, col1] (half-open, on the slice): the mask's bounding box inside region; [] when "
            "the mask is empty",
            "integer",
        ),
        "bits": _field(
            "string",
            "base64 of the box's pixels, row by row, 8 per byte, most significant bit first (numpy packbits of "
            "the flattened box)",
        ),
    },
}
PREVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "running": _field("boolean", "a step is running"),
        "next": _field("integer", "ask with after=next for the slices added after this answer"),
        "complete": _field("boolean", "false: the memory bound dropped some slices (the label map has them all)"),
        "more": _field("boolean", "true: the answer stopped at its size bound; ask again with after=next"),
        "slices": {"type": "array", "items": SLICE_SCHEMA},
    },
}


@dataclass(frozen=True)
class PreviewSlice:
    """One slice mask, compact: ``region`` / ``box`` are (row0, row1, col0, col1), half-open, on the slice."""

    seq: int
    label: int
    index: int
    region: tuple[int, int, int, int]
    box: tuple[int, int, int, int] | None
    bits: bytes

    def to_dict(self) -> dict:
        return {
            "seq": self.seq,
            "label": self.label,
            "index": self.index,
            "region": list(self.region),
            "box": list(self.box) if self.box is not None else [],
            "bits": base64.b64encode(self.bits).decode("ascii"),
        }


def compact(mask: np.ndarray, origin: tuple[int, int]) -> tuple[tuple[int, int, int, int] | None, bytes]:
    """The bounding box (row0, row1, col0, col1; half-open, shifted by ``origin``) of bool ``mask`` ``(h, w)``
    and the box's bits packed row-major, 8 per byte; (None, b"") for an empty mask. Reads only the mask and
    its box (no copy of the whole mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None, b""
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    bits = np.packbits(mask[r0:r1, c0:c1], axis=None).tobytes()
    return (r0 + origin[0], r1 + origin[0], c0 + origin[1], c1 + origin[1]), bits


class Preview:
    """The running step's slice masks, latest per (object, slice), within ``max_bytes`` of packed bits."""

    def __init__(self, max_bytes: int = MAX_PREVIEW_BYTES, answer_bytes: int = ANSWER_BYTES):
        self.max_bytes = max_bytes
        self.answer_bytes = answer_bytes
        self._lock = threading.Lock()
        self._slices: dict[tuple[int, int], PreviewSlice] = {}
        self._seq = 0  # never reset: an ``after`` from an earlier step stays meaningful
        self._bytes = 0
        self._dropped = False
        self.running = False

    @property
    def nbytes(self) -> int:
        """Packed bits held now (bytes)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._slices)

    def start(self) -> None:
        """A step starts: forget the previous one's slices."""
        self.clear()
        self.running = True

    def clear(self) -> None:
        """The step ended, was stopped or rolled back: its slices go (the label map has the result)."""
        with self._lock:
            self._slices.clear()
            self._bytes = 0
            self._dropped = False
            self.running = False

    def add(self, label: int, index: int, mask: np.ndarray, origin: tuple[int, int]) -> None:
        """Slice ``index`` of object ``label``: bool ``mask`` ``(h, w)`` at ``origin`` (row, col) on the slice."""
        if not self.running:
            return
        box, bits = compact(mask, origin)
        h, w = mask.shape
        region = (origin[0], origin[0] + h, origin[1], origin[1] + w)
        with self._lock:
            old = self._slices.pop((label, index), None)
            if old is not None:
                self._bytes -= len(old.bits)
            if self._bytes + len(bits) > self.max_bytes:
                self._dropped = True
                return
            self._seq += 1
            self._slices[(label, index)] = PreviewSlice(self._seq, label, index, region, box, bits)
            self._bytes += len(bits)

    def since(self, after: int) -> dict:
        """The answer of ``GET .../preview?after=``: the slices added after entry ``after``, oldest first, up to
        ``answer_bytes`` of bits (at least one slice; ``more`` when some were left for the next answer)."""
        with self._lock:
            fresh = sorted((p for p in self._slices.values() if p.seq > after), key=lambda p: p.seq)
            running, last, complete = self.running, self._seq, not self._dropped
        taken, size = [], 0
        for p in fresh:
            if taken and size + len(p.bits) > self.answer_bytes:
                break
            taken.append(p)
            size += len(p.bits)
        more = len(taken) < len(fresh)
        return {
            "running": running,
            "next": taken[-1].seq if more else last,
            "complete": complete,
            "more": more,
            "slices": [p.to_dict() for p in taken],
        }
