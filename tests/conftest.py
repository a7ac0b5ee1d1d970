"""Settings for the whole test run.

`make test` runs the suite on pytest-xdist workers (``-n 2``: the CI has two cores). Each worker then gets its
share of the cores for torch's and OpenMP's thread pools (one thread each on two cores), set before any test
module imports torch, so that two workers do not run four spinning threads on two cores. Servers started by
the tests set their own ``OMP_NUM_THREADS``; other subprocesses inherit the worker's. A plain ``pytest`` run
(no workers) keeps torch's default.
"""

from __future__ import annotations

import os
import sys

import pytest


def _worker_threads() -> int | None:
    """Threads for one xdist worker: the usable cores divided among the workers (at least 1); None outside
    xdist."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    return max(1, len(os.sched_getaffinity(0)) // workers)


_THREADS = _worker_threads()
if _THREADS is not None:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)
    os.environ["MKL_NUM_THREADS"] = str(_THREADS)
    if "torch" in sys.modules:  # a plugin imported it first: the variables above came too late for it
        sys.modules["torch"].set_num_threads(_THREADS)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Gives each of Schemathesis's per-operation items its own nodeid (``test[GET /api/health]``).

    Schemathesis 4 names them ``test[<operation>]`` but builds them without a callspec, and pytest 9 derives a
    function's nodeid from its original name and callspec only: all 24 items of
    ``tests/server/test_schema_fuzz.py`` had the bare function's nodeid. pytest-xdist schedules by nodeid:
    under ``--dist loadscope`` the module's work unit (a dict keyed by nodeid) held one entry, the worker was
    sent that nodeid's first index only, and only the first operation (``GET /api/health``) was fuzzed. An
    item whose name is not the last part of its nodeid gets ``parent::name``."""
    if not hasattr(item, "_id") or item.nodeid.endswith("::" + item.name):
        return
    try:  # pytest's private nodeid type (pytest 9); another pytest keeps the ids it gave
        from _pytest.nodeid import NodeId
    except ImportError:
        return
    item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, the modules that hold a test marked ``slow`` come first (each keeps its order).

    `make test` hands out whole modules (``--dist loadscope``: a module's module-scoped fixtures, such as a
    served session or a real-model run read by several tests, are built once) in collection order
    (``--no-loadscope-reorder``); starting the long modules first keeps one of them from running alone at the
    end. Every worker sorts the same way, so their collections stay equal, as xdist requires."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    slow = {module(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: module(item) not in slow)  # a stable sort: the order within stays
