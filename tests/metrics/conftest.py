"""Fixture ``sd``: DeepMind's surface-distance (PyPI ``surface-distance==0.1``), the test-only reference for NSD/HD95.

Its 0.1 release uses ``np.Inf`` (gone in numpy 2) where a mask is empty: the fixture puts the
name back for the tests (``shared/FACTS.md``, *Official metrics*). It is imported here only, never by
``volsam`` (``.importlinter``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

REASON = "surface-distance is the test-only reference (pip install -c constraints.txt surface-distance; make dev)"


@pytest.fixture
def sd(monkeypatch):
    """The ``surface_distance`` module, working under numpy 2; skips when it is not installed."""
    module = pytest.importorskip("surface_distance", reason=REASON)
    if not hasattr(np, "Inf"):
        monkeypatch.setattr(np, "Inf", np.inf, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage.filters / .morphology imports
        warnings.simplefilter("ignore", RuntimeWarning)  # its 0 / 0 for two empty masks
        yield module
