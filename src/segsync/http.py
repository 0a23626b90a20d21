"""The one HTTP layer every connector uses (async httpx).

`ApiClient` wraps an `httpx.AsyncClient` with:

- retries (tenacity) on 429 (honouring `Retry-After` and the platform's reset headers or
  429 bodies, the `RateLimitHints` its connector declares), 5xx, timeouts and connection
  errors, with capped exponential backoff and jitter; never on other 4xx; and for
  non-idempotent requests only where the platform cannot have acted on them (429, a
  connection never made) unless the caller declares the request idempotent — a retry must
  never duplicate a write;
- a per-account `RateBudget` (a concurrency cap plus rolling windows, with scopes) shared by
  everything in a run that talks to the same account (`RateBudget.for_account`);
- an injected `Clock` for all waiting, so tests and benchmarks run on virtual time;
- per-endpoint request accounting (`RequestStats`) for reports and benchmarks;
- a circuit breaker per client (one client per platform account and run): consecutive
  connection failures or 5xx answers past `RetryPolicy.breaker_threshold` requests (or
  that many requests' worth of attempts) open it, and so do, at once and without a retry,
  refused credentials (`auth_statuses`/`auth_codes`), TLS certificate failures and hosts
  that do not exist or refuse connections (not loopback). Every later request fails fast
  with `PlatformUnavailable`, naming the platform and the host (never the key), and
  `RequestStats.unavailable` holds it for the engine to stop that platform; after
  `breaker_cooldown` seconds one request is let through again (long-lived processes);
- redaction: the secrets it is given (and the values of auth headers and key-like query
  parameters) are registered with the process-wide `segsync.logs.redactor`, so they never
  appear in log lines (its own and httpx's), exception text or reprs; httpx exceptions never
  escape: they become `TransientError`/`ApiError` without their cause;
- answers as `ApiResponse`: an `httpx.Response` whose `json()` raises `MalformedAnswer`,
  naming the platform and the endpoint, when the body is not JSON.

Why async: throughput comes from concurrency within each platform's limits (a cap on open
connections, or on requests a second), and the emulators are ASGI apps that httpx
reaches in-process only through its async transport. docs/http.md has the retry table.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import email.utils
import errno
import hashlib
import ipaddress
import logging
import math
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
import tenacity
from pydantic import BaseModel, ConfigDict

from segsync.clock import Clock, SystemClock
from segsync.logs import Redactor, redactor

__all__ = [
    "GENERIC_RATE_LIMIT_HINTS",
    "INTERRUPTED",
    "PLATFORM_FAILURE_CODES",
    "RETRY_AFTER",
    "ApiClient",
    "ApiError",
    "ApiResponse",
    "BodyWait",
    "EndpointStats",
    "Interrupted",
    "MalformedAnswer",
    "PlatformUnavailable",
    "RateBudget",
    "RateLimitHeader",
    "RateLimitHints",
    "RateLimited",
    "RateWindow",
    "RequestStats",
    "RetryPolicy",
    "TransientError",
    "build_client",
    "check_base_url",
    "default_error_parser",
    "retry_after_seconds",
]

log = logging.getLogger("segsync.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "partner-key", "cookie"}
)
"""Header names whose values are registered as secrets automatically."""

SENSITIVE_PARAMS = frozenset(
    {"apikey", "api_key", "api-key", "hapikey", "key", "token", "access_token", "oauth_token"}
)
"""Query-parameter names whose values are registered as secrets automatically."""


def _strip_url(url: str) -> str:
    """`url` without user info, query and fragment (for messages about a base URL)."""
    with contextlib.suppress(Exception):
        parsed = httpx.URL(url)
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
    return "<unreadable URL>"


# -- errors ------------------------------------------------------------------------------


class ApiError(Exception):
    """A request the platform refused, with its status and the platform's own message."""

    def __init__(
        self,
        *,
        platform: str,
        endpoint: str,
        status: int,
        message: str,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        self.platform = platform
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        label = f"HTTP {status} {code}" if code else f"HTTP {status}"
        super().__init__(f"{platform} {endpoint}: {label}: {message}")


class MalformedAnswer(ApiError, ValueError):
    """An answer whose body is not the JSON it should be (garbage, HTML, cut short).

    Also a `ValueError`, as `httpx.Response.json()` raises, so parsers that tolerate a
    non-JSON error body keep doing so.
    """


class ApiResponse(httpx.Response):
    """A platform's answer as `ApiClient.request` returns it: the same status, headers and
    body, and a `json()` that raises `MalformedAnswer`, naming the platform and the endpoint,
    when the body is not JSON."""

    def __init__(self, answer: httpx.Response, *, platform: str, endpoint: str) -> None:
        # the body was read and decoded already: it is carried as it is now, so the header
        # naming the encoding that was undone is left out
        headers = [(k, v) for k, v in answer.headers.raw if k.lower() != b"content-encoding"]
        super().__init__(
            answer.status_code,
            headers=headers,
            content=answer.content,
            request=answer.request,
            extensions=answer.extensions,
            history=answer.history,
            default_encoding=answer.encoding or "utf-8",
        )
        self.platform = platform
        self.endpoint = endpoint

    def json(self, **kwargs: Any) -> Any:
        try:
            return super().json(**kwargs)
        except ValueError as exc:
            kind = self.headers.get("content-type", "no content-type")
            raise MalformedAnswer(
                platform=self.platform,
                endpoint=self.endpoint,
                status=self.status_code,
                code="malformed_answer",
                message=f"the answer is not valid JSON ({exc}; {len(self.content)} bytes, {kind})",
            ) from None


class TransientError(ApiError):
    """A 5xx, timeout or connection error that outlived its retries (status 0: no answer)."""


class RateLimited(ApiError):
    """A 429 that outlived its retries, or whose wait exceeds `RetryPolicy.max_retry_after`."""

    retry_after: float | None = None


INTERRUPTED = "interrupted"
"""The code of `Interrupted`."""


class Interrupted(ApiError):
    """A request not sent because the run was interrupted (`RequestStats.halted`): its
    records are owed to the next run, not refused (code `interrupted`)."""


PLATFORM_FAILURE_CODES = frozenset(
    {"platform_unavailable", "auth_failed", "tls_failed", "host_unreachable"}
)
"""The codes of `PlatformUnavailable`: a whole platform failed, not one record."""


class PlatformUnavailable(ApiError):
    """The platform is out for this run: its circuit breaker is open.

    `reason` says why (one of `PLATFORM_FAILURE_CODES`): `platform_unavailable` (connection
    failures or 5xx answers past the threshold), `auth_failed` (credentials refused),
    `tls_failed` (certificate check failed), `host_unreachable` (no such host, or it refuses
    connections). The message names the platform and the host, never a credential. Raised
    by every request of the client once open; never retried. `code`, `message` and `body`
    are the platform's own where it answered (a 401's), else `reason` and the explanation;
    `str()` always explains.
    """

    def __init__(
        self,
        *,
        platform: str,
        endpoint: str,
        status: int,
        reason: str,
        host: str,
        explanation: str,
        code: str | None = None,
        message: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            platform=platform, endpoint=endpoint, status=status, code=code or reason,
            message=explanation if message is None else message, body=body,
        )
        self.reason = reason
        self.host = host
        self.explanation = explanation
        self.args = (f"{platform} {endpoint}: HTTP {status} {reason}: {explanation}",)

    def __str__(self) -> str:
        return str(self.args[0])


# -- rate budget -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RateWindow:
    """At most `requests` in any rolling `seconds`; `scope` names which requests count.

    Windows of scope "default" apply to every request; others only to requests sent with
    that scope (e.g. `RateWindow(5, 1.0, scope="search")`).
    """

    requests: int
    seconds: float
    scope: str = "default"


class RateBudget:
    """A per-account budget shared by every request of a run: a concurrency cap plus windows.

    `slot(scope)` waits (on the injected clock) until a slot is free in the concurrency cap
    and in every window that applies to `scope`, and holds the concurrency slot until the
    request ends. `penalise(seconds)` makes every caller wait, for a 429 that says how long.
    Share one budget per account: pass it to every client, or get it from
    `RateBudget.for_account(key, ...)`. `waited_seconds` sums the waits of all callers.
    """

    _accounts: ClassVar[dict[str, RateBudget]] = {}

    def __init__(
        self,
        *,
        max_concurrency: int = 10,
        windows: Sequence[RateWindow] = (),
        clock: Clock | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.clock = clock or SystemClock()
        self.max_concurrency = max_concurrency
        self.windows = tuple(windows)
        self._history: list[collections.deque[float]] = [collections.deque() for _ in self.windows]
        self._blocked_until = -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._lock = asyncio.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.waited_seconds = 0.0
        self.waits = 0

    @classmethod
    def for_account(
        cls,
        key: str,
        *,
        max_concurrency: int = 10,
        windows: Sequence[RateWindow] = (),
        clock: Clock | None = None,
    ) -> RateBudget:
        """The process-wide budget for account `key` (created with these settings on first use).

        `key` names the account, e.g. `"hubspot:portal-123"`; it is stored hashed, so even a
        key derived from a credential is not kept in clear.
        """
        digest = hashlib.sha256(key.encode()).hexdigest()
        budget = cls._accounts.get(digest)
        if budget is None:
            budget = cls(max_concurrency=max_concurrency, windows=windows, clock=clock)
            cls._accounts[digest] = budget
        return budget

    @classmethod
    def forget_accounts(cls) -> None:
        """Drop every shared budget (tests, long-lived processes between runs)."""
        cls._accounts.clear()

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # asyncio primitives belong to one event loop; a budget can outlive one run
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._lock = asyncio.Lock()
            self.in_flight = 0

    def _applicable(self, scope: str) -> list[int]:
        return [i for i, w in enumerate(self.windows) if w.scope in ("default", scope)]

    def _wait_needed(self, scope: str, now: float) -> float:
        wait = max(0.0, self._blocked_until - now)
        for i in self._applicable(scope):
            window, history = self.windows[i], self._history[i]
            # `start + seconds <= now` is the one test of expiry, here and in the emulators'
            # WindowLimit, so a client budget and an emulated limit agree to the last bit
            while history and history[0] + window.seconds <= now:
                history.popleft()
            if len(history) >= window.requests:
                # strictly positive (the float test above failed); floored so a wait always
                # moves time forward
                wait = max(wait, history[0] + window.seconds - now, 1e-6)
        return wait

    async def _reserve(self, scope: str) -> None:
        while True:
            async with self._lock:
                now = self.clock.monotonic()
                wait = self._wait_needed(scope, now)
                if wait <= 0:
                    for i in self._applicable(scope):
                        self._history[i].append(now)
                    return
            self.waits += 1
            self.waited_seconds += wait
            await self.clock.sleep(wait)

    @contextlib.asynccontextmanager
    async def slot(self, scope: str = "default") -> AsyncIterator[None]:
        """Hold one concurrency slot and one unit of every applicable window."""
        self._bind_loop()
        async with self._semaphore:
            await self._reserve(scope)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    def penalise(self, seconds: float) -> None:
        """Hold every caller back for `seconds` from now (a 429 with Retry-After)."""
        self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def __repr__(self) -> str:
        return f"RateBudget(concurrency={self.max_concurrency}, windows={list(self.windows)})"


# -- accounting --------------------------------------------------------------------------


@dataclasses.dataclass
class EndpointStats:
    """Counts for one endpoint label; `seconds` is time spent in requests on the clock."""

    calls: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    seconds: float = 0.0


class RequestStats:
    """Request accounting per endpoint label (`"POST /lists/{id}"`)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointStats] = collections.defaultdict(EndpointStats)
        #: the label of the latest request answered (what an unreadable answer came from)
        self.last: str | None = None
        #: set while the client's circuit breaker is open: the platform is out for the run
        self.unavailable: PlatformUnavailable | None = None
        #: set by the engine to stop sending (an interrupted run, the reason): requests not
        #: sent yet raise `Interrupted`, those already sent finish
        self.halted: str | None = None

    @property
    def calls(self) -> int:
        """Every HTTP request sent, retries included."""
        return sum(s.calls for s in self.endpoints.values())

    @property
    def writes(self) -> int:
        """Requests with a method other than GET/HEAD."""
        return sum(
            s.calls for name, s in self.endpoints.items() if not name.startswith(("GET ", "HEAD "))
        )

    @property
    def reads(self) -> int:
        """Requests with method GET/HEAD (`calls` - `writes`)."""
        return self.calls - self.writes

    @property
    def retries(self) -> int:
        """Requests sent again after a retryable failure."""
        return sum(s.retries for s in self.endpoints.values())

    @property
    def rate_limited(self) -> int:
        """429 answers received."""
        return sum(s.rate_limited for s in self.endpoints.values())

    @property
    def errors(self) -> int:
        """Failed attempts (error statuses and transport errors)."""
        return sum(s.errors for s in self.endpoints.values())

    def merge(self, other: RequestStats) -> None:
        """Add `other`'s counts into this one (per-run totals across clients)."""
        for name, theirs in other.endpoints.items():
            mine = self.endpoints[name]
            for field in dataclasses.fields(EndpointStats):
                setattr(mine, field.name, getattr(mine, field.name) + getattr(theirs, field.name))

    def as_dict(self) -> dict[str, dict[str, float]]:
        """A JSON-ready copy, sorted by endpoint."""
        return {name: dataclasses.asdict(s) for name, s in sorted(self.endpoints.items())}

    def __repr__(self) -> str:
        return f"RequestStats(calls={self.calls}, endpoints={len(self.endpoints)})"


# -- retry policy and rate-limit hints ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. `attempts` counts the first try.

    Backoff before retry n is `min(max_backoff, initial_backoff * 2**(n-1))`, reduced by up
    to `jitter` (a fraction) at random. A server-stated wait (Retry-After, reset header) is
    used as is; one longer than `max_retry_after` is not waited for: `RateLimited` is raised
    at once. `retry_statuses` are treated like 5xx (e.g. HubSpot's 423 Locked).

    The circuit breaker opens after `breaker_threshold` consecutive requests that failed
    (connection errors or 5xx, after their retries), after one request that could not
    connect in any of its attempts, or after `breaker_threshold * attempts` consecutive
    failed attempts across concurrent requests; at once on an answer whose
    status is in `auth_statuses`, or whose status is 403 and whose error code is in
    `auth_codes` (a connector's class data: a 403 can also be a missing scope on one
    endpoint, which is not a refused credential). It lets one request through again after
    `breaker_cooldown` seconds.
    """

    attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 3600.0
    retry_statuses: frozenset[int] = frozenset()
    breaker_threshold: int = 5
    breaker_cooldown: float = 300.0
    auth_statuses: frozenset[int] = frozenset({401})
    auth_codes: frozenset[str] = frozenset()


class RateLimitHeader(BaseModel):
    """A response header that says how long to wait, and in which unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    unit: Literal["seconds", "milliseconds", "http-date-or-seconds", "epoch-seconds"] = "seconds"


class BodyWait(BaseModel):
    """A 429 body that says which limit was hit: `field` equal to (or containing) a value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    equals: str | None = None
    contains: str | None = None
    seconds: float = math.inf
    """How long to wait; `inf` means "not within this run" (e.g. a daily cap): fail at once."""

    def matches(self, body: Any) -> bool:
        if not isinstance(body, Mapping):
            return False
        value = body.get(self.field)
        if not isinstance(value, str):
            return False
        if self.equals is not None and value.upper() != self.equals.upper():
            return False
        return self.contains is None or self.contains.lower() in value.lower()


class RateLimitHints(BaseModel):
    """How a platform says how long to wait after a 429: headers first, then its body.

    The first header present wins; then the first matching `BodyWait`; else None, and the
    client backs off exponentially.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    headers: tuple[RateLimitHeader, ...] = ()
    body: tuple[BodyWait, ...] = ()

    def seconds(self, response: httpx.Response, clock: Clock) -> float | None:
        """The wait `response` asks for, in seconds (None when it does not say)."""
        for header in self.headers:
            value = response.headers.get(header.name)
            if value is None or not value.strip():
                continue
            wait = _header_seconds(value.strip(), header.unit, clock)
            if wait is not None:
                return wait
        if self.body:
            try:
                data = response.json()
            except ValueError:
                return None
            for rule in self.body:
                if rule.matches(data):
                    return rule.seconds
        return None


def _header_seconds(value: str, unit: str, clock: Clock) -> float | None:
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        if unit == "milliseconds":
            return max(0.0, number / 1000.0)
        if unit == "epoch-seconds":
            return max(0.0, number - clock.now().timestamp())
        return max(0.0, number)
    if unit == "http-date-or-seconds":
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - clock.now()).total_seconds())
    return None


RETRY_AFTER = RateLimitHeader(name="Retry-After", unit="http-date-or-seconds")
"""The standard `Retry-After` header (seconds or an HTTP date)."""

GENERIC_RATE_LIMIT_HINTS = RateLimitHints(
    headers=(
        RETRY_AFTER,
        RateLimitHeader(name="RateLimit-Reset"),
        RateLimitHeader(name="X-RateLimit-Reset"),
    )
)

ErrorParser = Callable[[httpx.Response], tuple[str | None, str]]
"""Turns a platform's error response into (code, message)."""

RetryAfterParser = Callable[[httpx.Response, Clock], float | None]
"""Reads how long to wait from a 429 (or 503) response; None when it does not say."""


def default_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    """Best-effort (code, message) from a JSON error body, else the status text."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text[:500] or response.reason_phrase)
    if isinstance(body, dict):
        code = body.get("code") or body.get("category") or body.get("title") or body.get("error")
        message = body.get("message") or body.get("detail") or body.get("error_description")
        return (str(code) if code is not None else None), str(message or body)[:1000]
    return None, str(body)[:1000]


def retry_after_seconds(response: httpx.Response, clock: Clock) -> float | None:
    """Seconds from `Retry-After` (delta or HTTP date) or a generic reset header."""
    return GENERIC_RATE_LIMIT_HINTS.seconds(response, clock)


# -- base URLs ---------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_vendor_host(host: str, vendor_hosts: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in (v.lower() for v in vendor_hosts))


def check_base_url(
    url: str,
    *,
    vendor_hosts: Sequence[str] | None = None,
    allow_custom_host: bool = True,
) -> str:
    """Accept https everywhere and plain http only on loopback; raise ValueError otherwise.

    With `allow_custom_host` False, the host must also be loopback or one of `vendor_hosts`
    (a host or a parent domain of it, e.g. `api.mailchimp.com` for `us21.api.mailchimp.com`):
    the credentials go wherever `base_url` points. The error names the URL without its user
    info or query, which may hold credentials.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError("base_url is not a valid URL") from exc
    if not (parsed.scheme == "https" and parsed.host) and not (
        parsed.scheme == "http" and _is_loopback(parsed.host)
    ):
        raise ValueError(
            f"base_url {_strip_url(url)!r}: use https:// (plain http:// is accepted only for "
            "loopback addresses)"
        )
    if allow_custom_host or _is_loopback(parsed.host):
        return url
    if _is_vendor_host(parsed.host, vendor_hosts or ()):
        return url
    vendor = ", ".join(vendor_hosts or ()) or "none declared"
    raise ValueError(
        f"base_url {_strip_url(url)!r}: {parsed.host} is neither the platform's API host "
        f"({vendor}) nor a loopback address, and segsync sends the credentials there; if "
        "that host is meant (a proxy, a gateway), add `allow_custom_host: true` to this "
        "platform's block, otherwise remove base_url"
    )


# -- the client --------------------------------------------------------------------------


class _Retryable(Exception):
    def __init__(self, error: ApiError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before any byte reached the platform: always safe to retry."""

_MAYBE_ACTED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport errors after the request may have reached the platform: retried if idempotent."""


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or during, exception groups opened (bounded)."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(found) < 32:
        current = todo.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)
    return found


_NOT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _transport_kind(exc: BaseException) -> str | None:
    """Why a connection failed, when it is not worth retrying: "tls" (certificate or
    handshake refused), "dns" (no such host; a temporary resolver failure is retried) or
    "refused" (nothing listens there); None for anything else (retried)."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "tls"
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _NOT_TLS):
            return "tls"
        if isinstance(cause, socket.gaierror):
            return None if cause.errno == socket.EAI_AGAIN else "dns"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "refused"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "tls"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "dns"
    return None


class CircuitBreaker:
    """Consecutive failures of one client against one platform (see `RetryPolicy`).

    `blocking()` is the error to raise instead of sending (None: send); `failed_attempt`,
    `failed_request` and `answered` count; `trip` opens it at once. Opening sets
    `stats.unavailable`; a request let through after the cooldown that is answered closes
    it again.
    """

    def __init__(self, policy: RetryPolicy, clock: Clock, stats: RequestStats) -> None:
        self.policy = policy
        self.clock = clock
        self.stats = stats
        self.failed_requests = 0
        self.failed_attempts = 0
        self.error: PlatformUnavailable | None = None
        self.opened_at = -math.inf
        self.opened = 0  # times opened (tests, reports)

    def blocking(self) -> PlatformUnavailable | None:
        if self.error is None:
            return None
        if self.clock.monotonic() - self.opened_at >= self.policy.breaker_cooldown:
            # half-open: requests go again, and the next failure opens it again
            self.error = None
            self.stats.unavailable = None
            self.failed_requests = max(0, self.policy.breaker_threshold - 1)
            self.failed_attempts = max(0, self.policy.breaker_threshold * self.policy.attempts - 1)
            return None
        return self.error

    def trip(self, error: PlatformUnavailable) -> PlatformUnavailable:
        if self.error is None or self.error.reason != error.reason:
            log.warning("%s", error)
        self.error = error
        self.opened_at = self.clock.monotonic()
        self.opened += 1
        self.stats.unavailable = error
        return error

    def answered(self) -> None:
        self.failed_requests = self.failed_attempts = 0
        if self.error is not None:
            self.error = None
            self.stats.unavailable = None

    def failed_attempt(self) -> bool:
        """Count a failed attempt; True when that many attempts in a row open the breaker."""
        self.failed_attempts += 1
        return self.failed_attempts >= self.policy.breaker_threshold * self.policy.attempts

    def failed_request(self) -> bool:
        """Count a request failed after its retries; True when the breaker should open."""
        self.failed_requests += 1
        return self.failed_requests >= self.policy.breaker_threshold


def _credential(header_value: str) -> str:
    """The secret part of an auth header value (`Bearer abc` -> `abc`), so redaction keeps
    the scheme readable: `Bearer ***`."""
    scheme, _, credential = header_value.partition(" ")
    return credential.strip() if credential.strip() and scheme.isalpha() else header_value


def _credentials(header_value: str) -> list[str]:
    """Every form of the secret in an auth header value: its credential and, for Basic
    auth, the decoded password (a platform may echo the key itself)."""
    found = [_credential(header_value)]
    scheme, _, encoded = header_value.partition(" ")
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            _user, _, password = base64.b64decode(encoded.strip(), validate=True).decode(
            ).partition(":")
            if password:
                found.append(password)
    return found


class ApiClient:
    """One platform account's HTTP client; see the module docstring for what it adds to httpx.

    `retry_after` is how the platform says how long to wait after a 429: its connector's
    `rate_limit_hints` (or a parser of its own); None means `GENERIC_RATE_LIMIT_HINTS`.
    `credential` is the setting of the platform's config block that holds the key or token
    (`api_key`): refused credentials name `platforms.<platform>.<credential>` as the fix
    (the block alone when it is not given), never its value.
    """

    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        secrets: Iterable[str] = (),
        budget: RateBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        error_parser: ErrorParser = default_error_parser,
        retry_after: RetryAfterParser | RateLimitHints | None = None,
        timeout: float = 30.0,
        seed: int | None = None,
        credential: str | None = None,
    ) -> None:
        self.platform = platform
        self.credential = credential
        self.clock = clock or SystemClock()
        self.budget = budget or RateBudget(clock=self.clock)
        self.retry = retry or RetryPolicy()
        #: the process-wide redactor; this client's secrets are registered with it
        self.redact: Redactor = redactor
        for secret in secrets:
            self.redact.add(secret)
        # by header name: a key in an auth header is redacted even when nobody passed it
        # as a secret
        for name, value in (headers or {}).items():
            if name.lower() in SENSITIVE_HEADERS:
                for secret in _credentials(value):
                    self.redact.add(secret)
        auth_header = getattr(auth, "_auth_header", None)
        if isinstance(auth_header, str):
            for secret in _credentials(auth_header):
                self.redact.add(secret)
        self._add_url_secrets(base_url)
        self.stats = RequestStats()
        self.breaker = CircuitBreaker(self.retry, self.clock, self.stats)
        self._error_parser = error_parser
        hints = GENERIC_RATE_LIMIT_HINTS if retry_after is None else retry_after
        self._retry_after: RetryAfterParser = (
            hints.seconds if isinstance(hints, RateLimitHints) else hints
        )
        self._random = random.Random(seed)
        if transport is None:
            check_base_url(base_url)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            transport=transport,
            timeout=timeout,
        )

    def _add_url_secrets(self, url: str) -> None:
        with contextlib.suppress(Exception):
            parsed = httpx.URL(url)
            self.redact.add(parsed.password)
            for name, value in parsed.params.multi_items():
                if name.lower() in SENSITIVE_PARAMS:
                    self.redact.add(value)

    def _add_param_secrets(self, params: Mapping[str, Any] | None) -> None:
        for name, value in (params or {}).items():
            if name.lower() in SENSITIVE_PARAMS and isinstance(value, str):
                self.redact.add(value)

    def __repr__(self) -> str:
        return f"ApiClient(platform={self.platform!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """The base URL without user info, query or any registered secret."""
        return self.redact(_strip_url(str(self._client.base_url)))

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._client.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _backoff(self, attempt: int) -> float:
        base = min(self.retry.max_backoff, self.retry.initial_backoff * 2.0 ** (attempt - 1))
        return base * (1 - self.retry.jitter * self._random.random())

    def _error(self, response: httpx.Response, endpoint: str) -> ApiError:
        code, message = self._error_parser(response)
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:1000]
        kind: type[ApiError] = ApiError
        if response.status_code == 429:
            kind = RateLimited
        elif response.status_code >= 500 or response.status_code in self.retry.retry_statuses:
            kind = TransientError
        return kind(
            platform=self.platform,
            endpoint=endpoint,
            status=response.status_code,
            code=self.redact(code) if code else code,
            message=self.redact(message),
            body=self.redact.value(body),
        )

    @property
    def host(self) -> str:
        """The host (and port) requests go to, for messages (no user info, no query)."""
        url = self._client.base_url
        port = f":{url.port}" if url.port else ""
        return self.redact(f"{url.host}{port}")

    def _transport_error(self, label: str, exc: Exception) -> TransientError:
        text = str(exc) or type(exc).__name__
        return TransientError(
            platform=self.platform,
            endpoint=label,
            status=0,
            code=type(exc).__name__,
            message=self.redact(f"{text} ({self.host})"),
        )

    def _unreachable(self, label: str, exc: Exception, kind: str) -> PlatformUnavailable:
        """The platform-level error of a connection that retrying cannot fix."""
        host, text = self.host, self.redact(str(exc) or type(exc).__name__)
        code, message = {
            "tls": ("tls_failed", f"the TLS connection to {host} failed ({text}): its "
                    "certificate is not trusted or the handshake was refused; not retried"),
            "dns": ("host_unreachable", f"{host} does not resolve ({text}): check base_url "
                    "and the network's DNS; not retried"),
            "refused": ("host_unreachable", f"{host} refused the connection ({text}): "
                        "nothing listens there; not retried"),
        }[kind]
        return self.breaker.trip(PlatformUnavailable(
            platform=self.platform, endpoint=label, status=0, reason=code, host=host,
            explanation=f"{message}; no more calls to {self.platform} this run",
        ))

    def _refused_credentials(self, label: str, error: ApiError) -> PlatformUnavailable:
        host = self.host
        said = f"HTTP {error.status}" + (f" {error.code}" if error.code else "")
        return self.breaker.trip(PlatformUnavailable(
            platform=self.platform, endpoint=label, status=error.status, reason="auth_failed",
            host=host, code=error.code, message=error.message, body=error.body,
            explanation=f"{host} refused the credentials ({said}: {error.message}); "
                        f"{self._credential_fix()}; no more calls to {self.platform} this run",
        ))

    def _credential_fix(self) -> str:
        """Where the refused key or token is set (the setting's name, never its value)."""
        block = f"platforms.{self.platform}"
        if self.credential:
            return (f"check `{block}.{self.credential}` (the key or token there, or in the "
                    "environment variable it reads)")
        return f"check the key or token under `{block}` (or the environment variable it reads)"

    def _down(self, label: str, error: ApiError) -> PlatformUnavailable:
        host, policy = self.host, self.retry
        return self.breaker.trip(PlatformUnavailable(
            platform=self.platform, endpoint=label, status=error.status,
            reason="platform_unavailable", host=host,
            explanation=f"{host} is unavailable: {self.breaker.failed_attempts} attempts in a row "
                    f"failed (connection errors or 5xx answers; threshold "
                    f"{policy.breaker_threshold} requests), the last: {error}; no more calls "
                    f"to {self.platform} this run",
        ))

    def _is_auth_failure(self, error: ApiError) -> bool:
        return error.status in self.retry.auth_statuses or (
            error.status == 403 and error.code is not None and error.code in self.retry.auth_codes
        )

    def _unreachable_kind(self, exc: Exception) -> str | None:
        kind = _transport_kind(exc)
        if kind == "refused" and _is_loopback(self._client.base_url.host):
            return None  # an emulator or a proxy restarting on this machine: retried
        return kind

    async def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        scope: str = "default",
        ok: Sequence[int] = (),
    ) -> ApiResponse:
        """Send one request with budget, retries and accounting; return the final response.

        Args:
            endpoint: the accounting label (defaults to `METHOD path`).
            idempotent: overrides the method's default (GET/HEAD/OPTIONS/PUT/DELETE are
                idempotent, POST/PATCH are not); only idempotent requests are retried after
                a 5xx, a timeout or a connection lost once the request was sent.
            scope: selects the rate windows (besides the "default" ones).
            ok: error statuses returned instead of raised.

        Raises:
            ApiError: the platform refused the request (its code and message);
                `RateLimited` and `TransientError` when retries ran out.
        """
        method = method.upper()
        label = self.redact(endpoint or f"{method} {path}")
        safe_to_repeat = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        stats = self.stats.endpoints[label]
        self._add_param_secrets(params)

        breaker = self.breaker
        connected = [False]  # whether any attempt of this request reached the platform

        def fast_fail() -> None:
            if self.stats.halted is not None:
                raise Interrupted(
                    platform=self.platform, endpoint=label, status=0, code=INTERRUPTED,
                    message=f"not sent: {self.stats.halted}",
                )
            open_error = breaker.blocking()
            if open_error is not None:
                raise PlatformUnavailable(
                    platform=self.platform, endpoint=label, status=open_error.status,
                    reason=open_error.reason, host=open_error.host, code=open_error.code,
                    explanation=open_error.explanation, message=open_error.message,
                    body=open_error.body,
                )

        async def attempt() -> ApiResponse:
            failure: ApiError | _Retryable | None = None
            fast_fail()
            async with self.budget.slot(scope):
                fast_fail()  # opened while this request waited for its slot
                stats.calls += 1
                started = self.clock.monotonic()
                try:
                    response = await self._client.request(
                        method, path, params=params, json=json, content=content, headers=headers
                    )
                except _NOT_SENT as exc:
                    kind = self._unreachable_kind(exc)
                    failure = (
                        self._unreachable(label, exc, kind) if kind
                        else _Retryable(self._transport_error(label, exc), None)
                    )
                except _MAYBE_ACTED as exc:
                    connected[0] = True
                    lost = self._transport_error(label, exc)
                    failure = _Retryable(lost, None) if safe_to_repeat else lost
                except httpx.HTTPError as exc:
                    kind = self._unreachable_kind(exc)
                    failure = (
                        self._unreachable(label, exc, kind) if kind
                        else self._transport_error(label, exc)
                    )
                finally:
                    stats.seconds += self.clock.monotonic() - started
            if failure is not None:
                # raised outside the except block: the httpx exception (URL, request) is not chained
                stats.errors += 1
                log.debug("%s -> %s", label, failure)
                if not isinstance(failure, PlatformUnavailable) and breaker.failed_attempt():
                    lost_error = failure.error if isinstance(failure, _Retryable) else failure
                    raise self._down(label, lost_error)
                raise failure
            status = response.status_code
            connected[0] = True
            log.debug("%s -> %d", label, status)
            answer = ApiResponse(response, platform=self.platform, endpoint=label)
            self.stats.last = label
            if status < 500 and status != 429:
                breaker.answered()
            if status < 400 or status in ok:
                return answer
            stats.errors += 1
            error = self._error(answer, label)
            if self._is_auth_failure(error):
                raise self._refused_credentials(label, error)
            if status >= 500 and breaker.failed_attempt():
                raise self._down(label, error)
            if status == 429:
                stats.rate_limited += 1
                wait = self._retry_after(answer, self.clock)
                if wait is not None and wait > self.retry.max_retry_after:
                    assert isinstance(error, RateLimited)
                    error.retry_after = wait
                    raise error
                if wait is not None:
                    self.budget.penalise(wait)
                raise _Retryable(error, wait)
            transient = status >= 500 or status in self.retry.retry_statuses
            if transient and safe_to_repeat:
                wait = self._retry_after(answer, self.clock)
                if wait is not None and wait > self.retry.max_retry_after:
                    raise error
                raise _Retryable(error, wait)
            raise error

        def wait_strategy(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.wait is not None:
                return float(exc.wait)
            return self._backoff(state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.info(
                "%s: retrying in %.3gs after %s (attempt %d)",
                label,
                wait,
                self.redact(str(exc)),
                state.attempt_number,
            )

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=wait_strategy,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        final: ApiError
        try:
            return await retrying(attempt)
        except _Retryable as exc:
            final = exc.error
        except TransientError as exc:  # not retried (a write the platform may have acted on)
            final = exc
        if isinstance(final, TransientError) and (
            breaker.failed_request() or not connected[0]
        ):
            # `threshold` requests failed in a row, or this one never connected through all
            # its attempts (the backoff window): the platform is down for this run
            raise self._down(label, final)
        raise final

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode JSON."""
        response = await self.request("GET", path, **kwargs)
        return response.json()


def build_client(
    *,
    platform: str,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    secrets: Iterable[str] = (),
    budget: RateBudget | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    error_parser: ErrorParser = default_error_parser,
    retry_after: RetryAfterParser | RateLimitHints | None = None,
    timeout: float = 30.0,
    seed: int | None = None,
    credential: str | None = None,
) -> ApiClient:
    """The client factory: the one place connectors get HTTP from (`transport` is the test seam)."""
    return ApiClient(
        platform=platform,
        base_url=base_url,
        headers=headers,
        auth=auth,
        secrets=secrets,
        budget=budget,
        transport=transport,
        clock=clock,
        retry=retry,
        error_parser=error_parser,
        retry_after=retry_after,
        timeout=timeout,
        seed=seed,
        credential=credential,
    )
