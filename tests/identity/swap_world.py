"""Three lived-in emulated accounts synced by one state, and the admins who swap addresses.

Before segsync, the accounts hold years of the user's data (`seed_lived_in` on Mailchimp and
HubSpot; a Brevo list and contacts of the user's own), and two people: ANNA, who opted in on
HubSpot (subscription 101, through a form), and BERT, who never did. The segments `subs`
(`consent = subscribed`) and `annas` (`first_name = "Anna"`) are materialised, so segsync
keeps lists of its own (static segments on Mailchimp). The admins act through each
platform's API, as a person in the platform would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.api import subscriber_hash

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import PublishMode
from segsync.rules import parse
from segsync.state import open_store
from segsync.sync import Engine, SegmentTarget, SyncPolicy
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

PLATFORMS = ("mailchimp", "hubspot", "brevo")
ANNA = "anna@shop.test"
BERT = "bert@shop.test"
TEMP = "swap-tmp@shop.test"
LOCAL = "http://127.0.0.1:9"
SUBS = SegmentTarget("subs", parse("consent = subscribed"),
                     dict.fromkeys(PLATFORMS, PublishMode.MATERIALISE))
ANNAS = SegmentTarget("annas", parse('first_name = "Anna"'),
                      dict.fromkeys(PLATFORMS, PublishMode.MATERIALISE))


class SwapWorld:
    """The accounts, segsync syncing them, and the admins' hands."""

    def __init__(self) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.loop = asyncio.new_event_loop()
        self.mc = MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=self.clock)
        self.bv = BrevoEmulator(clock=self.clock, enforce_rate_limits=False)
        self.mc.seed_lived_in()
        self.hs.seed_lived_in()
        own = self.bv.seed_list("Newsletter (the user's own)")
        self.bv.seed_contact("lena.lived@shop.test", lists=(own,),
                             attributes={"FIRSTNAME": "Lena"})
        self.bv.seed_contact("carl.customer@shop.test", attributes={"FIRSTNAME": "Carl"})
        self.hs.seed_contact({"email": ANNA, "firstname": "Anna"})
        self.hs.seed_contact({"email": BERT, "firstname": "Bert"})
        self.hs.set_subscription(ANNA, 101, subscribed=True, legal_basis="CONSENT_WITH_NOTICE",
                                 explanation="web form")
        self.clock.advance(3600)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.connectors: dict[str, Connector] = {
            "mailchimp": MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": LOCAL + self.mc.base_path},
                transport=self.mc.transport(), schema=DEFAULT_SCHEMA, clock=self.clock,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": LOCAL, "subscription_id": 101},
                transport=self.hs.transport(), schema=DEFAULT_SCHEMA, clock=self.clock,
            ),
            "brevo": BrevoConnector(
                {"api_key": self.bv.api_key}, transport=self.bv.transport(),
                schema=DEFAULT_SCHEMA, clock=self.clock,
            ),
        }

    # -- runs ---------------------------------------------------------------------------

    def sync(self) -> RunReport:
        self.clock.advance(600)
        engine = Engine(self.connectors, self.store, config="identity",
                        policy=SyncPolicy(platforms=PLATFORMS), schema=DEFAULT_SCHEMA,
                        segments=(SUBS, ANNAS), clock=self.clock)
        return self.loop.run_until_complete(engine.sync())

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        self.store.close()

    # -- the admins ---------------------------------------------------------------------

    def _call(self, emulator: Any, headers: dict[str, str], method: str, path: str,
              **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(
            self._acall(emulator, headers, method, path, **kwargs))

    async def _acall(self, emulator: Any, headers: dict[str, str], method: str, path: str,
                     **kwargs: Any) -> httpx.Response:
        self.clock.advance(5)
        async with httpx.AsyncClient(transport=emulator.transport(),
                                     base_url=LOCAL + emulator.base_path,
                                     headers=headers) as client:
            response = await client.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    def brevo_readdress(self, old: str, new: str) -> None:
        """A Brevo admin changes a contact's address (`PUT /contacts/{email}`)."""
        self.loop.run_until_complete(self.brevo_readdress_now(old, new))

    async def brevo_readdress_now(self, old: str, new: str) -> None:
        """`brevo_readdress` from inside a running loop (e.g. while segsync reads)."""
        await self._acall(self.bv, {"api-key": self.bv.api_key}, "PUT", f"/contacts/{old}",
                          params={"identifierType": "email_id"},
                          json={"attributes": {"EMAIL": new}})

    def hubspot_readdress(self, old: str, new: str) -> None:
        """A HubSpot user edits a contact's `email` property."""
        record = self.hs.contact_by_email(old)
        assert record is not None, old
        self._call(self.hs, {"Authorization": f"Bearer {self.hs.api_key}"}, "PATCH",
                   f"/crm/v3/objects/contacts/{record['hs_object_id']}",
                   json={"properties": {"email": new}})

    def mailchimp_readdress(self, old: str, new: str) -> None:
        """A Mailchimp user changes a member's `email_address` (PATCH)."""
        self._call(self.mc, {"Authorization": f"Bearer {self.mc.api_key}"}, "PATCH",
                   f"/lists/{self.mc.default_list_id}/members/{subscriber_hash(old)}",
                   json={"email_address": new})

    def swap(self, platform: str) -> None:
        """ANNA's and BERT's records exchange addresses, through a temporary one."""
        readdress = getattr(self, f"{platform}_readdress")
        readdress(ANNA, TEMP)
        readdress(BERT, ANNA)
        readdress(TEMP, BERT)

    # -- what the platforms hold --------------------------------------------------------

    def brevo_lists(self, email: str) -> set[str]:
        contact = self.bv.contact(email)
        assert contact is not None, email
        return {self.bv.lists[i]["name"] for i in contact.list_ids}

    def in_annas(self, email: str) -> set[str]:
        """The platforms where `email` is in segsync's `annas` segment."""
        out: set[str] = set()
        if any("annas" in tag for tag in self.mc.get_member_tags(email)):
            out.add("mailchimp")
        record = self.hs.contact_by_email(email)
        if record is not None and any(
            "annas" in lst.name and record["hs_object_id"] in lst.members
            for lst in self.hs.lists.values() if not lst.deleted
        ):
            out.add("hubspot")
        if any("annas" in name for name in self.brevo_lists(email)):
            out.add("brevo")
        return out

    def subscribed_anywhere(self, email: str) -> dict[str, str]:
        """Where `email` reads as opted in: Mailchimp status, HubSpot 101, Brevo segsync
        attribute and segsync's list."""
        out: dict[str, str] = {}
        member = self.mc.get_member(email)
        if member is not None and member.status in ("subscribed", "pending"):
            out["mailchimp"] = member.status
        if self.hs.subscription_status(email) == "SUBSCRIBED":
            out["hubspot"] = "SUBSCRIBED"
        contact = self.bv.contact(email)
        if contact is not None and "segment: subs" in self.brevo_lists(email):
            out["brevo"] = "in segsync's list"
        return out
