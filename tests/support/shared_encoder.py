"""One LiteMedSAM encoder shared by the real-model runs of a test module (``volsam segment``, ``volsam bench``)
that load their engine by name.

:func:`sharing_litemedsam` replaces a module's engine loader so that each load of the first LiteMedSAM it loads
returns one :class:`~volsam.engines.cache.CachedEngine` around it: a slice's embedding is computed once and
served again only for a slice of the same pixels (the cache's key is the uint8 frame's bytes and shape). The
loader itself still runs on every load; what each run walks, decodes, scores and writes stays its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest

from volsam.engines.cache import CachedEngine


class SharedEncoder:
    """The shared cached engine, made at the first load of LiteMedSAM (None before)."""

    engine: CachedEngine | None = None

    @property
    def frames_encoded(self) -> int:
        """Slices the shared engine's encoder has run on (0 before the first load)."""
        return 0 if self.engine is None else self.engine.frames_encoded


@contextmanager
def sharing_litemedsam(module: ModuleType, name: str) -> Iterator[SharedEncoder]:
    """While open, ``module.<name>`` (a loader called as :func:`volsam.engines.get`) returns one cached engine
    around the first LiteMedSAM it loads whenever it loads that same engine again; any other engine as it is."""
    shared = SharedEncoder()
    load = getattr(module, name)

    def loader(*args, **kwargs):
        engine = load(*args, **kwargs)
        if getattr(engine, "name", None) != "medsam-lite":
            return engine
        if shared.engine is None:
            shared.engine = CachedEngine(engine, 512)
        return shared.engine if engine is shared.engine.inner else engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, loader)
        yield shared
