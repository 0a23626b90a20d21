"""ApiClient retries, waits and accounting (respx for the wire, VirtualClock for the waits)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import respx

from segsync.clock import VirtualClock
from segsync.connector import registry
from segsync.http import (
    ApiClient,
    ApiError,
    RateLimited,
    RateLimitHeader,
    RateLimitHints,
    RetryPolicy,
    TransientError,
    build_client,
    check_base_url,
    retry_after_seconds,
)

BASE = "https://api.segsync.test"
T = TypeVar("T")


def run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(asyncio.wait_for(coro(), timeout=10))


def client(clock: VirtualClock, **kwargs: Any) -> ApiClient:
    kwargs.setdefault("platform", "example")
    return build_client(base_url=BASE, clock=clock, seed=1, **kwargs)


def connector_client(clock: VirtualClock, platform: str) -> ApiClient:
    """A client reading 429s as the installed connector `platform` declares it does."""
    hints = registry.get(platform).rate_limit_hints
    return client(clock, platform=platform, retry_after=hints)


def responses(*items: httpx.Response | Exception) -> list[httpx.Response | Exception]:
    return list(items)


@respx.mock
def test_retry_after_seconds_is_waited_on_the_clock() -> None:
    """A 429 with Retry-After: 7 is retried after exactly 7 s of (virtual) time."""
    route = respx.get(f"{BASE}/items").mock(
        side_effect=responses(
            httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow down"}),
            httpx.Response(200, json={"ok": True}),
        )
    )
    clock = VirtualClock()
    api = client(clock)

    body = run(lambda: api.get_json("/items"))

    assert body == {"ok": True}
    assert route.call_count == 2
    assert clock.elapsed == 7.0
    stats = api.stats.endpoints["GET /items"]
    assert (stats.calls, stats.retries, stats.rate_limited) == (2, 1, 1)


@respx.mock
def test_retry_after_http_date_is_waited_on_the_clock() -> None:
    """A Retry-After HTTP date is read against the injected clock's now()."""
    respx.get(f"{BASE}/items").mock(
        side_effect=responses(
            httpx.Response(429, headers={"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}),
            httpx.Response(200, json={}),
        )
    )
    clock = VirtualClock(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    run(lambda: client(clock).get_json("/items"))

    assert clock.elapsed == 30.0


@pytest.mark.parametrize(
    ("platform", "headers", "body", "expected"),
    [
        ("brevo", {"x-sib-ratelimit-reset": "12"}, {"code": "too_many_requests"}, 12.0),
        (
            "hubspot",
            {},
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
            10.0,
        ),
        (
            "hubspot",
            {},
            {"status": "error", "message": "You have reached your secondly limit."},
            1.0,
        ),
    ],
)
@respx.mock
def test_platform_rate_limit_hints(
    platform: str, headers: dict[str, str], body: dict[str, str], expected: float
) -> None:
    """Each platform's own reset header or 429 body, as its connector class declares them
    (`Connector.rate_limit_hints`), sets the wait."""
    respx.get(f"{BASE}/x").mock(
        side_effect=responses(httpx.Response(429, headers=headers, json=body), httpx.Response(200))
    )
    clock = VirtualClock()

    run(lambda: connector_client(clock, platform).request("GET", "/x"))

    assert clock.elapsed == expected


@respx.mock
def test_a_platform_name_alone_brings_no_hints() -> None:
    """Without its connector's hints, a client named after a platform reads only the generic
    headers: a 429 body naming a policy is backed off from exponentially, not waited out."""
    respx.get(f"{BASE}/x").mock(
        side_effect=responses(
            httpx.Response(429, json={"policyName": "TEN_SECONDLY_ROLLING"}), httpx.Response(200)
        )
    )
    clock = VirtualClock()

    run(lambda: client(clock, platform="hubspot").request("GET", "/x"))

    assert 0.25 <= clock.elapsed <= 0.5  # the first backoff (0.5 s, less up to half of jitter)


@respx.mock
def test_daily_cap_fails_at_once() -> None:
    """HubSpot's DAILY policy is not waited for: RateLimited after one call."""
    route = respx.get(f"{BASE}/x").mock(
        return_value=httpx.Response(429, json={"message": "daily", "policyName": "DAILY"})
    )
    clock = VirtualClock()

    with pytest.raises(RateLimited) as caught:
        run(lambda: connector_client(clock, "hubspot").request("GET", "/x"))

    assert route.call_count == 1
    assert caught.value.retry_after == float("inf")
    assert clock.elapsed == 0.0


@respx.mock
def test_wait_beyond_max_retry_after_is_not_waited() -> None:
    """A Retry-After longer than the policy's maximum raises RateLimited saying how long."""
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(429, headers={"Retry-After": "7200"}))
    clock = VirtualClock()
    api = client(clock, retry=RetryPolicy(max_retry_after=600))

    with pytest.raises(RateLimited) as caught:
        run(lambda: api.request("GET", "/x"))

    assert caught.value.retry_after == 7200.0
    assert clock.elapsed == 0.0


@respx.mock
def test_injected_hints_table() -> None:
    """A caller-provided hints table (a millisecond header) replaces the platform default."""
    respx.get(f"{BASE}/x").mock(
        side_effect=responses(
            httpx.Response(429, headers={"X-Wait-Ms": "1500", "Retry-After": "99"}),
            httpx.Response(200),
        )
    )
    hints = RateLimitHints(headers=(RateLimitHeader(name="X-Wait-Ms", unit="milliseconds"),))
    clock = VirtualClock()

    run(lambda: client(clock, retry_after=hints).request("GET", "/x"))

    assert clock.elapsed == 1.5


@respx.mock
def test_legacy_retry_after_callable_still_accepted() -> None:
    """The old form, a (response, clock) -> seconds callable, still works."""
    respx.get(f"{BASE}/x").mock(side_effect=responses(httpx.Response(429), httpx.Response(200)))
    clock = VirtualClock()

    run(lambda: client(clock, retry_after=lambda response, clock: 4.0).request("GET", "/x"))

    assert clock.elapsed == 4.0


def test_retry_after_seconds_function() -> None:
    """The generic parser reads seconds, dates and reset headers, and ignores garbage."""
    clock = VirtualClock(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def wait(headers: dict[str, str]) -> float | None:
        return retry_after_seconds(httpx.Response(429, headers=headers), clock)

    assert wait({"Retry-After": "3"}) == 3.0
    assert wait({"Retry-After": "Thu, 01 Jan 2026 00:01:00 GMT"}) == 60.0
    assert wait({"X-RateLimit-Reset": "2.5"}) == 2.5
    assert wait({"Retry-After": "soon"}) is None
    assert wait({}) is None


@respx.mock
def test_5xx_retried_then_success_with_capped_jittered_backoff() -> None:
    """503 then 502 then 200: three calls, and the waits follow the backoff with jitter."""
    route = respx.get(f"{BASE}/x").mock(
        side_effect=responses(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    )
    clock = VirtualClock()
    api = client(clock, retry=RetryPolicy(initial_backoff=1.0, jitter=0.5))

    response = run(lambda: api.request("GET", "/x"))

    assert response.status_code == 200
    assert route.call_count == 3
    # first wait in [0.5, 1], second in [1, 2]
    assert 1.5 <= clock.elapsed <= 3.0
    assert api.stats.retries == 2


@respx.mock
def test_backoff_is_capped() -> None:
    """Without jitter, waits double up to max_backoff and stay there."""
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(500))
    clock = VirtualClock()
    policy = RetryPolicy(attempts=5, initial_backoff=1.0, max_backoff=2.0, jitter=0.0)

    with pytest.raises(TransientError):
        run(lambda: client(clock, retry=policy).request("GET", "/x"))

    assert clock.elapsed == 1.0 + 2.0 + 2.0 + 2.0


@respx.mock
def test_retries_run_out() -> None:
    """A 5xx that never ends raises TransientError after `attempts` calls."""
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(503, json={"message": "down"}))

    with pytest.raises(TransientError) as caught:
        run(lambda: client(VirtualClock(), retry=RetryPolicy(attempts=3)).request("GET", "/x"))

    assert route.call_count == 3
    assert caught.value.status == 503
    assert caught.value.message == "down"


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
@respx.mock
def test_4xx_not_retried(status: int) -> None:
    """A 4xx other than 429 is raised after exactly one call, with the platform's message
    (401 opens the circuit breaker: tests/faults/test_breaker.py)."""
    route = respx.put(f"{BASE}/x").mock(
        return_value=httpx.Response(status, json={"code": "invalid_parameter", "message": "bad"})
    )

    with pytest.raises(ApiError) as caught:
        run(lambda: client(VirtualClock()).request("PUT", "/x", json={}))

    assert route.call_count == 1
    assert type(caught.value) is ApiError
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        status,
        "invalid_parameter",
        "bad",
    )


@respx.mock
def test_ok_statuses_are_returned() -> None:
    """Statuses listed in `ok` come back as responses."""
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(404))

    response = run(lambda: client(VirtualClock()).request("GET", "/x", ok=(404,)))

    assert response.status_code == 404


