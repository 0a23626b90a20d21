"""Rendezvous: the requests of concurrent calls joined into one shared pass.

A connector's write batches run concurrently; some work is cheaper done once for all of them
(e.g. one set of tag-membership calls for every batch's deltas, one read-back pass over the
records every batch imported). Each call `join`s on entry, then either `submit`s its request
or `leave`s (done without one, or failed). When every call that joined has submitted or left,
one pass runs on the submitted requests, in submission order, and each caller gets its own
answer (or the pass's exception). A lone call runs its pass at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, cast

__all__ = ["Rendezvous", "Ticket"]

R = TypeVar("R")
A = TypeVar("A")


@dataclasses.dataclass(eq=False)
class Ticket(Generic[R, A]):
    """One call's place in a rendezvous."""

    request: R | None = None
    answer: asyncio.Future[A] | None = None
    waiting: bool = False
    left: bool = False


class Rendezvous(Generic[R, A]):
    """Joins concurrent calls' requests into one pass: `run(requests) -> answers`, one
    answer per request, in the same order."""

    def __init__(self, run: Callable[[Sequence[R]], Awaitable[Sequence[A]]]) -> None:
        self._run = run
        self._active: list[Ticket[R, A]] = []
        self._passes: set[asyncio.Task[None]] = set()  # strong references while they run

    def join(self) -> Ticket[R, A]:
        ticket: Ticket[R, A] = Ticket()
        self._active.append(ticket)
        return ticket

    def leave(self, ticket: Ticket[R, A]) -> None:
        """Drop `ticket` (done or failed); a pass it was holding up may start."""
        if ticket.left:
            return
        ticket.left = True
        if ticket in self._active:
            self._active.remove(ticket)
        self._maybe_run()

    async def submit(self, ticket: Ticket[R, A], request: R) -> A:
        """`request`'s answer, from a pass shared with the other calls that joined."""
        ticket.request, ticket.waiting = request, True
        ticket.answer = asyncio.get_running_loop().create_future()
        answer = ticket.answer
        self._maybe_run()
        return await answer

    def _maybe_run(self) -> None:
        if not self._active or not all(t.waiting for t in self._active):
            return
        group, self._active = self._active, []
        for ticket in group:
            ticket.left = True
        task = asyncio.get_running_loop().create_task(self._pass(group))
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)

    async def _pass(self, group: list[Ticket[R, A]]) -> None:
        try:
            answers = await self._run([cast(R, t.request) for t in group])  # all submitted
        except BaseException as exc:
            for ticket in group:
                if ticket.answer is not None and not ticket.answer.done():
                    ticket.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for ticket, answer in zip(group, answers, strict=True):
            if ticket.answer is not None and not ticket.answer.done():
                ticket.answer.set_result(answer)
