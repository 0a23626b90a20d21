"""The API key never leaks: not in logs (ours or httpx's), exceptions, chains, reprs or warnings."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import traceback
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import respx
import tenacity
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.clock import SystemClock, VirtualClock
from segsync.connector import Connector
from segsync.emulator import Emulator, FaultPlan
from segsync.http import ApiClient, ApiError, RateBudget, build_client, check_base_url
from segsync.logs import LogFormat, Redactor, configure_logging, register_secret

KEY = "sk-FAKE-segsync-0123456789abcdef"
FORMS = (
    KEY,
    urllib.parse.quote(KEY, safe=""),
    base64.b64encode(f"anystring:{KEY}".encode()).decode(),
)
BASE = "https://api.segsync.test"


class LeakyEmulator(Emulator):
    """A platform that echoes what it was sent back in its error bodies (the worst case)."""

    platform = "leaky"
    default_api_key = KEY
    retry_after_header = True

    def routes(self) -> Sequence[BaseRoute]:
        async def echo(request: Request) -> Response:
            return JSONResponse(
                {
                    "code": "invalid_parameter",
                    "message": f"bad request {request.url} with key {self.presented_key(request)}",
                    "errors": [{"field": "api-key", "message": request.headers.get("api-key")}],
                },
                status_code=400,
            )

        async def ok(request: Request) -> Response:
            return JSONResponse({"ok": True})

        return [Route("/echo", echo, methods=["GET", "POST"]), Route("/ok", ok)]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return JSONResponse({"code": code, "message": message}, status_code=status)


def exception_texts(exc: BaseException) -> Iterator[str]:
    """Every text an exception can show: str, repr, args, traceback, and its whole chain."""
    yield "".join(traceback.format_exception(exc))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(vars(current))
        current = current.__cause__ or current.__context__


def assert_clean(*texts: str) -> None:
    for text in texts:
        for form in FORMS:
            assert form not in text


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)


@respx.mock
def test_key_in_query_string_is_redacted_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """A key sent as a query parameter stays out of httpx's request log, errors and chains."""
    caplog.set_level(logging.DEBUG)
    respx.get(f"{BASE}/contacts").mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.Response(401, json={"message": "Key not found"}),
        ]
    )
    api = build_client(platform="p", base_url=BASE, clock=VirtualClock())

    with pytest.raises(ApiError) as caught:
        asyncio.run(api.request("GET", "/contacts", params={"hapikey": KEY}))

    text = log_text(caplog)
    assert caught.value.status == 401  # the 401, after a 503 and a connect error
    assert not isinstance(caught.value, tenacity.RetryError)
    assert "HTTP Request: GET" in text  # httpx's own log line was captured, and is clean
    assert "retrying" in text
    assert_clean(text, *exception_texts(caught.value), repr(api))


@respx.mock
def test_basic_auth_key_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """Mailchimp-style Basic auth: the key and its base64 form stay out of errors and logs."""
    caplog.set_level(logging.DEBUG)
    respx.post(f"{BASE}/lists/1").mock(side_effect=httpx.ReadTimeout(f"timed out sending {KEY}"))
    api = build_client(
        platform="p", base_url=BASE, auth=httpx.BasicAuth("anystring", KEY), clock=VirtualClock()
    )

    with pytest.raises(ApiError) as caught:
        asyncio.run(api.request("POST", "/lists/1", json={"members": []}))

    assert caught.value.status == 0
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert_clean(log_text(caplog), *exception_texts(caught.value))


