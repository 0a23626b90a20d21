"""Three lived-in emulated accounts, an engine syncing them, and a person to erase.

Before segsync, each account holds the user's own people, lists and tags (`seed_lived_in`
on Mailchimp and HubSpot, the user's own lists on Brevo), and two people of interest on
every platform: ZOE (to be erased; in the user's own tag, list and Brevo list, subscribed
on Mailchimp) and YAN (kept: in the same tag and lists, never touched by the erasure).
`Switch` is a transport that can take a platform down (every request a connection error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator.records import ListRecord
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.erasure import ErasureReport, erase_people
from segsync.state import StateStore, open_store
from segsync.sync import Engine, SyncPolicy
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

PLATFORMS = ("mailchimp", "hubspot", "brevo")
ZOE = "Zoe.Erase@Lived.dev"  # as the user typed it; normalised: zoe.erase@lived.dev
ZOE_KEY = "zoe.erase@lived.dev"
YAN = "yan.keep@lived.dev"


class Switch(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, or fails them all with a connection error when `down`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


class World:
    """One user's three accounts, lived in, and segsync syncing them."""

    def __init__(self, store: StateStore | None = None, *, enforce: bool = False) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.loop = asyncio.new_event_loop()
        self.mc = MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=self.clock)
        self.bv = BrevoEmulator(clock=self.clock)
        self._seed()
        self.switches = {
            name: Switch(emulator.transport())
            for name, emulator in (("mailchimp", self.mc), ("hubspot", self.hs),
                                   ("brevo", self.bv))
        }
        self.connectors = self._connectors()
        self.store = store or open_store("sqlite:///:memory:", clock=self.clock)
        self.engine = Engine(
            self.connectors, self.store, config="erasure",
            policy=SyncPolicy(platforms=PLATFORMS), schema=DEFAULT_SCHEMA, clock=self.clock,
            enforce_erasure=enforce,
        )

    def _seed(self) -> None:
        self.mc.seed_lived_in()
        for email in (ZOE_KEY, YAN):
            self.mc.seed_member(email, "subscribed", merge_fields={"FNAME": email[:3]},
                                tags=("Customers 2023",))
        self.hs.seed_lived_in()
        ids = [self.hs.seed_contact({"email": e, "firstname": e[:3]}) for e in (ZOE_KEY, YAN)]
        now = self.clock.now()
        self.hs.lists["900"] = ListRecord(  # hook: the user's own MANUAL list
            "900", "VIP (the user's own)", "MANUAL", None, now, now, now,
            members=dict.fromkeys(ids, now),
        )
        self.bv_customers = self.bv.seed_list("Customers")
        for email in ("lea.customer@lived.dev", ZOE_KEY, YAN):
            self.bv.seed_contact(email, lists=(self.bv_customers,),
                                 attributes={"FIRSTNAME": email[:3]})
        self.clock.advance(3600)

    def _connectors(self) -> dict[str, Connector]:
        local = "http://127.0.0.1:9"
        common: dict[str, Any] = {"schema": DEFAULT_SCHEMA, "clock": self.clock}
        return {
            "mailchimp": MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": local + self.mc.base_path},
                transport=self.switches["mailchimp"], **common,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": local, "subscription_id": 101},
                transport=self.switches["hubspot"], **common,
            ),
            "brevo": BrevoConnector(
                {"api_key": self.bv.api_key}, transport=self.switches["brevo"], **common,
            ),
        }

    def sync(self) -> RunReport:
        self.clock.advance(600)
        return self.loop.run_until_complete(self.engine.sync())

    def erase(self, *emails: str) -> ErasureReport:
        self.clock.advance(60)
        return self.loop.run_until_complete(
            erase_people(list(emails), self.connectors, self.engine.state, clock=self.clock)
        )

    def holds(self, email: str) -> dict[str, bool]:
        """Which platform holds a record of `email`."""
        return {
            "mailchimp": self.mc.get_member(email) is not None,
            "hubspot": self.hs.contact_by_email(email) is not None,
            "brevo": self.bv.contact(email) is not None,
        }

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        self.store.close()


def state_rows_naming(store: StateStore, email: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table of a SQLite state that contains `email` (any case, plain or
    JSON-escaped): `(table, row)`."""
    conn = store._conn  # type: ignore[attr-defined]
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    needles = {email.lower(), email.lower().replace("@", "\\u0040")}
    found = []
    for table in tables:
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            text = " ".join(str(v) for v in row).lower()
            if any(n in text for n in needles):
                found.append((table, row))
    return found