@respx.mock
def test_post_not_retried_on_5xx() -> None:
    """A POST that got a 500 may have acted: not retried."""
    route = respx.post(f"{BASE}/x").mock(return_value=httpx.Response(500))

    with pytest.raises(TransientError):
        run(lambda: client(VirtualClock()).request("POST", "/x", json={}))

    assert route.call_count == 1


@respx.mock
def test_post_retried_on_5xx_when_declared_idempotent() -> None:
    """idempotent=True lets a POST be retried after a 5xx."""
    route = respx.post(f"{BASE}/x").mock(
        side_effect=responses(httpx.Response(500), httpx.Response(200))
    )

    run(lambda: client(VirtualClock()).request("POST", "/x", json={}, idempotent=True))

    assert route.call_count == 2


@respx.mock
def test_put_declared_not_idempotent_is_not_retried() -> None:
    """idempotent=False turns retries off for a PUT."""
    route = respx.put(f"{BASE}/x").mock(return_value=httpx.Response(502))

    with pytest.raises(TransientError):
        run(lambda: client(VirtualClock()).request("PUT", "/x", idempotent=False))

    assert route.call_count == 1


@respx.mock
def test_post_retried_on_429() -> None:
    """A 429 means the platform did not act: a POST is retried."""
    route = respx.post(f"{BASE}/x").mock(
        side_effect=responses(
            httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201)
        )
    )

    response = run(lambda: client(VirtualClock()).request("POST", "/x", json={}))

    assert response.status_code == 201
    assert route.call_count == 2


