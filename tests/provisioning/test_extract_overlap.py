"""The read loop's overlap (extract._while_taking) and the split of assignment pages it relies on.

The pages of user records, group members and users' assignments are taken while the next round is
served; these tests pin that taking them later changes nothing: the same collector state, the same
order, and a failure that still stops the read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from include.provisioning.graph.assignments import AssignmentCollector
from include.provisioning.graph.extract import _Pager, _Reader, _while_taking


def reader() -> _Reader:
    return _Reader(None, service_principal_id="sp", select=["mail"], known={}, also_fetch=(), progress=None)  # type: ignore[arg-type]


def assignment(asg: str, principal: str | None, kind: str, role: str | None = None, name: str | None = None) -> dict:
    return {"id": asg, "principalId": principal, "principalType": kind, "appRoleId": role, "principalDisplayName": name}


PAGE = {
    "value": [
        assignment("a1", "u1", "User", "r1"),
        assignment("a2", "g1", "Group", "r1", "Sales"),
        assignment("a3", "sp9", "ServicePrincipal", "r2"),
        assignment("a4", "u1", "User", "r2"),
        assignment("a5", None, "User", "r1"),  # no principal: skipped, not counted
        assignment("a6", "g2", "Group", None, None),
        assignment("a7", "g1", "Group", "r2", "Sales"),
        assignment("a8", "u2", "User"),
    ]
}


def test_a_page_of_assignments_taken_in_two_parts_is_the_page_taken_at_once() -> None:
    split = reader()
    split._on_group_assignments(PAGE)
    # The groups' member sequences start at once, before the users' part is taken.
    assert [pager.kind for pager in split.pagers] == ["group_members", "group_members"]
    assert [pager.next_url.split("/")[2] for pager in split.pagers if pager.next_url] == ["g1", "g2"]
    assert all(pager.deferred for pager in split.pagers)
    split._on_other_assignments(PAGE)
    whole = AssignmentCollector()
    assert whole.add_assignments(PAGE["value"]) == [("g1", "Sales"), ("g2", "g2")]
    got = split.assignments
    assert (got.direct, got.group_grants, got.members) == (whole.direct, whole.group_grants, whole.members)
    assert (
        (got.assignment_count, got.ignored_principals) == (whole.assignment_count, whole.ignored_principals) == (7, 1)
    )


def _backlog(taken: list[str], fail: bool = False) -> list[tuple[_Pager, dict[str, Any]]]:
    def on_page(body: dict[str, Any]) -> None:
        if fail:
            raise ValueError("cannot take")
        taken.append(body["name"])

    pager = _Pager("users_list", "/users", on_page, deferred=True)
    return [(pager, {"name": "first"}), (pager, {"name": "second"})]


def test_the_backlog_is_taken_in_order_while_the_round_is_out() -> None:
    events: list[str] = []
    taken = asyncio.Event()

    async def sending() -> list[Any]:
        events.append("sent")
        await taken.wait()  # Graph serving the round: answered only once the backlog is taken
        events.append("answered")
        return ["reply"]

    backlog = _backlog(events)
    last = backlog[-1][0].on_page
    backlog[-1][0].on_page = lambda body: (last(body), taken.set())  # type: ignore[method-assign]

    async def main() -> list[Any]:
        return await asyncio.wait_for(_while_taking(sending(), backlog), timeout=10)

    assert asyncio.run(main()) == ["reply"]
    assert events == ["sent", "first", "second", "answered"]


def test_without_a_backlog_the_round_is_just_awaited() -> None:
    async def sending() -> list[Any]:
        return ["reply"]

    assert asyncio.run(_while_taking(sending(), [])) == ["reply"]


def test_a_failure_taking_the_backlog_cancels_the_round_and_is_raised() -> None:
    cancelled: list[bool] = []

    async def sending() -> list[Any]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return []

    with pytest.raises(ValueError, match="cannot take"):
        asyncio.run(_while_taking(sending(), _backlog([], fail=True)))
    assert cancelled == [True]


def test_a_failed_round_is_raised_after_the_backlog_is_taken() -> None:
    taken: list[str] = []

    async def sending() -> list[Any]:
        raise RuntimeError("401")

    with pytest.raises(RuntimeError, match="401"):
        asyncio.run(_while_taking(sending(), _backlog(taken)))
    assert taken == ["first", "second"]
