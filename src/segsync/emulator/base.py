"""The emulator base: routing, auth, rate limits, latency, seeded faults and a request log.

A platform emulator subclasses `Emulator`, keeps its state in plain Python structures, and
declares:

- `routes()` — Starlette routes for the endpoints the connector uses (paths include
  `base_path`, the part of the base URL after the host, e.g. "/3.0");
- `error_response(status, code, message)` — the platform's own error body. The base calls it
  with these generic codes: `unauthorized` (401), `rate_limited` (429), `server_error`
  (5xx), `not_found` (404), `method_not_allowed` (405), and whatever routes raise as
  `EmulatorError(status, code, message)`;
- `authorized(request)` — whether the request carries the key the emulator was started with
  (the default compares `presented_key(request)`: Bearer/OAuth token, Basic password, or an
  `api_key_headers` header); `unauthorized_response()` — the platform's 401;
- `rate_limits()` — `WindowLimit` / `ConcurrencyLimit` objects; `rate_limited_response` —
  the platform's 429 (status, body, headers); `rate_limit_headers` — headers added to every
  response (e.g. Brevo's `x-sib-ratelimit-limit/remaining/reset`);
- `fault_allowed(method, path)` — which fault kinds may hit a request.

Seeding and inspecting state without HTTP: by convention a subclass exposes plain methods,
`seed_<thing>(...)` to create state and `get_<thing>(...)` / attributes to read it, so tests
arrange and assert without going through the API under test.

The base wraps every request in: request log -> auth -> rate limits -> injected fault ->
latency -> route. `transport()` returns an httpx transport that reaches the app in-process
(and injects transport-level faults: timeouts, connections dropped before or after the
platform acted); `serve(port)` and `serving()` run the same app on loopback with uvicorn.

Faults are drawn once per request from a seeded `FaultPlan`; see `FaultPlan.parse` for the
`--faults` spec format.

Marketing email activity (sends, opens, clicks), which no platform API can write: every
emulator implements `EngagementHook.record_engagement`; tests and the demo call it through
`record_engagement(emulator, email, action, campaign, at=...)`.

Edits made while a client pages: an emulator whose contact listing (or search) routes
`await self.read_page_served()` after building each page's answer sets `read_page_hook`;
a test then sets `after_read_page` to a callable taking the number of listing pages served
so far (plain or async). It runs before the page is returned, so what it changes (contacts
edited, created, deleted or unsubscribed, the clock advanced) happens between page k and
k+1 of the client's read.
"""

from __future__ import annotations

import abc
import base64
import binascii
import collections
import contextlib
import contextvars
import dataclasses
import datetime as dt
import email.utils
import hmac
import inspect
import ipaddress
import random
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from segsync.clock import Clock, SystemClock

__all__ = [
    "ENGAGEMENT_ACTIONS",
    "FAULT_KINDS",
    "ConcurrencyLimit",
    "CursorPage",
    "Emulator",
    "EmulatorError",
    "EmulatorTransport",
    "EngagementHook",
    "FaultPlan",
    "LoggedRequest",
    "ReadPageHook",
    "RequestLog",
    "WindowLimit",
    "cursor_page",
    "int_param",
    "offset_page",
    "record_engagement",
]


FAULT_KINDS = ("429", "500", "502", "503", "slow", "timeout", "drop", "drop_after", "partial")
"""Fault kinds: HTTP answers, a slow response, a timeout before the platform acted, a
connection dropped before (`drop`) or after (`drop_after`) it acted, and partial batch
failures (some records of a batch refused with a platform error)."""

TRANSPORT_FAULTS = ("timeout", "drop", "drop_after")
"""Kinds that end in a transport error on the client side rather than an HTTP answer."""


# -- faults ------------------------------------------------------------------------------


