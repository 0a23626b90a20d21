"""The emulator base: routing, paging, error bodies, auth, rate limits, latency, faults, log."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.clock import SystemClock, VirtualClock
from segsync.emulator import (
    ConcurrencyLimit,
    CursorPage,
    Emulator,
    EmulatorError,
    FaultPlan,
    WindowLimit,
    cursor_page,
    int_param,
    offset_page,
)
from segsync.http import ApiError, RateLimited, RetryPolicy, TransientError, build_client

KEY = "sk-FAKE-segsync-0123456789abcdef"


class ShopEmulator(Emulator):
    """A tiny contacts platform: offset and cursor paging, a batch endpoint, its own errors.

    Errors look like `{"error": {"kind": CODE, "text": MESSAGE}}`; a bad key gets 401
    `{"error": {"kind": "BadKey", ...}}`; every response carries x-shop-limit/remaining/reset.
    """

    platform = "shop"
    default_api_key = KEY
    base_path = "/v1"
    retry_after_header = True

    def __init__(self, **kw: Any) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        super().__init__(**kw)

    # seeding and inspecting without HTTP (the documented convention)
    def seed_contacts(self, count: int) -> None:
        for i in range(count):
            email = f"c{i:03d}@example.com"
            self.contacts[email] = {"email": email}

    def get_contact(self, email: str) -> dict[str, Any] | None:
        return self.contacts.get(email)

    def routes(self) -> Sequence[BaseRoute]:
        async def list_offset(request: Request) -> Response:
            count = int_param(request, "count", 10, minimum=1, maximum=50)
            offset = int_param(request, "offset", 0)
            items = sorted(self.contacts.values(), key=lambda c: c["email"])
            return self.json({"items": offset_page(items, offset, count), "total": len(items)})

        async def list_cursor(request: Request) -> Response:
            limit = int_param(request, "limit", 10, minimum=1, maximum=50)
            items = sorted(self.contacts.values(), key=lambda c: c["email"])
            page = cursor_page(items, request.query_params.get("after"), limit)
            paging = {"next": {"after": page.next_cursor}} if page.next_cursor else {}
            return self.json({"results": page.items, "paging": paging})

        async def create(request: Request) -> Response:
            body = await request.json()
            email = body.get("email")
            if not email:
                raise EmulatorError(400, "MissingEmail", "email is required")
            if email in self.contacts:
                raise EmulatorError(409, "Exists", f"{email} exists", id=email)
            self.contacts[email] = {"email": email}
            return self.json({"id": email}, status=201)

        async def batch(request: Request) -> Response:
            body = await request.json()
            inputs = body["inputs"]
            failing = (
                self.faults.failing_indexes(len(inputs))
                if self.partial_failure_requested(request)
                else set()
            )
            results, errors = [], []
            for i, item in enumerate(inputs):
                if i in failing:
                    errors.append({"index": i, "kind": "Refused"})
                else:
                    self.contacts[item["email"]] = {"email": item["email"]}
                    results.append(item["email"])
            return self.json({"results": results, "errors": errors}, status=207 if errors else 200)

        return [
            Route("/v1/contacts", list_offset, methods=["GET"]),
            Route("/v1/contacts", create, methods=["POST"]),
            Route("/v1/search", list_cursor, methods=["GET"]),
            Route("/v1/batch", batch, methods=["POST"]),
        ]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        names = {"unauthorized": "BadKey", "rate_limited": "Slow", "not_found": "NoSuchThing"}
        return JSONResponse(
            {"error": {"kind": names.get(code, code), "text": message, **extra}},
            status_code=status,
        )

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> dict[str, str]:
        return {
            "x-shop-limit": str(limit.limit),
            "x-shop-remaining": str(remaining),
            "x-shop-reset": str(round(reset_in)),
        }

    def fault_allowed(self, method: str, path: str) -> Sequence[str]:
        return ("partial",) if path.endswith("/batch") else super().fault_allowed(method, path)


def shop_error(response: httpx.Response) -> tuple[str | None, str]:
    error = response.json()["error"]
    return error["kind"], error["text"]


def make(**kw: Any) -> tuple[ShopEmulator, httpx.AsyncClient]:
    kw.setdefault("clock", VirtualClock())
    emulator = ShopEmulator(**kw)
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {KEY}"},
    )
    return emulator, client


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_offset_paging_and_parameter_validation() -> None:
    """Pages slice the sorted store; an out-of-range count is the platform's 400."""
    emulator, client = make()
    emulator.seed_contacts(25)

    async def go() -> tuple[list[int], httpx.Response]:
        sizes = []
        for offset in (0, 10, 20):
            body = (await client.get("/contacts", params={"offset": offset})).json()
            sizes.append(len(body["items"]))
        return sizes, await client.get("/contacts", params={"count": 500})

    sizes, refused = run(go())

    assert sizes == [10, 10, 5]
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {"kind": "bad_request", "text": "count must be between 1 and 50, got 500"}
    }


