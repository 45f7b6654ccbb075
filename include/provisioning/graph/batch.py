"""Rounds of Graph calls packed into as few HTTP requests as possible.

An extraction reads several independent sequences at once: the pages of the assignment
list, of each assigned group's transitive members, of the user listing or of the delta
round, plus by-id lookups. Each sequence can only advance one page at a time (the next link
comes with the page), but sequences do not wait for each other. So every round takes the
next call of each active sequence and sends them together, 20 to a ``$batch`` envelope: the
request count becomes about the length of the longest sequence instead of the sum of all.

Items of a batch are throttled one by one and the SDK does not retry them, so this module
does: a 429 or 5xx item waits (``Retry-After`` or backoff) and rides along in a later round,
a bounded number of times. A round with a single call sends it as a plain request, which
the SDK's RetryHandler covers as well.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from include.provisioning.graph.client import (
    MISSING_REPLY,
    RETRYABLE_STATUSES,
    BatchItem,
    GraphClient,
    GraphReply,
)


@dataclass(eq=False)
class Call(BatchItem):
    """A ``BatchItem`` with the caller's context (``tag``) and its retry state."""

    tag: Any = None
    attempts: int = 0


class Runner:
    """Sends rounds of calls; keeps throttled ones until they are due again."""

    def __init__(self, client: GraphClient, *, batch_size: int = GraphClient.BATCH_LIMIT) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, GraphClient.BATCH_LIMIT))
        self._waiting: list[tuple[float, int, Call]] = []
        self._order = itertools.count()

    @property
    def idle(self) -> bool:
        """No call is waiting for a retry."""
        return not self._waiting

    def _due(self, now: float) -> list[Call]:
        due = []
        while self._waiting and self._waiting[0][0] <= now:
            due.append(heapq.heappop(self._waiting)[2])
        return due

    async def round(self, calls: Sequence[Call]) -> list[tuple[Call, GraphReply]]:
        """Send ``calls`` plus the retries now due; return the calls that got a final answer.

        Throttled or failed items (429, 5xx, unanswered) are kept for a later round. When
        nothing is ready, waits for the first retry to come due. Raises ``GraphAuthError`` on
        401/403 and ``GraphError`` when an item has used up its attempts.
        """
        todo = [*calls, *self._due(time.monotonic())]
        if not todo:
            if not self._waiting:
                return []
            await asyncio.sleep(max(0.0, self._waiting[0][0] - time.monotonic()))
            todo = self._due(time.monotonic())
        groups = self._group(todo)
        try:
            # A TaskGroup cancels the other envelopes when one fails (e.g. an auth error).
            async with asyncio.TaskGroup() as tasks:
                sent = [tasks.create_task(self._send(group)) for group in groups]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        answers = [task.result() for task in sent]
        finished: list[tuple[Call, GraphReply]] = []
        now = time.monotonic()
        for group, replies in zip(groups, answers, strict=True):
            for call, reply in zip(group, replies, strict=True):
                if reply.status in RETRYABLE_STATUSES or reply.status == MISSING_REPLY:
                    self._retry_later(call, reply, now)
                elif reply.status in (401, 403):
                    raise self.client.auth_error(call.kind, self.client.absolute(call.url), reply)
                else:
                    finished.append((call, reply))
        return finished

    def _group(self, todo: list[Call]) -> list[list[Call]]:
        """Batchable calls in envelopes of ``batch_size``; a link to another host goes alone."""
        alone = [[call] for call in todo if self.client.relative(call.url) is None]
        batchable = [call for call in todo if self.client.relative(call.url) is not None]
        size = self.batch_size
        return alone + [batchable[i : i + size] for i in range(0, len(batchable), size)]

    async def _send(self, group: list[Call]) -> list[GraphReply]:
        if len(group) == 1:
            call = group[0]
            body = None
            if call.body is not None:
                import orjson

                body = orjson.dumps(call.body)
            return [await self.client.request(call.method, call.url, kind=call.kind, body=body, headers=call.headers)]
        return await self.client.batch(group)

    def _retry_later(self, call: Call, reply: GraphReply, now: float) -> None:
        call.attempts += 1
        policy = self.client.retry
        if call.attempts >= policy.max_attempts:
            raise self.client.request_error(
                call.kind, self.client.absolute(call.url), reply, f" (gave up after {call.attempts} attempts)"
            )
        self.client.requests["graph.retries"] += 1
        delay = policy.delay(call.attempts, reply.headers.get("retry-after"))
        heapq.heappush(self._waiting, (now + delay, next(self._order), call))
