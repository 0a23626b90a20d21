"""A refused key or token (HTTP 401) names the setting to fix, never its value: the field a
connector declares (`build_client(credential=...)`), else the platform's block."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from segsync.clock import VirtualClock
from segsync.http import PlatformUnavailable, build_client

KEY = "k-" + "7" * 40


def refused(credential: str | None) -> str:
    transport = httpx.MockTransport(
        lambda _request: httpx.Response(401, json={"message": "API key invalid"})
    )
    client = build_client(platform="acme", base_url="https://api.acme.test", secrets=[KEY],
                          headers={"x-api-key": KEY}, transport=transport,
                          clock=VirtualClock(), credential=credential)

    async def call() -> str:
        try:
            with pytest.raises(PlatformUnavailable) as caught:
                await client.request("GET", "/me")
            return str(caught.value)
        finally:
            await client.aclose()

    return asyncio.run(call())


def test_the_declared_setting_is_named() -> None:
    message = refused("api_key")

    assert "refused the credentials" in message
    assert "check `platforms.acme.api_key`" in message
    assert "environment variable" in message
    assert KEY not in message


def test_without_a_declared_setting_the_block_is_named() -> None:
    message = refused(None)

    assert "under `platforms.acme`" in message
    assert KEY not in message
