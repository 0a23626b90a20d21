"""RateBudget: rolling windows, scopes, concurrency cap, penalties and sharing per account."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.clock import VirtualClock
from segsync.emulator import ConcurrencyLimit, Emulator, WindowLimit
from segsync.http import RateBudget, RateWindow, build_client

KEY = "sk-FAKE-segsync-0123456789abcdef"


class CounterEmulator(Emulator):
    """Answers GET /ping; limits: 10 per second, 3 in flight (both optional)."""

    platform = "counter"
    default_api_key = KEY
    retry_after_header = True

    def __init__(self, *, limits: Sequence[WindowLimit | ConcurrencyLimit] = (), **kw: Any) -> None:
        self._declared = list(limits)
        super().__init__(**kw)

    def routes(self) -> Sequence[BaseRoute]:
        async def ping(request: Request) -> Response:
            return JSONResponse({"pong": True})

        return [Route("/ping", ping), Route("/search", ping, methods=["POST"])]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return JSONResponse({"code": code, "message": message}, status_code=status)

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return self._declared


def test_window_makes_the_next_request_wait_the_right_time() -> None:
    """With 5 per second, requests 6-10 start at t=1 and 11-12 at t=2."""
    clock = VirtualClock()
    budget = RateBudget(max_concurrency=100, windows=[RateWindow(5, 1.0)], clock=clock)
    started: list[float] = []

    async def one() -> None:
        async with budget.slot():
            started.append(clock.monotonic())

    async def run() -> None:
        for _ in range(12):
            await one()

    asyncio.run(run())

    assert started == [0.0] * 5 + [1.0] * 5 + [2.0] * 2
    assert budget.waits == 2


def test_concurrent_callers_share_the_window() -> None:
    """30 concurrent callers through 10 per 2 s finish at t=4 (three windows)."""
    clock = VirtualClock()
    budget = RateBudget(max_concurrency=30, windows=[RateWindow(10, 2.0)], clock=clock)
    started: list[float] = []

    async def one() -> None:
        async with budget.slot():
            started.append(clock.monotonic())

    async def run() -> None:
        await asyncio.gather(*(one() for _ in range(30)))

    asyncio.run(run())

    assert sorted(started) == [0.0] * 10 + [2.0] * 10 + [4.0] * 10
    assert clock.elapsed == 4.0


def test_scoped_window_applies_only_to_its_scope() -> None:
    """A 'search' window of 5/s slows searches only; default windows count every request."""
    clock = VirtualClock()
    budget = RateBudget(
        max_concurrency=50,
        windows=[RateWindow(100, 10.0), RateWindow(5, 1.0, scope="search")],
        clock=clock,
    )
    searches: list[float] = []
    others: list[float] = []

    async def one(scope: str, out: list[float]) -> None:
        async with budget.slot(scope):
            out.append(clock.monotonic())

    async def run() -> None:
        await asyncio.gather(
            *(one("search", searches) for _ in range(7)),
            *(one("default", others) for _ in range(20)),
        )

    asyncio.run(run())

    assert sorted(searches) == [0.0] * 5 + [1.0] * 2
    assert others == [0.0] * 20


def test_concurrency_cap_bounds_requests_in_flight() -> None:
    """20 requests with 100 ms latency through a cap of 3: peak 3 in flight, 0.7 s emulated."""
    clock = VirtualClock()
    emulator = CounterEmulator(clock=clock, latency_ms=100, limits=[ConcurrencyLimit("conn", 3)])
    budget = RateBudget(max_concurrency=3, clock=clock)
    api = build_client(
        platform="counter",
        base_url="https://counter.test",
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=clock,
        budget=budget,
    )

    async def run() -> None:
        await asyncio.gather(*(api.request("GET", "/ping") for _ in range(20)))

    asyncio.run(run())

    assert budget.peak_in_flight == 3
    limit = emulator.limits[0]
    assert isinstance(limit, ConcurrencyLimit)
    assert limit.peak == 3
    assert emulator.rate_limited == 0
    assert clock.elapsed == pytest.approx(math.ceil(20 / 3) * 0.1)


def test_client_budget_matching_the_platform_never_hits_a_429() -> None:
    """A budget of 10/s against an emulator limiting 10/s: 50 requests, no 429, 4 s emulated."""
    clock = VirtualClock()
    emulator = CounterEmulator(clock=clock, limits=[WindowLimit("second", 10, 1.0)])
    budget = RateBudget(max_concurrency=10, windows=[RateWindow(10, 1.0)], clock=clock)
    api = build_client(
        platform="counter",
        base_url="https://counter.test",
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=clock,
        budget=budget,
    )

    async def run() -> None:
        await asyncio.gather(*(api.request("GET", "/ping") for _ in range(50)))

    asyncio.run(run())

    assert emulator.log.count("GET", "/ping", status=200) == 50
    assert emulator.rate_limited == 0
    assert clock.elapsed == 4.0


def test_without_budget_windows_the_emulator_429s_and_retry_after_recovers() -> None:
    """No client window: the emulator refuses the 11th request, and Retry-After gets it through."""
    clock = VirtualClock()
    emulator = CounterEmulator(clock=clock, limits=[WindowLimit("second", 10, 1.0)])
    api = build_client(
        platform="counter",
        base_url="https://counter.test",
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=clock,
    )

    async def run() -> None:
        for _ in range(11):
            await api.request("GET", "/ping")

    asyncio.run(run())

    assert emulator.log.count(status=429) == 1
    assert emulator.log.count(status=200) == 11
    assert api.stats.rate_limited == 1
    assert clock.elapsed == 1.0


def test_penalty_holds_every_caller_back() -> None:
    """After penalise(5), the next slot is granted 5 s later."""
    clock = VirtualClock()
    budget = RateBudget(clock=clock)

    async def run() -> float:
        budget.penalise(5)
        async with budget.slot():
            return clock.monotonic()

    assert asyncio.run(run()) == 5.0
    assert budget.waited_seconds == 5.0


def test_for_account_shares_one_budget_per_account() -> None:
    """The same account key returns the same budget; the key is not kept in clear."""
    RateBudget.forget_accounts()
    first = RateBudget.for_account(f"brevo:{KEY}", max_concurrency=4)
    again = RateBudget.for_account(f"brevo:{KEY}", max_concurrency=99)
    other = RateBudget.for_account("brevo:other-account")

    assert first is again
    assert first.max_concurrency == 4
    assert other is not first
    assert not any(KEY in name for name in RateBudget._accounts)
    RateBudget.forget_accounts()
    assert RateBudget.for_account(f"brevo:{KEY}") is not first


def test_budget_outlives_an_event_loop() -> None:
    """A shared budget keeps working across separate asyncio.run calls under contention."""
    clock = VirtualClock()
    budget = RateBudget(max_concurrency=1, windows=[RateWindow(2, 1.0)], clock=clock)

    async def burst() -> None:
        async def one() -> None:
            async with budget.slot():
                await clock.sleep(0.1)

        await asyncio.gather(*(one() for _ in range(3)))

    asyncio.run(burst())
    asyncio.run(burst())

    assert budget.peak_in_flight == 1
    assert clock.elapsed > 2.0


def test_budget_rejects_a_zero_cap() -> None:
    """A concurrency cap below one is a configuration error."""
    with pytest.raises(ValueError, match="max_concurrency"):
        RateBudget(max_concurrency=0)


def test_window_edges_agree_with_the_emulator_under_float_rounding() -> None:
    """At awkward times (0.1 steps), a budget matching the emulator's window never gets a 429."""
    clock = VirtualClock()
    clock.advance(1234567.1)
    emulator = CounterEmulator(clock=clock, latency_ms=100, limits=[WindowLimit("second", 3, 0.3)])
    budget = RateBudget(max_concurrency=2, windows=[RateWindow(3, 0.3)], clock=clock)
    api = build_client(
        platform="counter",
        base_url="https://counter.test",
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=clock,
        budget=budget,
    )

    async def run() -> None:
        await asyncio.gather(*(api.request("GET", "/ping") for _ in range(60)))

    asyncio.run(run())

    assert emulator.rate_limited == 0
    assert emulator.log.count(status=200) == 60
