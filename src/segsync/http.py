"""The one HTTP layer every connector uses (async httpx).

`ApiClient` wraps an `httpx.AsyncClient` with:

- retries (tenacity) on 429 (honouring `Retry-After` and platform reset headers), 5xx,
  timeouts and connection errors, with capped exponential backoff and jitter; never on other
  4xx; and for non-idempotent requests only where the platform cannot have acted on them
  (429, connection refused) — a retry must never duplicate a write;
- a per-account `RateBudget` (a concurrency cap plus rolling windows) shared by everything in a
  run that talks to the same account;
- an injected `Clock` for all waiting, so tests and benchmarks run on virtual time;
- per-endpoint request accounting (`RequestStats`) for reports and benchmarks;
- redaction: the secrets it is given never appear in log lines, exception text or reprs.

Why async: throughput comes from concurrency within each platform's limits (Mailchimp allows
10 connections, HubSpot 10-19 requests a second), and the emulators are ASGI apps that httpx
reaches in-process only through its async transport.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import email.utils
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx
import tenacity

from segsync.clock import Clock, SystemClock

__all__ = [
    "ApiClient",
    "ApiError",
    "EndpointStats",
    "RateBudget",
    "RateLimited",
    "RateWindow",
    "Redactor",
    "RequestStats",
    "RetryPolicy",
    "TransientError",
    "build_client",
    "check_base_url",
]

log = logging.getLogger("segsync.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Redactor:
    """Replaces every registered secret (and its obvious fragments) with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret; very short strings are ignored (they would redact prose)."""
        if secret and len(secret) >= 6 and secret not in self._secrets:
            self._secrets.append(secret)
            # an API key like "<32 hex>-us21" is also redacted without its datacenter suffix
            head = secret.split("-")[0]
            if len(head) >= 12 and head not in self._secrets:
                self._secrets.append(head)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


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
        super().__init__(f"{platform} {endpoint}: HTTP {status}{f' {code}' if code else ''}: {message}")


class TransientError(ApiError):
    """A 5xx, timeout or connection error that outlived its retries."""


class RateLimited(ApiError):
    """A 429 that outlived its retries."""


@dataclasses.dataclass(frozen=True)
class RateWindow:
    """At most `requests` in any rolling `seconds`; `scope` names which requests count."""

    requests: int
    seconds: float
    scope: str = "default"


class RateBudget:
    """A per-account budget shared by every request of a run: a concurrency cap plus windows.

    `acquire(scope)` waits (on the injected clock) until a slot is free in the concurrency cap
    and in every window that applies to `scope` ("default" windows apply to every request).
    `penalise(seconds)` makes every caller wait, for a 429 that says how long.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 10,
        windows: Sequence[RateWindow] = (),
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.max_concurrency = max_concurrency
        self.windows = tuple(windows)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._history: dict[RateWindow, collections.deque[float]] = {
            w: collections.deque() for w in self.windows
        }
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0
        self.waits = 0

    def _applicable(self, scope: str) -> list[RateWindow]:
        return [w for w in self.windows if w.scope in ("default", scope)]

    async def _reserve(self, scope: str) -> None:
        while True:
            async with self._lock:
                now = self.clock.monotonic()
                wait = max(0.0, self._blocked_until - now)
                for window in self._applicable(scope):
                    history = self._history[window]
                    while history and history[0] <= now - window.seconds:
                        history.popleft()
                    if len(history) >= window.requests:
                        wait = max(wait, history[0] + window.seconds - now)
                if wait <= 0:
                    for window in self._applicable(scope):
                        self._history[window].append(now)
                    return
            self.waits += 1
            self.waited_seconds += wait
            await self.clock.sleep(wait)

    @contextlib.asynccontextmanager
    async def slot(self, scope: str = "default") -> AsyncIterator[None]:
        """Hold one concurrency slot and one unit of every applicable window."""
        async with self._semaphore:
            await self._reserve(scope)
            yield

    def penalise(self, seconds: float) -> None:
        """Hold every caller back for `seconds` from now (a 429 with Retry-After)."""
        self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def __repr__(self) -> str:
        return f"RateBudget(concurrency={self.max_concurrency}, windows={list(self.windows)})"


@dataclasses.dataclass
class EndpointStats:
    """Counts for one endpoint label."""

    calls: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    seconds: float = 0.0


