"""Read-only fields (a platform only reports them: engagement, HubSpot's lifecycle stage)
never appear as planned writes to a platform, and the run after converges."""

from __future__ import annotations

import asyncio

import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.mapping import ENGAGEMENT_FIELDS
from segsync.model import Schema
from segsync.state import open_store
from segsync.sync import Engine
from segsync.sync.policy import Direction, SyncPolicy
from segsync.testing.data import DEFAULT_SCHEMA

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")

SCHEMA = Schema(fields={**ENGAGEMENT_FIELDS, **DEFAULT_SCHEMA.fields})
LOCAL = "http://127.0.0.1:9"


def _connectors(clock: VirtualClock) -> tuple[dict[str, Connector], object]:
    mc = mailchimp.MailchimpEmulator(clock=clock)
    hs = hubspot.HubSpotEmulator(clock=clock)
    bv = brevo_emulator.BrevoEmulator(clock=clock)
    hs.seed_contact({"email": "ann@segsync.dev", "firstname": "Ann",
                     "lifecyclestage": "customer"})
    clock.advance(hs.read_lag_seconds)  # Ann's record is searchable when the runs start
    return {
        "mailchimp": mailchimp.MailchimpConnector(
            {"api_key": mc.default_api_key, "list_id": mc.default_list_id,
             "base_url": LOCAL + mc.base_path},
            schema=SCHEMA, transport=mc.transport(), clock=clock),
        "hubspot": hubspot.HubSpotConnector(
            {"token": hs.default_api_key, "base_url": LOCAL},
            schema=SCHEMA, transport=hs.transport(), clock=clock),
        "brevo": brevo.BrevoConnector(
            {"api_key": bv.api_key}, schema=SCHEMA, transport=bv.transport(), clock=clock),
    }, hs


def test_a_read_only_field_is_never_a_planned_write() -> None:
    clock = VirtualClock()
    connectors, _hs = _connectors(clock)
    engine = Engine(connectors, open_store("sqlite:///:memory:", clock=clock), schema=SCHEMA,
                    clock=clock)

    plan = asyncio.run(engine.plan())
    written = {
        name: sorted({f for row in p.changes for f in row.get("fields") or {}})
        for name, p in plan.platforms.items()
    }
    report = asyncio.run(engine.apply(plan))
    clock.advance(60)
    again = asyncio.run(engine.plan())

    assert written == {"mailchimp": ["first_name"], "hubspot": [], "brevo": ["first_name"]}
    assert "lifecycle_stage" not in plan.render()
    assert report.errors == []
    assert again.is_empty, again.render()


def test_the_policy_keeps_read_only_fields_source_only_whatever_it_said() -> None:
    """A configured direction cannot make a read-only field written."""
    clock = VirtualClock()
    connectors, _ = _connectors(clock)
    policy = SyncPolicy(platforms=tuple(connectors),
                        directions={"lifecycle_stage": {"brevo": Direction.BOTH}})

    engine = Engine(connectors, open_store("sqlite:///:memory:", clock=clock), schema=SCHEMA,
                    clock=clock, policy=policy)

    assert not any(engine.policy.writes(p, "lifecycle_stage") for p in connectors)
    assert not engine.policy.writes("mailchimp", "open_rate")
    assert engine.policy.writes("brevo", "first_name")
    assert engine.policy.reads("hubspot", "lifecycle_stage")
