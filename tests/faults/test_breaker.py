"""Failures told apart: a platform that dies, refuses the key or fails TLS is one
platform-level failure (circuit breaker in `segsync.http`, one error, exit 4), not one error
per record; the other platforms carry on, and what was not written is written next run.

In-process emulators seeded with data (`fault_world`), on a virtual clock; the dying
platform is reached through a transport that starts refusing connections mid-apply.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from fault_world import (
    DEFAULT_SCHEMA,
    PLATFORMS,
    connector_config,
    dump_platform,
    is_write,
    make_connector,
    make_emulator,
    seed_platforms,
)

from segsync.cli import EXIT_RECORD_ERRORS, EXIT_UNAVAILABLE
from segsync.cli.sync import exit_code
from segsync.clock import VirtualClock
from segsync.connector import Connector, registry
from segsync.emulator import Emulator
from segsync.http import (
    ApiClient,
    ApiError,
    PlatformUnavailable,
    RetryPolicy,
    TransientError,
    build_client,
)
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, RunReport

T = TypeVar("T")
BASE = "https://api.segsync.test"
SIZE = 45


def run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(asyncio.wait_for(coro(), timeout=60))


# -- the HTTP seam ----------------------------------------------------------------------


class Scripted(httpx.AsyncBaseTransport):
    """Answers every request with `answer(request)` (a response, or raises); counts them."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.answer(request)


