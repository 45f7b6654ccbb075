"""Keeping the emulators' loaded state out of Python's cyclic garbage collector.

A 1,000,000-user sandbox holds tens of millions of objects (the tenant's user dicts, the org's
user rows and indexes). Each full collection of the oldest generation walks all of them, and a
Bulk job or a Graph page of a thousand users allocates enough to set collections off again and
again: measured on a 60,000-row Bulk insert against a 20,000-user org, a third of the apply time
went to the collector, and it grows with the state. The state lives until the next ``PUT
/_sandbox/state``, so it is frozen (``gc.freeze``: moved to the permanent generation, never
scanned) once loaded; before a reload it is unfrozen so the state it replaces can be collected.
What a Bulk job adds (the users it wrote, its rows and results, kept until the next reload) is
frozen too when the job ends: four 50,000-row inserts against the 250,000-user fixtures took
25 µs a row from the second job on, 19.5 µs with the jobs frozen (docs/decisions.md,
"Production (issue 7)"). Objects whose last reference goes are still freed
at once (reference counting does not look at generations); only reference cycles wait for the
next reload.
"""

from __future__ import annotations

import gc


class _Process:
    settled = False
    """Whether this process serves emulators (it settled a loaded state); only then do jobs freeze."""


def settle_loaded_state() -> None:
    """Call once a fixture is loaded (startup, ``PUT /_sandbox/state``): collect what the state
    it replaced left in reference cycles, then freeze every object alive now."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _Process.settled = True


def keep_written_state() -> None:
    """Call when a Bulk job has ended: freeze what it added to the state, in a process that
    serves emulators (a test driving ``BulkJobs`` in its own process is left alone)."""
    if _Process.settled:
        gc.freeze()
