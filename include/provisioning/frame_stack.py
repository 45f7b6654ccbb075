"""Run a short-lived command with CPython's frame stack grown once, instead of thousands of times.

CPython 3.11 keeps Python frames in "data stack chunks" of 16 KiB, each taken from the
operating system with ``mmap`` when a call does not fit in the current chunk, and given back
with ``munmap`` as soon as the call that opened it returns (``Python/pystate.c``:
``push_chunk``, ``_PyThreadState_PopFrame``). Code whose call depth swings back and forth across
a chunk's start pays a system call pair and fresh zeroed pages on every swing: importing Great
Expectations (pydantic's recursive ``deepcopy`` of model fields inside nested imports) and
running its suite did that ~40,000-70,000 times in one cold ``provision-user`` (counted with
``strace -e trace=mmap``), about 0.35 of its CPU seconds, all system time.

``call_with_roomy_frame_stack`` calls the command from a frame declared ~512 KiB large: the
chunk that holds it is 1 MiB, and the rest of that chunk (~512 KiB, a call depth of well over a
thousand ordinary frames) holds every frame below it, so no chunk is opened or closed while the
command runs. The space is only reserved: pages never written are never backed by memory, and a
deeper call simply opens a chunk as before. On an interpreter that manages its frames otherwise
the only effect is one larger frame.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

ROOMY_STACK_SLOTS = 65_536
"""Value-stack slots (8 bytes each) declared by the calling frame: 512 KiB, so CPython's chunk
for it is 1 MiB (chunks are 16 KiB doubled until the frame fits) and about 512 KiB stay free."""


def _call(command: Callable[[], T]) -> T:
    return command()


# The same function with a larger declared value stack: CPython sizes a frame as its locals plus
# co_stacksize, and only initialises the locals, so the extra slots are never touched.
_roomy_call = types.FunctionType(_call.__code__.replace(co_stacksize=ROOMY_STACK_SLOTS), _call.__globals__)


def call_with_roomy_frame_stack(command: Callable[[], T]) -> T:
    """``command()``, run below a frame that keeps ~512 KiB of CPython's frame stack open (see the
    module notes); returns what it returns and raises what it raises."""
    return _roomy_call(command)
