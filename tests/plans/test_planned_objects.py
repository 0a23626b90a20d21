"""Every object `apply` creates on a platform appears in the plan: merge fields, properties,
attributes, options, tags, groups, folders and lists (`PlatformPlan.objects`), and the
segment objects (publications, under the name they get). Checked against what the apply
actually sent, on the three emulators, with a person's data already in the accounts."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import httpx
import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import parse
from segsync.state import open_store
from segsync.sync import Engine, Plan, SegmentTarget

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")

LOCAL = "http://127.0.0.1:9"
SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "plan": FieldSpec(type=FieldType.ENUM, options=("free", "pro")),
    "topics": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "events")),
})
SEGMENTS = (
    # native on Mailchimp (a tag condition: the tag `vip` exists, `gold` is created)
    SegmentTarget("vips", parse('tags has "vip"')),
    SegmentTarget("golds", parse('tags has "gold"')),
    SegmentTarget("anns", parse('first_name = "Ann"'),
                  publish={"mailchimp": PublishMode.MATERIALISE}),
)


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []
        self.on = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.on and request.method != "GET":
            body = json.loads(request.content) if request.content else None
            self.sent.append((request.method, urllib.parse.unquote(request.url.path), body))
        return await self.inner.handle_async_request(request)


def _created(platform: str, sent: list[tuple[str, str, Any]]) -> list[str]:
    """The names of the objects the requests created (never a contact)."""
    out: list[str] = []
    for method, path, body in sent:
        body = body or {}
        if platform == "mailchimp":
            if method == "POST" and path.endswith("/merge-fields"):
                out.append(body["tag"])
            elif method == "POST" and path.endswith("/interest-categories"):
                out.append(body["title"])
            elif method == "POST" and path.endswith(("/interests", "/segments")):
                out.append(body["name"])
        elif platform == "hubspot":
            parts = path.strip("/").split("/")
            if method == "POST" and parts[:2] == ["crm", "properties"]:
                out.append(body["name"])  # a property, or the property group
            elif method == "PATCH" and parts[:2] == ["crm", "properties"]:
                out.extend(o["value"] for o in body.get("options") or [])
            elif method == "POST" and parts[:2] == ["crm", "lists"] and len(parts) == 3:
                out.append(body["name"])
        else:
            if method == "POST" and "/contacts/attributes/" in path:
                out.append(path.rsplit("/", 1)[1])
            elif method == "PUT" and "/contacts/attributes/" in path:
                out.extend(str(e["label"]) for e in body.get("enumeration") or [])
                out.extend(body.get("multiCategoryOptions") or [])
            elif method == "POST" and path.endswith(("/contacts/lists", "/contacts/folders")):
                out.append(body["name"])
    return out


def _world(clock: VirtualClock) -> tuple[dict[str, Connector], dict[str, Recorder]]:
    mc = mailchimp.MailchimpEmulator(clock=clock)
    hs = hubspot.HubSpotEmulator(clock=clock)
    bv = brevo_emulator.BrevoEmulator(clock=clock)
    # a person's data: people, a tag of theirs, an attribute and a property of theirs
    mc.seed_member("ann@segsync.dev", merge_fields={"FNAME": "Ann"}, tags=["vip", "theirs"])
    mc.seed_member("bob@segsync.dev", merge_fields={"FNAME": "Bob"})
    hs.seed_contact({"email": "carl@segsync.dev", "firstname": "Carl"})
    bv.seed_attribute("FAVOURITE", "normal", "text")
    bv.seed_contact("dora@segsync.dev", attributes={"FIRSTNAME": "Dora"})
    rec = {n: Recorder(e.transport()) for n, e in (("mailchimp", mc), ("hubspot", hs),
                                                   ("brevo", bv))}
    return {
        "mailchimp": mailchimp.MailchimpConnector(
            {"api_key": mc.default_api_key, "list_id": mc.default_list_id,
             "base_url": LOCAL + mc.base_path},
            schema=SCHEMA, transport=rec["mailchimp"], clock=clock),
        "hubspot": hubspot.HubSpotConnector(
            {"token": hs.default_api_key, "base_url": LOCAL},
            schema=SCHEMA, transport=rec["hubspot"], clock=clock),
        "brevo": brevo.BrevoConnector(
            {"api_key": bv.api_key}, schema=SCHEMA, transport=rec["brevo"], clock=clock),
    }, rec


def _shown(plan: Plan, platform: str) -> str:
    p = plan.platforms[platform]
    return "\n".join([*p.objects, *(pub.platform_name or pub.name for pub in p.publications)])


def test_every_object_apply_creates_is_in_the_plan() -> None:
    clock = VirtualClock()
    connectors, recorders = _world(clock)
    engine = Engine(connectors, open_store("sqlite:///:memory:", clock=clock), schema=SCHEMA,
                    clock=clock, segments=SEGMENTS)

    plan = asyncio.run(engine.plan())
    for r in recorders.values():
        r.on = True
    report = asyncio.run(engine.apply(plan))

    assert report.errors == []
    for platform, recorder in recorders.items():
        created = _created(platform, recorder.sent)
        shown = _shown(plan, platform)
        assert created, platform  # the apply did create objects there
        missing = [name for name in created if name not in shown]
        assert missing == [], (platform, missing, shown)
    assert "tag 'vip'" not in plan.platforms["mailchimp"].objects  # the person's: exists
    assert "tag 'gold'" in plan.platforms["mailchimp"].objects  # a native segment needs it
    assert "theirs" not in _shown(plan, "mailchimp")


def test_a_plan_lists_nothing_to_create_once_everything_exists() -> None:
    clock = VirtualClock()
    connectors, _recorders = _world(clock)
    engine = Engine(connectors, open_store("sqlite:///:memory:", clock=clock), schema=SCHEMA,
                    clock=clock, segments=SEGMENTS)
    asyncio.run(engine.sync())
    clock.advance(60)

    plan = asyncio.run(engine.plan())

    assert all(p.objects == [] for p in plan.platforms.values()), {
        n: p.objects for n, p in plan.platforms.items()}
