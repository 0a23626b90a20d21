"""Three lived-in emulated accounts synced by one engine, for deletes and owed writes.

Before segsync, each account holds the user's own people (`seed_lived_in` on Mailchimp and
HubSpot, the user's own list on Brevo) and three people of interest on every platform: ANA,
BEN and CEM. A platform user can then delete, archive or re-create them while segsync runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.state import StateStore, open_store
from segsync.sync import Engine, Plan, SyncPolicy
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

PLATFORMS = ("mailchimp", "hubspot", "brevo")
ANA = "ana.deleted@lived.dev"
BEN = "ben.kept@lived.dev"
CEM = "cem.other@lived.dev"
PEOPLE = (ANA, BEN, CEM)


class Refuse(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, answering 400 to writes (deletes included) whose body
    names one of `needles` or whose path ends with one of `paths` (a per-record refusal, as
    a platform gives for a value it rejects)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.needles: set[str] = set()
        self.paths: set[str] = set()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("PUT", "PATCH", "POST", "DELETE") and (self.needles or self.paths):
            body = request.content.decode(errors="replace").lower()
            path = request.url.path.lower()
            if any(n in body for n in self.needles) or any(
                path.endswith(p) for p in self.paths
            ):
                self.refused += 1
                return httpx.Response(
                    400, json={"code": "invalid_parameter", "message": "refused by the test",
                               "title": "Invalid Resource", "status": 400,
                               "detail": "refused by the test", "category": "VALIDATION_ERROR"},
                    request=request,
                )
        return await self.inner.handle_async_request(request)


class World:
    """One user's three accounts, lived in, and segsync syncing them."""

    def __init__(
        self, store: StateStore | None = None, *, on_delete: Mapping[str, str] | None = None
    ) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.loop = asyncio.new_event_loop()
        self.mc = MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=self.clock)
        self.bv = BrevoEmulator(clock=self.clock)
        self._seed()
        self.transports = {
            name: Refuse(emulator.transport())
            for name, emulator in (("mailchimp", self.mc), ("hubspot", self.hs),
                                   ("brevo", self.bv))
        }
        self.connectors = self._connectors()
        self._own_store = store is None
        self.store = store or open_store("sqlite:///:memory:", clock=self.clock)
        policy = SyncPolicy.from_config({"on_delete": dict(on_delete or {})}, PLATFORMS)
        self.engine = Engine(self.connectors, self.store, config="deletes", policy=policy,
                             schema=DEFAULT_SCHEMA, clock=self.clock)

    def _seed(self) -> None:
        self.mc.seed_lived_in()
        self.hs.seed_lived_in()
        customers = self.bv.seed_list("Customers")
        for email in PEOPLE:
            self.mc.seed_member(email, "subscribed", merge_fields={"FNAME": email[:3]})
            self.hs.seed_contact({"email": email, "firstname": email[:3]})
            self.bv.seed_contact(email, lists=(customers,), attributes={"FIRSTNAME": email[:3]})
        self.bv.seed_contact("lea.customer@lived.dev", lists=(customers,))
        self.clock.advance(3600)

    def _connectors(self) -> dict[str, Connector]:
        local = "http://127.0.0.1:9"
        common: dict[str, Any] = {"schema": DEFAULT_SCHEMA, "clock": self.clock}
        return {
            "mailchimp": MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": local + self.mc.base_path},
                transport=self.transports["mailchimp"], **common,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": local, "subscription_id": 101},
                transport=self.transports["hubspot"], **common,
            ),
            "brevo": BrevoConnector(
                {"api_key": self.bv.api_key}, transport=self.transports["brevo"], **common,
            ),
        }

    def sync(self) -> RunReport:
        self.clock.advance(600)
        return self.loop.run_until_complete(self.engine.sync())

    def plan(self) -> Plan:
        self.clock.advance(60)
        return self.loop.run_until_complete(self.engine.plan())

    # -- what platform users do --------------------------------------------------------------

    def user_deletes_in_brevo(self, email: str) -> None:
        """A Brevo user deletes the contact (Brevo has no archive)."""
        contact = self.bv.contact(email)
        assert contact is not None
        del self.bv.contacts[contact.id]
        self.bv._by_email.pop(email.lower(), None)
        self.clock.advance(5)

    def user_archives_in_mailchimp(self, email: str) -> None:
        """A Mailchimp user archives the member."""
        member = self.mc.get_member(email)
        assert member is not None
        member.status = "archived"
        member.last_changed = self.clock.now()
        self.clock.advance(5)

    def user_archives_in_hubspot(self, email: str) -> None:
        """A HubSpot user archives (deletes, restorable 90 days) the contact."""
        record = self.hs._find_email(email)
        assert record is not None
        record.archived = True
        record.updated_at = self.clock.now()
        self.clock.advance(5)

    def user_renames_in_hubspot(self, email: str, first_name: str) -> None:
        """A HubSpot user edits the person's first name."""
        record = self.hs._find_email(email)
        assert record is not None
        self.hs.modify_contact(record.id, {"firstname": first_name})
        self.clock.advance(5)

    def refuse_writes(self, platform: str, email: str) -> None:
        """The platform refuses (400) every write of the person's record from now on."""
        transport = self.transports[platform]
        transport.needles.add(email)
        if platform == "brevo":
            contact = self.bv.contact(email)
            assert contact is not None
            transport.paths.add(f"/contacts/{contact.id}")

    def refuse_archive_in_hubspot(self, email: str) -> None:
        """HubSpot refuses (400) the archive of the person's contact (`DELETE
        /crm/v3/objects/contacts/{id}`), and only that, from now on."""
        record = self.hs._find_email(email)
        assert record is not None
        self.transports["hubspot"].paths.add(f"/contacts/{record.id}")

    def accept_writes(self) -> None:
        """The platforms accept every write again."""
        for transport in self.transports.values():
            transport.needles.clear()
            transport.paths.clear()

    def first_name(self, platform: str, email: str) -> str | None:
        """The first name a platform holds for `email` (None: no live record)."""
        if platform == "mailchimp":
            member = self.mc.get_member(email)
            if member is None or member.status == "archived":
                return None
            return str(member.merge_fields.get("FNAME") or "")
        if platform == "hubspot":
            record = self.hs.contact_by_email(email)
            return None if record is None else record.get("firstname")
        contact = self.bv.contact(email)
        return None if contact is None else contact.attributes.get("FIRSTNAME")

    def holds(self, email: str) -> dict[str, bool]:
        """Which platform holds a live record of `email`."""
        return {p: self.first_name(p, email) is not None for p in PLATFORMS}

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        if self._own_store:
            self.store.close()
