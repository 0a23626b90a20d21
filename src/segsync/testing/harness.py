"""What a conformance test runs against: an emulator, a connector and a shared virtual clock.

`RecordingTransport` wraps the emulator's in-process transport and keeps every exchange
(virtual time, method, path, status, headers), so the kit can check retries and waits from
the connector's side; `FirstRequestsFault` injects one fault kind into the first N requests;
`between_pages` runs edits on the platform between two pages of a read (the emulator's
`after_read_page` hook).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.emulator.base import FAULT_KINDS, Emulator, FaultPlan

__all__ = ["Exchange", "FirstRequestsFault", "Harness", "RecordingTransport", "between_pages"]


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request the connector sent and the answer it got (status 0: transport error)."""

    at: float
    method: str
    path: str
    status: int
    headers: dict[str, str]
    #: the response body of a write or an error (at most `RecordingTransport.BODY_LIMIT`)
    body: str = dataclasses.field(default="", compare=False, repr=False)

    @property
    def is_write(self) -> bool:
        """Whether the exchange may change data: not a GET, nor a read sent as a POST (a
        batch read or a search, by the path's last segments)."""
        if self.method in ("GET", "HEAD", "OPTIONS"):
            return False
        tail = self.path.split("?", 1)[0].rstrip("/")
        return not tail.endswith(("/batch/read", "/search"))


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and records each exchange on `clock`'s time.

    The bodies of write responses and of error responses are kept too, so the kit can check
    that a connector reports the platform's own message.
    """

    BODY_LIMIT = 65536

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at = self.clock.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            self.exchanges.append(Exchange(at, request.method, request.url.path, 0, {}))
            raise
        body = ""
        if request.method not in ("GET", "HEAD", "OPTIONS") or response.status_code >= 400:
            content = await response.aread()
            body = content[: self.BODY_LIMIT].decode("utf-8", errors="replace")
        self.exchanges.append(
            Exchange(at, request.method, request.url.path, response.status_code,
                     {k.lower(): v for k, v in response.headers.items()}, body)
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def writes(self) -> list[Exchange]:
        """The exchanges that were not reads."""
        return [e for e in self.exchanges if e.is_write]


class FirstRequestsFault(FaultPlan):
    """Injects `kind` into the first `times` requests that may receive it, then nothing."""

    def __init__(self, kind: str, times: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        super().__init__(rate=0.0, kinds=(kind,))
        self.kind = kind
        self.remaining = times

    def draw(self, *, allowed: Sequence[str] = FAULT_KINDS) -> str | None:
        if not self.enabled or self.remaining <= 0 or self.kind not in allowed:
            return None
        self.remaining -= 1
        self.injected[self.kind] += 1
        return self.kind

    def failing_indexes(self, size: int) -> set[int]:
        """For a partial batch failure: the first record of the batch fails (when size > 1)."""
        return {0} if size > 1 else set()


@dataclasses.dataclass
class Harness:
    """One test's world: the clock shared by the emulator and connectors, and the connector."""

    clock: VirtualClock
    emulator: Emulator
    connector: Connector
    recorder: RecordingTransport
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fault(self, kind: str, times: int = 1) -> FirstRequestsFault:
        """Inject `kind` into the next `times` requests that may receive it."""
        plan = FirstRequestsFault(kind, times)
        self.emulator.faults = plan
        return plan

    def no_faults(self) -> None:
        """Stop injecting faults."""
        self.emulator.faults = FaultPlan()


PageAction = Callable[[int], Awaitable[None] | None]
"""Run with the number of listing pages served so far (1 after the first)."""


@contextlib.contextmanager
def between_pages(emulator: Emulator, action: PageAction) -> Iterator[None]:
    """Run `action` after each page of a contact listing the emulator serves, before the
    client gets it: what it changes happens between that page and the next.

    Requests `action` itself sends to the emulator (through a helper connector) neither run
    it again nor count as pages. Raises NotImplementedError for an emulator without the
    hook (`Emulator.read_page_hook`).
    """
    if not type(emulator).read_page_hook:
        raise NotImplementedError(
            f"{type(emulator).__name__} cannot edit between pages: its contact listing does "
            "not call read_page_served (segsync.emulator.base)"
        )
    served = 0

    async def hook(_: int) -> None:
        nonlocal served
        served += 1
        emulator.after_read_page = None  # the action's own requests are not pages of the read
        try:
            result = action(served)
            if inspect.isawaitable(result):
                await result
        finally:
            emulator.after_read_page = hook

    emulator.after_read_page = hook
    try:
        yield
    finally:
        emulator.after_read_page = None
