"""A run checks a platform (`Connector.check`) when its connector config differs from the one
last checked: the first run, and the first after an edit of that platform's config. A failing
check stops that platform for the run (`check_failed`, the connector's message); the others
sync. A steady run costs the identity read alone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from segsync_brevo import BrevoConnector
from segsync_hubspot import HubSpotConnector

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounts_world import ALICE, BOB, LOCAL, World

from segsync.connector import Connector
from segsync.testing.data import DEFAULT_SCHEMA


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def counted(connector: Connector, calls: dict[str, int], name: str) -> Connector:
    """`connector`, its `check()` counted in `calls[name]`."""
    inner = connector.check

    async def check() -> None:
        calls[name] = calls.get(name, 0) + 1
        await inner()

    connector.check = check  # type: ignore[method-assign]
    return connector


def account_reads(world: World) -> dict[str, int]:
    return {
        "mailchimp": world.mc.log.count("GET", "/3.0/"),
        "hubspot": world.hs.log.count("GET", "/account-info/v3/details")
        + world.hs.log.count("GET", "/account-info/2026-03/details"),
        "brevo": world.bv.log.count("GET", "/account") + world.bv.log.count("GET", "/v3/account"),
    }


def test_checks_run_once_then_again_only_for_the_platform_whose_config_changed(
    world: World,
) -> None:
    calls: dict[str, int] = {}
    for name, connector in world.connectors.items():
        counted(connector, calls, name)

    assert not world.sync().errors
    assert calls == {"mailchimp": 1, "hubspot": 1, "brevo": 1}
    assert account_reads(world) == {"mailchimp": 1, "hubspot": 1, "brevo": 1}

    world.sync()
    world.plan()
    assert calls == {"mailchimp": 1, "hubspot": 1, "brevo": 1}  # no steady-state cost
    assert account_reads(world) == {"mailchimp": 3, "hubspot": 3, "brevo": 3}  # one a run

    edited = HubSpotConnector(
        {"token": world.hs.default_api_key, "base_url": LOCAL, "subscription_id": 101,
         "legal_basis": "legitimate_interest_client"},
        transport=world.hs.transport(), schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    world.replace("hubspot", counted(edited, calls, "hubspot"))
    world.sync()
    world.sync()

    assert calls == {"mailchimp": 1, "hubspot": 2, "brevo": 1}


def test_a_failing_check_stops_that_platform_until_the_config_is_fixed(world: World) -> None:
    world.sync()
    calls: dict[str, int] = {}
    missing = BrevoConnector(
        {"api_key": world.bv.api_key, "consent": {"lists": [4242]}},
        transport=world.bv.transport(), schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    world.replace("brevo", counted(missing, calls, "brevo"))
    world.hs.modify_contact(world.hs._find_email(BOB).id, {"firstname": "Bobby"})

    report = world.sync()

    [error] = [e for e in report.errors if e.code == "check_failed"]
    assert error.platform == "brevo"
    assert error.email is None
    assert "brevo.consent.lists" in error.message
    assert "4242" in error.message
    assert world.bv.contact(BOB).attributes["FIRSTNAME"] == "Bob"  # brevo sat the run out
    assert world.mc.get_member(BOB).merge_fields["FNAME"] == "Bobby"  # the others synced

    world.sync()
    assert calls == {"brevo": 2}  # checked again while it fails

    fixed_list = world.bv.seed_list("Consent (the user's own)")
    fixed = BrevoConnector(
        {"api_key": world.bv.api_key, "consent": {"lists": [fixed_list]}},
        transport=world.bv.transport(), schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    world.replace("brevo", counted(fixed, calls, "brevo"))
    report = world.sync()

    assert not [e for e in report.errors if e.code == "check_failed"]
    assert world.bv.contact(BOB).attributes["FIRSTNAME"] == "Bobby"
    world.sync()
    assert calls == {"brevo": 3}
    assert world.hs.contact_by_email(ALICE)["firstname"] == "Alice"


def test_a_config_fingerprint_leaves_the_secret_out_and_follows_the_settings() -> None:
    a = BrevoConnector({"api_key": "xkeysib-" + "a" * 64 + "-k1"}).config
    b = BrevoConnector({"api_key": "xkeysib-" + "b" * 64 + "-k2"}).config
    c = BrevoConnector({"api_key": "xkeysib-" + "a" * 64 + "-k1", "folder": "other"}).config

    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
