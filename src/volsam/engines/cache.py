"""A slice engine that remembers frame embeddings within a memory budget (LRU), so that an interactive
session never encodes the same frame twice while it fits."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from volsam.core.errors import EngineError
from volsam.engines.base import SliceEmbedding, SliceEngine, SlicePrediction

log = logging.getLogger(__name__)


def _nbytes(embedding: SliceEmbedding) -> int:
    """Memory held by an embedding's features (a torch tensor or a numpy array)."""
    features = embedding.features
    if hasattr(features, "nelement"):
        return int(features.nelement() * features.element_size())
    return int(getattr(features, "nbytes", 0))


class CachedEngine(SliceEngine):
    """Wraps a :class:`SliceEngine`; :meth:`encode` looks frames up by their pixels (uint8 bytes and shape)
    and only encodes the ones it has not kept.

    Args:
        inner: the engine that encodes and predicts.
        budget_mb: the most memory the kept embeddings may take (MB); least recently used go first.

    ``frames_encoded`` counts frames the inner engine encoded, ``hits`` frames served from memory.
    """

    def __init__(self, inner: SliceEngine, budget_mb: float = 1024.0):
        if budget_mb <= 0:
            raise EngineError(f"the embedding cache budget must be > 0 MB, got {budget_mb!r}")
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.budget = int(budget_mb * 1024 * 1024)
        self._items: OrderedDict[str, SliceEmbedding] = OrderedDict()
        self._bytes = 0
        self.frames_encoded = 0
        self.hits = 0

    @staticmethod
    def key(frame: np.ndarray) -> str:
        """The cache key of one uint8 frame ``(H, W)``."""
        data = np.ascontiguousarray(frame)
        return hashlib.blake2b(data.tobytes() + repr(data.shape).encode(), digest_size=20).hexdigest()

    @property
    def size_mb(self) -> float:
        """Memory held by kept embeddings (MB)."""
        return self._bytes / (1024 * 1024)

    def __contains__(self, frame: np.ndarray) -> bool:
        return self.key(frame) in self._items

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        keys = [self.key(f) for f in frames]
        todo = [n for n, k in enumerate(keys) if k not in self._items]
        fresh: dict[str, SliceEmbedding] = {}
        if todo:
            for n, emb in zip(todo, self.inner.encode(np.asarray(frames)[todo])):
                fresh[keys[n]] = emb
            self.frames_encoded += len(todo)
        self.hits += len(keys) - len(todo)
        out = []
        for k in keys:
            emb = fresh.get(k) or self._items[k]
            out.append(emb)
            self._keep(k, emb)
        return out

    def _keep(self, key: str, embedding: SliceEmbedding) -> None:
        if key in self._items:
            self._items.move_to_end(key)
            return
        size = _nbytes(embedding)
        if size > self.budget:
            return
        self._items[key] = embedding
        self._bytes += size
        while self._bytes > self.budget:
            _, old = self._items.popitem(last=False)
            self._bytes -= _nbytes(old)

    def predict(self, embedding: SliceEmbedding, **kwargs: object) -> SlicePrediction:
        return self.inner.predict(embedding, **kwargs)

    def predict_candidates(self, embedding: SliceEmbedding, **kwargs: object) -> list[SlicePrediction]:
        return self.inner.predict_candidates(embedding, **kwargs)

    def predict_boxes(
        self, embedding: SliceEmbedding, boxes: Sequence[tuple[float, float, float, float]]
    ) -> list[SlicePrediction]:
        """The wrapped engine's batched box call (one decoder forward for LiteMedSAM), not the default loop."""
        return self.inner.predict_boxes(embedding, boxes)

    def clear(self) -> None:
        """Forget every kept embedding."""
        self._items.clear()
        self._bytes = 0
