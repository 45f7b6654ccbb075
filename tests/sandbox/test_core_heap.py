"""The emulators' loaded state is kept out of the cyclic collector (include/sandbox/core/heap.py),
and what a reload replaces is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from include.sandbox.core import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap._Process, "settled", False)
    yield
    gc.unfreeze()


def test_loaded_state_is_frozen_and_the_replaced_state_collected() -> None:
    old = _Node()
    gone = weakref.ref(old)
    heap.settle_loaded_state()
    assert gc.get_freeze_count() > 0
    del old
    gc.collect()
    assert gone() is not None  # frozen: the collector does not look at it
    heap.settle_loaded_state()  # the next load: what the old state left in cycles is freed
    assert gone() is None


def test_a_job_freezes_what_it_wrote_only_in_an_emulator_process() -> None:
    gc.unfreeze()
    heap.keep_written_state()
    assert gc.get_freeze_count() == 0  # a test process driving BulkJobs: left alone
    heap.settle_loaded_state()
    frozen = gc.get_freeze_count()
    written = [[str(n)] for n in range(1000)]
    heap.keep_written_state()
    assert gc.get_freeze_count() >= frozen + len(written)