def test_cursor_paging_reads_everything_once() -> None:
    """Following `after` cursors visits every record once and ends without a cursor."""
    emulator, client = make()
    emulator.seed_contacts(23)

    async def go() -> list[str]:
        seen: list[str] = []
        after: str | None = None
        while True:
            params = {"limit": 7, **({"after": after} if after else {})}
            body = (await client.get("/search", params=params)).json()
            seen += [c["email"] for c in body["results"]]
            after = body["paging"].get("next", {}).get("after")
            if after is None:
                return seen

    seen = run(go())

    assert seen == sorted(emulator.contacts)
    assert emulator.log.count("GET", "/v1/search") == 4


def test_cursor_page_helper() -> None:
    """cursor_page returns the next cursor until the end, and refuses garbage cursors."""
    items = list(range(5))

    assert cursor_page(items, None, 2) == CursorPage([0, 1], "2")
    assert cursor_page(items, "4", 2) == CursorPage([4], None)
    with pytest.raises(EmulatorError) as caught:
        cursor_page(items, "abc", 2)
    assert caught.value.status == 400


def test_route_errors_use_the_platform_body() -> None:
    """EmulatorError raised by a route, unknown paths and wrong methods use error_response."""
    emulator, client = make()

    async def go() -> list[httpx.Response]:
        await client.post("/contacts", json={"email": "a@example.com"})
        return [
            await client.post("/contacts", json={"email": "a@example.com"}),
            await client.post("/contacts", json={}),
            await client.get("/nowhere"),
            await client.delete("/contacts"),
        ]

    exists, missing, nowhere, method = run(go())

    assert (exists.status_code, exists.json()["error"]) == (
        409,
        {"kind": "Exists", "text": "a@example.com exists", "id": "a@example.com"},
    )
    assert missing.json()["error"]["kind"] == "MissingEmail"
    assert (nowhere.status_code, nowhere.json()["error"]["kind"]) == (404, "NoSuchThing")
    assert (method.status_code, method.json()["error"]["kind"]) == (405, "method_not_allowed")
    assert emulator.get_contact("a@example.com") == {"email": "a@example.com"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key-123"},
        {"api-key": "wrong-key-123"},
        {"Authorization": "Basic " + "YW55c3RyaW5nOndyb25n"},
        {},
    ],
)
def test_other_keys_get_the_platform_401(headers: dict[str, str]) -> None:
    """A wrong or missing key is refused with the platform's own 401, and nothing happens."""
    emulator = ShopEmulator(clock=VirtualClock())
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1", transport=emulator.transport(), headers=headers
    )

    response = run(client.post("/contacts", json={"email": "x@example.com"}))

    assert response.status_code == 401
    assert response.json()["error"]["kind"] == "BadKey"
    assert emulator.contacts == {}
    assert emulator.log.by_status() == {401: 1}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"api-key": KEY},
        {
            "Authorization": "Basic "
            + __import__("base64").b64encode(f"any:{KEY}".encode()).decode()
        },
    ],
)
def test_the_emulator_key_is_accepted_in_every_usual_place(headers: dict[str, str]) -> None:
    """Bearer, Basic password and key header all carry the key."""
    emulator = ShopEmulator(clock=VirtualClock())
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1", transport=emulator.transport(), headers=headers
    )

    assert run(client.get("/contacts")).status_code == 200


class LimitedShop(ShopEmulator):
    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return [
            WindowLimit("ten_secondly", 3, 10.0),
            WindowLimit("search", 2, 1.0, path_pattern=r"/search$"),
        ]


