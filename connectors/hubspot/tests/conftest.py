"""Shared fixtures of the HubSpot tests: the emulator, a connector on it, the API descriptions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator import state as hubspot_state
from segsync_hubspot.emulator.state import STRICT_SEARCH_INDEX_LAG
from segsync_hubspot.spec import SpecValidator, ValidatingTransport

from segsync.clock import VirtualClock
from segsync.model import FieldSpec, FieldType, Schema

REPO_ROOT = Path(__file__).resolve().parents[3]
SPECS = REPO_ROOT.parent / "shared" / "specs" / "hubspot"
SPECS_MISSING = f"the HubSpot API descriptions are not at {SPECS}"

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
        "plan": FieldSpec(type=FieldType.ENUM, options=("free", "pro", "team")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "signup": FieldSpec(type=FieldType.DATE),
        "last_seen": FieldSpec(type=FieldType.DATETIME),
        "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "deals", "events")),
    }
)
"""A schema with one field of every canonical type the connector maps."""

TOKEN = HubSpotEmulator.default_api_key


_VALIDATORS: list[SpecValidator] = []

Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


@pytest.fixture
def checked() -> Iterator[Wrap]:
    """Wraps a transport so that every request, and every JSON answer, is checked against
    HubSpot's API descriptions; the test fails at teardown if any did not validate. Without
    the descriptions (../shared/specs absent) requests pass unchecked; test_conformance.py
    then reports the skip with its reason."""
    problems: list[str] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if not SPECS.is_dir():
            return inner
        if not _VALIDATORS:
            _VALIDATORS.append(SpecValidator(SPECS))
        transport = ValidatingTransport(inner, _VALIDATORS[0], responses=True)
        transport.problems = problems
        return transport

    yield wrap
    assert problems == [], "requests that do not validate against HubSpot's API descriptions"


@pytest.fixture(autouse=True)
def strict_search_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot's tests run with search's index lag (the strict reading) unless a test names
    another `search_delay_seconds`: a write is found by search only seconds later."""
    monkeypatch.setattr(hubspot_state, "SEARCH_INDEX_LAG", STRICT_SEARCH_INDEX_LAG)


Settle = Callable[[HubSpotEmulator], None]


@pytest.fixture
def settle() -> Settle:
    """Wait, on the emulator's virtual clock, until search finds every write made so far."""

    def wait(emulator: HubSpotEmulator) -> None:
        assert isinstance(emulator.clock, VirtualClock)
        emulator.clock.advance(emulator.read_lag_seconds)

    return wait


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> HubSpotEmulator:
    return HubSpotEmulator(clock=clock)


@pytest.fixture
def make_connector(
    emulator: HubSpotEmulator, clock: VirtualClock, checked: Wrap
) -> Callable[..., HubSpotConnector]:
    def make(**config: Any) -> HubSpotConnector:
        settings = {"token": TOKEN, "base_url": "http://127.0.0.1:9", **config}
        return HubSpotConnector(
            settings, schema=SCHEMA, transport=checked(emulator.transport()), clock=clock
        )

    return make
