"""Frame embeddings of one walk: encoded on demand, a few ahead in the walking direction, LRU-bounded."""

from __future__ import annotations

from collections import OrderedDict

from volsam.engines.base import FrameSource, SliceEmbedding, SliceEngine


class EmbeddingCache:
    """Encodes frames of ``stack`` on demand, ``batch_size`` at a time ahead in the walking direction; keeps at
    most ``capacity`` (at least ``batch_size + 1``). ``encoded`` counts the frames it had the engine encode."""

    def __init__(self, engine: SliceEngine, stack: FrameSource, batch_size: int = 1, capacity: int = 16):
        self.engine = engine
        self.stack = stack
        self.batch_size = max(1, batch_size)
        self.capacity = max(capacity, self.batch_size + 1)
        self._items: OrderedDict[int, SliceEmbedding] = OrderedDict()
        self.encoded = 0

    def get(self, s: int, step: int = 1, limit: tuple[int, int] | None = None) -> SliceEmbedding:
        """The embedding of frame ``s``; when it must be encoded, the next ``batch_size - 1`` frames in the
        direction ``step`` (within ``limit`` = (first, last), inclusive) are encoded with it."""
        if s not in self._items:
            lo, hi = limit if limit is not None else (0, len(self.stack) - 1)
            batch = [
                t for t in (s + step * n for n in range(self.batch_size)) if lo <= t <= hi and t not in self._items
            ]
            for t, emb in zip(batch, self.engine.encode(self.stack.frames(batch))):
                self._items[t] = emb
            self.encoded += len(batch)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        self._items.move_to_end(s)
        return self._items[s]
