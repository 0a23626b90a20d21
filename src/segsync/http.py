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
import collections
import contextlib
import dataclasses
import email.utils
import hashlib
import ipaddress
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
import tenacity
from pydantic import BaseModel, ConfigDict

from segsync.clock import Clock, SystemClock
from segsync.logs import Redactor, redactor

__all__ = [
    "GENERIC_RATE_LIMIT_HINTS",
    "RETRY_AFTER",
    "ApiClient",
    "ApiError",
    "ApiResponse",
    "BodyWait",
    "EndpointStats",
    "MalformedAnswer",
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
    """

    attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 3600.0
    retry_statuses: frozenset[int] = frozenset()


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


def _credential(header_value: str) -> str:
    """The secret part of an auth header value (`Bearer abc` -> `abc`), so redaction keeps
    the scheme readable: `Bearer ***`."""
    scheme, _, credential = header_value.partition(" ")
    return credential.strip() if credential.strip() and scheme.isalpha() else header_value


class ApiClient:
    """One platform account's HTTP client; see the module docstring for what it adds to httpx.

    `retry_after` is how the platform says how long to wait after a 429: its connector's
    `rate_limit_hints` (or a parser of its own); None means `GENERIC_RATE_LIMIT_HINTS`.
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
    ) -> None:
        self.platform = platform
        self.clock = clock or SystemClock()
        self.budget = budget or RateBudget(clock=self.clock)
        self.retry = retry or RetryPolicy()
        #: the process-wide redactor; this client's secrets are registered with it
        self.redact: Redactor = redactor
        for secret in secrets:
            self.redact.add(secret)
        for name, value in (headers or {}).items():
            if name.lower() in SENSITIVE_HEADERS:
                self.redact.add(_credential(value))
        auth_header = getattr(auth, "_auth_header", None)
        if isinstance(auth_header, str):
            self.redact.add(_credential(auth_header))
        self._add_url_secrets(base_url)
        self.stats = RequestStats()
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

    def _transport_error(self, label: str, exc: Exception) -> TransientError:
        return TransientError(
            platform=self.platform,
            endpoint=label,
            status=0,
            code=type(exc).__name__,
            message=self.redact(str(exc) or type(exc).__name__),
        )

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

        async def attempt() -> ApiResponse:
            failure: ApiError | _Retryable | None = None
            async with self.budget.slot(scope):
                stats.calls += 1
                started = self.clock.monotonic()
                try:
                    response = await self._client.request(
                        method, path, params=params, json=json, content=content, headers=headers
                    )
                except _NOT_SENT as exc:
                    failure = _Retryable(self._transport_error(label, exc), None)
                except _MAYBE_ACTED as exc:
                    lost = self._transport_error(label, exc)
                    failure = _Retryable(lost, None) if safe_to_repeat else lost
                except httpx.HTTPError as exc:
                    failure = self._transport_error(label, exc)
                finally:
                    stats.seconds += self.clock.monotonic() - started
            if failure is not None:
                # raised outside the except block: the httpx exception (URL, request) is not chained
                stats.errors += 1
                log.debug("%s -> %s", label, failure)
                raise failure
            status = response.status_code
            log.debug("%s -> %d", label, status)
            answer = ApiResponse(response, platform=self.platform, endpoint=label)
            self.stats.last = label
            if status < 400 or status in ok:
                return answer
            stats.errors += 1
            error = self._error(answer, label)
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
    )