@respx.mock
def test_post_retried_when_the_connection_was_never_made() -> None:
    """Connect errors and connect timeouts are retried even for a POST."""
    route = respx.post(f"{BASE}/x").mock(
        side_effect=responses(
            httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.Response(200)
        )
    )

    run(lambda: client(VirtualClock()).request("POST", "/x", json={}))

    assert route.call_count == 3


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("gone"), httpx.ReadError("r")]
)
@respx.mock
def test_post_not_retried_after_it_may_have_acted(error: Exception) -> None:
    """Read timeouts and dropped connections after sending are not retried for a POST."""
    route = respx.post(f"{BASE}/x").mock(side_effect=error)

    with pytest.raises(TransientError) as caught:
        run(lambda: client(VirtualClock()).request("POST", "/x", json={}))

    assert route.call_count == 1
    assert caught.value.status == 0
    assert caught.value.code == type(error).__name__


@respx.mock
def test_get_timeout_retried() -> None:
    """A GET that timed out is retried."""
    route = respx.get(f"{BASE}/x").mock(
        side_effect=responses(httpx.ReadTimeout("t"), httpx.Response(200))
    )

    run(lambda: client(VirtualClock()).request("GET", "/x"))

    assert route.call_count == 2


@respx.mock
def test_retry_statuses_extend_the_transient_set() -> None:
    """A status in RetryPolicy.retry_statuses (HubSpot's 423) is retried like a 5xx."""
    route = respx.get(f"{BASE}/x").mock(
        side_effect=responses(
            httpx.Response(423, headers={"Retry-After": "2"}), httpx.Response(200)
        )
    )
    clock = VirtualClock()

    run(
        lambda: client(clock, retry=RetryPolicy(retry_statuses=frozenset({423}))).request(
            "GET", "/x"
        )
    )

    assert route.call_count == 2
    assert clock.elapsed == 2.0


@respx.mock
def test_stats_per_endpoint_label() -> None:
    """Calls are counted under the endpoint label; writes exclude GETs."""
    respx.get(f"{BASE}/lists/1/members").mock(return_value=httpx.Response(200, json={}))
    respx.post(f"{BASE}/lists/1").mock(return_value=httpx.Response(200, json={}))
    api = client(VirtualClock())

    async def go() -> None:
        for _ in range(3):
            await api.request("GET", "/lists/1/members", endpoint="GET /lists/{id}/members")
        await api.request("POST", "/lists/1", endpoint="POST /lists/{id}")

    run(go)

    assert api.stats.calls == 4
    assert api.stats.writes == 1
    assert api.stats.as_dict()["GET /lists/{id}/members"]["calls"] == 3


@pytest.mark.parametrize(
    "url",
    [
        "https://api.segsync.test",
        "http://127.0.0.1:8001/3.0",
        "http://127.5.0.1",
        "http://localhost:9000",
        "http://[::1]:8000/v3",
    ],
)
def test_check_base_url_accepts_https_and_loopback(url: str) -> None:
    """https anywhere, plain http on loopback."""
    assert check_base_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.segsync.test",
        "http://127.evil.test",
        "http://localhost.evil.test",
        "http://10.0.0.1",
        "ftp://127.0.0.1",
        "not a url",
    ],
)
def test_check_base_url_refuses_plain_http_elsewhere(url: str) -> None:
    """Plain http to a non-loopback host (even one that starts like one) is refused."""
    with pytest.raises(ValueError, match="base_url"):
        check_base_url(url)


def test_client_without_transport_checks_its_base_url() -> None:
    """ApiClient refuses plain http to a remote host unless a test transport is given."""
    with pytest.raises(ValueError, match="https"):
        ApiClient(platform="x", base_url="http://api.segsync.test")
    ApiClient(
        platform="x",
        base_url="http://api.segsync.test",
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )


def test_request_stats_totals_and_merge() -> None:
    """Totals add up across endpoints, and merge sums another client's counts."""
    clock = VirtualClock()
    first = client(clock)
    second = client(clock)
    first.stats.endpoints["GET /a"].calls = 2
    first.stats.endpoints["GET /a"].retries = 1
    second.stats.endpoints["GET /a"].calls = 3
    second.stats.endpoints["POST /b"].calls = 1
    second.stats.endpoints["POST /b"].rate_limited = 1

    first.stats.merge(second.stats)

    assert (first.stats.calls, first.stats.writes, first.stats.retries) == (6, 1, 1)
    assert first.stats.rate_limited == 1
    assert first.stats.as_dict()["GET /a"]["calls"] == 5