class RequestStats:
    """Request accounting per endpoint label (`"POST /lists/{id}"`)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointStats] = collections.defaultdict(EndpointStats)

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

    def as_dict(self) -> dict[str, dict[str, float]]:
        """A JSON-ready copy, sorted by endpoint."""
        return {name: dataclasses.asdict(s) for name, s in sorted(self.endpoints.items())}


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. `attempts` counts the first try."""

    attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 3600.0


class _Retryable(Exception):
    def __init__(self, error: ApiError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


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
    """Seconds from `Retry-After` (delta or HTTP date) or a platform reset header."""
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, (when - clock.now()).total_seconds())
    for header in ("x-sib-ratelimit-reset", "X-RateLimit-Reset", "RateLimit-Reset"):
        value = response.headers.get(header)
        if value:
            with contextlib.suppress(ValueError):
                return max(0.0, float(value))
    return None


_LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def check_base_url(url: str) -> str:
    """Accept https everywhere and plain http only on loopback; raise ValueError otherwise."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https":
        return url
    if parsed.scheme == "http" and parsed.host.startswith(_LOOPBACK):
        return url
    raise ValueError(
        f"base_url {url!r}: use https:// (plain http:// is accepted only for loopback addresses)"
    )


class ApiClient:
    """One platform account's HTTP client; see the module docstring for what it adds to httpx."""

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
        retry_after: RetryAfterParser = retry_after_seconds,
        timeout: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.platform = platform
        self.clock = clock or SystemClock()
        self.budget = budget or RateBudget(clock=self.clock)
        self.retry = retry or RetryPolicy()
        self.redact = Redactor(secrets)
        self.stats = RequestStats()
        self._error_parser = error_parser
        self._retry_after = retry_after
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

    def __repr__(self) -> str:
        return f"ApiClient(platform={self.platform!r}, base_url={str(self._client.base_url)!r})"

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._client.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _backoff(self, attempt: int) -> float:
        base = min(self.retry.max_backoff, self.retry.initial_backoff * 2 ** (attempt - 1))
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
        elif response.status_code >= 500:
            kind = TransientError
        return kind(
            platform=self.platform,
            endpoint=endpoint,
            status=response.status_code,
            code=code,
            message=self.redact(message),
            body=body,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        scope: str = "default",
        ok: Sequence[int] = (),
    ) -> httpx.Response:
        """Send one request with budget, retries and accounting; return the final response.

        `endpoint` is the accounting label (defaults to `METHOD path`); `idempotent` overrides
        the method's default (PUT/DELETE/GET are idempotent, POST is not); `scope` selects the
        rate windows; statuses in `ok` are returned instead of raised. Raises `ApiError`
        (or `RateLimited` / `TransientError`) with the platform's message otherwise.
        """
        method = method.upper()
        label = endpoint or f"{method} {path}"
        safe_to_repeat = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        stats = self.stats.endpoints[label]

        async def attempt() -> httpx.Response:
            async with self.budget.slot(scope):
                stats.calls += 1
                started = self.clock.monotonic()
                try:
                    response = await self._client.request(method, path, params=params, json=json)
                except httpx.ConnectError as exc:
                    stats.errors += 1
                    # nothing reached the platform: always safe to try again
                    raise _Retryable(self._transport_error(label, exc), None) from None
                except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                    stats.errors += 1
                    error = self._transport_error(label, exc)
                    if safe_to_repeat:
                        raise _Retryable(error, None) from None
                    raise error from None
                finally:
                    stats.seconds += self.clock.monotonic() - started
            status = response.status_code
            if status < 400 or status in ok:
                return response
            stats.errors += 1
            error = self._error(response, label)
            if status == 429:
                stats.rate_limited += 1
                wait = self._retry_after(response, self.clock)
                if wait is not None:
                    wait = min(wait, self.retry.max_retry_after)
                    self.budget.penalise(wait)
                raise _Retryable(error, wait)
            if status >= 500 and safe_to_repeat:
                raise _Retryable(error, None)
            raise error

        def wait_strategy(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.wait is not None:
                return exc.wait
            return self._backoff(state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "%s: retrying after %s (attempt %d)",
                label,
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
        try:
            return await retrying(attempt)
        except _Retryable as exc:
            raise exc.error from None

    def _transport_error(self, label: str, exc: Exception) -> TransientError:
        return TransientError(
            platform=self.platform,
            endpoint=label,
            status=0,
            code=type(exc).__name__,
            message=self.redact(str(exc) or type(exc).__name__),
        )

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
    retry_after: RetryAfterParser = retry_after_seconds,
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
    )
