"""Tags on lived-in accounts, over the three emulators (issue 14, items 3 and 4).

The Mailchimp audience holds the user's own tags before segsync runs, one of them named
exactly like a configured segment. Every run builds fresh connectors, as `segsync sync` does
(nothing cached from the previous run's writes).

- Ownership: segsync never adopts the user's tag for its segment (Mailchimp tags are
  case-insensitive), never changes who holds it, and the user's tag keeps flowing to the
  other platforms as an ordinary tag.
- One-run convergence: tags keep their case through HubSpot (which stores checkbox option
  values in lower case), so the run after the first writes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import PublishMode
from segsync.rules import parse
from segsync.state import open_store
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")

subscriber_hash = pytest.importorskip("segsync_mailchimp.api").subscriber_hash

LOCAL = "http://127.0.0.1:9"


class Accounts:
    """One user's three lived-in accounts; `connectors()` are fresh ones, as a new run's."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.mc = mailchimp.MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = hubspot.HubSpotEmulator(clock=self.clock)
        self.bv = brevo_emulator.BrevoEmulator(clock=self.clock)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.config = ""

    def connectors(self) -> dict[str, Connector]:
        mc, hs, bv, clock = self.mc, self.hs, self.bv, self.clock
        return {
            "mailchimp": mailchimp.MailchimpConnector(
                {"api_key": mc.default_api_key, "list_id": mc.default_list_id,
                 "base_url": LOCAL + mc.base_path},
                schema=DEFAULT_SCHEMA, transport=mc.transport(), clock=clock,
            ),
            "hubspot": hubspot.HubSpotConnector(
                {"token": hs.default_api_key, "base_url": LOCAL},
                schema=DEFAULT_SCHEMA, transport=hs.transport(), clock=clock,
            ),
            "brevo": brevo.BrevoConnector(
                {"api_key": bv.api_key}, schema=DEFAULT_SCHEMA, transport=bv.transport(),
                clock=clock,
            ),
        }

    async def sync(self, segments: list[SegmentTarget]) -> RunReport:
        platforms = self.connectors()
        engine = Engine(platforms, self.store, schema=DEFAULT_SCHEMA, clock=self.clock,
                        segments=segments)
        self.config = engine.config
        try:
            return await engine.sync()
        finally:
            for connector in platforms.values():
                await connector.aclose()
            self.clock.advance(60)

    async def tags(self) -> dict[str, dict[str, frozenset[str]]]:
        """Each platform's tags per email, read by fresh connectors."""
        out: dict[str, dict[str, frozenset[str]]] = {}
        for name, connector in self.connectors().items():
            seen = out.setdefault(name, {})
            async for page in connector.read(None):
                for contact in page.contacts:
                    seen[contact.email.lower()] = contact.tags
            await connector.aclose()
        return out


def tag_counts(report: RunReport) -> dict[str, tuple[int, int, int, int]]:
    return {n: (p.tags_added, p.tags_removed, p.members_added, p.members_removed)
            for n, p in report.platforms.items()}


def test_segment_named_like_a_user_tag_leaves_that_tag_alone() -> None:
    """A segment `webinar` on an audience with the user's tag `webinar`: segsync holds the
    segment in a tag of its own, the user's tag keeps its members and flows as a tag, and
    the second and third runs write nothing."""
    accounts = Accounts()
    accounts.mc.seed_member("ada@tags.dev", "subscribed", tags=["webinar", "VIP"])
    accounts.mc.seed_member("bob@tags.dev", "subscribed", tags=["Gold"])
    audience = accounts.mc.lists[accounts.mc.default_list_id]
    user_tag = accounts.mc._tag_segment(audience, "webinar", create=False)  # hook: the user's tag
    assert user_tag is not None
    segment = SegmentTarget("webinar", parse('tags has "Gold"'), {
        "mailchimp": PublishMode.MATERIALISE, "hubspot": PublishMode.MATERIALISE,
    })

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {"runs": [await accounts.sync([segment]) for _ in range(3)]}
        out["tags"] = await accounts.tags()
        return out

    out = asyncio.run(main())
    runs, tags = out["runs"], out["tags"]

    for report in runs:
        assert report.errors == [], [e.message for e in report.errors]
    quiet = dict.fromkeys(("mailchimp", "hubspot", "brevo"), (0, 0, 0, 0))
    assert tag_counts(runs[1]) == quiet
    assert tag_counts(runs[2]) == quiet
    # the user's tag: still Ada's alone on Mailchimp, and an ordinary tag everywhere
    assert set(user_tag.members) == {subscriber_hash("ada@tags.dev")}
    for platform in ("mailchimp", "hubspot", "brevo"):
        assert {"webinar", "VIP"} <= tags[platform]["ada@tags.dev"], platform
        assert "webinar" not in tags[platform]["bob@tags.dev"], platform
        assert "Gold" in tags[platform]["bob@tags.dev"], platform
    # the segment: a Mailchimp tag of segsync's own, holding Bob
    assert tags["mailchimp"]["bob@tags.dev"] - {"Gold"} == {"segsync:webinar"}
    assert "segsync:webinar" not in tags["mailchimp"]["ada@tags.dev"]
    owned = {(o.platform, o.kind, o.name): o.ref for o in accounts.store.owned(accounts.config)}
    assert owned[("mailchimp", "static", "webinar")] != str(user_tag.id)


def test_mixed_case_tags_through_hubspot_converge_in_one_run() -> None:
    """Ten members tagged `VIP` (eight also `Customers 2023`): the first run copies the tags,
    the second writes nothing, and every platform reads them in their case."""
    accounts = Accounts()
    for i in range(10):
        tags = ["VIP", "Customers 2023"] if i < 8 else ["VIP"]
        accounts.mc.seed_member(f"p{i}@case.dev", "subscribed", tags=tags)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {"runs": [await accounts.sync([]) for _ in range(2)]}
        out["tags"] = await accounts.tags()
        return out

    out = asyncio.run(main())
    first, second = out["runs"]

    assert first.errors == []
    assert second.errors == []
    assert tag_counts(first)["hubspot"][0] == 18
    assert second.writes == 0, tag_counts(second)
    for platform in ("mailchimp", "hubspot", "brevo"):
        assert out["tags"][platform]["p0@case.dev"] == {"VIP", "Customers 2023"}, platform
        assert out["tags"][platform]["p9@case.dev"] == {"VIP"}, platform