def test_key_echoed_by_the_platform_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A platform error body that quotes the key: message, body and logs are redacted."""
    caplog.set_level(logging.DEBUG)
    emulator = LeakyEmulator(clock=VirtualClock())
    api = build_client(
        platform="leaky",
        base_url=BASE,
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=emulator.clock,
    )

    with pytest.raises(ApiError) as caught:
        asyncio.run(api.request("GET", "/echo", params={"api_key": KEY}))

    assert caught.value.status == 400
    assert "***" in caught.value.message
    assert_clean(repr(caught.value.body), log_text(caplog), *exception_texts(caught.value))


def test_key_in_base_url_user_info_is_not_shown() -> None:
    """Credentials in a base URL never appear in the client's repr or in URL errors."""
    api = ApiClient(
        platform="p",
        base_url=f"https://user:{KEY}@api.segsync.test/3.0?apikey={KEY}",
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    with pytest.raises(ValueError, match="https") as caught:
        check_base_url(f"http://user:{KEY}@api.segsync.test/?api_key={KEY}")

    assert_clean(repr(api), api.base_url, str(caught.value), repr(api.redact))
    assert api.base_url == "https://api.segsync.test/3.0"


def test_budget_and_stats_reprs_hold_no_key() -> None:
    """Reprs of the client's parts hold no key."""
    api = build_client(
        platform="p", base_url=BASE, headers={"Authorization": f"Bearer {KEY}"}, secrets=[KEY]
    )
    budget = RateBudget.for_account(f"p:{KEY}")

    assert_clean(repr(api), repr(api.stats), repr(budget), repr(api.redact), repr(vars(budget)))
    RateBudget.forget_accounts()


def test_no_warning_carries_the_key(caplog: pytest.LogCaptureFixture) -> None:
    """A run with retries and faults emits no warning text containing the key."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    emulator = LeakyEmulator(
        clock=clock, faults=FaultPlan(per_kind={"503": 0.3, "timeout": 0.2}, seed=3)
    )
    api = build_client(
        platform="leaky",
        base_url=BASE,
        headers={"api-key": KEY},
        transport=emulator.transport(),
        clock=clock,
    )

    async def run() -> list[BaseException | httpx.Response]:
        return await asyncio.gather(
            *(api.request("GET", "/ok", params={"token": KEY}) for _ in range(30)),
            return_exceptions=True,
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = asyncio.run(run())

    assert sum(emulator.faults.injected.values()) > 0
    errors = [r for r in results if isinstance(r, BaseException)]
    assert_clean(
        log_text(caplog),
        *(str(w.message) for w in caught),
        *(t for e in errors for t in exception_texts(e)),
    )


@pytest.mark.slow
def test_loopback_run_keeps_httpcore_debug_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    """Over a real loopback socket, httpx's and httpcore's DEBUG logs carry no key."""
    caplog.set_level(logging.DEBUG)
    emulator = LeakyEmulator(clock=SystemClock())

    async def run(base_url: str) -> ApiError:
        api = build_client(platform="leaky", base_url=base_url, headers={"api-key": KEY})
        try:
            await api.request("GET", "/ok", params={"key": KEY})
            with pytest.raises(ApiError) as caught:
                await api.request("POST", "/echo", json={"k": KEY})
            return caught.value
        finally:
            await api.aclose()

    with emulator.serving() as base_url:
        error = asyncio.run(run(base_url))

    names = {r.name for r in caplog.records}
    assert "httpcore.http11" in names or "httpcore.connection" in names
    assert_clean(log_text(caplog), *exception_texts(error))


def test_redactor_covers_encodings_and_fragments() -> None:
    """The redactor replaces the key, its URL-encoded form, a Bearer token, a dc-less key."""
    redact = Redactor([KEY, "Bearer pat-na1-abcdef123456", "0123456789abcdef0123456789abcdef-us21"])

    text = redact(
        f"{KEY} {urllib.parse.quote(KEY, safe='')} pat-na1-abcdef123456 "
        "0123456789abcdef0123456789abcdef"
    )

    assert text == "*** *** *** ***"
    assert redact.value({"a": [KEY, 1], KEY: None}) == {"a": ["***", 1], "***": None}
    assert Redactor(["short"])("short") == "short"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """`configure_logging` onto a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(LogFormat.TEXT, level="debug", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


@respx.mock
def test_one_redactor_for_clients_logs_and_the_cli(log_stream: io.StringIO) -> None:
    """A secret given to a client is redacted in log lines, and a secret the CLI registered
    is redacted in the errors of a client that was never given it."""
    client_secret = "client-given-secret-0451"
    cli_secret = "cli-registered-secret-0452"
    respx.get(f"{BASE}/x").mock(
        return_value=httpx.Response(400, json={"message": f"unknown {cli_secret}"})
    )
    api = build_client(platform="p", base_url=BASE, secrets=[client_secret])
    register_secret(cli_secret)

    with pytest.raises(ApiError) as caught:
        asyncio.run(api.request("GET", "/x"))
    logging.getLogger("segsync.test").warning("sent %s", client_secret)

    assert caught.value.message == "unknown ***"
    assert caught.value.body == {"message": "unknown ***"}
    assert "WARNING segsync.test: sent ***" in log_stream.getvalue()
    assert client_secret not in log_stream.getvalue()


@respx.mock
def test_a_connectors_credential_shape_is_redacted_once_its_class_is_loaded(
    caplog: pytest.LogCaptureFixture, log_stream: io.StringIO
) -> None:
    """A key nobody registered, shaped as a connector class declares its platform's keys,
    is redacted from error messages, error bodies and log lines (httpx's included)."""
    caplog.set_level(logging.DEBUG)
    shaped = "shp-" + "0a1b2c3d" * 4
    assert Redactor()(shaped) == shaped  # no generic pattern knows this shape

    class ShapedConnector(Connector):
        """A platform whose keys look like `shp-<32 hex>` (declared, never instantiated)."""

        credential_patterns = (r"\bshp-[0-9a-f]{32}\b",)

    assert ShapedConnector.credential_patterns
    respx.get(f"{BASE}/x").mock(
        return_value=httpx.Response(401, json={"message": f"key {shaped} is revoked"})
    )
    api = build_client(platform="p", base_url=BASE)

    with pytest.raises(ApiError) as caught:
        asyncio.run(api.request("GET", "/x", params={"q": shaped}))
    logging.getLogger("segsync.test").warning("tried %s", shaped)

    http_stack = [r.getMessage() for r in caplog.records if r.name.startswith("http")]
    assert caught.value.message == "key *** is revoked"
    assert any("HTTP Request: GET" in line for line in http_stack)
    assert_clean_of(shaped, *http_stack, log_stream.getvalue(), *exception_texts(caught.value))


def assert_clean_of(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
