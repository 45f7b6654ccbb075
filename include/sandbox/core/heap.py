"""Keeping the emulators' loaded state out of Python's cyclic garbage collector.

A 1,000,000-user sandbox holds tens of millions of objects (the tenant's user dicts, the org's
user rows and indexes). Each full collection of the oldest generation walks all of them, and a
Bulk job or a Graph page of a thousand users allocates enough to set collections off again and
again: measured on a 60,000-row Bulk insert against a 20,000-user org, a third of the apply time
went to the collector, and it grows with the state. The state lives until the next ``PUT
/_sandbox/state``, so it is frozen (``gc.freeze``: moved to the permanent generation, never
scanned) once loaded; before a reload it is unfrozen so the state it replaces can be collected.
"""

from __future__ import annotations

import gc


def settle_loaded_state() -> None:
    """Call once a fixture is loaded (startup, ``PUT /_sandbox/state``): collect what the state
    it replaced left in reference cycles, then freeze every object alive now."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
