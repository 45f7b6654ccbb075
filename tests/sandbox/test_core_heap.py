"""The emulators' loaded state is kept out of the cyclic collector (include/sandbox/core/heap.py),
and what a reload replaces is still collected."""

from __future__ import annotations

import gc
import weakref

from include.sandbox.core.heap import settle_loaded_state


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_loaded_state_is_frozen_and_the_replaced_state_collected() -> None:
    try:
        old = _Node()
        gone = weakref.ref(old)
        settle_loaded_state()
        assert gc.get_freeze_count() > 0
        del old
        gc.collect()
        assert gone() is not None  # frozen: the collector does not look at it
        settle_loaded_state()  # the next load: what the old state left in cycles is freed
        assert gone() is None
    finally:
        gc.unfreeze()