def test_window_limits_answer_like_the_platform() -> None:
    """Over a window: the platform's 429 body, Retry-After, and limit headers on every answer."""
    emulator, client = make(clock=VirtualClock())
    emulator = LimitedShop(clock=emulator.clock)
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {KEY}"},
    )

    async def go() -> list[httpx.Response]:
        answers = [await client.get("/contacts") for _ in range(4)]
        emulator.clock.advance(10)  # type: ignore[attr-defined]
        answers.append(await client.get("/contacts"))
        return answers

    first, second, third, refused, later = run(go())

    assert [r.headers["x-shop-remaining"] for r in (first, second, third)] == ["2", "1", "0"]
    assert first.headers["x-shop-limit"] == "3"
    assert first.headers["x-shop-reset"] == "10"
    assert refused.status_code == 429
    assert refused.json()["error"] == {"kind": "Slow", "text": "Too many requests (ten_secondly)"}
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["x-shop-remaining"] == "0"
    assert later.status_code == 200
    assert emulator.rate_limited == 1


def test_scoped_window_limits_only_matching_paths() -> None:
    """The search limit (2/s) refuses the third search but leaves other paths alone."""
    emulator = LimitedShop(clock=VirtualClock())
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {KEY}"},
    )

    async def go() -> list[int]:
        return [(await client.get("/search")).status_code for _ in range(3)]

    assert run(go()) == [200, 200, 429]
    assert emulator.log.count(path=re.compile("search$"), status=429) == 1


def test_concurrency_limit_refuses_the_extra_connection() -> None:
    """With 2 connections allowed and 100 ms latency, the 3rd concurrent request gets a 429."""
    clock = VirtualClock()

    class TwoConnections(ShopEmulator):
        def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
            return [ConcurrencyLimit("connections", 2)]

    emulator = TwoConnections(clock=clock, latency_ms=100)
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {KEY}"},
    )

    async def go() -> list[int]:
        answers = await asyncio.gather(*(client.get("/contacts") for _ in range(3)))
        return sorted(r.status_code for r in answers)

    assert run(go()) == [200, 200, 429]
    limit = emulator.limits[0]
    assert isinstance(limit, ConcurrencyLimit)
    assert (limit.peak, limit.in_flight) == (2, 0)
    assert clock.elapsed == pytest.approx(0.1)


def test_latency_is_spent_on_the_emulator_clock() -> None:
    """latency_ms=250: five sequential requests take 1.25 s of emulated time."""
    emulator, client = make(latency_ms=250)

    async def go() -> None:
        for _ in range(5):
            await client.get("/contacts")

    run(go())

    assert emulator.clock.elapsed == pytest.approx(1.25)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "status"), [("429", 429), ("500", 500), ("502", 502), ("503", 503)]
)
def test_http_faults_answer_with_the_platform_body(kind: str, status: int) -> None:
    """Injected HTTP faults use the platform's error body and are logged."""
    emulator, client = make(faults=FaultPlan(per_kind={kind: 1.0}))

    response = run(client.post("/contacts", json={"email": "a@example.com"}))

    assert response.status_code == status
    assert "kind" in response.json()["error"]
    assert emulator.contacts == {}
    assert emulator.faults.injected == {kind: 1}
    assert emulator.log.by_status() == {status: 1}


def test_slow_fault_takes_its_time() -> None:
    """A slow response answers normally after slow_seconds on the clock."""
    emulator, client = make(faults=FaultPlan(per_kind={"slow": 1.0}, slow_seconds=4))

    assert run(client.get("/contacts")).status_code == 200
    assert emulator.clock.elapsed == 4.0  # type: ignore[attr-defined]


def test_timeout_fault_waits_the_client_timeout_then_fails_before_acting() -> None:
    """An in-process timeout waits the client's read timeout and the emulator never acts."""
    emulator, _ = make(faults=FaultPlan(per_kind={"timeout": 1.0}))
    client = httpx.AsyncClient(
        base_url="http://shop.test/v1",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=12.0,
    )

    with pytest.raises(httpx.ReadTimeout):
        run(client.post("/contacts", json={"email": "a@example.com"}))

    assert emulator.clock.elapsed == 12.0  # type: ignore[attr-defined]
    assert emulator.contacts == {}
    assert len(emulator.log) == 0