@dataclasses.dataclass
class FaultPlan:
    """Seeded fault injection: each request draws at most one fault.

    Per-kind rates (`per_kind`) are tried first, in order; then, with probability `rate`, a
    kind drawn uniformly from `kinds`. `slow_seconds` is how long a slow response takes;
    `timeout_seconds` how long a loopback "timeout" hangs before answering (in-process, a
    timeout waits the client's own read timeout on the emulator's clock, then fails).
    `enabled` can be turned off to end a storm; `injected` counts what was injected.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503", "timeout", "drop_after", "partial")
    seed: int = 0
    per_kind: dict[str, float] = dataclasses.field(default_factory=dict)
    slow_seconds: float = 2.0
    enabled: bool = True
    timeout_seconds: float = 150.0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.injected: collections.Counter[str] = collections.Counter()
        for kind in (*self.kinds, *self.per_kind):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        for name, value in (("rate", self.rate), *self.per_kind.items()):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name}={value} is not between 0 and 1")

    @classmethod
    def parse(cls, spec: str | None, *, seed: int = 0) -> FaultPlan:
        """Parse a `--faults` spec; raise ValueError saying what is wrong.

        The spec is a comma-separated list of items:

        - `KIND:P` — inject KIND with probability P (0..1), e.g. `429:0.05,timeout:0.01`;
        - `rate=P` and `kinds=K1+K2+...` — with probability P, one of the kinds, uniformly
          (default kinds: 429, 500, 503, timeout, drop_after, partial);
        - `seed=N` — the random seed (overrides the `seed` argument);
        - `slow=S` / `timeout=S` — seconds a slow response / a loopback timeout takes.

        KIND is one of 429, 500, 502, 503, slow, timeout, drop, drop_after, partial.
        An empty spec injects nothing.
        """
        if not spec or not spec.strip():
            return cls(seed=seed)
        rate, kinds, per_kind = 0.0, cls.kinds, {}
        slow, timeout = cls.slow_seconds, cls.timeout_seconds
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                continue
            try:
                if "=" in part:
                    key, value = (s.strip() for s in part.split("=", 1))
                    if key == "rate":
                        rate = float(value)
                    elif key == "seed":
                        seed = int(value)
                    elif key == "kinds":
                        kinds = tuple(k.strip() for k in value.split("+") if k.strip())
                    elif key == "slow":
                        slow = float(value)
                    elif key == "timeout":
                        timeout = float(value)
                    else:
                        raise ValueError(
                            f"unknown setting {key!r} (known: rate, kinds, seed, slow, timeout)"
                        )
                elif ":" in part:
                    kind, value = (s.strip() for s in part.split(":", 1))
                    per_kind[kind] = float(value)
                else:
                    raise ValueError("expected KIND:RATE or SETTING=VALUE")
            except ValueError as exc:
                raise ValueError(f"fault spec {spec!r}: cannot read {part!r}: {exc}") from None
        try:
            return cls(
                rate=rate,
                kinds=kinds,
                seed=seed,
                per_kind=per_kind,
                slow_seconds=slow,
                timeout_seconds=timeout,
            )
        except ValueError as exc:
            raise ValueError(f"fault spec {spec!r}: {exc}") from None

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


# -- routing on the raw path ---------------------------------------------------------------

_KEPT_ESCAPES = re.compile(rb"(%2[fF]|%25)")


def _route_path(raw: bytes) -> str:
    """The request path for routing: `raw` decoded except `%2F` and `%25`, so an escaped `/`
    stays inside its segment (a name or email never changes the route), as a server routing
    on the path it received does. Route parameters are unescaped by `_unescape_route_params`."""
    parts = _KEPT_ESCAPES.split(raw)
    return "".join(
        part.decode("ascii").upper()
        if i % 2
        else urllib.parse.unquote_to_bytes(part).decode("utf-8", "replace")
        for i, part in enumerate(parts)
    )


def _unescape_route_params(routes: Sequence[BaseRoute]) -> None:
    """Wrap every route so its handler sees its path parameters fully unescaped."""
    for route in routes:
        if isinstance(route, Mount):
            _unescape_route_params(route.routes)
        elif isinstance(route, Route):
            inner = route.app

            async def app(scope: Scope, receive: Receive, send: Send, inner: Any = inner) -> None:
                params = scope.get("path_params") or {}
                scope["path_params"] = {
                    k: urllib.parse.unquote(v) if isinstance(v, str) else v
                    for k, v in params.items()
                }
                await inner(scope, receive, send)

            route.app = app


# -- request log -------------------------------------------------------------------------


class LoggedRequest(NamedTuple):
    """One request the emulator saw (status 0: the connection was dropped before an answer)."""

    method: str
    path: str
    status: int


class RequestLog:
    """Every request the emulator saw: method, path, status; counts by endpoint and status."""

    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def add(self, method: str, path: str, status: int) -> None:
        self.entries.append(LoggedRequest(method, path, status))

    def count(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        status: int | None = None,
    ) -> int:
        """Requests matching `method`, `path` (exact string or regex) and `status`."""
        total = 0
        for m, p, s in self.entries:
            if method and m != method:
                continue
            if isinstance(path, re.Pattern):
                if not path.search(p):
                    continue
            elif path and p != path:
                continue
            if status is not None and s != status:
                continue
            total += 1
        return total

    def by_endpoint(self) -> dict[str, int]:
        """Counts per `"METHOD path"`."""
        return dict(collections.Counter(f"{m} {p}" for m, p, _ in self.entries))

    def by_status(self) -> dict[int, int]:
        """Counts per status."""
        return dict(collections.Counter(s for _, _, s in self.entries))

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


# -- rate limits -------------------------------------------------------------------------


@dataclasses.dataclass
class WindowLimit:
    """At most `limit` requests per rolling `seconds`, for requests whose path matches
    `path_pattern` (a regex; None: every request) and whose method is in `methods` (empty:
    every method). Refused requests do not count."""

    name: str
    limit: int
    seconds: float
    path_pattern: str | None = None
    methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._hits: collections.deque[float] = collections.deque()
        self._regex = re.compile(self.path_pattern) if self.path_pattern else None

    def applies(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return self._regex is None or bool(self._regex.search(path))

    def _expire(self, now: float) -> None:
        while self._hits and self._hits[0] + self.seconds <= now:
            self._hits.popleft()

    def hit(self, now: float) -> float | None:
        """Record a request at `now`; return seconds until a slot frees when over the limit."""
        self._expire(now)
        if len(self._hits) >= self.limit:
            return self._hits[0] + self.seconds - now
        self._hits.append(now)
        return None

    def remaining(self, now: float) -> int:
        """Requests still allowed at `now`."""
        self._expire(now)
        return max(0, self.limit - len(self._hits))

    def reset_in(self, now: float) -> float:
        """Seconds until the oldest counted request leaves the window (0 when none)."""
        self._expire(now)
        return max(0.0, self._hits[0] + self.seconds - now) if self._hits else 0.0

    def reset(self) -> None:
        self._hits.clear()


@dataclasses.dataclass
class ConcurrencyLimit:
    """At most `limit` requests in flight at once (Mailchimp's 10 connections)."""

    name: str
    limit: int
    in_flight: int = 0
    peak: int = 0

    def reset(self) -> None:
        self.in_flight = 0
        self.peak = 0


# -- paging and parameters ---------------------------------------------------------------


class EmulatorError(Exception):
    """Raised by a route to answer with the platform's error body (`Emulator.error_response`)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


ENGAGEMENT_ACTIONS = ("send", "open", "click")
"""What `record_engagement` records: a campaign delivered to, opened or clicked by a person."""


@runtime_checkable
class EngagementHook(Protocol):
    """The engagement test hook every emulator implements (no HTTP: the APIs cannot write it).

    `record_engagement(email, action, campaign, at=None)`: `action` one of
    `ENGAGEMENT_ACTIONS` at `at` (the emulator's now). `campaign` is the caller's name for one
    marketing email; its first `send` makes the platform's campaign (sent at `at`). A `send`
    delivers it to the contact with `email`; `open` and `click` need that delivery first
    (KeyError otherwise, as no platform counts an open of an email it did not send). The
    platform's own figures and routes then show the activity as the platform does (and move
    the contact's change cursor only where the platform does)."""

    def record_engagement(
        self, email: str, action: str, campaign: str, *, at: dt.datetime | None = None
    ) -> None: ...


def record_engagement(
    emulator: object, email: str, action: str, campaign: str, *, at: dt.datetime | None = None
) -> None:
    """Record `action` of `campaign` for `email` on `emulator` (see `EngagementHook`)."""
    if action not in ENGAGEMENT_ACTIONS:
        raise ValueError(
            f"engagement action {action!r}: use one of {', '.join(ENGAGEMENT_ACTIONS)}"
        )
    if not isinstance(emulator, EngagementHook):
        raise TypeError(f"{type(emulator).__name__} has no record_engagement hook")
    emulator.record_engagement(email, action, campaign, at=at)


def offset_page(items: Sequence[Any], offset: int, count: int) -> list[Any]:
    """The slice [offset, offset+count) of `items`."""
    return list(items[offset : offset + count])


@dataclasses.dataclass(frozen=True)
class CursorPage:
    """A page of a cursor-paged collection; `next_cursor` is None on the last page."""

    items: list[Any]
    next_cursor: str | None


def cursor_page(items: Sequence[Any], after: str | None, limit: int) -> CursorPage:
    """The page after cursor `after` (None: the first page), `limit` items at most.

    Cursors are the offset of the next item as a string (HubSpot's `after` looks like this);
    a cursor that is not one raises EmulatorError(400, "bad_request").
    """
    start = 0
    if after not in (None, ""):
        try:
            start = int(str(after))
        except ValueError:
            raise EmulatorError(400, "bad_request", f"invalid paging cursor {after!r}") from None
        if start < 0:
            raise EmulatorError(400, "bad_request", f"invalid paging cursor {after!r}")
    page = list(items[start : start + limit])
    end = start + len(page)
    return CursorPage(page, str(end) if end < len(items) else None)


def int_param(
    request: Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """Query parameter `name` as an int within bounds; EmulatorError(400) otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EmulatorError(400, "bad_request", f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise EmulatorError(400, "bad_request", f"{name} must be {bound}, got {value}")
    return value


# -- the emulator ------------------------------------------------------------------------

_fault_from_transport: contextvars.ContextVar[tuple[str | None] | None] = contextvars.ContextVar(
    "segsync_emulator_fault", default=None
)
"""Set by `EmulatorTransport` to the fault it drew, so the app does not draw a second one."""


class _DroppedConnection(Exception):
    """Ends an ASGI response half-sent: the server closes the connection."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ReadPageHook = Callable[[int], Any]
"""Called with the number of listing pages served so far; may return an awaitable."""


class Emulator(abc.ABC):
    """Base of the platform emulators; see the module docstring."""

    platform: ClassVar[str]
    #: a realistic fake key accepted by default in tests
    default_api_key: ClassVar[str] = "test-key"
    #: the path prefix of the platform's base URL ("/3.0", "/v3"); routes include it
    base_path: ClassVar[str] = ""
    #: headers that carry the API key, besides Authorization
    api_key_headers: ClassVar[tuple[str, ...]] = ("api-key", "x-api-key")
    #: whether the base's default 429 carries a Retry-After header (some platforms' do not)
    retry_after_header: ClassVar[bool] = False
    #: the loopback port `segsync demo --serve` and the benchmark use for this platform;
    #: None keeps the platform out of the demo
    demo_port: ClassVar[int | None] = None
    #: what a user of the emulator should know, printed by `segsync emulate` (e.g. inputs
    #: the real API refuses and so does the emulator)
    notes: ClassVar[tuple[str, ...]] = ()
    #: whether the contact listing routes call `read_page_served` (see the module docstring)
    read_page_hook: ClassVar[bool] = False

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
        #: edits "while the client pages": see the module docstring
        self.after_read_page: ReadPageHook | None = None
        self._read_pages = 0
        self._pages_to_hook: list[int] = []
        self.limits: list[WindowLimit | ConcurrencyLimit] = list(self.rate_limits())
        routes = list(self.routes())
        _unescape_route_params(routes)
        self.app = Starlette(
            routes=routes,
            exception_handlers={
                EmulatorError: self._emulator_error,
                HTTPException: self._http_exception,
            },
        )
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- what a platform declares -------------------------------------------------------

    async def read_page_served(self) -> None:
        """Count a served page of a contact listing; `after_read_page` runs on it once the
        answer (and its `Date`) has been sent, before the client can ask for the next page."""
        self._read_pages += 1
        self._pages_to_hook.append(self._read_pages)

    async def _run_page_hooks(self) -> None:
        pending, self._pages_to_hook = self._pages_to_hook, []
        for served in pending:
            hook = self.after_read_page
            if hook is not None:
                result = hook(served)
                if inspect.isawaitable(result):
                    await result

    def client_config(self) -> dict[str, Any]:
        """The platform config block a connector needs to talk to this emulator (its key,
        and whatever account objects the config names, e.g. a list id), without `base_url`."""
        return {"api_key": self.api_key}

    @abc.abstractmethod
    def routes(self) -> Sequence[BaseRoute]:
        """The Starlette routes of the endpoints emulated."""

    @abc.abstractmethod
    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        """The platform's error body for `status` (see the module docstring for `code`)."""

    def presented_key(self, request: Request) -> str | None:
        """The credential a request carries: Bearer/OAuth token, Basic password, or key header."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() in ("bearer", "oauth") and value:
            return value
        if scheme.lower() == "basic" and value:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                decoded = base64.b64decode(value, validate=True).decode()
                return decoded.partition(":")[2] or None
        for name in self.api_key_headers:
            if request.headers.get(name):
                return request.headers[name]
        return None

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the emulator's API key (constant-time comparison)."""
        key = self.presented_key(request)
        return key is not None and hmac.compare_digest(key.encode(), self.api_key.encode())

    def unauthorized_response(self) -> Response:
        """The platform's 401."""
        return self.error_response(401, "unauthorized", "Key not found or not valid")

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        """The rate limits enforced (none by default)."""
        return ()

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        """The platform's 429 for `limit` (a `Retry-After` only if `retry_after_header`)."""
        response = self.error_response(429, "rate_limited", f"Too many requests ({limit.name})")
        if self.retry_after_header:
            response.headers["Retry-After"] = str(max(1, round(retry_after + 0.4999)))
        return response

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> Mapping[str, str]:
        """Headers added to every response whose request `limit` applies to (none by default).

        `limit` is the most constraining applicable window, `remaining` what it still
        allows after this request and `reset_in` seconds until its oldest request expires.
        """
        return {}

    def fault_allowed(self, method: str, path: str) -> Sequence[str]:
        """Fault kinds that may hit this request (all by default)."""
        return FAULT_KINDS

    def draw_fault(self, method: str, path: str) -> str | None:
        """Draw this request's fault from the plan (one draw per request)."""
        return self.faults.draw(allowed=self.fault_allowed(method, path))

    # -- state helpers ------------------------------------------------------------------

    def reset_limits(self) -> None:
        """Forget every request counted by the rate limits."""
        for limit in self.limits:
            limit.reset()

    def json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        """A JSON response (a shortcut for routes)."""
        return JSONResponse(data, status_code=status, headers=headers)

    # -- the pipeline -------------------------------------------------------------------

    async def _emulator_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EmulatorError)
        return self.error_response(exc.status, exc.code, exc.message, **exc.extra)

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "bad_request")
        return self.error_response(exc.status_code, code, str(exc.detail))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if isinstance(scope.get("raw_path"), bytes):
            scope = {**scope, "path": _route_path(scope["raw_path"].split(b"?", 1)[0])}
        request = Request(scope, receive)
        method, path = request.method, request.url.path
        drawn = _fault_from_transport.get()
        fault = drawn[0] if drawn is not None else self.draw_fault(method, path)
        status = 0
        extra_headers: list[tuple[bytes, bytes]] = []

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), *extra_headers]
                if not any(name.lower() == b"date" for name, _ in headers):
                    # the platform's time is the emulator's clock, never the host's
                    when = email.utils.format_datetime(self.clock.now(), usegmt=True)
                    headers.append((b"date", when.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def swallow(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        response: Response | None = None
        held: list[ConcurrencyLimit] = []
        try:
            if not self.authorized(request):
                response = self.unauthorized_response()
            elif self.enforce_rate_limits:
                response = self._check_limits(method, path, held)
            extra_headers.extend(self._limit_headers(method, path))
            if response is None:
                response = await self._apply_fault(fault, scope)
            if self.latency:
                await self.clock.sleep(self.latency)
            if fault == "drop" and drawn is None:
                await self._drop(send)
            if fault == "drop_after" and drawn is None:
                await self._respond(response, scope, receive, swallow)
                await self._drop(send)
            await self._respond(response, scope, receive, answer)
            await self._run_page_hooks()  # edits made between this page and the next
        finally:
            self._pages_to_hook.clear()
            for limit in held:
                limit.in_flight -= 1
            self.log.add(method, path, status)

    async def _respond(
        self, response: Response | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if response is not None:
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _drop(self, send: Send) -> None:
        """Over loopback: start an answer and break the connection before its body."""
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
        )
        raise _DroppedConnection("injected: connection dropped")

    async def _apply_fault(self, fault: str | None, scope: Scope) -> Response | None:
        if fault == "429":
            limit = next((x for x in self.limits), WindowLimit("injected", 1, 1.0))
            self.rate_limited += 1
            return self.rate_limited_response(limit, 1.0)
        if fault in ("500", "502", "503"):
            return self.error_response(int(fault), "server_error", "Injected server error")
        if fault == "slow":
            await self.clock.sleep(self.faults.slow_seconds)
        elif fault == "timeout":  # only reached over loopback: hang past the client's timeout
            await self.clock.sleep(self.faults.timeout_seconds)
        elif fault == "partial":
            scope.setdefault("state", {})["segsync_partial_failure"] = True
        return None

    def _check_limits(
        self, method: str, path: str, held: list[ConcurrencyLimit]
    ) -> Response | None:
        now = self.clock.monotonic()
        for limit in self.limits:
            if isinstance(limit, ConcurrencyLimit):
                if limit.in_flight >= limit.limit:
                    return self._refuse(limit, 1.0, held)
                limit.in_flight += 1
                limit.peak = max(limit.peak, limit.in_flight)
                held.append(limit)
            elif limit.applies(method, path):
                wait = limit.hit(now)
                if wait is not None:
                    return self._refuse(limit, wait, held)
        return None

    def _refuse(
        self, limit: WindowLimit | ConcurrencyLimit, wait: float, held: list[ConcurrencyLimit]
    ) -> Response:
        self.rate_limited += 1
        for h in held:
            h.in_flight -= 1
        held.clear()
        return self.rate_limited_response(limit, wait)

    def _limit_headers(self, method: str, path: str) -> list[tuple[bytes, bytes]]:
        now = self.clock.monotonic()
        windows = [
            w for w in self.limits if isinstance(w, WindowLimit) and w.applies(method, path)
        ]
        if not windows:
            return []
        tightest = min(windows, key=lambda w: (w.remaining(now), -w.reset_in(now)))
        headers = self.rate_limit_headers(tightest, tightest.remaining(now), tightest.reset_in(now))
        return [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    @staticmethod
    def partial_failure_requested(request: Request) -> bool:
        """True when the fault plan asked this batch request to fail part of its records."""
        return bool(request.scope.get("state", {}).get("segsync_partial_failure"))

    # -- ways to reach it ---------------------------------------------------------------

    def transport(self) -> EmulatorTransport:
        """An httpx transport reaching this emulator in-process."""
        return EmulatorTransport(self)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        """Serve on loopback until interrupted; `on_ready(base_url)` once listening.

        Raises:
            ValueError: `host` is not a loopback address.
            OSError: the port cannot be bound (e.g. already in use).
        """
        server, sock = _server(self, host, port, on_ready)
        with sock:
            server.run(sockets=[sock])

    @contextlib.contextmanager
    def serving(self, port: int = 0, *, startup_timeout: float = 10.0) -> Iterator[str]:
        """Serve on 127.0.0.1 in a background thread; yield the base URL (for tests)."""
        ready = threading.Event()
        urls: list[str] = []

        def on_ready(url: str) -> None:
            urls.append(url)
            ready.set()

        server, sock = _server(self, "127.0.0.1", port, on_ready)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="segsync-emulator", daemon=True
        )
        with sock:
            thread.start()
            try:
                if not ready.wait(startup_timeout):
                    raise RuntimeError(f"emulator did not start listening on 127.0.0.1:{port}")
                yield urls[0]
            finally:
                server.should_exit = True
                thread.join(startup_timeout)


def _server(
    emulator: Emulator, host: str, port: int, on_ready: Callable[[str], None] | None
) -> tuple[Any, socket.socket]:
    """A uvicorn server for `emulator` and its socket, bound to loopback `host`:`port`."""
    import uvicorn

    if not _is_loopback(host):
        raise ValueError(f"emulators serve on loopback addresses only, not {host!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}{emulator.base_path}"

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready(url)

    # `date_header=False`: the emulator stamps `Date` from its own clock (see Emulator.__call__)
    config = uvicorn.Config(emulator, log_level="critical", lifespan="off", date_header=False)
    return _Server(config), sock


class EmulatorTransport(httpx.AsyncBaseTransport):
    """In-process transport to an emulator, with transport-level faults.

    The request's fault is drawn here (once): `timeout` waits the client's read timeout on
    the emulator's clock and fails before the emulator sees the request; `drop` fails before
    it; `drop_after` lets the emulator act and then loses the response — the case that tests
    idempotent retries. Other kinds are handed to the emulator.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._inner = httpx.ASGITransport(app=emulator)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.emulator.draw_fault(request.method, request.url.path)
        if fault == "timeout":
            timeouts = request.extensions.get("timeout", {})
            waited = timeouts.get("read") or self.emulator.faults.timeout_seconds
            await self.emulator.clock.sleep(float(waited))
            raise httpx.ReadTimeout("injected timeout", request=request)
        if fault == "drop":
            raise httpx.RemoteProtocolError("injected: connection dropped", request=request)
        token = _fault_from_transport.set((fault,))
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            _fault_from_transport.reset(token)
        if fault == "drop_after":
            await response.aread()
            raise httpx.RemoteProtocolError(
                "injected: connection dropped after the request was processed", request=request
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
