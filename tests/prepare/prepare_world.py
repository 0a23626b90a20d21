"""Three lived-in emulated accounts synced in-process by one state, and the users' hands.

Mailchimp and HubSpot hold `seed_lived_in` data, Brevo a list and a contact of the user's
own; users act through each platform's HTTP API, as a person in the platform would.
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
from segsync_mailchimp.emulator.state import subscriber_hash

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import FieldSpec, FieldType, Schema
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy
from segsync.sync.report import RunReport

PLATFORMS = ("mailchimp", "hubspot", "brevo")
LOCAL = "http://127.0.0.1:9"
SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "last_name": FieldSpec(type=FieldType.TEXT),
    "tier": FieldSpec(type=FieldType.TEXT),
})


class World:
    """The accounts, segsync syncing them, and the users' hands."""

    def __init__(self, schema: Schema = SCHEMA) -> None:
        self.schema = schema
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
        self.clock.advance(3600)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.connectors: dict[str, Connector] = {
            "mailchimp": MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": LOCAL + self.mc.base_path},
                transport=self.mc.transport(), schema=schema, clock=self.clock,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": LOCAL, "subscription_id": 101},
                transport=self.hs.transport(), schema=schema, clock=self.clock,
            ),
            "brevo": BrevoConnector(
                {"api_key": self.bv.api_key}, transport=self.bv.transport(),
                schema=schema, clock=self.clock,
            ),
        }

    def sync(self) -> RunReport:
        self.clock.advance(600)
        engine = Engine(self.connectors, self.store, config="prepare",
                        policy=SyncPolicy(platforms=PLATFORMS), schema=self.schema,
                        segments=(), clock=self.clock)
        return self.loop.run_until_complete(engine.sync())

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        self.store.close()

    # -- the users ----------------------------------------------------------------------

    def _call(self, emulator: Any, headers: dict[str, str], method: str, path: str,
              **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=emulator.transport(),
                                         base_url=LOCAL + emulator.base_path,
                                         headers=headers) as client:
                return await client.request(method, path, **kwargs)

        self.clock.advance(5)
        response = self.loop.run_until_complete(call())
        response.raise_for_status()
        return response

    def mailchimp(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._call(self.mc, {"Authorization": f"Bearer {self.mc.api_key}"}, method,
                          f"/lists/{self.mc.default_list_id}{path}", **kwargs)

    def mailchimp_member(self, email: str, **body: Any) -> httpx.Response:
        """A Mailchimp user edits a member (PATCH)."""
        return self.mailchimp("PATCH", f"/members/{subscriber_hash(email)}", json=body)

    def mailchimp_signup(self, email: str, tags: list[str] | None = None,
                         **merge_fields: str) -> None:
        """A person signs up on Mailchimp (through the API), with tags."""
        self.mailchimp("POST", "/members", json={
            "email_address": email, "status": "subscribed", "merge_fields": merge_fields,
            "tags": tags or [],
        })

    def hubspot(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._call(self.hs, {"Authorization": f"Bearer {self.hs.api_key}"}, method,
                          path, **kwargs)

    def hubspot_tags(self, email: str) -> set[str]:
        record = self.hs.contact_by_email(email) or {}
        return {t for t in record.get("segsync_tags", "").split(";") if t}


def warnings_about(report: RunReport, platform: str, name: str) -> list[str]:
    """The report's diagnostics on `platform` that name `name`."""
    return [str(d.get("message")) for d in report.diagnostics
            if d.get("platform") == platform and repr(name) in str(d.get("message"))]