def seam(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> ApiClient:
    return build_client(platform="example", base_url=BASE, transport=transport,
                        clock=VirtualClock(), seed=1, **kwargs)


def connect_error(cause: BaseException) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection failed", request=request) from cause

    return answer


def test_tls_certificate_failure_is_not_retried_and_stops_the_platform() -> None:
    """A certificate that fails verification: one attempt, `tls_failed` naming the host,
    and the next request is not sent at all."""
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    wire = Scripted(connect_error(cause))
    client = seam(wire)

    async def go() -> tuple[PlatformUnavailable, PlatformUnavailable]:
        with pytest.raises(PlatformUnavailable) as first:
            await client.request("GET", "/contacts")
        with pytest.raises(PlatformUnavailable) as second:
            await client.request("POST", "/contacts", json={})
        return first.value, second.value

    first, second = run(go)
    assert wire.calls == 1
    assert first.reason == second.reason == "tls_failed"
    assert "api.segsync.test" in str(first)
    assert client.stats.unavailable is not None
    assert client.stats.retries == 0


def test_unknown_host_is_named_and_not_retried() -> None:
    """DNS says the host does not exist: `host_unreachable`, the host in the message."""
    cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    wire = Scripted(connect_error(cause))
    client = seam(wire)

    async def go() -> PlatformUnavailable:
        with pytest.raises(PlatformUnavailable) as caught:
            await client.request("GET", "/contacts")
        return caught.value

    error = run(go)
    assert wire.calls == 1
    assert error.reason == "host_unreachable"
    assert error.host == "api.segsync.test"
    assert "api.segsync.test" in str(error)


def test_a_transient_connection_failure_names_the_host() -> None:
    """A connection error that is retried still says where it went (not `HTTP 0
    ConnectError` alone)."""
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    wire = Scripted(answer)
    client = seam(wire, retry=RetryPolicy(attempts=2))

    async def go() -> TransientError:
        with pytest.raises(TransientError) as caught:
            await client.request("GET", "/contacts")
        return caught.value

    error = run(go)
    assert wire.calls == 2  # retried: a GET that timed out may work next time
    assert "api.segsync.test" in str(error)


def test_401_is_not_retried_and_stops_the_platform() -> None:
    """Refused credentials: one call, `auth_failed`, nothing more sent; the platform's own
    message is kept, the key never shown."""
    key = "tok-" + "7" * 40
    wire = Scripted(lambda request: httpx.Response(401, json={"message": "Key not found"}))
    client = seam(wire, headers={"Authorization": f"Bearer {key}"})

    async def go() -> PlatformUnavailable:
        with pytest.raises(PlatformUnavailable) as caught:
            await client.request("GET", "/account")
        with pytest.raises(PlatformUnavailable):
            await client.request("GET", "/contacts")
        return caught.value

    error = run(go)
    assert wire.calls == 1
    assert (error.status, error.reason, error.message) == (401, "auth_failed", "Key not found")
    assert key not in str(error)
    assert key not in repr(error)


def test_403_is_a_credential_failure_only_where_the_connector_says_so() -> None:
    """A 403 can be a scope missing on one endpoint: it stays an ApiError unless its code is
    one the connector declared (`RetryPolicy.auth_codes`)."""
    answer = httpx.Response(403, json={"code": "MISSING_SCOPES", "message": "no scope"})

    async def go(policy: RetryPolicy) -> tuple[type[ApiError], int]:
        wire = Scripted(lambda request: answer)
        client = seam(wire, retry=policy)
        for _ in range(3):
            with pytest.raises(ApiError) as caught:
                await client.request("GET", "/x")
        return type(caught.value), wire.calls

    plain = run(lambda: go(RetryPolicy()))
    declared = run(lambda: go(RetryPolicy(auth_codes=frozenset({"MISSING_SCOPES"}))))
    assert plain == (ApiError, 3)
    assert declared == (PlatformUnavailable, 1)


def test_consecutive_5xx_open_the_breaker_and_an_answer_closes_the_count() -> None:
    """`breaker_threshold` requests failing in a row (after retries) open it; a success in
    between starts the count again."""
    status = {"value": 503}
    wire = Scripted(lambda request: httpx.Response(status["value"], json={"message": "down"}))
    policy = RetryPolicy(attempts=2, breaker_threshold=3)
    client = seam(wire, retry=policy)

    async def go() -> list[str]:
        seen = []
        for n in range(6):
            if n == 2:
                status["value"] = 200
            elif n == 3:
                status["value"] = 503
            try:
                await client.request("GET", "/x")
                seen.append("ok")
            except PlatformUnavailable:
                seen.append("unavailable")
            except TransientError:
                seen.append("transient")
        return seen

    seen = run(go)
    assert seen == ["transient", "transient", "ok", "transient", "transient", "unavailable"]
    calls = wire.calls
    with pytest.raises(PlatformUnavailable):
        run(lambda: client.request("GET", "/x"))
    assert wire.calls == calls  # open: not sent


# -- the engine: a platform dying mid-apply ----------------------------------------------


class Dying(httpx.AsyncBaseTransport):
    """An emulator's transport that refuses every connection after `writes` writes (the
    platform went down mid-run); `after_death` counts the requests it refused."""

    def __init__(self, platform: str, inner: httpx.AsyncBaseTransport, writes: int) -> None:
        self.platform = platform
        self.inner = inner
        self.writes_left = writes
        self.dead = False
        self.after_death = 0
        self.armed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.armed and not self.dead and is_write(
            self.platform, request.method, request.url.path
        ):
            self.writes_left -= 1
            self.dead = self.writes_left < 0
        if self.dead:
            self.after_death += 1
            raise httpx.ConnectError("All connection attempts failed", request=request) from (
                ConnectionRefusedError(111, "Connect call failed")
            )
        return await self.inner.handle_async_request(request)


class World:
    """Three seeded emulators, the engine's connectors (`victim`'s through `Dying`)."""

    def __init__(self, victim: str, *, die_after_writes: int = 1) -> None:
        self.clock = VirtualClock()
        self.victim = victim
        self.emulators: dict[str, Emulator] = {
            p: make_emulator(p, self.clock, seed=3) for p in PLATFORMS
        }
        self.wire = Dying(victim, self.emulators[victim].transport(), die_after_writes)
        self.connectors: dict[str, Connector] = {
            p: make_connector(p, e, self.clock) for p, e in self.emulators.items()
        }
        self.connectors[victim] = registry.get(victim)(
            connector_config(victim, self.emulators[victim], "http://127.0.0.1:8080"),
            schema=DEFAULT_SCHEMA, transport=self.wire, clock=self.clock,
        )
        self.store = SQLiteStateStore(":memory:", clock=self.clock)
        self.engine = Engine(self.connectors, self.store, schema=DEFAULT_SCHEMA, clock=self.clock)

    async def seed(self) -> None:
        side = {p: make_connector(p, e, self.clock) for p, e in self.emulators.items()}
        await seed_platforms(side, 3, SIZE)
        for connector in side.values():
            await connector.aclose()
        self.settle()

    def settle(self) -> None:
        """Let time pass until every platform's reads show the writes made so far."""
        self.clock.advance(
            max(float(getattr(e, "read_lag_seconds", 0.0)) for e in self.emulators.values())
        )

    async def held(self, platform: str) -> set[str]:
        connector = make_connector(platform, self.emulators[platform], self.clock)
        try:
            return {r[0] for r in (await dump_platform(connector)).records}
        finally:
            await connector.aclose()


@pytest.mark.parametrize("victim", list(PLATFORMS))
def test_a_platform_dying_mid_apply_is_one_error_with_bounded_calls(victim: str) -> None:
    """The platform refuses connections after a few writes: one `platform_unavailable`
    error naming it and its host, no per-record errors, at most threshold x attempts (+ the
    requests in flight) calls after it died, exit 4; the other platforms sync in full; the
    next run, with the platform back, writes what was left."""

    async def go() -> tuple[World, RunReport, RunReport, dict[str, set[str]]]:
        world = World(victim)
        await world.seed()
        world.wire.armed = True
        report = await world.engine.sync()
        world.settle()
        held = {p: await world.held(p) for p in PLATFORMS}
        world.wire.dead, world.wire.armed = False, False  # back up
        world.clock.advance(600)  # past the breaker's cooldown (a long-lived process)
        again = await world.engine.sync()
        return world, report, again, held

    world, report, again, held = run(go)
    mine = [e for e in report.errors if e.platform == victim]
    assert [e.code for e in mine] == ["platform_unavailable"], mine[:5]
    assert victim in mine[0].message
    assert "127.0.0.1:8080" in mine[0].message
    policy = RetryPolicy()
    bound = policy.breaker_threshold * policy.attempts
    bound += world.connectors[victim].capabilities.max_concurrency
    assert world.wire.after_death <= bound, world.wire.after_death
    assert world.wire.after_death > 0
    assert exit_code(report) == EXIT_UNAVAILABLE
    others = [p for p in PLATFORMS if p != victim]
    assert not [e for e in report.errors if e.platform in others]
    everyone = set().union(*held.values())
    for platform in others:
        assert held[platform] == everyone, platform  # the others synced in full
    assert again.errors == [], again.errors[:5]
    assert again.platforms[victim].created + again.platforms[victim].updated > 0


def test_credentials_revoked_mid_run_are_one_error_and_one_call() -> None:
    """The key is revoked between the pull and the writes: the first write's 401 stops the
    platform (`auth_failed`), no other write is sent, no per-record error, exit 4."""
    victim = "brevo"

    async def go() -> tuple[World, RunReport, int, int]:
        world = World(victim, die_after_writes=10**6)
        await world.seed()
        emulator = world.emulators[victim]
        connector = world.connectors[victim]
        read = connector.read
        calls_at_revocation = 0

        async def read_then_revoke(cursor: str | None = None) -> Any:
            nonlocal calls_at_revocation
            async for page in read(cursor):
                yield page
            calls_at_revocation = connector.stats.calls
            emulator.api_key = "xkeysib-" + "0" * 64 + "-revokedrevoked01"

        connector.read = read_then_revoke  # type: ignore[method-assign]
        report = await world.engine.sync()
        return world, report, calls_at_revocation, connector.stats.calls

    _, report, before, after = run(go)
    mine = [e for e in report.errors if e.platform == victim]
    assert [e.code for e in mine] == ["auth_failed"], mine[:5]
    assert after - before == 1  # the one refused call; no retry, nothing after it
    assert exit_code(report) == EXIT_UNAVAILABLE
    assert exit_code(report) != EXIT_RECORD_ERRORS