def test_drop_before_and_after_processing() -> None:
    """`drop` loses the request before the platform acts; `drop_after` after it acted."""
    before, client_before = make(faults=FaultPlan(per_kind={"drop": 1.0}))
    after, client_after = make(faults=FaultPlan(per_kind={"drop_after": 1.0}))

    with pytest.raises(httpx.RemoteProtocolError):
        run(client_before.post("/contacts", json={"email": "a@example.com"}))
    with pytest.raises(httpx.RemoteProtocolError):
        run(client_after.post("/contacts", json={"email": "a@example.com"}))

    assert before.contacts == {}
    assert after.contacts == {"a@example.com": {"email": "a@example.com"}}
    assert after.log.by_status() == {201: 1}


def test_partial_batch_failure() -> None:
    """A partial fault makes the batch route refuse some records (at least one, not all)."""
    emulator, client = make(faults=FaultPlan(per_kind={"partial": 1.0}, seed=5))
    inputs = [{"email": f"b{i}@example.com"} for i in range(20)]

    response = run(client.post("/batch", json={"inputs": inputs}))
    body = response.json()

    assert response.status_code == 207
    assert len(body["errors"]) == 2
    assert len(body["results"]) == 18
    assert len(emulator.contacts) == 18


def test_fault_allowed_restricts_kinds_per_path() -> None:
    """A plan of every kind only ever draws `partial` on the batch path here."""
    emulator, client = make(faults=FaultPlan(rate=1.0, kinds=("500", "drop", "partial")))

    response = run(client.post("/batch", json={"inputs": [{"email": "a@example.com"}]}))

    assert response.status_code == 200
    assert emulator.faults.injected == {"partial": 1}


@pytest.mark.slow
def test_faults_are_seeded_and_one_draw_per_request() -> None:
    """The same seed injects the same faults; each request draws once (rate holds)."""

    def storm(seed: int) -> list[int]:
        _, client = make(faults=FaultPlan(rate=0.3, kinds=("500", "503"), seed=seed))

        async def go() -> list[int]:
            return [(await client.get("/contacts")).status_code for _ in range(400)]

        return run(go())

    first, again, other = storm(7), storm(7), storm(8)

    assert first == again
    assert first != other
    failures = sum(s != 200 for s in first)
    assert 90 <= failures <= 150  # 30% of 400, one draw per request


