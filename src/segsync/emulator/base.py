"""The emulator base: routing, auth, rate limits, latency, seeded faults and a request log.

A platform emulator subclasses `Emulator`, keeps its state in plain Python structures, and
declares:

- `routes()` — Starlette routes for the endpoints the connector uses;
- `error_response(status, code, message)` — the platform's own error body;
- `authorized(request)` — whether the request carries the key the emulator was started with;
- `rate_limits()` — `WindowLimit` / `ConcurrencyLimit` objects, and `rate_limited_response`
  — the platform's own 429 (status, body, headers).

The base wraps every request in: request log -> auth -> rate limits -> injected faults ->
latency -> route. `transport()` returns an httpx transport that reaches the app in-process
and can also inject transport-level faults (timeouts, connections dropped before or after the
platform acted); `serve(port)` runs the same app on loopback with uvicorn.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import dataclasses
import random
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from segsync.clock import Clock, SystemClock

__all__ = [
    "ConcurrencyLimit",
    "Emulator",
    "EmulatorTransport",
    "FaultPlan",
    "RequestLog",
    "WindowLimit",
    "offset_page",
]

FAULT_KINDS = ("429", "500", "502", "503", "slow", "timeout", "drop", "drop_after", "partial")
"""Fault kinds: HTTP answers, a slow response, a timeout before the platform acted, a
connection dropped before (`drop`) or after (`drop_after`) it acted, and partial batch
failures (some records of a batch refused with a platform error)."""


@dataclasses.dataclass
class FaultPlan:
    """Seeded fault injection: each request draws a fault with probability `rate`.

    `kinds` are drawn uniformly. `spec` strings look like `"rate=0.1,seed=7,kinds=429+500+drop"`
    or `"429:0.05,timeout:0.02"` (per-kind rates). `enabled` can be turned off to end a storm.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503", "timeout", "drop_after", "partial")
    seed: int = 0
    per_kind: dict[str, float] = dataclasses.field(default_factory=dict)
    slow_seconds: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.injected: collections.Counter[str] = collections.Counter()
        for kind in (*self.kinds, *self.per_kind):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")

    @classmethod
    def parse(cls, spec: str | None, *, seed: int = 0) -> FaultPlan:
        """Parse a `--faults` spec (see the class docstring); raise ValueError saying what is wrong."""
        if not spec:
            return cls()
        rate, kinds, per_kind = 0.0, cls.kinds, {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" in part:
                key, value = part.split("=", 1)
                if key == "rate":
                    rate = float(value)
                elif key == "seed":
                    seed = int(value)
                elif key == "kinds":
                    kinds = tuple(value.split("+"))
                else:
                    raise ValueError(f"fault spec {spec!r}: unknown setting {key!r}")
            elif ":" in part:
                kind, value = part.split(":", 1)
                per_kind[kind] = float(value)
            else:
                raise ValueError(f"fault spec {spec!r}: cannot read {part!r}")
        return cls(rate=rate, kinds=kinds, seed=seed, per_kind=per_kind)

    def draw(self, *, allowed: Sequence[str] = FAULT_KINDS) -> str | None:
        """The fault for one request (or None), among `allowed` kinds."""
        if not self.enabled:
            return None
        for kind, rate in self.per_kind.items():
            if kind in allowed and self._random.random() < rate:
                self.injected[kind] += 1
                return kind
        if self.rate and self._random.random() < self.rate:
            choices = [k for k in self.kinds if k in allowed]
            if choices:
                kind = self._random.choice(choices)
                self.injected[kind] += 1
                return kind
        return None

    def failing_indexes(self, size: int) -> set[int]:
        """For a partial batch failure: which of `size` records fail (at least one, not all)."""
        if size <= 1:
            return set()
        count = max(1, size // 10)
        return set(self._random.sample(range(size), count))


class RequestLog:
    """Every request the emulator saw: method, path, status; counts by endpoint."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, int]] = []

    def add(self, method: str, path: str, status: int) -> None:
        self.entries.append((method, path, status))

    def count(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> int:
        """Requests matching `method` and `path` (exact string or regex)."""
        total = 0
        for m, p, _ in self.entries:
            if method and m != method:
                continue
            if isinstance(path, re.Pattern):
                if not path.search(p):
                    continue
            elif path and p != path:
                continue
            total += 1
        return total

    def by_endpoint(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter(f"{m} {p}" for m, p, _ in self.entries)
        return dict(counts)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


@dataclasses.dataclass
class WindowLimit:
    """At most `limit` requests per rolling `seconds` for requests `applies(request)` selects."""

    name: str
    limit: int
    seconds: float
    path_pattern: str | None = None  # regex on the path; None = every request
    methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._hits: collections.deque[float] = collections.deque()
        self._regex = re.compile(self.path_pattern) if self.path_pattern else None

    def applies(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return self._regex is None or bool(self._regex.search(path))

    def hit(self, now: float) -> float | None:
        """Record a request at `now`; return seconds until a slot frees when over the limit."""
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            return self._hits[0] + self.seconds - now
        self._hits.append(now)
        return None

    def remaining(self, now: float) -> int:
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()
        return max(0, self.limit - len(self._hits))

    def reset(self) -> None:
        self._hits.clear()


@dataclasses.dataclass
class ConcurrencyLimit:
    """At most `limit` requests in flight at once (Mailchimp's 10 connections)."""

    name: str
    limit: int
    in_flight: int = 0
    peak: int = 0


def offset_page(items: Sequence[Any], offset: int, count: int) -> list[Any]:
    """The slice [offset, offset+count) of `items`."""
    return list(items[offset : offset + count])


class Emulator(abc.ABC):
    """Base of the platform emulators; see the module docstring."""

    platform: ClassVar[str]
    #: a realistic fake key accepted by default in tests
    default_api_key: ClassVar[str] = "test-key"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Clock | None = None,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        enforce_rate_limits: bool = True,
    ) -> None:
        self.api_key = api_key or self.default_api_key
        self.clock = clock or SystemClock()
        self.latency = latency_ms / 1000.0
        self.faults = faults or FaultPlan()
        self.seed = seed
        self.random = random.Random(seed)
        self.enforce_rate_limits = enforce_rate_limits
        self.log = RequestLog()
        self.limits: list[WindowLimit | ConcurrencyLimit] = list(self.rate_limits())
        self.app = Starlette(routes=list(self.routes()))
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- what a platform declares -------------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> Sequence[BaseRoute]:
        """The Starlette routes of the endpoints emulated."""

    @abc.abstractmethod
    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        """The platform's error body for `status`."""

    @abc.abstractmethod
    def authorized(self, request: Request) -> bool:
        """Whether the request carries the emulator's API key."""

    def unauthorized_response(self) -> Response:
        """The platform's 401."""
        return self.error_response(401, "unauthorized", "Key not found or not valid")

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        """The rate limits enforced (none by default)."""
        return ()

    def rate_limited_response(self, limit: WindowLimit | ConcurrencyLimit, retry_after: float) -> Response:
        """The platform's 429 for `limit`."""
        return self.error_response(
            429, "rate_limited", f"Too many requests ({limit.name})",
        )

    def fault_allowed(self, method: str, path: str) -> Sequence[str]:
        """Fault kinds that may hit this request (all by default)."""
        return FAULT_KINDS

    # -- the pipeline -------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        method, path = request.method, request.url.path
        status_holder = {"status": 0}

        async def logging_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        response: Response | None = None
        if not self.authorized(request):
            response = self.unauthorized_response()
        held: list[ConcurrencyLimit] = []
        if response is None and self.enforce_rate_limits:
            response = self._check_limits(method, path, held)
        if response is None:
            fault = self.faults.draw(allowed=self.fault_allowed(method, path))
            if fault in ("429",):
                response = self.rate_limited_response(
                    next((x for x in self.limits), WindowLimit("injected", 1, 1.0)), 1.0
                )
            elif fault in ("500", "502", "503"):
                response = self.error_response(int(fault), "server_error", "Injected server error")
            elif fault == "slow":
                await self.clock.sleep(self.faults.slow_seconds)
            elif fault == "partial":
                scope.setdefault("state", {})["segsync_partial_failure"] = True
        try:
            if self.latency:
                await self.clock.sleep(self.latency)
            if response is not None:
                await response(scope, receive, logging_send)
            else:
                await self.app(scope, receive, logging_send)
        finally:
            for limit in held:
                limit.in_flight -= 1
            self.log.add(method, path, status_holder["status"])

    def _check_limits(
        self, method: str, path: str, held: list[ConcurrencyLimit]
    ) -> Response | None:
        now = self.clock.monotonic()
        for limit in self.limits:
            if isinstance(limit, ConcurrencyLimit):
                if limit.in_flight >= limit.limit:
                    self.rate_limited += 1
                    for h in held:
                        h.in_flight -= 1
                    held.clear()
                    return self.rate_limited_response(limit, 1.0)
                limit.in_flight += 1
                limit.peak = max(limit.peak, limit.in_flight)
                held.append(limit)
            elif limit.applies(method, path):
                wait = limit.hit(now)
                if wait is not None:
                    self.rate_limited += 1
                    for h in held:
                        h.in_flight -= 1
                    held.clear()
                    return self.rate_limited_response(limit, wait)
        return None

    @staticmethod
    def partial_failure_requested(request: Request) -> bool:
        """True when the fault plan asked this batch request to fail part of its records."""
        return bool(request.scope.get("state", {}).get("segsync_partial_failure"))

    # -- ways to reach it ---------------------------------------------------------------

    def transport(self) -> EmulatorTransport:
        """An httpx transport reaching this emulator in-process."""
        return EmulatorTransport(self)

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers=headers)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:  # pragma: no cover - CLI path
        """Serve on loopback until interrupted."""
        import uvicorn

        uvicorn.run(self, host=host, port=port, log_level="warning")


class EmulatorTransport(httpx.AsyncBaseTransport):
    """In-process transport to an emulator, with transport-level faults.

    `timeout` and `drop` fail before the emulator sees the request; `drop_after` lets the
    emulator act and then loses the response — the case that tests idempotent retries.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._inner = httpx.ASGITransport(app=emulator)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.emulator.faults.draw(allowed=("timeout", "drop", "drop_after"))
        if fault == "timeout":
            raise httpx.ReadTimeout("injected timeout", request=request)
        if fault == "drop":
            raise httpx.RemoteProtocolError("injected: connection dropped", request=request)
        response = await self._inner.handle_async_request(request)
        if fault == "drop_after":
            await response.aread()
            raise httpx.RemoteProtocolError(
                "injected: connection dropped after the request was processed", request=request
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _noop() -> None:  # keeps asyncio imported for subclasses that sleep
    await asyncio.sleep(0)
