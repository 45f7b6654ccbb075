"""``frame_stack.call_with_roomy_frame_stack``: the command runs as called, below one frame whose
code declares the roomy value stack, so CPython's frame-stack chunk holding it is 1 MiB."""

from __future__ import annotations

import sys

import pytest

from include.provisioning import frame_stack


def test_the_command_runs_below_the_roomy_frame_and_its_value_is_returned() -> None:
    def command() -> tuple[str, int]:
        caller = sys._getframe(1)
        return caller.f_code.co_name, caller.f_code.co_stacksize

    assert frame_stack.call_with_roomy_frame_stack(command) == ("_call", frame_stack.ROOMY_STACK_SLOTS)


def test_what_the_command_raises_is_raised() -> None:
    def command() -> None:
        raise LookupError("no such user")

    with pytest.raises(LookupError, match="no such user"):
        frame_stack.call_with_roomy_frame_stack(command)


def test_deep_calls_below_it_work() -> None:
    def depth(n: int) -> int:
        return 0 if n == 0 else 1 + depth(n - 1)

    assert frame_stack.call_with_roomy_frame_stack(lambda: depth(900)) == 900
