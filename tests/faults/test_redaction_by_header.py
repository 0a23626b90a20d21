"""Keys are redacted because of the header that carries them, not only because someone
passed them as secrets: a client given a key only in its auth header (each connector's
style: Bearer, Basic, `api-key`) never shows it in errors, bodies, log lines or reprs, even
when the platform echoes it back. (A mutant that stopped registering auth headers survived
a suite where every test also passed the key as a secret.)"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets

import httpx
import pytest

from segsync.clock import VirtualClock
from segsync.http import ApiError, build_client

BASE = "https://api.segsync.test"


def fresh_key() -> str:
    """A key no credential pattern knows and no earlier test registered."""
    return "zq" + secrets.token_hex(20)


def echoing(request: httpx.Request) -> httpx.Response:
    """A platform that quotes the credentials it was sent (as some error pages do)."""
    sent = request.headers.get("authorization") or request.headers.get("api-key", "")
    scheme, _, value = sent.partition(" ")
    if not value:
        value = scheme  # a bare key (api-key)
    elif scheme.lower() == "basic":
        value = base64.b64decode(value).decode()
    return httpx.Response(
        400, json={"message": f"bad credentials {value.strip()}", "sent": sent},
    )


STYLES = {
    "bearer (HubSpot, Mailchimp OAuth)": lambda key: {
        "headers": {"Authorization": f"Bearer {key}"}},
    "basic header (Mailchimp)": lambda key: {"headers": {
        "Authorization": "Basic " + base64.b64encode(f"anystring:{key}".encode()).decode()}},
    "httpx basic auth (Mailchimp)": lambda key: {"auth": httpx.BasicAuth("anystring", key)},
    "api-key header (Brevo)": lambda key: {"headers": {"api-key": key}},
}


@pytest.mark.parametrize("style", list(STYLES))
def test_a_key_only_in_an_auth_header_is_redacted_everywhere(
    style: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = fresh_key()
    client = build_client(
        platform="example", base_url=BASE, transport=httpx.MockTransport(echoing),
        clock=VirtualClock(), **STYLES[style](key),
    )

    with pytest.raises(ApiError) as caught:
        asyncio.run(client.request("GET", "/contacts"))
    error = caught.value
    logging.getLogger("segsync.test").warning("failed: %s (%r)", error, error.body)

    assert "bad credentials" in error.message  # the platform's message is kept...
    shown = [
        str(error), repr(error), error.message, json.dumps(error.body), repr(client),
        *(record.getMessage() for record in caplog.records), caplog.text,
    ]
    for text in shown:
        assert key not in text, f"{style}: the key was shown in {text!r}"  # ...not the key
