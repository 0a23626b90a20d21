"""Three lived-in accounts (the bundled `lived-in` fixtures plus a crowd of ordinary people)
and an engine over them, for the safe-first-run tests (`--select`, `--limit`,
`--full-refresh`).

Every run builds fresh connectors, as `segsync sync` does. `contents()` reads what each
platform holds now (email -> fields, tags, consent), through fresh connectors, so a test can
compare accounts before and after a run, or two worlds run differently.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from typing import Any

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import PublishMode, normalize_email
from segsync.rules import parse
from segsync.state import open_store
from segsync.sync import Engine, SegmentTarget
from segsync.sync.plan import Plan
from segsync.sync.pull import RunScope
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

LOCAL = "http://127.0.0.1:9"
CONFIG_NAME = "brevo+hubspot+mailchimp"  # as `segsync` names a configuration of the three
CROWD = 24  # ordinary people on Mailchimp, half of them on HubSpot too

Contents = dict[str, dict[str, tuple[Any, ...]]]
"""platform -> email -> (fields, tags, consent) as read."""


def crowd_email(i: int) -> str:
    return f"person{i:02d}@crowd.dev"


def segments() -> list[SegmentTarget]:
    """Two materialised segments (segsync evaluates and writes their members)."""
    mode = {"mailchimp": PublishMode.MATERIALISE, "hubspot": PublishMode.MATERIALISE,
            "brevo": PublishMode.MATERIALISE}
    return [
        SegmentTarget("crowd", parse('email ends_with "@crowd.dev"'), mode),
        SegmentTarget("lived", parse('email ends_with "@lived.dev"'), mode),
    ]


class World:
    """One user's lived-in Mailchimp audience, HubSpot portal and Brevo account."""

    def __init__(self, state_url: str = "sqlite:///:memory:") -> None:
        self.clock = VirtualClock()
        self.mc = MailchimpEmulator.from_fixture("lived-in", clock=self.clock,
                                                 reject_fake_emails=False)
        self.hs = HubSpotEmulator.from_fixture("lived-in", clock=self.clock)
        self.bv = BrevoEmulator.from_fixture("lived-in", clock=self.clock)
        for i in range(CROWD):
            self.mc.seed_member(crowd_email(i), "subscribed",
                                merge_fields={"FNAME": f"Crowd{i}"})
            if i % 2 == 0:
                self.hs.seed_contact({"email": crowd_email(i), "firstname": f"Crowd{i}"})
        self.clock.advance(60)  # HubSpot's search shows a contact some seconds after it is made
        self.store = open_store(state_url, clock=self.clock)
        self.segments = segments()
        self.config = ""

    def connectors(self) -> dict[str, Connector]:
        mc, hs, bv, clock = self.mc, self.hs, self.bv, self.clock
        return {
            "mailchimp": MailchimpConnector(
                {**mc.client_config(), "base_url": LOCAL + mc.base_path},
                schema=DEFAULT_SCHEMA, transport=mc.transport(), clock=clock,
            ),
            "hubspot": HubSpotConnector(
                {**hs.client_config(), "base_url": LOCAL},
                schema=DEFAULT_SCHEMA, transport=hs.transport(), clock=clock,
            ),
            "brevo": BrevoConnector(
                bv.client_config(), schema=DEFAULT_SCHEMA, transport=bv.transport(),
                clock=clock,
            ),
        }

    def engine(self, scope: RunScope | None = None,
               connectors: dict[str, Connector] | None = None) -> Engine:
        engine = Engine(connectors or self.connectors(), self.store, config=CONFIG_NAME,
                        schema=DEFAULT_SCHEMA, clock=self.clock, segments=self.segments,
                        scope=scope)
        self.config = engine.config
        return engine

    async def _close(self, engine: Engine) -> None:
        for connector in engine.connectors.values():
            await connector.aclose()

    def plan(self, scope: RunScope | None = None) -> Plan:
        engine = self.engine(scope)

        async def go() -> Plan:
            try:
                return await engine.plan()
            finally:
                await self._close(engine)

        made = asyncio.run(go())
        self.clock.advance(60)
        return made

    def sync(self, scope: RunScope | None = None) -> tuple[RunReport, dict[str, int]]:
        """A sync; its report and the write calls each platform received."""
        engine = self.engine(scope)

        async def go() -> RunReport:
            try:
                return await engine.sync()
            finally:
                await self._close(engine)

        report = asyncio.run(go())
        writes = {name: c.stats.writes for name, c in engine.connectors.items()}
        self.clock.advance(60)
        return report, writes

    def contents(self) -> Contents:
        async def go() -> Contents:
            out: Contents = {}
            for name, connector in self.connectors().items():
                seen = out.setdefault(name, {})
                async for page in connector.read(None):
                    for c in page.contacts:
                        if not c.deleted:
                            seen[normalize_email(c.email)] = (
                                sorted((k, v) for k, v in c.fields.items() if v is not None),
                                sorted(c.tags), str(getattr(c.consent, "status", c.consent)),
                            )
                await connector.aclose()
            return out

        return asyncio.run(go())

    def everyone(self) -> set[str]:
        """Every person's normalised email, on any platform."""
        return {email for people in self.contents().values() for email in people}


def rank(email: str) -> str:
    """The `--limit` sample's order, computed here independently of segsync."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def expected_sample(emails: Iterable[str], limit: int) -> set[str]:
    return set(sorted(emails, key=rank)[:limit])


def written_cids(plan: Plan) -> set[str]:
    """Every contact a plan writes on any platform: changes and static memberships."""
    cids: set[str] = set()
    for pplan in plan.platforms.values():
        cids.update(row["cid"] for row in pplan.changes)
        for m in pplan.memberships:
            cids.update(member.cid for member in (*m.add, *m.remove))
    return cids


def writes_of(plan: Plan) -> int:
    return plan.write_count