def test_disabling_faults_ends_the_storm() -> None:
    """enabled=False stops injection at once."""
    emulator, client = make(faults=FaultPlan(per_kind={"500": 1.0}))
    emulator.faults.enabled = False

    assert run(client.get("/contacts")).status_code == 200


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", FaultPlan()),
        ("429:0.05,timeout:0.01", FaultPlan(per_kind={"429": 0.05, "timeout": 0.01})),
        (
            "rate=0.1, kinds=500+drop , seed=9, slow=3, timeout=20",
            FaultPlan(rate=0.1, kinds=("500", "drop"), seed=9, slow_seconds=3, timeout_seconds=20),
        ),
    ],
)
def test_fault_spec_parsing(spec: str, expected: FaultPlan) -> None:
    """The --faults spec format reads per-kind rates and settings."""
    assert FaultPlan.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("boom:0.1", "unknown fault kind 'boom'"),
        ("rate=2", "not between 0 and 1"),
        ("speed=3", "unknown setting 'speed'"),
        ("429", "expected KIND:RATE"),
        ("429:lots", "could not convert"),
    ],
)
def test_fault_spec_errors_say_what_is_wrong(spec: str, message: str) -> None:
    """A bad spec raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        FaultPlan.parse(spec)


def test_parse_takes_the_seed_argument_unless_the_spec_sets_one() -> None:
    """--seed feeds the plan, and seed= in the spec wins."""
    assert FaultPlan.parse("500:0.1", seed=4).seed == 4
    assert FaultPlan.parse("500:0.1,seed=2", seed=4).seed == 2


def test_request_log_counts() -> None:
    """The log counts by method, path (string or regex), status and endpoint."""
    emulator, client = make()

    async def go() -> None:
        await client.get("/contacts")
        await client.get("/contacts")
        await client.post("/contacts", json={"email": "a@example.com"})
        await client.get("/search")

    run(go())

    assert len(emulator.log) == 4
    assert emulator.log.count("GET") == 3
    assert emulator.log.count(path="/v1/contacts") == 3
    assert emulator.log.count(path=re.compile(r"^/v1/")) == 4
    assert emulator.log.count(status=201) == 1
    assert emulator.log.by_endpoint() == {
        "GET /v1/contacts": 2,
        "POST /v1/contacts": 1,
        "GET /v1/search": 1,
    }
    emulator.log.clear()
    assert len(emulator.log) == 0


def test_api_client_against_the_emulator_end_to_end() -> None:
    """ApiClient reads the platform's error body and retries an injected 503 on a GET."""
    clock = VirtualClock()
    emulator = ShopEmulator(clock=clock, faults=FaultPlan(per_kind={"503": 0.5}, seed=1))
    emulator.seed_contacts(3)
    api = build_client(
        platform="shop",
        base_url="https://shop.test/v1",
        headers={"Authorization": f"Bearer {KEY}"},
        transport=emulator.transport(),
        clock=clock,
        error_parser=shop_error,
    )

    async def go() -> tuple[Any, ApiError]:
        body = await api.get_json("/contacts")
        emulator.faults.enabled = False
        await api.request("POST", "/contacts", json={"email": "z@example.com"})
        try:
            await api.request("POST", "/contacts", json={"email": "z@example.com"})
        except ApiError as exc:
            return body, exc
        raise AssertionError("expected a 409")

    body, conflict = run(go())

    assert body["total"] == 3
    assert (conflict.status, conflict.code, conflict.message) == (
        409,
        "Exists",
        "z@example.com exists",
    )
    assert api.stats.calls == emulator.log.count() + sum(
        emulator.faults.injected[k] for k in ("timeout", "drop")
    )


@pytest.mark.slow
def test_loopback_serving_with_faults() -> None:
    """Over a real loopback socket: the key is checked; injected drops and 429s reach the client."""
    emulator = ShopEmulator(clock=SystemClock(), faults=FaultPlan(per_kind={"drop": 1.0}))

    async def go(base_url: str) -> tuple[int, TransientError, RateLimited]:
        bad = httpx.AsyncClient(base_url=base_url, headers={"Authorization": "Bearer nope-nope"})
        async with bad:
            emulator.faults.enabled = False
            status = (await bad.get("/contacts")).status_code
        api = build_client(
            platform="shop",
            base_url=base_url,
            headers={"Authorization": f"Bearer {KEY}"},
            retry=RetryPolicy(attempts=1),
        )
        try:
            emulator.faults.enabled = True
            with pytest.raises(TransientError) as dropped:
                await api.request("POST", "/contacts", json={"email": "a@example.com"})
            emulator.faults = FaultPlan(per_kind={"429": 1.0})
            with pytest.raises(RateLimited) as limited:
                await api.request("POST", "/contacts", json={"email": "a@example.com"})
        finally:
            await api.aclose()
        return status, dropped.value, limited.value

    with emulator.serving() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        status, dropped, limited = asyncio.run(go(base_url))

    assert status == 401
    assert dropped.status == 0
    assert emulator.contacts == {}
    assert limited.status == 429


def test_serving_refuses_non_loopback_hosts() -> None:
    """serve() binds loopback addresses only."""
    emulator = ShopEmulator()

    with pytest.raises(ValueError, match="loopback"):
        emulator.serve(host="0.0.0.0")


@pytest.mark.slow
def test_the_date_header_is_the_emulator_clock_in_process_and_on_loopback() -> None:
    """Connectors anchor read cursors on `Date`: it must be the platform's (emulator's) time."""
    clock = VirtualClock(dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    emulator, client = make(clock=clock)

    async def in_process() -> str:
        async with client:
            return (await client.get("/contacts")).headers["date"]

    async def loopback(base_url: str) -> list[str]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as api:
            return (await api.get("/contacts")).headers.get_list("date")

    assert run(in_process()) == "Tue, 06 May 2031 07:08:09 GMT"
    with emulator.serving() as base_url:
        assert asyncio.run(loopback(base_url)) == ["Tue, 06 May 2031 07:08:09 GMT"]
